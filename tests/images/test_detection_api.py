import io
import subprocess
import sys
import types
from pathlib import Path

import PIL.Image
import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from images.detection.engine import ultralytics_model
from images.models import Detection, DetectionRun, Image
from tests.helpers import image_bytes, make_tenant, shared_data, upload, upload_file

CAR_PHOTO = "0b86cecf-67d1-4fc0-87c9-b36b0ee228bb.jpg"  # a car, a truck-free street


@pytest.fixture
def car_photo() -> bytes:
    return (shared_data("plates", "us") / CAR_PHOTO).read_bytes()


def _detect(api: APIClient, **data):
    return api.post("/api/v1/detect/image", data, format="multipart")


@pytest.mark.django_db
def test_it_detects_a_car_in_an_uploaded_photo(owner, car_photo):
    response = _detect(owner.api, file=upload_file("car.jpg", car_photo))
    assert response.status_code == 200, response.content
    run = response.json()
    assert run["model"] == "coco"
    assert run["count"] >= 1
    car = next(d for d in run["detections"] if d["class_name"] == "car")
    assert car["confidence"] > 0.5
    assert set(car["box"]) == {"x1", "y1", "x2", "y2"}
    assert 0 <= car["box_normalized"]["x1"] < car["box_normalized"]["x2"] <= 1
    assert Image.objects.filter(client=owner.client).count() == 1


@pytest.mark.django_db
def test_it_detects_on_a_stored_image_with_filters_and_threshold(owner, car_photo):
    image_id = upload(owner.api, ("car.jpg", car_photo)).json()["images"][0]["id"]
    only_trucks = _detect(owner.api, image_id=image_id, classes="truck").json()
    assert all(d["class_name"] == "truck" for d in only_trucks["detections"])
    strict = _detect(owner.api, image_id=image_id, confidence=0.999).json()
    assert strict["detections"] == []
    by_id = _detect(owner.api, image_id=image_id, classes="2").json()
    assert {d["class_name"] for d in by_id["detections"]} == {"car"}


@pytest.mark.django_db
def test_the_plate_model_can_be_picked_per_request(owner, car_photo):
    run = _detect(owner.api, file=upload_file("car.jpg", car_photo), model="plates").json()
    assert run["model"] == "plates"
    [plate] = run["detections"]
    assert plate["class_name"] == "plate"
    assert len(plate["polygon"]) >= 4


@pytest.mark.django_db
def test_an_annotated_image_is_served_by_signed_url(owner, car_photo):
    run = _detect(owner.api, file=upload_file("car.jpg", car_photo), annotated="true").json()
    response = APIClient().get(run["annotated_url"])
    assert response.status_code == 200
    with PIL.Image.open(io.BytesIO(b"".join(response.streaming_content))) as annotated:
        assert annotated.format == "WEBP"
        assert annotated.size == (1920, 1080)
        original = PIL.Image.open(io.BytesIO(car_photo)).convert("RGB")
        assert annotated.convert("RGB").tobytes() != original.tobytes()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"model": "nope"}, "unknown_model"),
        ({"classes": "unicorn"}, "unknown_class"),
        ({"confidence": "2"}, "invalid"),
    ],
)
def test_it_refuses_bad_parameters(owner, data, code):
    response = _detect(owner.api, file=upload_file("a.png", image_bytes("PNG")), **data)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert not Image.objects.exists()


@pytest.mark.django_db
def test_a_model_whose_file_is_not_installed_is_unavailable_not_a_bad_request(owner, settings):
    # The request is right; the server lacks the file (fetch_models): 503, on every route.
    settings.DETECTION_MODELS = {**settings.DETECTION_MODELS, "gone": {"file": "gone.onnx"}}
    png = upload_file("a.png", image_bytes("PNG"))
    single = _detect(owner.api, file=png, model="gone")
    assert (single.status_code, single.json()["code"]) == (503, "model_missing")
    batch = owner.api.post(
        "/api/v1/detect/batch",
        {"files": [upload_file("a.png", image_bytes("PNG"))], "model": "gone"},
        format="multipart",
    )
    assert (batch.status_code, batch.json()["code"]) == (503, "model_missing")
    assert not Image.objects.exists()


