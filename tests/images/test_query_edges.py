"""Odd but well-formed query values get answers, never a server error (found by schemathesis)."""

import pytest

pytestmark = pytest.mark.django_db


def test_it_filters_on_dates_whose_offset_postgresql_refuses(owner):
    # ISO 8601 allows ±23:59; PostgreSQL stops at ±15:59.
    response = owner.api.get("/api/v1/images/", {"created_after": "0769-01-27T15:25:44-19:06"})
    assert response.status_code == 200


def test_it_rejects_a_date_that_leaves_the_calendar_in_utc(owner):
    response = owner.api.get("/api/v1/detect/history", {"created_after": "0001-01-01T00:00+19:00"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_it_rejects_a_nul_in_the_model_of_an_images_detections(owner):
    response = owner.api.get("/api/v1/images/1/detections/", {"model": "yolo\x00"})
    assert response.status_code == 400
    assert response.json()["errors"]["model"]


def test_an_unknown_route_under_the_api_answers_json(owner):
    response = owner.api.get("/api/v1/images/not-an-id/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_get_object_or_404_answers_with_the_error_shape(admin_tenant):
    response = admin_tenant.api.get("/api/v1/clients/999999/")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "No such resource."}


def test_an_id_of_36_characters_that_is_no_uuid_is_not_found(owner):
    response = owner.api.get("/api/v1/images/82cCE1aa01dA-a-Ba5560988c83369BD4B05/status/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_digit_that_is_no_number_is_not_found(owner):
    response = owner.api.post("/api/v1/detect/image", {"image_id": "²"})
    assert response.status_code == 404
    assert response.json()["field"] == "image_id"


@pytest.mark.parametrize("value", ["0.58", "maybe", "", "2"])
def test_a_has_gps_that_is_no_boolean_is_refused_not_ignored(owner, value):
    response = owner.api.get("/api/v1/images/", {"has_gps": value})
    assert response.status_code == 400
    assert "has_gps" in response.json()["errors"]


@pytest.mark.parametrize("value", ["true", "false", "True", "0", "1"])
def test_has_gps_reads_the_usual_spellings_of_a_boolean(owner, value):
    assert owner.api.get("/api/v1/images/", {"has_gps": value}).status_code == 200


@pytest.mark.parametrize(
    ("imago_page", "code"),
    [
        ({"page": "-1"}, "not_found"),
        ({"page": "x"}, "not_found"),
        ({"page_size": "0"}, "invalid_page_size"),
    ],
)
def test_detection_history_checks_imagos_page_beside_objectvisions(owner, imago_page, code):
    """As Imago's own pages answer them: an unknown page is not found, a bad size refused."""
    response = owner.api.get("/api/v1/detect/history", {"limit": "10", **imago_page})
    assert response.status_code == (404 if code == "not_found" else 400)
    assert response.json()["code"] == code


def test_detection_history_pages_by_limit_and_offset_beside_a_valid_page(owner):
    response = owner.api.get("/api/v1/detect/history", {"limit": "10", "page": "2"})
    assert response.status_code == 200
    assert response.json()["limit"] == 10
