"""A tenant's plate-covering defaults and its own stub image: reads store nothing, writes keep
one row, and a stub's file never outlives its row nor the row its file."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from images.models import AnonymizeSettings
from tests.helpers import image_bytes, media_files, upload_file

pytestmark = pytest.mark.django_db

SETTINGS = "/api/v1/anonymize/settings"
STUB = "/api/v1/anonymize/stub"


def _writes(api, path: str) -> list[str]:
    api.get(path)  # the key's first use of the minute records it (a write of its own)
    with CaptureQueriesContext(connection) as queries:
        assert api.get(path).status_code == 200
    return [q["sql"] for q in queries if q["sql"].split()[0] in ("INSERT", "UPDATE", "DELETE")]


def _stub(api, name: str = "stub.png", data: bytes | None = None):
    data = image_bytes("PNG", color=(255, 0, 255, 128)) if data is None else data
    return api.put(STUB, {"file": upload_file(name, data)}, format="multipart")


def _stub_files() -> list[str]:
    return [path.name for path in media_files() if path.parent.name == "stub"]


def test_reading_the_defaults_stores_nothing(owner):
    assert _writes(owner.api, SETTINGS) == []
    assert owner.api.get(SETTINGS).json() == {
        "mode": "stub",
        "cover_faces": False,
        "on_upload": False,
        "upload_url": "",
        "callback_url": "",
    }
    assert not AnonymizeSettings.objects.exists()


def test_a_change_is_kept_in_one_row(owner):
    changed = owner.api.patch(SETTINGS, {"mode": "blur", "webhook_secret": "s3"}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["mode"] == "blur" and "webhook_secret" not in changed.json()
    owner.api.patch(SETTINGS, {"cover_faces": True}, format="json")
    row = AnonymizeSettings.objects.get(client=owner.client)
    assert (row.mode, row.cover_faces, row.webhook_secret) == ("blur", True, "s3")


def test_a_refused_change_stores_nothing(owner):
    refused = owner.api.patch(SETTINGS, {"mode": "sparkles"}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid")
    assert not AnonymizeSettings.objects.exists()


def test_another_tenants_defaults_are_its_own(owner, other):
    owner.api.patch(SETTINGS, {"mode": "solid"}, format="json")
    assert other.api.get(SETTINGS).json()["mode"] == "stub"


def test_a_new_stub_replaces_the_last_and_its_file(owner):
    assert _stub(owner.api).json() == {"stub": "custom", "width": 64, "height": 48}
    first = AnonymizeSettings.objects.get(client=owner.client).stub_file
    assert _stub(owner.api).status_code == 200
    second = AnonymizeSettings.objects.get(client=owner.client).stub_file
    assert second != first
    assert _stub_files() == [second.rsplit("/", 1)[1]]


def test_a_stub_that_is_not_an_image_leaves_the_last_one(owner):
    _stub(owner.api)
    kept = AnonymizeSettings.objects.get(client=owner.client).stub_file
    refused = _stub(owner.api, "stub.png", b"not a picture")
    assert (refused.status_code, refused.json()["code"]) == (415, "not_an_image")
    assert AnonymizeSettings.objects.get(client=owner.client).stub_file == kept
    assert _stub_files() == [kept.rsplit("/", 1)[1]]


def test_a_refused_first_stub_stores_nothing(owner):
    assert _stub(owner.api, "stub.png", b"GIF89a, truncated").json()["code"] == "not_an_image"
    assert not AnonymizeSettings.objects.exists() and _stub_files() == []


def test_going_back_to_the_built_in_stub_deletes_the_tenants_file(owner):
    _stub(owner.api)
    assert owner.api.delete(STUB).json() == {"stub": "default"}
    assert AnonymizeSettings.objects.get(client=owner.client).stub_file == ""
    assert _stub_files() == []


def test_going_back_without_a_stub_of_ones_own_stores_nothing(owner):
    assert owner.api.delete(STUB).json() == {"stub": "default"}
    assert not AnonymizeSettings.objects.exists()
