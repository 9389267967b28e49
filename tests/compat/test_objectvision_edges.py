"""ObjectVision's users through Django's test client: hostile values, codes, tenants apart."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from images.compat.objectvision.jobs import flush_expired_tokens
from images.compat.objectvision.models import Member
from images.models import DEFAULT_SCOPES, Plan, Scope
from tests.helpers import Tenant

PASSWORD = "correct horse battery staple"


@pytest.fixture
def signup_open(settings) -> None:
    settings.OBJECTVISION_SIGNUP = True


def _signup(email: str = "ada@example.com", password: str = PASSWORD, **extra) -> object:
    return APIClient().post(
        "/api/v1/auth/signup", {"email": email, "password": password, **extra}, format="json"
    )


def _login(email: str = "ada@example.com", password: str = PASSWORD, **headers) -> object:
    return APIClient().post(
        "/api/v1/auth/login", {"username": email, "password": password}, **headers
    )


def _bearer(tokens: dict) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    return api


def _refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == code


@pytest.fixture
def ada(db, signup_open) -> dict:
    assert _signup(name="Ada").status_code == 201
    return _login().json()


@pytest.mark.django_db
def test_signup_is_closed_unless_turned_on():
    _refused(_signup(), 403, "signup_closed")
    assert not Member.objects.exists()


@pytest.mark.django_db
def test_a_signed_up_user_gets_a_tenant_of_its_own_on_the_free_plan(signup_open):
    response = _signup(email="Ada@Example.com", name="Ada", job="ignored profile info")
    assert response.status_code == 201, response.content
    body = response.json()
    assert "password" not in body
    assert uuid.UUID(body["id"])
    assert body["email"] == "ada@example.com"
    member = Member.objects.select_related("client", "user").get()
    assert member.client.plan == Plan.FREE
    assert member.client.scopes == list(DEFAULT_SCOPES)
    assert not member.client.api_keys.exists()  # no key whose secret nobody has
    assert member.user.password.startswith("argon2")
    _signup(email="bob@example.com")
    assert Member.objects.values("client").distinct().count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("email", "password", "code"),
    [
        ("ada@example.com", "", "invalid"),
        ("ada@example.com", "x" * 257, "invalid"),
        ("ada@example.com", "short", "weak_password"),
        ("not an email", PASSWORD, "invalid"),
        ("a" * 300 + "@example.com", PASSWORD, "invalid"),
    ],
)
def test_signup_refuses_hostile_values(signup_open, email, password, code):
    _refused(_signup(email=email, password=password), 400, code)
    assert not Member.objects.exists()


@pytest.mark.django_db
def test_signup_refuses_a_taken_email_whatever_its_case(signup_open):
    assert _signup().status_code == 201
    _refused(_signup(email="ADA@example.com"), 409, "email_taken")


@pytest.mark.django_db
def test_login_is_a_form_and_answers_lowercase_bearer(ada):
    assert set(ada) == {"access_token", "refresh_token", "token_type"}
    assert ada["token_type"] == "bearer"
    assert _bearer(ada).get("/api/v1/users/get-profile").json()["email"] == "ada@example.com"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("email", "password"),
    [("ada@example.com", "wrong password"), ("nobody@example.com", PASSWORD), ("", "")],
)
def test_login_refuses_wrong_credentials_alike(ada, email, password):
    response = _login(email, password)
    assert response.status_code in (400, 401)
    assert response.json()["code"] in ("invalid", "invalid_credentials")
    assert "access_token" not in response.json()


@pytest.mark.django_db
def test_login_is_rate_limited_by_address_even_with_a_key(ada, settings, owner: Tenant):
    settings.OBJECTVISION_AUTH_RATE = "3/min"
    for _ in range(3):
        _login(password="wrong")
    _refused(_login(HTTP_X_API_KEY=owner.key), 429, "throttled")


@pytest.mark.django_db
def test_a_user_acts_with_its_tenants_scopes(ada):
    member = Member.objects.select_related("client").get()
    api = _bearer(ada)
    assert api.get("/api/v1/detect/history").status_code == 200
    member.client.scopes = [s for s in member.client.scopes if s != Scope.IMAGES_READ]
    member.client.save()
    _refused(api.get("/api/v1/detect/history"), 403, "missing_scope")
    _refused(api.get("/api/v1/clients/"), 403, "missing_scope")


@pytest.mark.django_db
def test_a_deactivated_tenants_user_is_refused(ada):
    Member.objects.get().client.__class__.objects.update(is_active=False)
    _refused(_bearer(ada).get("/api/v1/detect/history"), 401, "inactive")
    _refused(_login(), 401, "invalid_credentials")


@pytest.mark.django_db
@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 5000])
def test_a_bad_bearer_is_refused_with_json(db, token):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    _refused(api.get("/api/v1/detect/history"), 401, "token_not_valid")


@pytest.mark.django_db
def test_a_refresh_token_is_no_access_token(ada):
    _refused(
        _bearer({"access_token": ada["refresh_token"]}).get("/api/v1/detect/history"),
        401,
        "token_not_valid",
    )


@pytest.mark.django_db
def test_refresh_gives_a_new_access_token(ada):
    for field in ("refresh_token", "refresh"):
        response = APIClient().post("/api/v1/auth/refresh", {field: ada["refresh_token"]})
        assert response.status_code == 200, response.content
        assert response.json()["token_type"] == "bearer"
        assert _bearer(response.json()).get("/api/v1/detect/history").status_code == 200


@pytest.mark.django_db
def test_refresh_refuses_hostile_tokens(ada):
    api = APIClient()
    _refused(api.post("/api/v1/auth/refresh", {}), 400, "invalid")
    _refused(api.post("/api/v1/auth/refresh", {"refresh_token": "x" * 5000}), 400, "invalid")
    for body in ["true", "-1", '"text"', "[]"]:
        response = api.post("/api/v1/auth/refresh", body, content_type="application/json")
        _refused(response, 400, "invalid")
    for token in ["garbage", ada["access_token"]]:
        _refused(api.post("/api/v1/auth/refresh", {"refresh_token": token}), 401, "token_not_valid")


@pytest.mark.django_db
def test_logout_blacklists_the_refresh_token(ada):
    api = _bearer(ada)
    assert (
        api.post("/api/v1/auth/logout", {"refresh_token": ada["refresh_token"]}).status_code == 200
    )
    refresh = APIClient().post("/api/v1/auth/refresh", {"refresh_token": ada["refresh_token"]})
    _refused(refresh, 401, "token_not_valid")


@pytest.mark.django_db
def test_logout_refuses_another_users_token_and_api_keys(ada, owner: Tenant):
    assert _signup(email="bob@example.com").status_code == 201
    bob = _login("bob@example.com").json()
    _refused(
        _bearer(ada).post("/api/v1/auth/logout", {"refresh_token": bob["refresh_token"]}),
        403,
        "not_your_token",
    )
    _refused(
        owner.api.post("/api/v1/auth/logout", {"refresh_token": bob["refresh_token"]}),
        403,
        "jwt_required",
    )
    _refused(APIClient().post("/api/v1/auth/logout", {}), 401, "not_authenticated")


@pytest.mark.django_db
def test_users_of_two_tenants_see_their_own_history_only(ada, owner: Tenant):
    assert _signup(email="bob@example.com").status_code == 201
    bob = _bearer(_login("bob@example.com").json())
    page = bob.get("/api/v1/detect/history").json()
    assert page == {"items": [], "total": 0, "limit": 10, "offset": 0}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("limit=0", "invalid_limit"),
        ("limit=101", "invalid_limit"),
        ("limit=-1", "invalid_limit"),
        ("limit=ten", "invalid_limit"),
        ("limit=" + "9" * 5000, "invalid_limit"),
        ("limit=", "invalid_limit"),
        ("offset=-1", "invalid_offset"),
        ("offset=" + "9" * 30, "invalid_offset"),
    ],
)
def test_history_refuses_hostile_pages(ada, query, code):
    _refused(_bearer(ada).get(f"/api/v1/detect/history?{query}"), 400, code)


@pytest.mark.django_db
def test_expired_refresh_tokens_are_flushed(ada):
    assert OutstandingToken.objects.count() == 1
    flush_expired_tokens()
    assert OutstandingToken.objects.count() == 1  # still valid: kept
    OutstandingToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    flush_expired_tokens()
    assert not OutstandingToken.objects.exists()


@pytest.mark.django_db
def test_a_key_gets_imagos_history_page_unless_it_pages_by_limit_or_offset(owner: Tenant):
    assert set(owner.api.get("/api/v1/detect/history").json()) == {
        "count",
        "next",
        "previous",
        "results",
    }
    page = owner.api.get("/api/v1/detect/history?offset=0").json()
    assert page == {"items": [], "total": 0, "limit": 10, "offset": 0}
