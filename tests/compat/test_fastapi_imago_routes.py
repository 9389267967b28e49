"""The FastAPI Imago's routes in-process: hostile values first, one error shape, tenants apart."""

import io
import os
import re
from datetime import UTC, datetime, timedelta, timezone

import PIL.Image
import pytest
from django.test import Client as HttpClient

from ai.models import VisionResult
from images.compat.fastapi_imago.serializers import ai_of, exif_of, naive_iso
from images.models import ALL_SCOPES, Client, Exif, Image
from tests.helpers import image_bytes, make_tenant, upload_file

NAIVE_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")
ADMIN_KEY = "operator-master-key-0123456789abcdef"


def call(method: str, path: str, key: str | None, **kwargs):
    headers = {"HTTP_X_API_KEY": key} if key else {}
    return getattr(HttpClient(), method)(path, **headers, **kwargs)


def send(key: str, *files: tuple[str, bytes], field: str = "file"):
    return call("post", "/images/upload", key, data={field: [upload_file(n, d) for n, d in files]})


@pytest.fixture
def stored(owner) -> int:
    response = send(owner.key, ("photo.jpg", image_bytes()))
    assert response.status_code == 201, response.content
    return response.json()["id"]


@pytest.fixture
def admin_key(settings) -> str:
    settings.ADMIN_API_KEY = ADMIN_KEY
    return ADMIN_KEY


# Hostile values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image_id",
    ["abc", "-1", "1e3", "0x10", "%00", "²", "9223372036854775808", "9" * 19, "9" * 20, "1" * 5000],
)
@pytest.mark.parametrize("suffix", ["", "/status", "/exif", "/ocr", "/ai", "/download-url"])
def test_it_answers_json_404_to_ids_no_image_can_have(owner, stored, image_id, suffix):
    response = call("get", f"/images/{image_id}{suffix}", owner.key)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_it_refuses_calls_without_a_key_or_with_a_bad_one(stored):
    for key in (None, "imago_not-a-key", "x" * 10_000):
        response = call("get", f"/images/{stored}", key)
        assert response.status_code == 401
        assert response["Content-Type"] == "application/json"
        assert response.json()["code"] in {"not_authenticated", "invalid_key"}


def test_upload_takes_one_image_in_the_field_file(owner):
    assert send(owner.key).json()["code"] == "no_file"
    response = send(owner.key, ("a.jpg", image_bytes()), field="files")
    assert (response.status_code, response.json()["code"]) == (400, "one_file")
    two = send(owner.key, ("a.jpg", image_bytes()), ("b.jpg", image_bytes(color=(1, 2, 3))))
    assert (two.status_code, two.json()["code"]) == (400, "one_file")
    refused = send(owner.key, ("a.jpg", b"not an image at all"))
    assert (refused.status_code, refused.json()["code"]) == (415, "not_an_image")
    assert not Image.objects.exists()


def test_upload_over_the_size_limit_is_refused_with_413(owner, settings):
    settings.MAX_UPLOAD_BYTES = 1000
    noise = PIL.Image.frombytes("RGB", (100, 100), os.urandom(30_000))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG")
    response = send(owner.key, ("big.png", buffer.getvalue()))
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"


def test_the_summary_language_must_be_a_language(owner):
    for language in ("klingonish", "x" * 51, "123"):
        body = {"url": "https://example.com/", "language": language}
        response = call(
            "post", "/ai/summarize", owner.key, data=body, content_type="application/json"
        )
        assert response.status_code == 400
        assert "language" in response.json()["errors"]


def test_the_ai_routes_need_the_ai_use_scope(db):
    reader = make_tenant("Reader", scopes=["images:read"])
    body = {"description": "Fix the login page"}
    response = call(
        "post", "/ai/draft-task", reader.key, data=body, content_type="application/json"
    )
    assert (response.status_code, response.json()["code"]) == (403, "missing_scope")


# Tenants apart -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("get", "/status"),
        ("get", "/exif"),
        ("get", "/ocr"),
        ("get", "/ai"),
        ("get", "/download-url"),
        ("get", "/thumbnail-url"),
        ("post", "/reprocess"),
        ("delete", ""),
    ],
)
def test_another_tenants_image_is_not_found(owner, other, stored, method, suffix):
    response = call(method, f"/images/{stored}{suffix}", other.key)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert Image.objects.filter(pk=stored).exists()


