"""RQ entry points: thin adapters that take ids and call one service."""

from datetime import timedelta

from django.conf import settings

from images.detection import services as detection
from images.library import pipeline
from images.plates import delivery, tasks


def run_step(image_id: int, step_name: str) -> None:
    pipeline.step_run(image_id=image_id, step_name=step_name)


def run_detection_job(job_id: int) -> None:
    detection.detection_job_run(job_id=job_id)


def run_plate_task(task_id: int) -> None:
    tasks.plate_task_run(task_id=task_id)


def deliver_plate_task(task_id: int) -> None:
    delivery.plate_task_deliver(task_id=task_id)


def cleanup_tasks() -> None:
    tasks.tasks_cleanup()


def requeue_stuck_steps() -> None:
    pipeline.pipeline_requeue_stuck(older_than=timedelta(seconds=settings.PIPELINE_STUCK_AFTER))


def requeue_stuck_jobs() -> None:
    older_than = timedelta(seconds=settings.PIPELINE_STUCK_AFTER)
    detection.detection_jobs_sweep(older_than=older_than)
    tasks.plate_tasks_sweep(older_than=older_than)


def deliver_plate_correction(file_id: int, revision: int) -> None:
    delivery.plate_correction_deliver(file_id=file_id, revision=revision)
