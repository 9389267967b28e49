"""Redis stopped during uploads: nothing is lost, and processing completes once it is back.

The API keeps accepting uploads while Redis is down: the image is stored and its steps stay
pending; `requeue_stuck_steps` (rqcron runs it) queues them once Redis answers again.
"""

import io
from pathlib import Path

import django_rq
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from rq.job import JobStatus

from annotations.models import InsightImport
from images.models import DetectionJob, Image, ImageStep, PlateTask
from tests.helpers import image_bytes, media_files, upload, upload_file

pytestmark = [pytest.mark.timeout(180), pytest.mark.django_db(transaction=True)]


def _originals() -> set[str]:
    root = Path(settings.MEDIA_ROOT)
    return {str(p.relative_to(root)) for p in media_files() if p.stem == "original"}


def test_uploads_made_while_redis_is_down_are_processed_once_it_is_back(
    owner, other, own_redis, run_jobs, caplog
):
    files = [(f"photo-{n}.png", image_bytes("PNG", color=(n * 20, 100, 50))) for n in range(8)]
    responses = []
    for n, file in enumerate(files):
        if n == 3:
            own_redis.kill()
        responses.append(upload((owner if n % 2 else other).api, file))

    assert [r.status_code for r in responses] == [201] * len(files)
    assert "Could not queue the steps of image" in caplog.text
    assert Image.objects.count() == len(files)
    assert _originals() == set(Image.objects.values_list("file", flat=True))
    assert set(ImageStep.objects.values_list("status", flat=True)) == {"pending"}

    # A Redis without persistence comes back empty: the jobs queued before it died are gone too.
    own_redis.start()
    call_command("requeue_stuck_steps", older_than=0)
    run_jobs()

    assert dict(Image.objects.values_list("original_filename", "status")) == {
        name: "done" for name, _ in files
    }
    assert _originals() == set(Image.objects.values_list("file", flat=True))


def test_the_sweep_leaves_steps_with_live_jobs_alone(owner, own_redis, run_jobs):
    upload(owner.api, ("queued.png", image_bytes("PNG")))
    queued = dict(ImageStep.objects.values_list("name", "job_id"))

    call_command("requeue_stuck_steps", older_than=0)

    assert dict(ImageStep.objects.values_list("name", "job_id")) == queued
    run_jobs()
    assert Image.objects.get().status == "done"


def test_rate_limits_fail_open_while_redis_is_down_and_apply_again_after(owner, own_redis, caplog):
    owner.client.rate_limit = 2
    owner.client.save()
    own_redis.kill()

    assert [owner.api.get("/api/v1/images/").status_code for _ in range(4)] == [200] * 4
    assert "Rate limiting skipped, Redis unavailable" in caplog.text

    own_redis.start()
    responses = [owner.api.get("/api/v1/images/") for _ in range(4)]
    assert responses[-1].status_code == 429
    assert responses[-1].json()["code"] == "throttled"


def test_the_sweep_says_so_when_redis_is_still_down(owner, own_redis):
    own_redis.kill()
    assert upload(owner.api, ("waiting.png", image_bytes("PNG"))).status_code == 201
    with pytest.raises(CommandError, match="Redis is unreachable"):
        call_command("requeue_stuck_steps", older_than=0)


def test_plate_tasks_detection_batches_and_imports_answer_503_and_store_nothing(owner, own_redis):
    # Refused before anything is stored: a caller would wait on it until Redis is back.
    own_redis.kill()
    photo = ("car.png", image_bytes("PNG"))
    answers = [
        owner.api.post(
            "/api/v1/process-task/", {"files": [upload_file(*photo)]}, format="multipart"
        ),
        owner.api.post(
            "/api/v1/detect/batch", {"files": [upload_file(*photo)]}, format="multipart"
        ),
        owner.api.post(
            "/api/v1/insights/import",
            {"file": upload_file("p.jsonl", b'{"barcode": "1"}\n')},
            format="multipart",
        ),
    ]

    assert [(r.status_code, r.json()["code"]) for r in answers] == [
        (503, "service_unavailable")
    ] * 3
    assert all(r["Retry-After"] for r in answers)
    assert not PlateTask.objects.exists()
    assert not DetectionJob.objects.exists()
    assert not InsightImport.objects.exists()
    assert not Image.objects.exists()
    assert media_files() == []


def test_batches_and_plate_tasks_that_redis_lost_are_queued_again_and_finish(
    owner, own_redis, run_jobs
):
    photo = ("car.png", image_bytes("PNG", size=(120, 80)))
    batch = owner.api.post("/api/v1/detect/batch", {"files": [upload_file(*photo)]}, "multipart")
    task = owner.api.post("/api/v1/process-task/", {"files": [upload_file(*photo)]}, "multipart")
    assert (batch.status_code, task.status_code) == (202, 202)
    # A Redis without persistence comes back empty: both jobs are gone.
    own_redis.kill()
    own_redis.start()

    call_command("requeue_stuck_steps", older_than=0)
    run_jobs()

    assert DetectionJob.objects.get().status == "completed"
    assert PlateTask.objects.get().status == "completed"


def test_the_sweep_leaves_batches_and_tasks_with_live_jobs_alone(owner, own_redis):
    photo = ("car.png", image_bytes("PNG", size=(120, 80)))
    owner.api.post("/api/v1/detect/batch", {"files": [upload_file(*photo)]}, "multipart")
    owner.api.post("/api/v1/process-task/", {"files": [upload_file(*photo)]}, "multipart")
    queued = django_rq.get_queue("default").job_ids

    out = io.StringIO()
    call_command("requeue_stuck_steps", older_than=0, stdout=out)

    assert django_rq.get_queue("default").job_ids == queued
    assert "queued again" not in out.getvalue()


def test_batches_and_tasks_whose_job_rq_gave_up_on_end_failed(owner, own_redis):
    photo = ("car.png", image_bytes("PNG", size=(120, 80)))
    owner.api.post("/api/v1/detect/batch", {"files": [upload_file(*photo)]}, "multipart")
    owner.api.post("/api/v1/process-task/", {"files": [upload_file(*photo)]}, "multipart")
    # Their worker died mid-run on every try: RQ marked the jobs failed, the rows say processing.
    DetectionJob.objects.update(status="processing")
    PlateTask.objects.update(status="processing")
    for job in django_rq.get_queue("default").get_jobs():
        job.set_status(JobStatus.FAILED)

    call_command("requeue_stuck_steps", older_than=0)

    batch = DetectionJob.objects.get()
    assert (batch.status, batch.finished_at is not None) == ("failed", True)
    assert "stopped" in batch.error
    task = PlateTask.objects.get()
    assert (task.status, task.processed) == ("failed", 1)
    assert list(task.files.values_list("status", "error_code")) == [("failed", "worker_stopped")]
