"""Two sweeps at once (rqcron's and `manage.py requeue_stuck_steps`) may both see a pending batch
or plate task without a job: the work still runs once."""

from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone

from images.detection import services as detection
from images.models import DetectionJob, DetectionRun, PlateTask
from images.plates import tasks
from tests.helpers import image_bytes, media_files, upload_file

pytestmark = [pytest.mark.timeout(180), pytest.mark.django_db(transaction=True)]


def _photos() -> list:
    return [
        upload_file(f"{n}.png", image_bytes("PNG", size=(120, 80), color=(n * 60, 0, 0)))
        for n in range(2)
    ]


def _lost_and_seen_by_two_sweeps(monkeypatch, module: object) -> None:
    """Redis lost the job; each sweep looks before the other queues (both see no job)."""
    django_rq.get_queue("default").empty()
    monkeypatch.setattr(module, "without_live_job", lambda rows, _: [(r, None) for r in rows])


def test_two_sweeps_at_once_run_a_batch_once(owner, run_jobs, monkeypatch):
    created = owner.api.post("/api/v1/detect/batch", {"files": _photos()}, format="multipart")
    batch = DetectionJob.objects.get(uuid=created.json()["job_id"])
    _lost_and_seen_by_two_sweeps(monkeypatch, detection)

    detection.detection_jobs_sweep(older_than=timedelta(0))
    detection.detection_jobs_sweep(older_than=timedelta(0))

    assert django_rq.get_queue("default").job_ids == [detection.detection_job_id(batch)]
    run_jobs()
    detection.detection_job_run(job_id=batch.pk)  # a copy of the job that ran anyway
    batch.refresh_from_db()
    assert (batch.status, batch.processed) == ("completed", 2)
    assert DetectionRun.objects.filter(job=batch).count() == 2


def test_two_sweeps_at_once_cover_a_plate_task_once(owner, run_jobs, monkeypatch):
    created = owner.api.post("/api/v1/process-task/", {"files": _photos()}, format="multipart")
    task = PlateTask.objects.get(uuid=created.json()["task_id"])
    _lost_and_seen_by_two_sweeps(monkeypatch, tasks)

    tasks.plate_tasks_sweep(older_than=timedelta(0))
    tasks.plate_tasks_sweep(older_than=timedelta(0))

    assert django_rq.get_queue("default").job_ids == [tasks.plate_task_job_id(task)]
    run_jobs()
    covered = sorted(p.name for p in media_files() if p.name.startswith("covered_"))
    # A copy of the job that ran anyway, on a task a worker already took: nothing is redone.
    PlateTask.objects.filter(pk=task.pk).update(status="processing")
    task.files.update(status="pending")
    tasks.plate_task_run(task_id=task.pk)
    assert sorted(p.name for p in media_files() if p.name.startswith("covered_")) == covered
    assert len(covered) == 2


def test_a_processing_task_whose_job_redis_lost_is_claimed_again_and_finishes(
    owner, run_jobs, settings
):
    created = owner.api.post("/api/v1/process-task/", {"files": _photos()}, format="multipart")
    task = PlateTask.objects.get(uuid=created.json()["task_id"])
    # Its worker took it, then Redis lost the job, longer ago than any job may run.
    PlateTask.objects.filter(pk=task.pk).update(
        status="processing", created_at=timezone.now() - timedelta(days=1)
    )
    django_rq.get_queue("default").empty()

    assert tasks.plate_tasks_sweep(older_than=timedelta(0)).requeued == [task.uuid]
    run_jobs()

    task.refresh_from_db()
    assert (task.status, task.processed) == ("completed", 2)
    assert set(task.files.values_list("status", flat=True)) == {"done"}
