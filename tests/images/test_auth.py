from datetime import UTC, datetime

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from images.models import ApiKey, Scope
from images.tenancy import services
from tests.helpers import make_tenant

pytestmark = pytest.mark.django_db


def test_it_requires_a_key(owner):
    response = APIClient().get("/api/v1/images/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"


def test_it_rejects_an_unknown_key(owner):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Token imago_not-a-real-key")
    response = api.get("/api/v1/images/")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_key"


def test_it_accepts_the_token_header(owner):
    assert owner.api.get("/api/v1/images/").status_code == 200


def test_it_accepts_the_x_api_key_header(owner):
    api = APIClient()
    api.credentials(HTTP_X_API_KEY=owner.key)
    assert api.get("/api/v1/images/").status_code == 200


def test_it_stores_only_a_hash_and_a_prefix(owner):
    key = ApiKey.objects.get(client=owner.client)
    assert owner.key not in (key.key_hash, key.prefix)
    assert owner.key.startswith(key.prefix)
    assert len(key.prefix) < len(owner.key) // 2


def test_it_records_when_a_key_was_last_used(owner):
    owner.api.get("/api/v1/images/")
    assert ApiKey.objects.get(client=owner.client).last_used_at is not None


def test_it_refuses_a_missing_scope(db):
    reader = make_tenant("Reader", scopes=[Scope.IMAGES_READ])
    response = reader.api.post("/api/v1/images/", {}, format="multipart")
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "missing_scope"
    assert "images:write" in body["detail"]


def test_a_deactivated_clients_key_stops_working(owner):
    services.client_deactivate(client=owner.client)
    response = owner.api.get("/api/v1/images/")
    assert response.status_code == 401
    assert response.json()["code"] == "inactive"


def test_a_rotated_key_replaces_the_old_one(owner):
    new_key = services.client_rotate_key(client=owner.client)
    assert owner.api.get("/api/v1/images/").status_code == 401
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {new_key}")
    assert api.get("/api/v1/images/").status_code == 200


# Ten seconds into a one-minute window, the clock stopped: the requests of a test never straddle
# two windows (which would start the count again).
MID_WINDOW = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)


def test_it_limits_the_rate_per_client(db, time_machine):
    time_machine.move_to(MID_WINDOW, tick=False)
    slow = make_tenant("Slow", rate_limit=3)
    codes = [slow.api.get("/api/v1/images/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = slow.api.get("/api/v1/images/")
    assert response.json()["code"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= 60


def test_every_answer_says_how_much_of_the_rate_is_left(db, time_machine):
    time_machine.move_to(MID_WINDOW, tick=False)
    slow = make_tenant("Slow", rate_limit=2)
    answers = [slow.api.get("/api/v1/images/") for _ in range(3)]
    assert [a["X-RateLimit-Limit"] for a in answers] == ["2"] * 3
    assert [a["X-RateLimit-Remaining"] for a in answers] == ["1", "0", "0"]
    assert [int(a["X-RateLimit-Reset"]) for a in answers] == [50] * 3
    assert answers[2].status_code == 429
    assert int(answers[2]["Retry-After"]) <= int(answers[2]["X-RateLimit-Reset"])


def test_answers_without_a_key_carry_no_rate_headers(db):
    assert "X-RateLimit-Limit" not in APIClient().get("/api/v1/images/")


def test_one_clients_rate_limit_does_not_touch_another(db):
    slow = make_tenant("Slow", rate_limit=1)
    fast = make_tenant("Fast", rate_limit=1)
    assert slow.api.get("/api/v1/images/").status_code == 200
    assert slow.api.get("/api/v1/images/").status_code == 429
    assert fast.api.get("/api/v1/images/").status_code == 200


def test_premium_clients_get_the_premium_rate(settings, db):
    settings.RATE_LIMIT_FREE = 1
    settings.RATE_LIMIT_PREMIUM = 5
    premium = make_tenant("Premium", plan="premium")
    assert [premium.api.get("/api/v1/images/").status_code for _ in range(3)] == [200] * 3


def test_api_errors_are_json_even_for_unknown_routes(owner):
    response = owner.api.get("/api/v1/nowhere/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_rate_window_whose_key_vanished_keeps_counting(db):
    # Redis may drop the window's key at any moment (flushed, evicted, expired): counting goes on.
    slow = make_tenant("Slow", rate_limit=2)
    assert slow.api.get("/api/v1/images/").status_code == 200
    cache.clear()
    codes = [slow.api.get("/api/v1/images/").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
