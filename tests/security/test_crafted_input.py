"""Crafted input answers a 4xx in the API's JSON error shape, never a 500 or an HTML page.

Each case here answered 500 (or Django's HTML "Bad Request" page) before it was fixed; run on
SQLite and on PostgreSQL (the column limits only ever failed there).
"""

import json
import time

import pytest
from django.test import Client as BrowserClient

from images.library.api import UsagePagination
from images.models import AnonymizeSettings, PlateTask
from kit.parsers import json_depth
from tests.helpers import image_bytes, upload, upload_file

HUGE_ID = "9" * 4_301  # one digit past what int() parses from text
PAST_64_BITS = str(2**63)


def deep_json(levels: int) -> str:
    return "[" * levels + "]" * levels


def _stored_image(owner) -> int:
    return upload(owner.api, ("a.png", image_bytes("PNG"))).json()["images"][0]["id"]


# JSON nested far deeper than any real request.


@pytest.mark.parametrize("levels", [65, 3_000])
def test_a_deeply_nested_json_body_is_refused(owner, levels):
    body = '{"mode": ' + deep_json(levels) + "}"
    response = owner.api.patch("/api/v1/anonymize/settings", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "too_deep"


def test_json_as_deep_as_the_limit_is_read(owner, settings):
    settings.API_JSON_MAX_DEPTH = 3
    body = json.dumps({"mode": [["blur"]]})
    response = owner.api.patch("/api/v1/anonymize/settings", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"  # read, then refused as a mode: not too deep


def test_brackets_inside_strings_do_not_count(owner):
    body = json.dumps({"mode": "[" * 3_000})
    response = owner.api.patch("/api/v1/anonymize/settings", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_an_anonymous_annotation_nested_3000_deep_is_refused():
    body = '{"insight_id": "x", "annotation": 1, "data": ' + deep_json(3_000) + "}"
    response = BrowserClient().post(
        "/api/v1/insights/annotate", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["status"] == "error_invalid_data"


@pytest.mark.django_db
def test_a_form_annotation_whose_data_is_nested_3000_deep_is_refused():
    form = {
        "insight_id": "3cd5aecd-edcc-4237-87d0-6595fc4e53c9",
        "annotation": 2,
        "data": '{"a": ' + deep_json(3_000) + "}",
    }
    response = BrowserClient().post("/api/v1/insights/annotate", form)
    assert response.status_code == 400
    assert response.json()["status"] == "error_invalid_data"


# Text that makes a string-matching regular expression scan to the end from every quote.

UNCLOSED = {
    "escaped quotes": '"' + '\\"' * 100_000,  # "\"\"\"... never closes
    "escaped backslashes": '"' + "\\\\" * 100_000,
    "quotes after stray backslashes": '\\"' * 100_000,
    "brackets in an open string": '["' + "[\\" * 100_000,
}


@pytest.mark.parametrize("text", UNCLOSED.values(), ids=UNCLOSED.keys())
def test_the_depth_check_takes_linear_time_on_strings_that_never_close(text):
    # Quadratic before: 16 KB took 1.1 s, 200 KB about 3 minutes. Linear now: a few ms per
    # 100 KB; the bound is generous for a loaded machine, far below the quadratic time.
    started = time.perf_counter()
    json_depth(text)
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ('{"a": [1, {"b": []}]}', 4),
        ('["\\"[[[", []]', 2),  # an escaped quote does not close the string
        ('["\\\\", [[]]]', 3),  # an escaped backslash does not escape the quote after it
        ('"[[[" [', 1),
        ("", 0),
    ],
)
def test_the_depth_check_skips_strings_and_their_escapes(text, depth):
    assert json_depth(text) == depth


def test_an_anonymous_annotation_with_200_kb_of_escaped_quotes_is_refused_quickly():
    body = '{"insight_id": "x", "annotation": 1, "data": "' + '\\"' * 100_000
    started = time.perf_counter()
    response = BrowserClient().post(
        "/api/v1/insights/annotate", body, content_type="application/json"
    )
    assert time.perf_counter() - started < 2
    assert response.status_code == 400


@pytest.mark.django_db
def test_a_form_annotation_with_200_kb_of_escaped_quotes_is_refused_quickly():
    form = {
        "insight_id": "3cd5aecd-edcc-4237-87d0-6595fc4e53c9",
        "annotation": 2,
        "data": '{"a": "' + '\\"' * 100_000,
    }
    started = time.perf_counter()
    response = BrowserClient().post("/api/v1/insights/annotate", form)
    assert time.perf_counter() - started < 2
    assert response.status_code == 400
    assert response.json()["status"] == "error_invalid_data"


# Numbers that int() refuses or that no database column holds.


def test_a_thumbnail_size_in_superscript_digits_is_refused(owner):
    image_id = _stored_image(owner)
    response = owner.api.get(f"/api/v1/images/{image_id}/thumbnail-url/?size=%C2%B2")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_size"


@pytest.mark.parametrize("size", [HUGE_ID, PAST_64_BITS])
def test_a_thumbnail_size_past_any_integer_is_refused(owner, size):
    image_id = _stored_image(owner)
    response = owner.api.get(f"/api/v1/images/{image_id}/thumbnail-url/?size={size}")
    assert response.status_code == 400


@pytest.mark.parametrize("image_id", [HUGE_ID, PAST_64_BITS])
@pytest.mark.parametrize("route", ["", "status/", "thumbnail-url/", "ocr/", "detections/"])
def test_an_image_id_past_any_row_answers_404(owner, image_id, route):
    response = owner.api.get(f"/api/v1/images/{image_id}/{route}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("image_id", [HUGE_ID, PAST_64_BITS])
def test_detecting_on_an_image_id_past_any_row_answers_404(owner, image_id):
    response = owner.api.post("/api/v1/detect/image", {"image_id": image_id})
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("image_id", [HUGE_ID, PAST_64_BITS])
def test_a_batch_naming_an_image_id_past_any_row_answers_404(owner, image_id):
    response = owner.api.post("/api/v1/detect/batch", {"image_ids": [image_id]}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# Column limits: PostgreSQL refused these with DataError (a 500); SQLite stored them whole.


def test_a_webhook_secret_longer_than_its_column_is_refused(owner):
    response = owner.api.patch(
        "/api/v1/anonymize/settings", {"webhook_secret": "s" * 101}, format="json"
    )
    assert response.status_code == 400
    assert "webhook_secret" in response.json()["errors"]
    assert not AnonymizeSettings.objects.filter(webhook_secret__startswith="sss").exists()


@pytest.mark.parametrize("field", ["callback_url", "upload_url"])
def test_a_task_webhook_url_longer_than_its_column_is_refused(owner, field):
    long_url = "https://example.com/" + "a" * 200
    response = owner.api.post(
        "/api/v1/process-task/",
        {"files": [upload_file("car.png", image_bytes("PNG"))], field: long_url},
        format="multipart",
    )
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not PlateTask.objects.exists()


# Django's own limits on a request answer our JSON shape on API paths.


def test_61_files_in_one_request_answer_json(owner):
    files = [upload_file(f"{i}.png", b"x") for i in range(61)]
    response = owner.api.post("/api/v1/images/", {"file": files}, format="multipart")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "too_many_files"


def test_too_many_form_fields_answer_json(owner, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    form = "&".join(f"f{i}=1" for i in range(11))
    response = owner.api.post(
        "/api/v1/detect/batch", form, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "too_many_fields"


def test_a_body_over_the_memory_limit_answers_json_413(owner, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = json.dumps({"mode": "blur", "pad": "x" * 200})
    response = owner.api.patch("/api/v1/anonymize/settings", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


def test_a_page_outside_the_api_keeps_djangos_bad_request_page(settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 1
    response = BrowserClient().post("/api-auth/login/", {"a": 1, "b": 2})
    assert response.status_code == 400
    assert "json" not in response["Content-Type"]


# POST /process-task/: the options hold whatever field the files came in.


def test_task_options_hold_when_the_files_come_in_the_file_field(owner):
    response = owner.api.post(
        "/api/v1/process-task/",
        {
            "file": [upload_file("car.png", image_bytes("PNG"))],
            "mode": "blur",
            "callback_url": "https://example.com/done",
        },
        format="multipart",
    )
    assert response.status_code == 202
    task = PlateTask.objects.get(uuid=response.json()["task_id"])
    assert (task.mode, task.callback_url) == ("blur", "https://example.com/done")


def test_task_options_hold_when_one_file_is_empty(owner):
    response = owner.api.post(
        "/api/v1/process-task/",
        {
            "files": [upload_file("car.png", image_bytes("PNG")), upload_file("empty.png", b"")],
            "mode": "blur",
        },
        format="multipart",
    )
    assert response.status_code == 202
    task = PlateTask.objects.get(uuid=response.json()["task_id"])
    assert task.mode == "blur"
    # The empty file fails alone, with its reason, as any unreadable file does.
    assert list(task.files.values_list("filename", "error_code")) == [
        ("car.png", ""),
        ("empty.png", "empty_file"),
    ]


def test_an_invalid_task_option_is_refused_with_its_field(owner):
    response = owner.api.post(
        "/api/v1/process-task/",
        {"file": [upload_file("car.png", image_bytes("PNG"))], "mode": "paint"},
        format="multipart",
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["mode"]
    assert not PlateTask.objects.exists()


# What the schema forbids is refused, not silently read as something else (schemathesis found
# these with negative data).


@pytest.mark.parametrize("route", ["/api/v1/images/", "/api/v1/detect/history"])
def test_a_blank_date_filter_is_refused_not_ignored(owner, route):
    response = owner.api.get(f"{route}?created_before=")
    assert response.status_code == 400
    assert "created_before" in response.json()["errors"]


@pytest.mark.parametrize("route", ["/api/v1/images/", "/api/v1/detect/history"])
def test_a_blank_page_is_refused_like_any_page_that_is_not_a_number(owner, route):
    assert owner.api.get(f"{route}?page=").status_code == 404
    assert owner.api.get(f"{route}?page=x").status_code == 404
    assert owner.api.get(f"{route}?page=1").status_code == 200


@pytest.mark.parametrize("size", ["", "x", "0", "-5", "²"])
def test_a_page_size_that_is_not_a_whole_number_from_1_is_refused(owner, size):
    response = owner.api.get(f"/api/v1/images/?page_size={size}")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_page_size"


@pytest.mark.parametrize("size", ["0001", "01", "0" * 5_000 + "1"])
def test_leading_zeros_do_not_make_a_page_size_the_largest(owner, monkeypatch, size):
    # Measured by its length, "0001" was longer than "2" and so taken as past the largest.
    monkeypatch.setattr(UsagePagination, "max_page_size", 2)
    for shade in range(3):
        upload(owner.api, ("a.png", image_bytes("PNG", color=(shade, 0, 0))))
    response = owner.api.get(f"/api/v1/images/?page_size={size}")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


@pytest.mark.parametrize("size", ["3", "003", HUGE_ID, "0" * 5_000 + HUGE_ID])
def test_a_page_size_past_the_largest_gives_the_largest(owner, monkeypatch, size):
    monkeypatch.setattr(UsagePagination, "max_page_size", 2)
    for shade in range(3):
        upload(owner.api, ("a.png", image_bytes("PNG", color=(shade, 0, 0))))
    response = owner.api.get(f"/api/v1/images/?page_size={size}")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 2


@pytest.mark.parametrize(
    "body",
    ["name=a&rate_limit=5&rate_limit=", "name=a&name=b", "name=a&rate_limit=&rate_limit=5"],
)
def test_a_form_field_of_one_value_sent_twice_is_refused_not_read_as_its_last(operator, body):
    """`rate_limit=5&rate_limit=` read as its last value was an unlimited tenant (null)."""
    form = "application/x-www-form-urlencoded"
    response = operator.post("/api/v1/clients/", body, content_type=form)
    assert response.status_code == 400
    repeated = body.split("&")[-1].split("=")[0]
    assert response.json()["errors"][repeated] == [
        "Sent more than once; this field takes one value."
    ]
    assert (
        operator.post("/api/v1/clients/", "name=a&rate_limit=5", content_type=form).status_code
        == 201
    )


def test_several_files_under_one_name_are_still_read_as_a_list(owner):
    files = [upload_file(f"p{i}.png", image_bytes("PNG")) for i in range(2)]
    response = owner.api.post("/api/v1/process-task/", {"files": files}, format="multipart")
    assert response.status_code == 202
