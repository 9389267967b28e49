"""The processing pipeline: a registry of steps, each run as its own RQ job.

A step is a function taking an Image and returning a JSON-safe result; it raises SkipStep when it
has nothing to do. Each app registers its own steps with @step("name") (in its steps module);
settings.PIPELINE_STEPS declares which run and in what order they are queued and listed. A step
that reads another's output names it in `after`: its job then waits for that step's job to finish
(successfully or not) when both run in the same batch, and it must come after it in the order
(a system check says so at start-up).
"""

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

import django_rq
import structlog
from django.conf import settings
from django.core import checks
from django.db import transaction
from django.utils import timezone
from rq import Queue, Retry, get_current_job
from rq.job import Dependency, Job, JobStatus

from images.library.budget import OverMemoryBudget
from images.models import (
    TERMINAL_STEP_STATUSES,
    Client,
    Image,
    ImageStatus,
    ImageStep,
    Plan,
    StepStatus,
)
from kit import metrics
from kit.workers import is_live_job, send_after_commit

logger = logging.getLogger(__name__)

StepFunction = Callable[[Image], dict]


class SkipStep(Exception):
    """Raised by a step that does not apply to this image (the reason is recorded)."""


class StepRefused(Exception):
    """Raised by a step that can never succeed on this image: it fails at once, without the
    retries meant for passing trouble (its message starts with a stable code)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


# What fails a step at once: running it again would meet the same refusal.
NOT_RETRIED: tuple[type[Exception], ...] = (StepRefused, OverMemoryBudget)


@dataclass(frozen=True)
class Step:
    name: str
    function: StepFunction
    after: tuple[str, ...] = ()


STEPS: dict[str, Step] = {}


def step(name: str, *, after: tuple[str, ...] = ()) -> Callable[[StepFunction], StepFunction]:
    def register(function: StepFunction) -> StepFunction:
        STEPS[name] = Step(name, function, after)
        return function

    return register


def step_names() -> list[str]:
    """The steps an image goes through, in their declared order."""
    return [name for name in settings.PIPELINE_STEPS if name in STEPS]


@checks.register()
def pipeline_order_check(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    declared = list(settings.PIPELINE_STEPS)
    errors: list[checks.CheckMessage] = []
    for position, name in enumerate(declared):
        if name not in STEPS:
            errors.append(
                checks.Error(
                    f"PIPELINE_STEPS names {name!r}, which no installed app registers.",
                    hint=f"Registered steps: {', '.join(sorted(STEPS))}.",
                    id="images.E001",
                )
            )
            continue
        for parent in STEPS[name].after:
            if parent in declared[position + 1 :]:
                errors.append(
                    checks.Error(
                        f"The {name} step reads {parent}'s output: PIPELINE_STEPS must list "
                        f"{parent} before {name}.",
                        id="images.E002",
                    )
                )
    return errors


def queue_name_for(client: Client, *, bulk: bool = False) -> str:
    if bulk:
        return "low"
    return "high" if client.plan == Plan.PREMIUM else "default"


def pipeline_enqueue(
    *, image: Image, steps: Iterable[str] | None = None, bulk: bool = False
) -> list[ImageStep]:
    """(Re)set the named steps (all by default) to pending and enqueue a job for each.

    Call inside the transaction that wrote the image: the jobs are enqueued when it commits. When
    Redis is unreachable then, the steps stay pending and `pipeline_requeue_stuck` queues them.
    The step rows are written in one statement and the jobs sent in one Redis pipeline: this runs
    in every upload request.
    """
    names = [name for name in step_names() if steps is None or name in steps]
    retry = Retry(max=settings.PIPELINE_RETRY_MAX, interval=settings.PIPELINE_RETRY_INTERVALS)
    # The ids are chosen here because the jobs are enqueued only when the transaction commits.
    job_ids = {name: f"{image.uuid}-{name}-{uuid.uuid4().hex[:8]}" for name in names}
    jobs = [
        EnqueueData(
            args=(image.pk, name),
            job_id=job_ids[name],
            depends_on=[job_ids[parent] for parent in STEPS[name].after if parent in job_ids],
            description=f"{name} of image {image.pk}",
        )
        for name in names
    ]
    rows = ImageStep.objects.bulk_create(
        [
            ImageStep(image=image, name=name, status=StepStatus.PENDING, job_id=job_ids[name])
            for name in names
        ],
        update_conflicts=True,
        unique_fields=["image", "name"],
        update_fields=[*_RESET_FIELDS, "job_id"],
    )
    queue_name = queue_name_for(image.client, bulk=bulk)
    send_after_commit(
        lambda: _send_jobs(django_rq.get_queue(queue_name, commit_mode="auto"), jobs, retry),
        what=f"the steps of image {image.pk}",
    )
    if steps is not None or image.status != ImageStatus.PENDING:
        # Otherwise every step was just set pending on an image that says so already (a new
        # upload): nothing to recount.
        image_refresh_status(image=image)
    return rows


# What a step row holds of its last run: a (re)queued step starts afresh.
_RESET_FIELDS = ("status", "attempts", "error", "started_at", "finished_at", "duration_ms")


@dataclass(frozen=True)
class EnqueueData:
    args: tuple[int, str]
    job_id: str
    depends_on: list[str]
    description: str


def queue_check() -> None:
    """Raise redis's ConnectionError, which the API answers with 503 `service_unavailable`, when
    the queues' Redis does not answer: for work that no sweep would queue again later."""
    django_rq.get_connection("default").ping()


