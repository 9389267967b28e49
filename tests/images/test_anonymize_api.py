import hashlib
import hmac
import io
import json
from datetime import timedelta

import numpy as np
import PIL.Image
import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from images.models import AnonymizeSettings, PlateTask, WebhookAttempt
from tests.helpers import Receiver, image_bytes, media_files, shared_data, upload, upload_file

PLATE_PHOTO = "0b86cecf-67d1-4fc0-87c9-b36b0ee228bb.jpg"  # plate at x 935, y 362, 99 x 49


@pytest.fixture
def plate_photo() -> bytes:
    return (shared_data("plates", "us") / PLATE_PHOTO).read_bytes()


def _task(api: APIClient, *files: tuple[str, bytes], **data):
    payload = {"files": [upload_file(n, d) for n, d in files], **data}
    return api.post("/api/v1/process-task/", payload, format="multipart")


def _decode(response) -> np.ndarray:
    with PIL.Image.open(io.BytesIO(b"".join(response.streaming_content))) as picture:
        assert picture.format == "WEBP"
        assert not picture.info.get("exif")
        return np.asarray(picture.convert("RGB")).astype(int)


def _plate_change(original: bytes, covered: np.ndarray) -> float:
    before = np.asarray(PIL.Image.open(io.BytesIO(original)).convert("RGB")).astype(int)
    diff = np.abs(covered - before).max(axis=2)
    return float((diff[362 : 362 + 49, 935 : 935 + 99] > 40).mean())


@pytest.mark.parametrize("mode", ["stub", "blur", "pixelate", "solid"])
def test_each_mode_covers_the_plate(owner, run_jobs, plate_photo, mode):
    response = _task(owner.api, ("car.jpg", plate_photo), mode=mode)
    assert response.status_code == 202
    task_id = response.json()["task_id"]
    run_jobs()
    status = owner.api.get(f"/api/v1/task-status/{task_id}").json()
    assert status["status"] == "completed"
    [result] = status["results"]
    # The vehicle crops' low threshold may cover a light or a sticker too: never fewer.
    assert (result["filename"], result["has_plate"]) == ("covered_car.webp", True)
    assert result["plates"] >= 1
    assert result["url"] == f"/tasks_storage/{task_id}/output/covered_car.webp"
    covered = _decode(owner.api.get(result["url"]))
    assert _plate_change(plate_photo, covered) > 0.5


def test_the_answer_has_plate_detects_shape(owner, run_jobs, plate_photo):
    task_id = _task(owner.api, ("car.jpg", plate_photo)).json()["task_id"]
    pending = owner.api.get(f"/api/v1/task-status/{task_id}").json()
    assert pending["status"] == "pending"
    assert set(pending) >= {"task_id", "status", "results", "progress", "total", "processed"}
    run_jobs()
    done = owner.api.get(f"/api/v1/task-status/{task_id}").json()
    assert {"filename", "url"} <= set(done["results"][0])
    assert done["progress"] == 1.0


def test_an_image_without_a_plate_is_returned_and_flagged(owner, run_jobs):
    task_id = _task(owner.api, ("sky.png", image_bytes("PNG", size=(300, 200)))).json()["task_id"]
    run_jobs()
    [result] = owner.api.get(f"/api/v1/task-status/{task_id}").json()["results"]
    assert (result["status"], result["plates"], result["has_plate"]) == ("done", 0, False)
    assert _decode(owner.api.get(result["url"])).shape == (200, 300, 3)


def test_a_non_image_fails_alone(owner, run_jobs, plate_photo):
    files = [("car.jpg", plate_photo), ("notes.txt", b"hello"), ("sky.png", image_bytes("PNG"))]
    task_id = _task(owner.api, *files).json()["task_id"]
    run_jobs()
    status = owner.api.get(f"/api/v1/task-status/{task_id}").json()
    assert status["status"] == "completed"
    by_name = {r["source_filename"]: r for r in status["results"]}
    assert by_name["notes.txt"]["status"] == "failed"
    assert by_name["notes.txt"]["error"]["code"] == "not_an_image"
    assert by_name["notes.txt"]["url"] is None
    assert by_name["car.jpg"]["status"] == by_name["sky.png"]["status"] == "done"


def test_51_files_are_refused(owner):
    files = [(f"{n}.png", image_bytes("PNG", color=(n, 0, 0))) for n in range(51)]
    response = _task(owner.api, *files)
    assert response.status_code == 400
    assert response.json()["code"] == "too_many_files"
    assert not PlateTask.objects.exists()


def test_exif_and_gps_are_stripped_and_orientation_applied(owner, run_jobs):
    path = shared_data("exif", "orientation", "landscape_6.jpg")
    task_id = _task(owner.api, ("turned.jpg", path.read_bytes())).json()["task_id"]
    run_jobs()
    [result] = owner.api.get(f"/api/v1/task-status/{task_id}").json()["results"]
    covered = _decode(owner.api.get(result["url"]))
    with PIL.Image.open(path) as original:
        assert original.size[::-1] == covered.shape[1::-1]  # rotated by 90°


def test_another_tenants_task_answers_404(owner, other, run_jobs):
    task_id = _task(other.api, ("a.png", image_bytes("PNG"))).json()["task_id"]
    assert owner.api.get(f"/api/v1/task-status/{task_id}").status_code == 404
    assert owner.api.get("/api/v1/task-status/not-a-task").status_code == 404


