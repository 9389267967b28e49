"""ObjectVision's GET and PATCH /api/v1/users/{user_id}: a user reads and changes only itself."""

import uuid

import pytest
from rest_framework.test import APIClient

from images.compat.objectvision.models import Member
from tests.helpers import Tenant

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase 42"


@pytest.fixture(autouse=True)
def signup_open(settings) -> None:
    settings.OBJECTVISION_SIGNUP = True


def _user(email: str, name: str = "") -> tuple[dict, APIClient, dict]:
    """A signed-up user: its profile, a client sending its access token, and its tokens."""
    api = APIClient()
    body = {"email": email, "password": PASSWORD, "name": name}
    profile = api.post("/api/v1/auth/signup", body, format="json").json()
    tokens = _login(email).json()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    return profile, api, tokens


def _login(email: str, password: str = PASSWORD):
    return APIClient().post("/api/v1/auth/login", {"username": email, "password": password})


def _refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == code


@pytest.fixture
def ada(db) -> tuple[dict, APIClient, dict]:
    return _user("ada@example.com", "Ada")


@pytest.fixture
def bob(db) -> tuple[dict, APIClient, dict]:
    return _user("bob@example.com", "Bob")


def _patch(api: APIClient, user_id: str, body: object, fmt: str = "json"):
    return api.patch(f"/api/v1/users/{user_id}", body, format=fmt)


# Hostile values first


@pytest.mark.parametrize(
    "user_id", ["get-profile-x", "not-a-uuid", "%00", "1", "../auth/login", "0" * 100]
)
def test_an_id_that_is_not_a_uuid_is_a_json_404(ada, user_id):
    _refused(ada[1].get(f"/api/v1/users/{user_id}"), 404, "not_found")


def test_another_users_id_is_a_404_as_an_unknown_one(ada, bob):
    for user_id in (bob[0]["id"], str(uuid.uuid4())):
        _refused(ada[1].get(f"/api/v1/users/{user_id}"), 404, "not_found")
        _refused(_patch(ada[1], user_id, {"name": "Mallory"}), 404, "not_found")
    assert Member.objects.get(email="bob@example.com").name == "Bob"


def test_a_user_of_the_same_tenant_is_still_another_user(ada):
    member = Member.objects.get(email="ada@example.com")
    twin, api, _ = _user("twin@example.com")
    Member.objects.filter(email="twin@example.com").update(client=member.client)
    _refused(api.get(f"/api/v1/users/{ada[0]['id']}"), 404, "not_found")
    assert api.get(f"/api/v1/users/{twin['id']}").status_code == 200


def test_no_token_or_an_api_key_gets_no_user(ada, owner: Tenant):
    path = f"/api/v1/users/{ada[0]['id']}"
    _refused(APIClient().get(path), 401, "not_authenticated")
    _refused(owner.api.get(path), 403, "jwt_required")
    _refused(owner.api.patch(path, {"name": "x"}, format="json"), 403, "jwt_required")


@pytest.mark.parametrize(
    "body, code",
    [
        ({"name": "x" * 201}, "invalid"),
        ({"name": None}, "invalid"),
        ({"email": "not-an-email"}, "invalid"),
        ({"email": "a@" + "b" * 260 + ".com", "current_password": PASSWORD}, "invalid"),
        ({"password": "x" * 257, "current_password": PASSWORD}, "invalid"),
        ({"current_password": "x" * 257}, "invalid"),
        ({"password": "", "current_password": PASSWORD}, "invalid"),
        ([1, 2], "invalid"),
        ("name", "invalid"),
    ],
)
def test_hostile_changes_are_refused_and_change_nothing(ada, body, code):
    response = _patch(ada[1], ada[0]["id"], body)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert Member.objects.get(email="ada@example.com").name == "Ada"


@pytest.mark.parametrize("field, value", [("email", "eve@example.com"), ("password", NEW_PASSWORD)])
def test_email_and_password_need_the_current_password(ada, field, value):
    _refused(_patch(ada[1], ada[0]["id"], {field: value}), 400, "current_password_required")
    wrong = {field: value, "current_password": "guess"}
    _refused(_patch(ada[1], ada[0]["id"], wrong), 403, "wrong_password")
    assert _login("ada@example.com").status_code == 200


@pytest.mark.parametrize("password", ["short", "ada@example.com"])
def test_a_weak_new_password_is_refused_as_at_signup(ada, password):
    body = {"password": password, "current_password": PASSWORD}
    _refused(_patch(ada[1], ada[0]["id"], body), 400, "weak_password")
    assert _login("ada@example.com").status_code == 200


@pytest.mark.parametrize("taken", ["bob@example.com", " BOB@Example.com "])
def test_an_email_taken_by_another_user_is_a_409(ada, bob, taken):
    body = {"email": taken, "current_password": PASSWORD}
    _refused(_patch(ada[1], ada[0]["id"], body), 409, "email_taken")
    assert Member.objects.get(pk=ada[0]["id"]).email == "ada@example.com"


def test_unknown_fields_change_nothing(ada):
    body = {"id": str(uuid.uuid4()), "created_at": "2000-01-01T00:00:00Z", "is_staff": True}
    response = _patch(ada[1], ada[0]["id"], body)
    assert response.status_code == 200
    assert response.json()["id"] == ada[0]["id"]
    assert not Member.objects.get(pk=ada[0]["id"]).user.is_staff


# The user itself


def test_a_user_reads_itself_as_get_profile_does(ada):
    mine = ada[1].get(f"/api/v1/users/{ada[0]['id']}")
    assert mine.status_code == 200
    assert mine.json() == ada[1].get("/api/v1/users/get-profile").json()
    assert "password" not in mine.json()


def test_a_user_renames_itself_with_json_or_a_form(ada):
    assert _patch(ada[1], ada[0]["id"], {"name": "Ada L."}).json()["name"] == "Ada L."
    assert _patch(ada[1], ada[0]["id"], {"name": ""}, "multipart").json()["name"] == ""


def test_a_new_email_is_the_login_name_lower_cased(ada):
    body = {"email": "Ada.Lovelace@Example.com", "current_password": PASSWORD}
    response = _patch(ada[1], ada[0]["id"], body)
    assert response.status_code == 200, response.content
    assert response.json()["email"] == "ada.lovelace@example.com"
    assert _login("ada.lovelace@example.com").status_code == 200
    _refused(_login("ada@example.com"), 401, "invalid_credentials")


def test_keeping_ones_own_email_is_no_conflict(ada):
    body = {"email": "ADA@example.com", "current_password": PASSWORD}
    assert _patch(ada[1], ada[0]["id"], body).status_code == 200


def test_a_new_password_logs_out_every_refresh_token(ada):
    body = {"password": NEW_PASSWORD, "current_password": PASSWORD}
    assert _patch(ada[1], ada[0]["id"], body).status_code == 200
    _refused(_login("ada@example.com"), 401, "invalid_credentials")
    fresh = _login("ada@example.com", NEW_PASSWORD)
    assert fresh.status_code == 200
    old = {"refresh_token": ada[2]["refresh_token"]}
    _refused(APIClient().post("/api/v1/auth/refresh", old, format="json"), 401, "token_not_valid")
    new = {"refresh_token": fresh.json()["refresh_token"]}
    assert APIClient().post("/api/v1/auth/refresh", new, format="json").status_code == 200
