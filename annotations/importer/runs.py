"""Import runs over HTTP: an upload is stored and recorded as an InsightImport row, then
imported by an RQ job (annotations.jobs.run_insight_import), which records its progress; the
sweep queues again the runs whose job never reached Redis and fails those whose worker died."""

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import IO, Any

import django_rq
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError
from rq import get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job

from annotations.importer.importing import insights_import
from annotations.importer.planning import ImportCounts
from annotations.importer.reading import BadLine, ImportRefused, open_source
from annotations.models import InsightImport
from images.library import storage
from images.library.pipeline import queue_check, queue_name_for
from images.models import Client
from kit.workers import enqueue_after_commit, is_live_job

logger = logging.getLogger(__name__)


def insight_import_create(
    *,
    client: Client,
    fp: IO[bytes],
    size: int,
    filename: str = "",
    format: str = "auto",
    keep_missing: bool = False,
) -> InsightImport:
    """Check and store an upload, and queue its import; raise ImportRefused for a bad file.

    The file is written before the row, and deleted again when the row cannot be written.
    """
    if size == 0:
        raise ImportRefused("empty_file", "The file is empty.")
    if size > settings.INSIGHT_IMPORT_MAX_BYTES:
        raise ImportRefused(
            "file_too_large",
            f"The file has {size} bytes; the limit is {settings.INSIGHT_IMPORT_MAX_BYTES}.",
        )
    open_source(fp, format=format)
    queue_check()  # Redis down: 503 before anything is stored
    run = InsightImport(
        client=client, original_filename=filename[:255], format=format, keep_missing=keep_missing
    )
    run.file = storage.save_file(f"{client.storage_prefix}/imports/{run.id}/upload", fp)
    committed: list[bool] = []
    try:
        with transaction.atomic():
            run.save()
            transaction.on_commit(lambda: committed.append(True))
            _enqueue_import(run)
    except BaseException:
        # Once committed, the row points at the file: the sweep will queue it if need be.
        if not committed:
            storage.delete_quietly([run.file])
        raise
    return run


def _enqueue_import(run: InsightImport) -> None:
    # A Redis that went away since queue_check() leaves the run pending, and
    # insight_imports_sweep() queues it again.
    enqueue_after_commit(
        queue_name_for(run.client),
        "annotations.jobs.run_insight_import",
        str(run.id),
        job_id=import_job_id(run),
        job_timeout=settings.INSIGHT_IMPORT_JOB_TIMEOUT,
        description=f"insight import {run.id}",
    )


@dataclass(frozen=True)
class ImportSweep:
    requeued: list[uuid.UUID]
    failed: list[uuid.UUID]


def insight_imports_sweep(*, older_than: dt.timedelta) -> ImportSweep:
    """Queue again the pending runs whose job never reached Redis; fail the running ones whose
    worker died (RQ moved their job to the failed registry or lost it) and delete their upload.

    A run is only looked at once it is older than `older_than`, so a job about to be queued or
    picked up is left alone. A running one whose job Redis lost (a restart) may still be read by
    its worker: it is failed only once the job's timeout has passed too.
    """
    stale = list(
        InsightImport.objects.select_related("client").filter(
            status__in=[InsightImport.Status.PENDING, InsightImport.Status.RUNNING],
            created_at__lt=timezone.now() - older_than,
        )
    )
    queues = django_rq.get_connection()
    jobs = Job.fetch_many([import_job_id(run) for run in stale], connection=queues)
    timed_out = (
        timezone.now() - older_than - dt.timedelta(seconds=settings.INSIGHT_IMPORT_JOB_TIMEOUT)
    )
    sweep = ImportSweep([], [])
    for run, job in zip(stale, jobs, strict=True):
        if is_live_job(job):
            continue
        if job is None and run.status == InsightImport.Status.PENDING:
            _enqueue_import(run)
            sweep.requeued.append(run.id)
            continue
        if job is None and run.created_at >= timed_out:
            continue
        stopped = InsightImport.objects.filter(pk=run.pk, status=run.status).update(
            status=InsightImport.Status.FAILED,
            error="The worker running this import stopped before it ended; upload the file again.",
            finished_at=timezone.now(),
        )
        if stopped:
            storage.delete_quietly([run.file])
            sweep.failed.append(run.id)
    return sweep


def import_job_id(run: InsightImport) -> str:
    return f"insight-import-{run.id}"


def import_progress(run: InsightImport) -> float | None:
    """The fraction of the file read, as the running job last reported it."""
    if run.status == InsightImport.Status.DONE:
        return 1.0
    if run.status != InsightImport.Status.RUNNING:
        return 0.0 if run.status == InsightImport.Status.PENDING else None
    try:
        job = Job.fetch(import_job_id(run), connection=django_rq.get_connection())
    except (NoSuchJobError, RedisError):
        return None
    return job.meta.get("progress")


def insight_import_run(*, import_id: uuid.UUID | str) -> None:
    """Run a stored upload's import, recording progress; the uploaded file is deleted at the end."""
    run = InsightImport.objects.select_related("client").filter(pk=import_id).first()
    if run is None or run.status not in (
        InsightImport.Status.PENDING,
        InsightImport.Status.RUNNING,
    ):
        logger.info("Insight import %s is gone or finished; nothing to do", import_id)
        return
    job = get_current_job()
    InsightImport.objects.filter(pk=run.pk).update(status=InsightImport.Status.RUNNING)
    errors: list[dict[str, Any]] = []
    cap = settings.INSIGHT_IMPORT_MAX_ERRORS

    def on_bad(bad: BadLine) -> None:
        if len(errors) < cap:
            errors.append(bad.as_dict())

    def on_batch(counts: ImportCounts, fraction: float | None) -> None:
        _save_progress(run, counts, errors)
        if job is not None:
            job.meta.update(progress=fraction, counts=vars(counts), lines_read=counts.read)
            job.save_meta()

    try:
        with storage.default_storage.open(run.file, "rb") as fp:
            counts = insights_import(
                client=run.client,
                fp=fp,
                format=run.format,
                on_bad=on_bad,
                on_batch=on_batch,
                keep_missing=run.keep_missing,
                run_id=run.id,
            )
    except ImportRefused as exc:
        _finish(run, InsightImport.Status.FAILED, ImportCounts(), errors, error=exc.detail)
    except Exception as exc:
        _finish(
            run, InsightImport.Status.FAILED, None, errors, error=f"{type(exc).__name__}: {exc}"
        )
        raise
    else:
        if counts.good == 0:
            _finish(
                run, InsightImport.Status.FAILED, counts, errors, error="No record could be read."
            )
        else:
            _finish(run, InsightImport.Status.DONE, counts, errors)
    finally:
        storage.delete_quietly([run.file])


def _save_progress(run: InsightImport, counts: ImportCounts, errors: list[dict]) -> None:
    InsightImport.objects.filter(pk=run.pk).update(**_count_fields(counts), errors=errors)


def _count_fields(counts: ImportCounts) -> dict[str, int]:
    return {
        "lines_read": counts.read,
        "created": counts.created,
        "updated": counts.updated,
        "unchanged": counts.unchanged,
        "bad": counts.bad,
        "deleted": counts.deleted,
    }


def _finish(
    run: InsightImport,
    status: str,
    counts: ImportCounts | None,
    errors: list[dict],
    *,
    error: str = "",
) -> None:
    fields = {} if counts is None else _count_fields(counts)
    InsightImport.objects.filter(pk=run.pk).update(
        **fields, status=status, error=error, errors=errors, finished_at=timezone.now()
    )