@pytest.mark.django_db
def test_it_refuses_a_file_that_is_not_an_image(owner):
    response = _detect(owner.api, file=upload_file("a.jpg", b"not an image"))
    assert response.json()["code"] == "not_an_image"


@pytest.mark.django_db
def test_another_tenants_image_and_job_answer_404(owner, other, car_photo):
    image_id = upload(other.api, ("car.jpg", car_photo)).json()["images"][0]["id"]
    assert _detect(owner.api, image_id=image_id).status_code == 404
    assert owner.api.get(f"/api/v1/images/{image_id}/detections/").status_code == 404
    job = other.api.post(
        "/api/v1/detect/batch", {"image_ids": [image_id]}, format="multipart"
    ).json()
    assert owner.api.get(f"/api/v1/detect/jobs/{job['job_id']}").status_code == 404
    assert owner.api.get("/api/v1/detect/jobs/not-a-uuid").status_code == 404


def test_a_batch_runs_as_a_job_and_reports_per_image_results(owner, run_jobs, car_photo):
    files = [upload_file("car.jpg", car_photo), upload_file("flat.png", image_bytes("PNG"))]
    response = owner.api.post(
        "/api/v1/detect/batch", {"files": files, "annotated": "true"}, format="multipart"
    )
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    assert owner.api.get(f"/api/v1/detect/jobs/{job_id}").json()["status"] == "pending"
    run_jobs()
    job = owner.api.get(f"/api/v1/detect/jobs/{job_id}").json()
    assert (job["status"], job["processed"], job["total"], job["progress"]) == (
        "completed",
        2,
        2,
        1.0,
    )
    assert len(job["results"]) == 2
    assert all(result["annotated_url"] for result in job["results"])
    counts = sorted(result["count"] for result in job["results"])
    assert counts[0] == 0 and counts[1] >= 1


@pytest.mark.django_db
def test_a_batch_of_51_is_refused(owner):
    files = [upload_file(f"{n}.png", image_bytes("PNG", color=(n, 0, 0))) for n in range(51)]
    response = owner.api.post("/api/v1/detect/batch", {"files": files}, format="multipart")
    assert response.status_code == 400
    assert response.json()["code"] == "too_many_files"


def test_the_pipeline_step_stores_detections_and_tags(owner, run_jobs, car_photo):
    image_id = upload(owner.api, ("car.jpg", car_photo)).json()["images"][0]["id"]
    run_jobs()
    image = Image.objects.get(pk=image_id)
    step = image.steps.get(name="detection")
    assert step.status == "done"
    assert step.result["model"] == "coco"
    assert step.result["classes"]["car"] >= 1
    assert "car" in {tag.name for tag in image.tags.all()}
    runs = owner.api.get(f"/api/v1/images/{image_id}/detections/").json()
    assert [run["source"] for run in runs] == ["pipeline"]
    # Reprocessing replaces the pipeline's detections instead of piling them up.
    owner.api.post(f"/api/v1/images/{image_id}/reprocess/", {"steps": ["detection"]}, format="json")
    run_jobs()
    assert DetectionRun.objects.filter(image=image, source="pipeline").count() == 1


@pytest.mark.django_db
def test_history_is_paginated_and_filtered_by_class(owner, other, car_photo):
    image_id = upload(owner.api, ("car.jpg", car_photo)).json()["images"][0]["id"]
    _detect(owner.api, image_id=image_id)
    _detect(owner.api, image_id=image_id, classes="truck")
    _detect(other.api, file=upload_file("car.jpg", car_photo))
    history = owner.api.get("/api/v1/detect/history").json()
    assert history["count"] == 2
    with_car = owner.api.get("/api/v1/detect/history?class_name=car").json()
    assert with_car["count"] == 1
    assert (
        owner.api.get("/api/v1/detect/history?created_after=2999-01-01T00:00:00Z").json()["count"]
        == 0
    )


@pytest.mark.django_db
def test_detection_needs_the_write_scope(db):
    reader = make_tenant("Reader", scopes=["images:read"])
    response = _detect(reader.api, file=upload_file("a.png", image_bytes("PNG")))
    assert response.json()["code"] == "missing_scope"
    assert reader.api.get("/api/v1/detect/history").status_code == 200


