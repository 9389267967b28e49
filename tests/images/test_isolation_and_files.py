from datetime import timedelta

import pytest
from django.core import signing
from django.utils import timezone
from rest_framework.test import APIClient

from images.library import signing as file_signing
from images.models import Image
from tests.helpers import image_bytes, media_files, upload

IMAGE_ENDPOINTS = [
    ("get", "/api/v1/images/{id}/"),
    ("get", "/api/v1/images/{id}/status/"),
    ("get", "/api/v1/images/{id}/exif/"),
    ("get", "/api/v1/images/{id}/download-url/"),
    ("get", "/api/v1/images/{id}/thumbnail-url/?size=256"),
    ("post", "/api/v1/images/{id}/reprocess/"),
    ("delete", "/api/v1/images/{id}/"),
]


@pytest.fixture
def others_image(other) -> Image:
    response = upload(other.api, ("secret.jpg", image_bytes()))
    return Image.objects.get(pk=response.json()["images"][0]["id"])


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), IMAGE_ENDPOINTS)
@pytest.mark.parametrize("lookup", ["pk", "uuid"])
def test_another_tenants_image_answers_404(owner, others_image, method, path, lookup):
    url = path.format(id=getattr(others_image, lookup))
    response = getattr(owner.api, method)(url)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert Image.objects.filter(pk=others_image.pk).exists()


@pytest.mark.django_db
def test_the_list_shows_only_the_callers_images(owner, others_image):
    upload(owner.api, ("mine.jpg", image_bytes(color=(1, 2, 3))))
    names = [i["original_filename"] for i in owner.api.get("/api/v1/images/").json()["results"]]
    assert names == ["mine.jpg"]


@pytest.mark.django_db
def test_staff_see_every_tenant_or_one_they_choose(operator, owner, others_image):
    upload(owner.api, ("mine.jpg", image_bytes(color=(1, 2, 3))))
    assert operator.get("/api/v1/images/").json()["count"] == 2
    chosen = operator.get(f"/api/v1/images/?client={owner.client.slug}").json()
    assert [i["original_filename"] for i in chosen["results"]] == ["mine.jpg"]
    assert operator.get("/api/v1/images/?client=nobody").json()["code"] == "unknown_client"


@pytest.mark.django_db
def test_the_browsable_api_renders_for_staff(operator):
    response = operator.get("/api/v1/images/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"Image List" in response.content


@pytest.mark.django_db
def test_delete_removes_rows_and_files(owner, run_jobs):
    created = upload(owner.api, ("a.jpg", image_bytes(size=(800, 600)))).json()["images"][0]
    run_jobs()
    assert len(media_files()) == 3  # the original and two thumbnails
    response = owner.api.delete(f"/api/v1/images/{created['id']}/")
    assert response.status_code == 204
    assert not Image.objects.exists()
    assert media_files() == []


@pytest.mark.django_db
def test_delete_needs_the_delete_scope(db):
    from tests.helpers import make_tenant

    writer = make_tenant("Writer", scopes=["images:read", "images:write"])
    created = upload(writer.api, ("a.jpg", image_bytes())).json()["images"][0]
    response = writer.api.delete(f"/api/v1/images/{created['id']}/")
    assert response.json()["code"] == "missing_scope"


@pytest.mark.django_db
def test_a_signed_download_link_serves_the_original(owner):
    data = image_bytes()
    created = upload(owner.api, ("a.jpg", data)).json()["images"][0]
    link = owner.api.get(f"/api/v1/images/{created['id']}/download-url/").json()
    response = APIClient().get(link["url"])  # no key: the signature is the credential
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data
    assert response["Content-Type"] == "image/jpeg"


@pytest.mark.django_db
def test_a_signed_link_expires(owner, settings, time_machine):
    created = upload(owner.api, ("a.jpg", image_bytes())).json()["images"][0]
    link = owner.api.get(f"/api/v1/images/{created['id']}/download-url/").json()["url"]
    time_machine.move_to(timezone.now() + timedelta(seconds=settings.SIGNED_URL_TTL + 1))
    response = APIClient().get(link)
    assert response.status_code == 410
    assert response.json()["code"] == "link_expired"


@pytest.mark.django_db
def test_a_signed_link_is_bound_to_its_tenant(owner, other, others_image):
    # A token minted for one tenant cannot name another tenant's file.
    token = signing.dumps(
        {"c": owner.client.pk, "n": others_image.file, "t": "image/jpeg"},
        salt=file_signing.SALT,
        compress=True,
    )
    response = APIClient().get(f"/files/signed/{token}")
    assert response.status_code == 403
    assert response.json()["code"] == "bad_signature"


@pytest.mark.django_db
def test_a_tampered_link_is_refused(owner):
    created = upload(owner.api, ("a.jpg", image_bytes())).json()["images"][0]
    link = owner.api.get(f"/api/v1/images/{created['id']}/download-url/").json()["url"]
    response = APIClient().get(link[:-3] + "abc")
    assert response.status_code == 403


@pytest.mark.django_db
def test_a_deactivated_tenants_links_stop_working(owner):
    created = upload(owner.api, ("a.jpg", image_bytes())).json()["images"][0]
    link = owner.api.get(f"/api/v1/images/{created['id']}/download-url/").json()["url"]
    owner.client.is_active = False
    owner.client.save()
    assert APIClient().get(link).status_code == 403


@pytest.mark.django_db
def test_a_thumbnail_link_before_the_thumbnails_exist_says_so(owner):
    created = upload(owner.api, ("a.jpg", image_bytes())).json()["images"][0]
    response = owner.api.get(f"/api/v1/images/{created['id']}/thumbnail-url/?size=256")
    assert response.status_code == 409
    assert response.json()["code"] == "thumbnail_not_ready"
    bad = owner.api.get(f"/api/v1/images/{created['id']}/thumbnail-url/?size=99")
    assert bad.json()["code"] == "invalid_size"
