"""Imago on S3: uploads, the pipeline, presigned links, deletes and failures, against a real
S3 server on loopback (moto's, with S3's checks of presigned links; see s3server.py)."""

import io
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import PIL.Image
import pytest
from django.db import OperationalError

from images.library import services
from images.models import Image, PlateTask
from images.plates import tasks
from tests.helpers import image_bytes, upload, upload_file
from tests.storage.conftest import Bucket

CAMERA = "Imago Test Cam"


def _photo(color: tuple = (200, 30, 30), size: tuple[int, int] = (800, 600)) -> bytes:
    exif = PIL.Image.Exif()
    exif[0x010F] = CAMERA  # Make
    return image_bytes(size=size, color=color, exif=exif.tobytes())


def _created(tenant, *files: tuple[str, bytes]) -> list[dict]:
    response = upload(tenant.api, *files, field="files")
    assert response.status_code == 201, response.content
    return response.json()["images"]


def _link(tenant, path: str) -> str:
    response = tenant.api.get(path)
    assert response.status_code == 200, response.content
    return response.json()["url"]


def _decoded(data: bytes) -> PIL.Image.Image:
    picture = PIL.Image.open(io.BytesIO(data))
    picture.load()
    return picture


# Uploads ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_stores_an_upload_under_the_tenants_prefix(owner, bucket: Bucket):
    data = _photo()
    [created] = _created(owner, ("car.jpg", data))
    image = Image.objects.get(pk=created["id"])
    assert image.file == f"clients/{owner.client.pk}/images/{image.uuid}/original.jpg"
    assert bucket.objects() == [image.file]
    assert bucket.read(image.file) == data
    assert bucket.content_type(image.file) == "image/jpeg"


@pytest.mark.django_db
def test_it_stores_every_file_of_a_multi_file_upload_once(owner, other, bucket: Bucket):
    red, blue = _photo((200, 30, 30)), image_bytes("PNG", color=(20, 20, 200))
    created = _created(owner, ("red.jpg", red), ("blue.png", blue), ("again.jpg", red))
    assert created[2]["id"] == created[0]["id"]  # the same bytes twice: one image, one object
    _created(other, ("red.jpg", red))
    images = {i.original_filename: i for i in Image.objects.filter(client=owner.client)}
    assert bucket.objects(f"clients/{owner.client.pk}/") == sorted(i.file for i in images.values())
    assert images["blue.png"].file.endswith("/original.png")
    assert bucket.read(images["blue.png"].file) == blue
    assert len(bucket.objects(f"clients/{other.client.pk}/")) == 1


# The pipeline ----------------------------------------------------------------------------------


def test_the_pipeline_reads_the_original_from_s3_and_writes_webp_thumbnails(
    owner, run_jobs, bucket: Bucket
):
    [created] = _created(owner, ("car.jpg", _photo()))
    run_jobs()
    image = Image.objects.get(pk=created["id"])
    steps = dict(image.steps.values_list("name", "status"))
    # Every step that reads the original (EXIF, thumbnails, OCR, detection, ...) read it from S3.
    assert steps["exif"] == steps["thumbnails"] == "done", steps
    assert set(steps.values()) <= {"done", "skipped"}, steps
    assert owner.api.get(f"/api/v1/images/{image.pk}/exif/").json()["make"] == CAMERA
    thumbnails = list(image.thumbnails.order_by("size"))
    assert [t.size for t in thumbnails] == [256, 1024]
    for thumbnail in thumbnails:
        assert thumbnail.file.startswith(f"{image.storage_dir}/thumb_{thumbnail.size}_")
        assert bucket.content_type(thumbnail.file) == "image/webp"
        picture = _decoded(bucket.read(thumbnail.file))
        assert (picture.format, picture.size) == ("WEBP", (thumbnail.width, thumbnail.height))
    assert thumbnails[0].width == 256
    assert set(bucket.objects(image.storage_dir)) == {image.file, *(t.file for t in thumbnails)}


def test_reprocessing_thumbnails_replaces_the_old_objects(owner, run_jobs, bucket: Bucket):
    [created] = _created(owner, ("car.jpg", _photo()))
    run_jobs()
    image = Image.objects.get(pk=created["id"])
    before = set(image.thumbnails.values_list("file", flat=True))
    owner.api.post(f"/api/v1/images/{image.pk}/reprocess/", {"steps": ["thumbnails"]})
    run_jobs()
    after = set(image.thumbnails.values_list("file", flat=True))
    assert before.isdisjoint(after)
    assert set(bucket.objects(image.storage_dir)) == {image.file, *after}