def test_tags_and_lists_hold_only_the_tenants_own(owner, other, stored):
    Image.objects.get(pk=stored).tags.create(client=owner.client, name="cat")
    assert call("get", "/images/tags/all", owner.key).json() == {"tags": ["cat"], "total": 1}
    assert call("get", "/images/tags/all", other.key).json() == {"tags": [], "total": 0}
    assert call("get", "/images", other.key).json()["count"] == 0
    assert [i["id"] for i in call("get", "/images", owner.key).json()["results"]] == [stored]


# Shapes --------------------------------------------------------------------------------------


def test_upload_acknowledges_in_the_legacy_shape(owner):
    response = send(owner.key, ("photo.jpg", image_bytes()))
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "uuid", "original_name", "status", "message"}
    assert isinstance(body["id"], int)
    assert (body["original_name"], body["status"]) == ("photo.jpg", "pending")
    again = send(owner.key, ("copy.jpg", image_bytes())).json()
    assert again["id"] == body["id"] and "déjà" in again["message"]


def test_a_new_image_has_every_sub_object_with_empty_values(owner, stored):
    detail = call("get", f"/images/{stored}/", owner.key).json()
    assert detail["processing_status"] == "pending"
    assert detail["exif"]["camera"]["make"] is None
    assert detail["exif"]["gps"] == {
        "latitude": None,
        "longitude": None,
        "has_gps": False,
        "maps_url": None,
    }
    assert detail["ocr"] == {"has_text": False, "text": "", "language": None, "confidence": None}
    assert detail["ai"] == {"description": None, "tags": [], "confidence": None, "model_used": None}
    status = call("get", f"/images/{stored}/status", owner.key).json()
    assert status == {"id": stored, "status": "pending", "started_at": None, "done_at": None}
    assert call("get", f"/images/{stored}/thumbnail-url", owner.key).status_code == 409


def test_camera_values_are_formatted_as_it_formatted_them():
    exif = Exif(
        make="NIKON",
        model="COOLPIX P6000",
        iso=64,
        aperture=2.8,
        shutter="1/250",
        focal_length=50.0,
        taken_at=datetime(2008, 10, 22, 16, 28, 39, tzinfo=UTC),
        latitude=43.467448,
        longitude=11.885127,
    )
    image = Image()
    image.exif = exif
    camera, gps = exif_of(image).values()
    assert camera == {
        "make": "NIKON",
        "model": "COOLPIX P6000",
        "iso": 64,
        "aperture": "f/2.8",
        "shutter_speed": "1/250",
        "focal_length": "50mm",
        "taken_at": "2008-10-22T16:28:39",
    }
    assert gps["maps_url"] == "https://www.google.com/maps?q=43.467448,11.885127"
    assert gps["has_gps"] is True


def test_timestamps_are_utc_to_the_second_without_an_offset():
    moment = datetime(2024, 1, 15, 12, 30, 8, 999_999, tzinfo=timezone(timedelta(hours=2)))
    assert naive_iso(moment) == "2024-01-15T10:30:08"
    assert NAIVE_SECONDS.match(naive_iso(moment))


def test_signed_links_are_signed_with_signed_url_secret(owner, stored, settings):
    settings.SIGNED_URL_SECRET = "legacy-signing-secret"
    body = call("get", f"/images/{stored}/download-url", owner.key).json()
    assert body["download_url"] == body["url"] and body["expires_in"] == settings.SIGNED_URL_TTL
    path = body["url"].removeprefix("http://testserver")
    assert HttpClient().get(path).status_code == 200
    settings.SIGNED_URL_SECRET = "another-secret"
    refused = HttpClient().get(path)
    assert (refused.status_code, refused.json()["code"]) == (403, "bad_signature")


def test_delete_removes_the_image_and_says_so(owner, stored):
    response = call("delete", f"/images/{stored}", owner.key)
    assert response.json() == {"id": stored, "deleted": True, "message": "Image supprimée."}
    assert call("get", f"/images/{stored}", owner.key).status_code == 404


def test_a_reader_cannot_upload_or_delete(owner, stored):
    reader = make_tenant("Reader", scopes=["images:read"])
    assert send(reader.key, ("a.jpg", image_bytes())).json()["code"] == "missing_scope"
    Image.objects.filter(pk=stored).update(client=reader.client)
    assert call("delete", f"/images/{stored}", reader.key).json()["code"] == "missing_scope"


# /auth/clients -------------------------------------------------------------------------------


def test_client_routes_refuse_everyone_while_admin_api_key_is_unset(db, settings):
    settings.ADMIN_API_KEY = ""
    platform = make_tenant("Platform", scopes=ALL_SCOPES)
    for key in (None, platform.key, ADMIN_KEY):
        response = call("get", "/auth/clients", key)
        assert response.status_code in {401, 403}
        assert response.json()["code"] in {"admin_api_key_unset", "invalid_key"}
    assert call("get", "/auth/clients", platform.key).json()["code"] == "admin_api_key_unset"