def test_an_expired_task_answers_410_and_its_files_are_purged(owner, run_jobs):
    task_id = _task(owner.api, ("a.png", image_bytes("PNG"))).json()["task_id"]
    run_jobs()
    assert media_files()
    PlateTask.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = owner.api.get(f"/api/v1/task-status/{task_id}")
    assert response.status_code == 410
    assert response.json()["code"] == "task_expired"
    call_command("cleanup_tasks")
    assert media_files() == []
    task = PlateTask.objects.get()
    assert task.purged_at is not None and not task.files.exists()
    assert owner.api.get(f"/api/v1/task-status/{task_id}").status_code == 410


def test_the_anonymize_step_covers_a_stored_image(owner, run_jobs, plate_photo):
    image_id = upload(owner.api, ("car.jpg", plate_photo)).json()["images"][0]["id"]
    run_jobs()
    assert owner.api.get(f"/api/v1/images/{image_id}/anonymize/").json()["status"] == "skipped"
    response = owner.api.post(
        f"/api/v1/images/{image_id}/anonymize/", {"mode": "pixelate"}, format="json"
    )
    assert response.status_code == 202
    run_jobs()
    result = owner.api.get(f"/api/v1/images/{image_id}/anonymize/").json()
    assert (result["status"], result["mode"]) == ("done", "pixelate")
    assert result["plates"] >= 1
    assert _plate_change(plate_photo, _decode(APIClient().get(result["url"]))) > 0.5


def test_a_tenant_uploads_its_own_stub(owner, run_jobs, plate_photo):
    magenta = image_bytes("PNG", size=(200, 50), color=(255, 0, 255, 255))
    response = owner.api.put(
        "/api/v1/anonymize/stub", {"file": upload_file("stub.png", magenta)}, format="multipart"
    )
    assert response.json()["stub"] == "custom"
    task_id = _task(owner.api, ("car.jpg", plate_photo)).json()["task_id"]
    run_jobs()
    [result] = owner.api.get(f"/api/v1/task-status/{task_id}").json()["results"]
    covered = _decode(owner.api.get(result["url"]))
    centre = covered[386, 984]
    assert centre[0] > 200 and centre[1] < 60 and centre[2] > 200  # magenta


@pytest.fixture
def receiver(settings):
    """The tenant's backend on 127.0.0.1, an intranet the operator allows."""
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    backend = Receiver()
    yield backend
    backend.stop()


def test_webhooks_are_signed_and_delivered_once(owner, run_jobs, receiver, plate_photo):
    receiver.start()
    AnonymizeSettings.objects.create(
        client=owner.client,
        upload_url=f"{receiver.url}/upload",
        callback_url=f"{receiver.url}/callback",
        webhook_secret="s3cret",
    )
    task_id = _task(owner.api, ("car.jpg", plate_photo)).json()["task_id"]
    run_jobs()
    paths = sorted(path for path, _, _ in receiver.received)
    assert paths == ["/callback", "/upload"]
    for _, headers, body in receiver.received:
        expected = hmac.new(
            b"s3cret", headers["X-Imago-Timestamp"].encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        assert headers["X-Imago-Signature"] == f"sha256={expected}"
    callback = json.loads(next(b for p, _, b in receiver.received if p == "/callback"))
    assert (callback["task_id"], callback["status"]) == (task_id, "completed")
    upload_body = next(b for p, _, b in receiver.received if p == "/upload")
    assert task_id.encode() in upload_body and b"RIFF" in upload_body
    call_command("cleanup_tasks")
    run_jobs()
    assert len(receiver.received) == 2  # nothing sent twice


def test_a_receiver_that_is_down_gets_everything_once_it_is_back(owner, run_jobs, receiver):
    task_id = _task(
        owner.api, ("a.png", image_bytes("PNG")), callback_url=f"{receiver.url}/callback"
    ).json()["task_id"]
    run_jobs()  # the receiver is down: every retry fails and is recorded
    failed = WebhookAttempt.objects.filter(ok=False).count()
    assert failed >= 2
    assert PlateTask.objects.get().delivered_at is None
    receiver.start()
    call_command("cleanup_tasks")  # what the periodic job does
    run_jobs()
    assert [path for path, _, _ in receiver.received] == ["/callback"]
    assert PlateTask.objects.get().delivered_at is not None
    assert WebhookAttempt.objects.filter(ok=True).count() == 1
    call_command("cleanup_tasks")
    run_jobs()
    assert len(receiver.received) == 1
    assert json.loads(receiver.received[0][2])["task_id"] == task_id


def test_tiny_and_huge_images_work(owner, run_jobs, settings):
    settings.ANONYMIZE_MAX_SIDE = 2000
    files = [
        ("tiny.png", image_bytes("PNG", size=(3, 2))),
        ("wide.jpg", image_bytes("JPEG", size=(5000, 400))),
    ]
    task_id = _task(owner.api, *files).json()["task_id"]
    run_jobs()
    results = {
        r["source_filename"]: r
        for r in owner.api.get(f"/api/v1/task-status/{task_id}").json()["results"]
    }
    assert _decode(owner.api.get(results["tiny.png"]["url"])).shape == (2, 3, 3)
    assert _decode(owner.api.get(results["wide.jpg"]["url"])).shape == (160, 2000, 3)