# Presigned links -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_download_url_is_a_presigned_link_to_the_original(owner, bucket: Bucket, settings):
    data = _photo()
    [created] = _created(owner, ("car.jpg", data))
    url = _link(owner, f"/api/v1/images/{created['id']}/download-url/")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == bucket.server.endpoint_url
    assert parts.path.startswith(f"/{bucket.name}/clients/{owner.client.pk}/images/")
    assert parse_qs(parts.query)["X-Amz-Expires"] == [str(settings.SIGNED_URL_TTL)]
    response = httpx.get(url)  # no key: the signature is the credential
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["cache-control"] == "private, max-age=300"


def test_thumbnail_url_is_a_presigned_link_to_the_webp(owner, run_jobs, bucket: Bucket):
    [created] = _created(owner, ("car.jpg", _photo()))
    run_jobs()
    url = _link(owner, f"/api/v1/images/{created['id']}/thumbnail-url/?size=256")
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/webp"
    assert _decoded(response.content).size == (256, 192)


@pytest.mark.django_db
def test_an_expired_link_is_refused(owner, bucket: Bucket, settings):
    [created] = _created(owner, ("car.jpg", _photo()))
    url = _link(owner, f"/api/v1/images/{created['id']}/download-url/")
    bucket.server.clock_offset = timedelta(seconds=settings.SIGNED_URL_TTL - 5)
    assert httpx.get(url).status_code == 200
    bucket.server.clock_offset = timedelta(seconds=settings.SIGNED_URL_TTL + 5)
    response = httpx.get(url)
    assert response.status_code == 403
    assert "Request has expired" in response.text


@pytest.mark.django_db
def test_the_link_lives_as_long_as_signed_url_ttl_says(owner, bucket: Bucket, settings):
    settings.SIGNED_URL_TTL = 60
    [created] = _created(owner, ("car.jpg", _photo()))
    body = owner.api.get(f"/api/v1/images/{created['id']}/download-url/").json()
    assert parse_qs(urlsplit(body["url"]).query)["X-Amz-Expires"] == ["60"]
    bucket.server.clock_offset = timedelta(seconds=65)
    assert httpx.get(body["url"]).status_code == 403


@pytest.mark.django_db
def test_a_tampered_link_is_refused(owner, other, bucket: Bucket):
    [mine] = _created(owner, ("car.jpg", _photo()))
    [theirs] = _created(other, ("car.jpg", _photo((10, 200, 10))))
    url = _link(owner, f"/api/v1/images/{mine['id']}/download-url/")
    their_key = Image.objects.get(pk=theirs["id"]).file
    my_key = Image.objects.get(pk=mine["id"]).file
    # Pointing my link at another tenant's object, or stretching its life, breaks the signature.
    for forged in (
        url.replace(my_key, their_key),
        url.replace("X-Amz-Expires=3600", "X-Amz-Expires=7200"),
        url.replace("response-content-type=image%2Fjpeg", "response-content-type=text%2Fhtml"),
    ):
        assert forged != url
        response = httpx.get(forged)
        assert response.status_code == 403
        assert "SignatureDoesNotMatch" in response.text


@pytest.mark.django_db
def test_links_are_signed_for_the_public_endpoint(owner, s3_server, s3_env, request):
    # As in compose: the app reaches MinIO at one address (http://minio:9000), people at another.
    s3_env["S3_PUBLIC_ENDPOINT_URL"] = f"http://localhost:{s3_server.port}"
    bucket: Bucket = request.getfixturevalue("bucket")
    data = _photo()
    [created] = _created(owner, ("car.jpg", data))
    url = _link(owner, f"/api/v1/images/{created['id']}/download-url/")
    assert urlsplit(url).netloc == f"localhost:{s3_server.port}"
    assert httpx.get(url).content == data
    assert bucket.objects() == [Image.objects.get().file]


# Deletes ---------------------------------------------------------------------------------------


def test_delete_removes_every_object_of_the_image(owner, run_jobs, bucket: Bucket):
    kept, gone = _created(owner, ("kept.jpg", _photo((1, 2, 3))), ("gone.jpg", _photo()))
    response = owner.api.post(f"/api/v1/images/{gone['id']}/anonymize/", {"mode": "blur"})
    assert response.status_code == 202
    run_jobs()
    image = Image.objects.get(pk=gone["id"])
    anonymized = image.steps.get(name="anonymize").result["file"]
    assert anonymized.startswith(f"{image.storage_dir}/anonymized/")
    assert len(bucket.objects(image.storage_dir)) == 4  # original, two thumbnails, anonymised copy
    response = owner.api.delete(f"/api/v1/images/{gone['id']}/")
    assert response.status_code == 204
    assert bucket.objects(image.storage_dir) == []
    survivor = Image.objects.get(pk=kept["id"])
    assert set(bucket.objects()) == {
        survivor.file,
        *survivor.thumbnails.values_list("file", flat=True),
    }


