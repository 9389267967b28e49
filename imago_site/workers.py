"""RQ classes that carry log context from a request to its jobs and onto every worker line.

settings.RQ names them (QUEUE_CLASS, WORKER_CLASS), so `manage.py rqworker` (make run, compose)
and every django_rq.get_queue() use them without further flags.
"""

from typing import Any

import rq
import structlog
from django_rq.queues import DjangoRQ
from rq.job import Job

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


class Worker(JobContextMixin, rq.Worker):
    """The forking worker of `manage.py rqworker`."""


class SimpleWorker(JobContextMixin, rq.SimpleWorker):
    """The same, running jobs in its own process (tests, debugging)."""
