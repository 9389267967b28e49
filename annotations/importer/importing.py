"""Importing a file for a tenant: its records are read here and written in batches, on
PostgreSQL by a thread with its own connection while the next batch is read; a tenant's runs
take turns by advisory locks."""

import contextlib
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction

from annotations.importer.copy_writer import IdTaken, with_copy_data, write
from annotations.importer.planning import ImportCounts, Plan, Run
from annotations.importer.reading import BadLine, Source, open_source, read_records
from annotations.importer.records import Record
from annotations.importer.replacing import Seen, delete_missing
from annotations.importer.tuning import import_runtime
from annotations.models import Insight
from images.models import Client

logger = logging.getLogger(__name__)

# Serialises batches of concurrent imports of one tenant on PostgreSQL (pg_advisory_xact_lock).
ADVISORY_LOCK_CLASS = 6_060_006
# Whole runs of one tenant (session-level): see _tenant_runs.
RUN_LOCK_CLASS = 6_060_007


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
    (see replacing.py) unless keep_missing is set. The insights the run creates carry
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
    plan: Plan | None = None


def _import_batch(run: Run, batch: _Batch, seen: Seen | None) -> ImportCounts:
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


def _first_load(run: Run, plan: Plan) -> Plan | None:
    """Write the plan of a first load's batch (see planning.Run), or None when it has to be planned
    again."""
    try:
        write(plan)
    except IdTaken:
        run.first_load = False
        return None
    return plan