@pytest.mark.django_db
def test_the_registry_lists_builtin_models(owner):
    models = {m["name"]: m for m in owner.api.get("/api/v1/detect/models").json()}
    assert models["coco"]["task"] == "detect"
    assert models["plates"]["class_names"] == ["plate"]
    assert models["coco"]["builtin"] is True


@pytest.mark.django_db
def test_listing_the_models_writes_nothing(owner):
    owner.api.get("/api/v1/detect/models")  # the key's first use of the minute is recorded
    with CaptureQueriesContext(connection) as queries:
        assert owner.api.get("/api/v1/detect/models").status_code == 200
    assert [q["sql"] for q in queries if q["sql"].split()[0] in ("INSERT", "UPDATE")] == []


@pytest.mark.django_db
def test_a_tenant_registers_its_own_onnx_model_and_others_cannot_use_it(owner, other, settings):
    onnx = (settings.MODELS_DIR / "yolov8n.onnx").read_bytes()
    response = owner.api.post(
        "/api/v1/detect/models",
        {"name": "my-coco", "file": upload_file("my.onnx", onnx), "confidence": "0.4"},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    assert response.json()["builtin"] is False
    png = image_bytes("PNG")
    assert _detect(owner.api, file=upload_file("a.png", png), model="my-coco").status_code == 200
    refused = _detect(other.api, file=upload_file("a.png", png), model="my-coco")
    assert refused.json()["code"] == "unknown_model"


@pytest.mark.django_db
def test_a_broken_model_file_is_refused(owner):
    response = owner.api.post(
        "/api/v1/detect/models",
        {"name": "junk", "file": upload_file("junk.onnx", b"garbage")},
        format="multipart",
    )
    assert response.json()["code"] == "invalid_model"


def test_fetch_models_is_idempotent_and_verifies_checksums(capsys, settings):
    call_command("fetch_models")
    assert capsys.readouterr().out.count("checksum verified") == 2


def test_fetch_models_explains_an_unreachable_registry(tmp_path):
    empty = tmp_path / "no-models-yet"
    env = {
        "PATH": "/usr/bin:/bin",
        "MODELS_DIR": str(empty),
        "PIP_CONFIG_FILE": "/dev/null",
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_FIND_LINKS": "",
        "PIP_RETRIES": "0",
        "PIP_TIMEOUT": "2",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "fetch_models"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Could not download platedet==0.0.2" in result.stderr
    assert "has no copy of platedet.onnx" in result.stderr
    assert not list(empty.iterdir())  # no partial file left behind


@pytest.mark.django_db
def test_detection_deletes_with_its_image(owner, car_photo):
    run = _detect(
        owner.api, file=upload_file("car.jpg", car_photo), annotated="true", save="true"
    ).json()
    owner.api.delete(f"/api/v1/images/{run['image_id']}/")
    assert not Detection.objects.exists()
    assert APIClient().get(run["annotated_url"]).status_code == 404


@pytest.mark.yolo
def test_loading_ultralytics_keeps_pillows_own_open():
    with pytest.raises(Exception):  # noqa: B017 (any load error is fine: the point is PIL after)
        ultralytics_model(Path("/nonexistent.onnx"))
    with pytest.raises(PIL.UnidentifiedImageError):
        PIL.Image.open(io.BytesIO(b"%PDF-1.4 not an image"))


def test_pillows_own_open_is_put_back_after_ultralytics_replaced_it(monkeypatch):
    """What importing ultralytics does to Pillow, without torch: a stand-in module, and
    PIL.Image.open replaced as its import replaces it."""

    def replaced(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'pi_heif'")

    stand_in = types.ModuleType("ultralytics")
    stand_in.YOLO = lambda path, task=None: (path, task)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ultralytics", stand_in)
    monkeypatch.setattr(PIL.Image, "open", replaced)
    assert ultralytics_model(Path("m.onnx"), task="detect") == ("m.onnx", "detect")
    with pytest.raises(PIL.UnidentifiedImageError):
        PIL.Image.open(io.BytesIO(b"%PDF-1.4 not an image"))