def _send_jobs(queue: Queue, jobs: list[EnqueueData], retry: Retry) -> None:
    """Every job of one image in one Redis transaction (MULTI/EXEC, one round trip).

    RQ's own enqueue (and enqueue_many) checks each dependent job's parents under WATCH, a few
    round trips a job, because a parent queued earlier may have finished meanwhile. Here the
    parents are queued in the same transaction as the jobs waiting on them, so none can have
    run yet: the children are deferred, and RQ queues each when its parents are done. All or
    none reach Redis, so no child ever waits on a parent that was never queued.
    """
    queue.redis_server_version = _server_version(queue)
    with queue.connection.pipeline() as pipe:
        for data in jobs:
            job = queue.create_job(
                "images.jobs.run_step",
                args=data.args,
                job_id=data.job_id,
                description=data.description,
                retry=retry,
                depends_on=Dependency(jobs=data.depends_on, allow_failure=True)
                if data.depends_on
                else None,
            )
            if data.depends_on:
                job.origin = queue.name
                job.set_status(JobStatus.DEFERRED, pipeline=pipe)
                job.register_dependency(pipeline=pipe)
                job.save(pipeline=pipe)
            else:
                queue.enqueue_job(job, pipeline=pipe)
        pipe.execute()


# RQ asks the server's version (an INFO) once per Queue object, and django_rq makes a new one on
# every get_queue: once per process and server is enough.
_server_versions: dict[str, tuple[int, int, int]] = {}


def _server_version(queue: Queue) -> tuple[int, int, int]:
    server = queue.connection.connection_pool.connection_kwargs
    where = f"{server.get('host')}:{server.get('port')}/{server.get('path')}"
    if where not in _server_versions:
        _server_versions[where] = queue.get_redis_server_version()
    return _server_versions[where]


def step_run(*, image_id: int, step_name: str) -> None:
    """Run one step for one image, recording its state; re-raise so that RQ retries."""
    with structlog.contextvars.bound_contextvars(image_id=image_id, step=step_name):
        _step_run(image_id, step_name)


