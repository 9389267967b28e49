"""Import Robotoff predictions (JSON Lines, plain or gzip) and questions (JSON) as insights.

The file is read as a stream (a line, or one question, at a time) and written in batches, so a
file of millions of lines takes constant memory. Re-importing follows Robotoff's rule
(shared/docs/robotoff-compat.md, "Import formats"):

- a record whose id is an existing insight updates it, or leaves it unchanged when nothing differs;
- an annotated insight is never altered;
- a record with a new id but the same subject, type, value, value_tag and source image as an
  unannotated insight is mapped onto that insight (so its votes survive) instead of duplicating
  it, and one matching an annotated insight is not asked again;
- predictions replace the rest: once the whole file is read, the tenant's insights of each
  (barcode, type) the file names that the run did not create, update or match are deleted, unless
  they were annotated or voted on (keep_missing turns this off). A questions file lists answers,
  not a full set of predictions: it never deletes, nor does a run that fails or a file that
  cannot be read to its end.

On PostgreSQL new rows are COPYed into the table and changed ones through a temporary table and
one UPDATE; other databases use bulk_create / bulk_update. Each new insight records the run that
created it (Insight.import_run), which is how a run tells its own rows from older ones. A
tenant's first load looks nothing up (see Run).
"""

import contextlib
import datetime as dt
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import django_rq
from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone
from redis.exceptions import RedisError
from rq import get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job

from annotations.importer.copy_writer import IdTaken, with_copy_data, write
from annotations.importer.planning import ImportCounts, Plan, Run
from annotations.importer.reading import (
    FORMATS,
    BadLine,
    ImportRefused,
    Source,
    open_source,
    read_records,
)
from annotations.importer.records import Record
from annotations.importer.replacing import Seen, delete_missing
from annotations.importer.tuning import import_runtime
from annotations.models import Insight, InsightImport
from images import storage
from images.models import Client
from images.pipeline import queue_check, queue_name_for
from imago_site.workers import enqueue_after_commit, is_live_job

__all__ = [
    "FORMATS",
    "BadLine",
    "ImportCounts",
    "ImportRefused",
    "ImportSweep",
    "import_progress",
    "insight_import_create",
    "insight_import_run",
    "insight_imports_sweep",
    "insights_import",
]

logger = logging.getLogger(__name__)

# Serialises batches of concurrent imports of one tenant on PostgreSQL (pg_advisory_xact_lock).
ADVISORY_LOCK_CLASS = 6_060_006
# Whole runs of one tenant (session-level): see _tenant_runs.
RUN_LOCK_CLASS = 6_060_007
# --- Importing


def insights_import(
    *,
    client: Client,
    fp: IO[bytes],
    format: str = "auto",
    batch_size: int | None = None,
    on_bad: Callable[[BadLine], None] | None = None,
    on_batch: Callable[[ImportCounts, float | None], None] | None = None,
    keep_missing: bool = False,
    run_id: uuid.UUID | None = None,
) -> ImportCounts:
    """Import a file for a tenant; report each bad record to on_bad and progress to on_batch.

    on_batch gets the counts so far and the fraction of the file read (None when unknown).
    Predictions replace the tenant's other open insights of the (barcode, type) pairs they name
    (see the module's docstring) unless keep_missing is set. The insights the run creates carry
    run_id (a new one when not given) in Insight.import_run.
    Raises ImportRefused when the file cannot be read at all.
    """
    source = open_source(fp, format=format)
    replace = source.format == "predictions" and not keep_missing
    run = Run(client, run_id or uuid.uuid4(), replace=replace)
    batch_size = batch_size or settings.INSIGHT_IMPORT_BATCH_SIZE
    with _tenant_runs(client, alone=replace), import_runtime():
        # Holding the tenant alone, a run that finds it without insights is its first load:
        # nothing can match its records but its own rows and other tenants' ids. (SQLite, for
        # development, takes no run lock: there a first load assumes no other import of the
        # tenant runs beside it.)
        run.first_load = replace and not Insight.objects.filter(client=client).exists()
        return _import_records(source, run, batch_size, on_bad, on_batch)


@contextlib.contextmanager
def _tenant_runs(client: Client, *, alone: bool) -> Iterator[None]:
    """Hold the tenant's run lock for a whole import: a replacing run alone, others together.

    A replacing run's final delete takes the tenant's insights of its pairs that it did not
    create or match: with another import of the tenant beside it, the rows that one created
    meanwhile. So a replacing run waits for the tenant's other runs and they wait for it;
    runs that delete nothing share the lock. PostgreSQL only: SQLite is for development.
    """
    if connection.vendor != "postgresql":
        yield
        return
    kind = "" if alone else "_shared"
    key = [RUN_LOCK_CLASS, client.pk]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_try_advisory_lock{kind}(%s, %s)", key)
        if not cursor.fetchone()[0]:
            logger.info("Waiting for the other imports of %s to end", client.slug)
            cursor.execute(f"SELECT pg_advisory_lock{kind}(%s, %s)", key)
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT pg_advisory_unlock{kind}(%s, %s)", key)
        except DatabaseError:
            # The caller's transaction was broken: the lock goes when its connection closes.
            logger.warning("Could not release the import lock of %s", client.slug)


