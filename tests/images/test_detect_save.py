"""POST /detect/image with a file keeps it out of the library unless asked (save=true)."""

import io

import PIL.Image
import pytest
from rest_framework.test import APIClient

from images.library.services import client_usage
from images.models import DetectionJob, Image
from tests.helpers import media_files, shared_data, upload_file

CAR_PHOTO = "0b86cecf-67d1-4fc0-87c9-b36b0ee228bb.jpg"


@pytest.fixture
def car_photo() -> bytes:
    return (shared_data("plates", "us") / CAR_PHOTO).read_bytes()


def _detect(api: APIClient, **data):
    return api.post("/api/v1/detect/image", data, format="multipart")


def _library(api: APIClient) -> list[dict]:
    return api.get("/api/v1/images/").json()["results"]


def _assert_jpeg(response) -> None:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "image/jpeg"
    assert PIL.Image.open(io.BytesIO(response.content)).format == "JPEG"


@pytest.mark.django_db
def test_it_refuses_a_save_that_is_not_a_boolean(owner, car_photo):
    response = _detect(owner.api, file=upload_file("car.jpg", car_photo), save="maybe")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert not Image.objects.exists()


@pytest.mark.django_db
def test_a_file_not_saved_leaves_library_quota_and_originals_unchanged(owner, car_photo):
    owner.client.image_quota = 0  # full: a saved file would be refused
    owner.client.save()
    response = _detect(owner.api, file=upload_file("car.jpg", car_photo))
    assert response.status_code == 200, response.content
    run = response.json()
    assert run["image_id"] is None
    assert _library(owner.api) == []
    assert client_usage(client=owner.client)["images"] == 0
    assert client_usage(client=owner.client)["bytes"] == 0
    # Only the annotated preview is kept: the original is gone once detected.
    assert [p.name.startswith("annotated_") for p in media_files()] == [True]
    history = owner.api.get("/api/v1/detect/history").json()["results"]
    assert [item["id"] for item in history] == [run["id"]]
    _assert_jpeg(owner.api.get(f"/api/v1/detect/{run['id']}/image"))


@pytest.mark.django_db
def test_the_same_file_saved_later_joins_the_library(owner, car_photo):
    _detect(owner.api, file=upload_file("car.jpg", car_photo))
    response = _detect(owner.api, file=upload_file("car.jpg", car_photo), save="true")
    assert response.status_code == 200, response.content
    [image] = _library(owner.api)
    assert response.json()["image_id"] == image["id"]
    assert client_usage(client=owner.client)["images"] == 1
    # The library's image keeps its original: the pipeline runs on it.
    assert Image.objects.get(pk=image["id"]).file
    _assert_jpeg(owner.api.get(f"/api/v1/detect/{response.json()['id']}/image"))


@pytest.mark.django_db
def test_save_true_counts_against_the_quota(owner, car_photo):
    owner.client.image_quota = 0
    owner.client.save()
    response = _detect(owner.api, file=upload_file("car.jpg", car_photo), save="true")
    assert response.status_code == 403
    assert response.json()["code"] == "image_quota_exceeded"


@pytest.mark.django_db
def test_a_library_image_is_drawn_on_demand_as_jpeg(owner, car_photo):
    # A run without a stored preview (annotated off) on a saved image: drawn when asked.
    run = _detect(owner.api, file=upload_file("car.jpg", car_photo), save="true").json()
    assert run["annotated_url"] is None
    _assert_jpeg(owner.api.get(f"/api/v1/detect/{run['id']}/image"))


@pytest.mark.django_db
def test_the_annotated_image_is_the_tenants_own(owner, other, car_photo):
    run = _detect(owner.api, file=upload_file("car.jpg", car_photo)).json()
    assert other.api.get(f"/api/v1/detect/{run['id']}/image").status_code == 404
    for hostile in ["not-a-uuid", "0" * 5000, "%00"]:
        response = owner.api.get(f"/api/v1/detect/{hostile}/image")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


@pytest.mark.django_db
def test_the_image_field_queues_a_job_and_answers_objectvisions_shape(owner, run_jobs, car_photo):
    response = _detect(owner.api, image=upload_file("car.jpg", car_photo))
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"detection_id", "status"}
    assert body["status"] == "processing"
    assert _library(owner.api) == []
    run_jobs()
    job = owner.api.get(f"/api/v1/detect/jobs/{body['detection_id']}").json()
    assert job["status"] == DetectionJob.Status.COMPLETED
    assert job["detection_id"] == body["detection_id"]
    assert job["object_count"] >= 1
    # Detected, its original deleted: only the preview stays.
    assert not Image.objects.get().file
    assert [p.name.startswith("annotated_") for p in media_files()] == [True]
    _assert_jpeg(owner.api.get(f"/api/v1/detect/{body['detection_id']}/image"))
    # History in ObjectVision's shape, each object in both of its spellings.
    [item] = owner.api.get("/api/v1/detect/history?limit=5").json()["items"]
    assert (item["detection_id"], item["name"]) == (body["detection_id"], "car.jpg")
    car = next(result for result in item["results"] if result["class"] == "car")
    assert car["object_class"] == "car"
    box = car["bbox"]
    assert box["width"] == pytest.approx(box["x2"] - box["x1"])
    assert (car["bbox_x"], car["bbox_width"], car["bbox_height"]) == (
        box["x1"],
        box["width"],
        box["height"],
    )


@pytest.mark.django_db
def test_two_files_at_once_are_refused(owner, car_photo):
    response = _detect(
        owner.api, image=upload_file("a.jpg", car_photo), file=upload_file("b.jpg", car_photo)
    )
    assert response.status_code == 400
    assert response.json()["code"] == "too_many_files"
