"""RQ classes that carry log context from a request to its jobs and onto every worker line.

settings.RQ names them (QUEUE_CLASS, WORKER_CLASS), so `manage.py rqworker` (make run, compose)
and every django_rq.get_queue() use them without further flags.
"""

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import django_rq
import rq
import structlog
from django.db import transaction
from django_rq.queues import DjangoRQ
from redis.client import PubSubWorkerThread
from redis.exceptions import RedisError
from rq.exceptions import DuplicateJobError
from rq.job import Job, JobStatus

logger = logging.getLogger(__name__)
Row = TypeVar("Row")

# Context keys copied from the enqueuing code into the job, then bound again in the worker.
CARRIED = ("request_id",)


class Queue(DjangoRQ):
    """Records the enqueuing request's id in the job's meta."""

    def create_job(self, *args: Any, **kwargs: Any) -> Job:
        job = super().create_job(*args, **kwargs)
        context = structlog.contextvars.get_contextvars()
        for key in CARRIED:
            if key in context:
                job.meta.setdefault(key, context[key])
        return job


def job_context(job: Job) -> dict[str, Any]:
    context = {"job_id": job.id, "queue": job.origin}
    context.update({key: job.meta[key] for key in CARRIED if key in job.meta})
    return context


class JobContextMixin:
    """Binds the job's id (and its request's id) for the whole execution.

    Bound in execute_job, so the lines of the worker around the job get it as well as those of
    the work horse, which inherits the context when it is forked.
    """

    def execute_job(self, job: Job, queue: rq.Queue) -> Any:
        with structlog.contextvars.bound_contextvars(**job_context(job)):
            return super().execute_job(job, queue)  # type: ignore[misc]


class PromptExitMixin:
    """Flags the worker's command listener to stop before unsubscribing it, so that it exits on
    Redis's answer to the unsubscription.

    RQ unsubscribes, then calls the listener thread's stop(), which redis-py (8.2) makes wait
    for the thread. A thread that read the answer before stop() cleared its flag listens again,
    and waits for a subscription up to RQ's sleep_time: every exit, a burst worker's or a warm
    shutdown's, could stall a minute.
    """

    pubsub_thread: PubSubWorkerThread | None

    def unsubscribe(self) -> None:
        if self.pubsub_thread:
            self.pubsub_thread.stop(timeout=0)  # clears the flag; RQ's stop() waits for it
        super().unsubscribe()  # type: ignore[misc]


class Worker(PromptExitMixin, JobContextMixin, rq.Worker):
    """The forking worker of `manage.py rqworker`."""


class SimpleWorker(PromptExitMixin, JobContextMixin, rq.SimpleWorker):
    """The same, running jobs in its own process (tests, debugging)."""


def send_after_commit(send: Callable[[], None], *, what: str) -> None:
    """Run `send` (which talks to Redis) once the current transaction commits, at once outside
    one: a worker never sees a row that was rolled back.

    A Redis that is down then fails nothing: the caller's rows are committed and stay pending,
    and the sweep of their kind queues them again (so their job ids are derived from the rows).
    """

    def send_quietly() -> None:
        try:
            send()
        except RedisError as exc:
            logger.warning("Could not queue %s (%s): the sweep will queue it again", what, exc)

    transaction.on_commit(send_quietly)


def enqueue_after_commit(queue_name: str, function: str, *args: Any, job_id: str, **options: Any):
    """One job, queued with `send_after_commit`, unless a job with its id is in Redis already.

    The ids are fixed per row, and two sweeps (rqcron's and `manage.py requeue_stuck_steps`) may
    both see the row without a job: without `unique`, RQ would overwrite the job and push its
    id twice, and the job would run twice.
    """

    def send() -> None:
        queue = django_rq.get_queue(queue_name, commit_mode="auto")
        try:
            queue.enqueue(function, *args, job_id=job_id, unique=True, **options)
        except DuplicateJobError:
            logger.info("%s is queued already", options.get("description", job_id))

    send_after_commit(send, what=options.get("description", job_id))


@dataclass(frozen=True)
class StuckSweep:
    """What a sweep did: the rows (by uuid) queued again, and those failed."""

    requeued: list[uuid.UUID]
    failed: list[uuid.UUID]


# Jobs that some worker will still run (or is running): their rows need no help.
LIVE_JOB_STATUSES = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}


def is_live_job(job: Job | None) -> bool:
    return job is not None and job.get_status(refresh=False) in LIVE_JOB_STATUSES


def without_live_job(
    rows: Iterable[Row], job_id_of: Callable[[Row], str]
) -> Sequence[tuple[Row, Job | None]]:
    """The rows whose job no worker will run, each with what Redis still holds of that job
    (None when Redis lost it or never had it)."""
    rows = list(rows)
    if not rows:
        return []
    jobs = Job.fetch_many([job_id_of(row) for row in rows], connection=django_rq.get_connection())
    return [(row, job) for row, job in zip(rows, jobs, strict=True) if not is_live_job(job)]