def _import_records(
    source: Source,
    run: Run,
    batch_size: int,
    on_bad: Callable[[BadLine], None] | None,
    on_batch: Callable[[ImportCounts, float | None], None] | None,
) -> ImportCounts:
    counts = ImportCounts()
    batch: list[Record] = []
    writer_class = _BackgroundWriter if _can_write_in_background() else _Writer
    writer = writer_class(run)

    def report() -> None:
        if on_batch is not None:
            fraction = source.position() / source.size if source.size else None
            on_batch(counts, fraction)

    read_whole = True
    try:
        for item in read_records(source):
            if isinstance(item, BadLine):
                # The rest of the file is unknown: what it held must not be deleted.
                read_whole = read_whole and item.unit != "file"
                counts.bad += 1
                if on_bad is not None:
                    on_bad(item)
                continue
            batch.append(item)
            if len(batch) >= batch_size:
                writer.put(batch)
                batch = []
                counts.add(writer.written())
                report()
        writer.put(batch)
        if run.replace and read_whole:
            writer.delete_missing()
    finally:
        writer.close()
    counts.add(writer.written())
    report()
    return counts


class _Writer:
    """Plans and writes batches, one after the other, on the caller's connection.

    With replace, it also records what the run saw, for delete_missing() after the last batch.
    """

    def __init__(self, run: Run) -> None:
        self.run = run
        self.counts = ImportCounts()
        self.seen: Seen | None = None
        # Taken by the background writer's thread and its caller; uncontended otherwise.
        self.lock = threading.Lock()

    def put(self, records: list[Record]) -> None:
        self._write(self._prepare(records))

    def _prepare(self, records: list[Record]) -> "_Batch":
        """In the reading thread: a first load's batch is planned here (it waits for no lookup),
        leaving the writing thread little but PostgreSQL to wait for. Only the writing thread
        clears run.first_load: read here, it is a hint, which _import_batch checks again."""
        if not (self.run.first_load and records):
            return _Batch(records)
        return _Batch(records, with_copy_data(Plan(self.run, records, look_up=False)))

    def delete_missing(self) -> None:
        """After the last batch: delete the insights the run replaces (see replacing.py)."""
        self._delete_missing()

    def _write(self, batch: "_Batch") -> None:
        if self.run.replace and self.seen is None:
            self.seen = Seen()
        counts = _import_batch(self.run, batch, self.seen)
        with self.lock:
            self.counts.add(counts)

    def _delete_missing(self) -> None:
        # The temporary tables live on the connection that wrote the batches: this one.
        deleted = delete_missing(self.run, self.seen) if self.seen is not None else 0
        with self.lock:
            self.counts.deleted += deleted

    def written(self) -> ImportCounts:
        """The counts of the batches written since the last call."""
        with self.lock:
            done, self.counts = self.counts, ImportCounts()
        return done

    def close(self) -> None:
        pass


def _can_write_in_background() -> bool:
    # Another connection cannot see the rows of a caller's open transaction (tests, admin
    # actions in atomic requests); SQLite takes one writer at a time anyway.
    return connection.vendor == "postgresql" and not connection.in_atomic_block


class _DeleteMissing:
    """Asks the background writer's thread for delete_missing() after the batches queued."""


class _BackgroundWriter(_Writer):
    """Writes batches in a thread with its own connection while the caller parses the next.

    PostgreSQL's work on a batch (index upkeep, mostly) then overlaps Python's parsing of the
    next one. Batches are written in order, and at most two wait, so memory stays bounded.
    """

    def __init__(self, run: Run) -> None:
        super().__init__(run)
        self.queue: queue.Queue[_Batch | _DeleteMissing | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="insight-import-writer")
        self.thread.start()

    def put(self, records: list[Record]) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(self._prepare(records))

    def delete_missing(self) -> None:
        # Done by the thread, after the batches before it, on its connection.
        if self.error is not None:
            raise self.error
        self.queue.put(_DeleteMissing())

    def _run(self) -> None:
        try:
            while (item := self.queue.get()) is not None:
                if self.error is None:
                    try:
                        if isinstance(item, _DeleteMissing):
                            self._delete_missing()
                        else:
                            self._write(item)
                    except BaseException as exc:
                        # Kept for the caller; the queue is still drained so that it never blocks.
                        self.error = exc
        finally:
            connections.close_all()

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


@dataclass
class _Batch:
    records: list[Record]
    # A first load's plan, made by the reader (see _Writer._prepare).
    plan: "Plan | None" = None


def _import_batch(run: Run, batch: _Batch, seen: "Seen | None") -> ImportCounts:
    records = batch.records
    if not records:
        return ImportCounts()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # In one round trip (each costs the writing thread a wait for the GIL too):
            # - enable_seqscan off: the batch's lookups are by key, so an index is always right
            #   for them, but a table growing under an import has stale statistics, and the
            #   planner then scans it whole for every batch;
            # - synchronous_commit off: a batch lost to a crash is written again by re-running
            #   the import (it is idempotent), so no commit waits for its WAL flush;
            # - the tenant's batch lock, against the batches of its other imports, which a
            #   replacing run (holding the tenant alone, see _tenant_runs) has none of.
            batch_settings = (
                "SELECT set_config('enable_seqscan', 'off', true), "
                "set_config('synchronous_commit', 'off', true)"
            )
            with connection.cursor() as cursor:
                if run.replace:
                    cursor.execute(batch_settings)
                else:
                    cursor.execute(
                        f"{batch_settings}, pg_advisory_xact_lock(%s, %s)",
                        [ADVISORY_LOCK_CLASS, run.client.pk],
                    )
        plan = None
        if run.first_load and batch.plan is not None:
            plan = _first_load(run, batch.plan)
        if plan is None:
            plan = Plan(run, records)
            write(plan)
        if seen is not None:
            seen.add(plan.matched, plan.replaced_pairs(records))
    return plan.counts


def _first_load(run: Run, plan: "Plan") -> "Plan | None":
    """Write the plan of a first load's batch (see Run), or None when it has to be planned
    again."""
    try:
        write(plan)
    except IdTaken:
        run.first_load = False
        return None
    return plan


# --- Import runs over HTTP (InsightImport rows, run as RQ jobs)


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