def test_the_admin_key_manages_clients(admin_key, owner):
    created = call(
        "post",
        "/auth/clients",
        admin_key,
        data={"name": "Legacy Co", "plan": "premium", "scopes": ["images:read"]},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    client = created.json()
    assert client["api_key"] == client["key"]
    assert call("get", "/images", client["api_key"]).status_code == 200
    ids = [c["id"] for c in call("get", "/auth/clients", admin_key).json()["results"]]
    assert client["id"] in ids and owner.client.pk in ids
    changed = call(
        "patch",
        f"/auth/clients/{client['id']}",
        admin_key,
        data={"plan": "free", "scopes": ["images:read", "images:write"]},
        content_type="application/json",
    ).json()
    assert (changed["plan"], changed["scopes"]) == ("free", ["images:read", "images:write"])
    rotated = call("post", f"/auth/clients/{client['id']}/rotate-key", admin_key).json()
    assert call("get", "/images", client["api_key"]).status_code == 401
    assert call("get", "/images", rotated["api_key"]).status_code == 200
    deleted = call("delete", f"/auth/clients/{client['id']}", admin_key).json()
    assert deleted["is_active"] is False
    assert call("get", "/images", rotated["api_key"]).status_code == 401
    assert Client.objects.filter(pk=client["id"]).exists()


def test_the_admin_key_opens_nothing_else(admin_key, owner, stored):
    for path in (f"/images/{stored}", "/images", "/api/v1/images/", "/api/v1/clients/"):
        response = call("get", path, admin_key)
        assert (response.status_code, response.json()["code"]) == (401, "invalid_key")


def test_client_routes_refuse_wrong_keys_and_tenants_without_admin(admin_key, owner):
    assert call("get", "/auth/clients", admin_key[:-1]).status_code == 401
    assert call("get", "/auth/clients", admin_key + "x").status_code == 401
    assert call("get", "/auth/clients", owner.key).json()["code"] == "missing_scope"
    platform = make_tenant("Platform", scopes=ALL_SCOPES)
    assert call("get", "/auth/clients", platform.key).status_code == 200


@pytest.mark.parametrize("client_id", ["abc", "-1", "9" * 19, "9" * 20, "1e3"])
def test_client_ids_no_client_can_have_are_not_found(admin_key, client_id):
    response = call("get", f"/auth/clients/{client_id}", admin_key)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# Docs and the site's root --------------------------------------------------------------------


@pytest.mark.django_db
def test_its_docs_list_its_routes_and_imagos_schema_does_not():
    client = HttpClient()
    legacy = client.get("/openapi.json").json()["paths"]
    expected = {"/images/upload", "/images/{id}/status", "/auth/clients", "/ai/summarize"}
    assert expected <= set(legacy)
    assert all(op["summary"] for item in legacy.values() for op in item.values())
    imago = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert not [path for path in imago if not path.startswith("/api/")]
    assert client.get("/docs").status_code == 200
    assert client.get("/redoc").status_code == 200
    root = client.get("/")
    assert (root.status_code, root["Location"]) == (302, "/api/docs/")


def test_the_ai_object_carries_a_providers_answer_and_hides_a_failure():
    image = Image()
    image.vision = VisionResult(
        provider="gemini",
        model="gemini-1.5-pro",
        language="fr",
        description="Une voiture rouge.",
        tags=["voiture"],
        confidence=0.97,
    )
    assert ai_of(image) == {
        "description": "Une voiture rouge.",
        "tags": ["voiture"],
        "confidence": 0.97,
        "model_used": "gemini-1.5-pro",
    }
    image.vision.error = "The provider answered 503."
    assert ai_of(image)["description"] is None and ai_of(image)["tags"] == []


def test_post_to_images_is_no_upload(owner):
    """The Flask app of the same contract file uploaded with POST /images: not here."""
    response = call(
        "post", "/images", owner.key, data={"file": upload_file("a.jpg", image_bytes())}
    )
    # Undeclared, so it needs the admin scope (images.tenancy.auth.required_scopes), and then is
    # no route.
    assert (response.status_code, response.json()["code"]) == (403, "missing_scope")
    platform = make_tenant("Platform", scopes=ALL_SCOPES)
    data = {"file": upload_file("a.jpg", image_bytes())}
    response = call("post", "/images", platform.key, data=data)
    assert (response.status_code, response.json()["code"]) == (405, "method_not_allowed")
    assert not Image.objects.exists()
