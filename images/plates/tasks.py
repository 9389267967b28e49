"""Plate tasks, as plate_detect ran them: a task of up to 50 images answers at once with a task id;
a worker covers its files, then the results go out (images.plates.delivery). Tasks no job will run
are queued again, and expired ones purged."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import PIL.Image
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.text import get_valid_filename

from images.detection.services import DetectionRefused
from images.library import budget, storage
from images.library.pipeline import queue_check, queue_name_for
from images.library.services import Upload
from images.library.validation import UploadRejected, inspect_upload
from images.models import Client, PlateTask, PlateTaskFile
from images.plates.covering import anonymize_picture, open_oriented
from images.plates.delivery import corrections_resume, delivery_enqueue
from kit.workers import StuckSweep, enqueue_after_commit, without_live_job

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskOptions:
    mode: str
    cover_faces: bool
    upload_url: str
    callback_url: str


def plate_task_create(
    *, client: Client, uploads: Sequence[Upload], options: TaskOptions
) -> PlateTask:
    """Store the valid files, record the invalid ones with their error, and queue the work."""
    # Nothing would queue the task again later: refuse it before storing anything.
    queue_check()
    task = PlateTask(
        client=client,
        mode=options.mode,
        cover_faces=options.cover_faces,
        upload_url=options.upload_url,
        callback_url=options.callback_url,
        total=len(uploads),
        expires_at=timezone.now() + timedelta(hours=settings.TASK_TTL_HOURS),
    )
    files, saved = [], []
    committed: list[bool] = []
    try:
        for position, upload in enumerate(uploads):
            row = PlateTaskFile(position=position, filename=upload.name[:255])
            try:
                info = inspect_upload(upload.fp, upload.size)
            except UploadRejected as exc:
                row.status, row.error_code, row.error = "failed", exc.code, exc.detail
            else:
                name = f"{task.storage_dir}/in_{position}.{info.extension}"
                row.source_file = storage.save_file(name, upload.fp)
                saved.append(row.source_file)
            files.append(row)
        with transaction.atomic():
            transaction.on_commit(lambda: committed.append(True))
            task.processed = sum(row.status == "failed" for row in files)
            task.save()
            for row in files:
                row.task = task
            PlateTaskFile.objects.bulk_create(files)
            _enqueue_task(task)
    except BaseException:
        # Once committed, the task's rows point at the files (the enqueue runs after the commit).
        if not committed:
            storage.delete_quietly(saved)
        raise
    return task


def _enqueue_task(task: PlateTask) -> None:
    enqueue_after_commit(
        queue_name_for(task.client),
        "images.jobs.run_plate_task",
        task.pk,
        job_id=plate_task_job_id(task),
        description=f"plate task {task.uuid}",
    )


def plate_task_job_id(task: PlateTask) -> str:
    return f"plate-task-{task.uuid}"


def plate_tasks_sweep(*, older_than: timedelta) -> StuckSweep:
    """Queue again the tasks no job will run: pending ones whose job never reached Redis, and
    processing ones whose job Redis lost longer ago than any job may run (a rerun covers only the
    files still pending). One whose job RQ gave up on (it failed, or killed its worker on each
    try) ends with the files it had not covered failed, and is delivered."""
    now = timezone.now()
    timed_out = now - older_than - timedelta(seconds=settings.RQ_JOB_TIMEOUT)
    stale = PlateTask.objects.select_related("client").filter(
        status__in=[PlateTask.Status.PENDING, PlateTask.Status.PROCESSING],
        created_at__lt=now - older_than,
        purged_at__isnull=True,
    )
    sweep = StuckSweep([], [])
    for task, job in without_live_job(stale, plate_task_job_id):
        if job is None and (task.status == PlateTask.Status.PENDING or task.created_at < timed_out):
            # Back to pending, so that the job queued now can claim it; compare-and-set, so that
            # of two sweeps at once only one moves it.
            if task.status == PlateTask.Status.PROCESSING and not PlateTask.objects.filter(
                pk=task.pk, status=PlateTask.Status.PROCESSING
            ).update(status=PlateTask.Status.PENDING):
                continue
            _enqueue_task(task)
            sweep.requeued.append(task.uuid)
        elif job is not None:
            task.files.filter(status=PlateTaskFile.Status.PENDING).update(
                status=PlateTaskFile.Status.FAILED,
                error_code="worker_stopped",
                error="The worker covering this task stopped before it reached this file.",
            )
            _task_finish(task)
            sweep.failed.append(task.uuid)
    return sweep


def plate_task_run(*, task_id: int) -> None:
    # Claim the task: a job queued twice (two sweeps at once) must not cover files twice. The
    # sweep sets a task whose job Redis lost back to pending before queueing it again.
    claimed = PlateTask.objects.filter(
        pk=task_id, status=PlateTask.Status.PENDING, purged_at__isnull=True
    ).update(status=PlateTask.Status.PROCESSING)
    task = PlateTask.objects.select_related("client__anonymize").filter(pk=task_id).first()
    if not claimed or task is None:
        logger.info("Plate task %s is gone, purged or taken; nothing to do", task_id)
        return
    for row in task.files.filter(status=PlateTaskFile.Status.PENDING):
        _cover_file(task, row)
        PlateTask.objects.filter(pk=task.pk).update(
            processed=task.files.exclude(status=PlateTaskFile.Status.PENDING).count()
        )
    _task_finish(task)


def _task_finish(task: PlateTask) -> None:
    """Completed when one file at least was covered; then the results go out."""
    done = task.files.filter(status=PlateTaskFile.Status.DONE).exists()
    PlateTask.objects.filter(pk=task.pk).update(
        status=PlateTask.Status.COMPLETED if done else PlateTask.Status.FAILED,
        processed=task.files.exclude(status=PlateTaskFile.Status.PENDING).count(),
        finished_at=timezone.now(),
    )
    if task.needs_delivery:
        delivery_enqueue(task)


def _cover_file(task: PlateTask, row: PlateTaskFile) -> None:
    try:
        with default_storage.open(row.source_file, "rb") as fp:
            picture = open_oriented(fp)
        covered = anonymize_picture(
            picture, client=task.client, mode=task.mode, cover_faces=task.cover_faces
        )
    except budget.OverMemoryBudget as exc:
        # Stored before the budget was lowered: this file fails with the code, the others go on.
        row.status, row.error_code, row.error = "failed", exc.code, exc.detail
        row.save(update_fields=["status", "error_code", "error"])
        return
    except (OSError, DetectionRefused, PIL.UnidentifiedImageError) as exc:
        row.status, row.error_code, row.error = "failed", "processing_failed", str(exc)
        row.save(update_fields=["status", "error_code", "error"])
        return
    # The storage adds a suffix when two inputs share a stem: each name stays unique in its task.
    row.result_file = storage.save_bytes(
        f"{task.storage_dir}/output/{covered_name(row)}", covered.data
    )
    row.status = PlateTaskFile.Status.DONE
    row.plates, row.faces, row.regions = covered.plates, covered.faces, covered.regions
    row.plate_confidences, row.review_reasons = covered.confidences, covered.reasons
    row.needs_review = bool(covered.reasons)
    row.save(
        update_fields=["result_file", "status", "plates", "faces", "regions",
                       "plate_confidences", "review_reasons", "needs_review"]
    )  # fmt: skip


def covered_name(row: PlateTaskFile) -> str:
    """plate_detect's `covered_<stem>.webp`: the stem kept to letters, digits, `-_.` (it ends the
    result's URL path)."""
    try:
        stem = get_valid_filename(Path(row.filename).stem[:80])
    except SuspiciousFileOperation:  # nothing left of it: empty, "." or ".."
        stem = f"image_{row.position}"
    return f"covered_{stem}.webp"


# Expiry ---------------------------------------------------------------------------------------


def tasks_cleanup(*, now: object = None) -> tuple[int, int]:
    """Purge expired tasks (files and result rows; the task row stays to answer 410), and
    queue delivery again for finished, undelivered tasks and corrections. Returns (purged,
    redelivered)."""
    now = now or timezone.now()
    purged = 0
    for task in PlateTask.objects.filter(expires_at__lte=now, purged_at__isnull=True):
        files = storage.files_under(task.storage_dir)
        with transaction.atomic():
            task.files.all().delete()
            task.attempts.all().delete()
            PlateTask.objects.filter(pk=task.pk).update(purged_at=now)
        storage.delete_quietly(files)
        purged += 1
    waiting = PlateTask.objects.select_related("client").filter(
        status__in=[PlateTask.Status.COMPLETED, PlateTask.Status.FAILED],
        delivered_at__isnull=True,
        purged_at__isnull=True,
        expires_at__gt=now,
    )
    redelivered = 0
    for task in waiting:
        if task.needs_delivery:
            delivery_enqueue(task)
            redelivered += 1
    return purged, redelivered + corrections_resume(now=now)