# No orphans ------------------------------------------------------------------------------------


def _every_row_has_its_object(bucket: Bucket) -> None:
    keys = set(bucket.objects())
    for image in Image.objects.all():
        assert image.file in keys, image.file


@pytest.mark.django_db
def test_a_refused_quota_leaves_no_object(owner, bucket: Bucket):
    owner.client.image_quota = 1
    owner.client.save()
    response = upload(owner.api, ("a.jpg", _photo()), ("b.jpg", _photo((9, 9, 9))), field="files")
    assert response.status_code == 403
    assert response.json()["code"] == "image_quota_exceeded"
    assert bucket.objects() == []
    assert not Image.objects.exists()


@pytest.mark.django_db
def test_a_database_failure_after_the_upload_leaves_no_object(owner, bucket: Bucket, monkeypatch):
    def database_gone(**kwargs: object) -> None:
        raise OperationalError("server closed the connection unexpectedly")

    # The files are in the bucket by then; the rows fail inside the transaction.
    monkeypatch.setattr(services, "pipeline_enqueue", database_gone)
    owner.api.raise_request_exception = False
    response = upload(owner.api, ("a.jpg", _photo()), ("b.jpg", _photo((9, 9, 9))), field="files")
    assert response.status_code == 500
    assert response.json()["code"] == "server_error"
    assert bucket.objects() == []
    assert not Image.objects.exists()


@pytest.mark.django_db
def test_a_concurrent_upload_of_the_same_bytes_leaves_one_object(
    owner, bucket: Bucket, monkeypatch
):
    """Another request stores the same bytes while ours is writing its file: our insert meets
    the unique constraint, our file is deleted, and the answer is the other request's image."""
    data = _photo()
    real_save = services.storage.save_file
    twin: list[Image] = []

    def save_while_another_request_stores_it(name, fp):
        saved = real_save(name, fp)
        monkeypatch.setattr(services.storage, "save_file", real_save)  # one race is enough
        [stored] = services.image_create_many(
            client=owner.client,
            uploads=[services.Upload("twin.jpg", io.BytesIO(data), len(data))],
        )
        twin.append(stored.image)
        return saved

    monkeypatch.setattr(services.storage, "save_file", save_while_another_request_stores_it)
    [created] = _created(owner, ("car.jpg", data))
    assert created["duplicate"] is True
    assert created["id"] == twin[0].pk
    assert bucket.objects() == [twin[0].file]
    _every_row_has_its_object(bucket)


# Anonymisation tasks ---------------------------------------------------------------------------


def test_a_plate_task_keeps_its_files_in_s3_until_it_expires(owner, run_jobs, bucket: Bucket):
    stub = owner.api.put(
        "/api/v1/anonymize/stub",
        {"file": upload_file("stub.png", image_bytes("PNG", size=(40, 20), color=(0, 0, 0, 255)))},
        format="multipart",
    )
    assert stub.status_code == 200, stub.content
    payload = {"files": [upload_file("sky.png", image_bytes("PNG", size=(300, 200)))]}
    response = owner.api.post("/api/v1/process-task/", payload, format="multipart")
    assert response.status_code == 202
    run_jobs()
    task = PlateTask.objects.get(uuid=response.json()["task_id"])
    body = owner.api.get(f"/api/v1/task-status/{task.uuid}").json()
    assert body["status"] == "completed"
    [result] = body["results"]
    # plate_detect's relative path, served from the bucket by Imago until the task expires.
    assert result["url"] == f"/tasks_storage/{task.uuid}/output/covered_sky.webp"
    fetched = owner.api.get(result["url"])
    assert fetched.status_code == 200
    assert fetched["Content-Type"] == "image/webp"
    assert _decoded(b"".join(fetched.streaming_content)).size == (300, 200)
    task_keys = bucket.objects(task.storage_dir)
    assert len(task_keys) == 2  # the source and the covered result
    assert bucket.objects(f"clients/{owner.client.pk}/stub/") != []

    tasks.tasks_cleanup(now=task.expires_at + timedelta(seconds=1))
    assert bucket.objects(task.storage_dir) == []


# Health ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_health_reports_the_bucket(client, bucket: Bucket):
    checks = client.get("/health/detailed").json()["checks"]
    assert checks["storage"] == {"ok": True, "backend": "s3", "bucket": bucket.name}


@pytest.mark.django_db
def test_health_says_when_the_bucket_is_missing(client, bucket: Bucket):
    bucket.client.delete_bucket(Bucket=bucket.name)
    response = client.get("/health/detailed")
    assert response.status_code == 503
    assert response.json()["checks"]["storage"]["ok"] is False
    bucket.client.create_bucket(Bucket=bucket.name)  # for the fixture's cleanup