def _step_run(image_id: int, step_name: str) -> None:
    row = ImageStep.objects.select_related("image__client").filter(
        image_id=image_id, name=step_name
    )
    step_row = row.first()
    if step_row is None:
        logger.info("Step %s of image %s no longer exists; nothing to do", step_name, image_id)
        return
    if step_name not in step_names():
        # Left unfinished, the row would keep its image processing forever.
        logger.info("Step %s of image %s is turned off; skipped", step_name, image_id)
        _skip_turned_off(image_id, [step_name])
        return
    job = get_current_job()
    started = time.monotonic()
    ImageStep.objects.filter(pk=step_row.pk).update(
        status=StepStatus.RUNNING,
        started_at=timezone.now(),
        attempts=step_row.attempts + 1,
        job_id=job.id if job else step_row.job_id,
    )
    _set_image_status(step_row.image_id)
    try:
        result = STEPS[step_name].function(step_row.image)
    except SkipStep as exc:
        _finish(step_row, StepStatus.SKIPPED, started, result={"reason": str(exc)})
    except NOT_RETRIED as exc:
        # Not re-raised: RQ would retry it PIPELINE_RETRY_MAX times for the same answer. The
        # steps waiting on this one run anyway (their dependencies allow failure).
        _finish(step_row, StepStatus.FAILED, started, error=f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        retrying = job is not None and bool(job.retries_left)
        status = StepStatus.PENDING if retrying else StepStatus.FAILED
        _finish(step_row, status, started, error=f"{type(exc).__name__}: {exc}")
        raise
    else:
        _finish(step_row, StepStatus.DONE, started, result=result)


def _finish(
    step_row: ImageStep,
    status: StepStatus,
    started: float,
    *,
    result: dict | None = None,
    error: str = "",
) -> None:
    seconds = time.monotonic() - started
    fields = {
        "status": status,
        "error": error,
        "finished_at": timezone.now(),
        "duration_ms": round(seconds * 1000),
    }
    if result is not None:
        fields["result"] = result
    with transaction.atomic():
        # Locking the image serialises the steps' last writes, so exactly one sees them all done.
        Image.objects.select_for_update().filter(pk=step_row.image_id).first()
        ImageStep.objects.filter(pk=step_row.pk).update(**fields)
        _set_image_status(step_row.image_id)
    # A failed run left pending is one that RQ will retry.
    outcome = "retried" if status == StepStatus.PENDING else str(status)
    metrics.step_observed(step=step_row.name, outcome=outcome, seconds=seconds)
    logger.info(
        "Step %s of image %s: %s in %d ms",
        step_row.name,
        step_row.image_id,
        outcome,
        fields["duration_ms"],
    )


TURNED_OFF = "turned off (PIPELINE_STEPS)"


def _skip_turned_off(image_id: int, names: list[str]) -> None:
    """Skip the unfinished rows of steps no longer declared, and refresh the image's status:
    no job will ever finish them, and none may be queued for them."""
    with transaction.atomic():
        Image.objects.select_for_update().filter(pk=image_id).first()
        ImageStep.objects.filter(
            image_id=image_id,
            name__in=names,
            status__in=[StepStatus.PENDING, StepStatus.RUNNING],
        ).update(
            status=StepStatus.SKIPPED, result={"reason": TURNED_OFF}, finished_at=timezone.now()
        )
        _set_image_status(image_id)


def summarise(statuses: Iterable[str]) -> ImageStatus:
    statuses = set(statuses)
    if not statuses or statuses == {StepStatus.PENDING}:
        return ImageStatus.PENDING
    if not statuses <= TERMINAL_STEP_STATUSES:
        return ImageStatus.PROCESSING
    return ImageStatus.FAILED if StepStatus.FAILED in statuses else ImageStatus.DONE


def image_refresh_status(*, image: Image) -> None:
    image.status = _set_image_status(image.pk)


def _set_image_status(image_id: int) -> ImageStatus:
    new = summarise(ImageStep.objects.filter(image_id=image_id).values_list("status", flat=True))
    changed = Image.objects.filter(pk=image_id).exclude(status=new).update(status=new)
    if changed and new in (ImageStatus.DONE, ImageStatus.FAILED):
        transaction.on_commit(lambda: _publish_finished(image_id))
    return new


def events_channel(client: Client) -> str:
    return f"imago:events:{client.slug}"


def _publish_finished(image_id: int) -> None:
    image = Image.objects.select_related("client").filter(pk=image_id).first()
    if image is None:
        return
    steps = dict(image.steps.values_list("name", "status"))
    event = {
        "event": "image.processed",
        "image_id": image.pk,
        "uuid": str(image.uuid),
        "status": image.status,
        "steps": steps,
    }
    try:
        django_rq.get_connection("default").publish(events_channel(image.client), json.dumps(event))
    except Exception:
        # The event is a notification; losing it must not fail the step that already succeeded.
        logger.exception("Could not publish the event for image %s", image_id)


@dataclass(frozen=True)
class Sweep:
    requeued: dict[int, list[str]]
    failed: dict[int, list[str]]


def pipeline_requeue_stuck(*, older_than: timedelta) -> Sweep:
    """Move on the unfinished steps that no RQ job will ever run.

    A pending step whose job never reached Redis (it was down at commit) or was lost with it is
    queued again. A running step whose job RQ gave up on (the worker died and the retries ran
    out) is failed, so that a step that kills its worker is not rerun forever; one whose job is
    gone altogether is queued again once it has run longer than any job may. An image is left
    alone while any of its unfinished steps has a live job: its steps may wait on each other.
    """
    now = timezone.now()
    # A job RQ lost may still run in a worker until it times out.
    running_cutoff = now - older_than - timedelta(seconds=settings.RQ_JOB_TIMEOUT)
    unfinished = list(
        ImageStep.objects.filter(
            status__in=[StepStatus.PENDING, StepStatus.RUNNING],
            image__created_at__lt=now - older_than,
        ).order_by("image_id", "id")
    )
    if not unfinished:
        return Sweep({}, {})
    connection = django_rq.get_connection("default")
    jobs = Job.fetch_many([row.job_id or "-" for row in unfinished], connection=connection)
    by_image: dict[int, list[tuple[ImageStep, Job | None]]] = {}
    for row, job in zip(unfinished, jobs, strict=True):
        by_image.setdefault(row.image_id, []).append((row, job))
    sweep = Sweep({}, {})
    for image_id, steps in by_image.items():
        if any(is_live_job(job) for _, job in steps):
            continue
        requeue, fail = [], []
        for row, job in steps:
            if row.status == StepStatus.PENDING:
                requeue.append(row.name)
            elif job is not None:
                fail.append(row)
            elif row.started_at is None or row.started_at < running_cutoff:
                requeue.append(row.name)
        _sweep_image(image_id, requeue, fail, sweep)
    return sweep


def _sweep_image(image_id: int, requeue: list[str], fail: list[ImageStep], sweep: Sweep) -> None:
    with transaction.atomic():
        image = (
            Image.objects.select_for_update().select_related("client").filter(pk=image_id).first()
        )
        if image is None:
            return
        # Steps no longer declared are skipped, not queued: pipeline_enqueue would queue nothing.
        declared = step_names()
        turned_off = [name for name in requeue if name not in declared]
        if turned_off:
            _skip_turned_off(image_id, turned_off)
            logger.info("Skipped turned-off steps %s of image %s", turned_off, image_id)
        # A step that finished since we looked (its last write locks the image too) stays done.
        requeue = list(
            ImageStep.objects.filter(
                image_id=image_id,
                name__in=[name for name in requeue if name in declared],
                status__in=[StepStatus.PENDING, StepStatus.RUNNING],
            ).values_list("name", flat=True)
        )
        if fail:
            ImageStep.objects.filter(
                pk__in=[row.pk for row in fail], status=StepStatus.RUNNING
            ).update(
                status=StepStatus.FAILED,
                error="The worker running this step stopped, and its retries ran out.",
                finished_at=timezone.now(),
            )
            sweep.failed[image_id] = [row.name for row in fail]
            logger.warning(
                "Failed abandoned steps %s of image %s", sweep.failed[image_id], image_id
            )
        if requeue:
            # Report only what was queued.
            requeue = [row.name for row in pipeline_enqueue(image=image, steps=requeue)]
        if requeue:
            sweep.requeued[image_id] = requeue
            logger.info("Queued stuck steps %s of image %s again", requeue, image_id)
        _set_image_status(image_id)
