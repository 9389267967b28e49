"""Results out: a finished task's covered files and its notice pushed to the tenant's webhooks
(signed, retried by RQ, each attempt recorded), and operators' corrections sent after them."""

import json
import time
from pathlib import Path

import django_rq
import httpx
from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone
from rq import Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job

from images.library.pipeline import queue_name_for
from images.models import PlateTask, PlateTaskFile, WebhookAttempt
from images.plates.selectors import awaiting_review, settings_for, task_results
from images.plates.targets import is_operator_target
from kit import outbound


class DeliveryFailed(Exception):
    pass


def delivery_enqueue(task: PlateTask) -> None:
    _delivery_job(
        task,
        "images.jobs.deliver_plate_task",
        task.pk,
        job_id=f"deliver-{task.uuid}",
        description=f"deliver plate task {task.uuid}",
    )


def _delivery_job(
    task: PlateTask, function: str, *args: int, job_id: str, description: str
) -> None:
    """Queue a delivery once: a job already waiting or retrying for it is left alone."""
    queue = django_rq.get_queue(queue_name_for(task.client))
    try:
        job = Job.fetch(job_id, connection=queue.connection)
        if job.get_status(refresh=True) in ("queued", "scheduled", "started", "deferred"):
            return
        job.delete()
    except NoSuchJobError:
        pass
    queue.enqueue(
        function,
        *args,
        job_id=job_id,
        retry=Retry(max=settings.WEBHOOK_RETRY_MAX, interval=settings.WEBHOOK_RETRY_INTERVALS),
        description=description,
    )


def plate_task_deliver(*, task_id: int) -> None:
    task = PlateTask.objects.select_related("client__anonymize").filter(pk=task_id).first()
    if task is None or task.delivered_at or task.purged_at or task.expires_at < timezone.now():
        return
    _deliver(task, None)
    PlateTask.objects.filter(pk=task.pk).update(delivered_at=timezone.now())


def correction_enqueue(row: PlateTaskFile) -> None:
    """Send a corrected result again (queued once committed, retried as deliveries are)."""
    task = row.task
    if not task.needs_delivery:
        return
    _delivery_job(
        task,
        "images.jobs.deliver_plate_correction",
        row.pk,
        row.revision,
        job_id=f"correct-{task.uuid}-{row.position}-{row.revision}",
        description=f"deliver correction {row.revision} of {row.filename} in {task.uuid}",
    )


def corrections_resume(*, now: object) -> int:
    """Queue again the latest corrections of live tasks that a webhook has not taken yet."""
    corrected = PlateTaskFile.objects.select_related("task__client").filter(
        revision__gt=0, task__purged_at__isnull=True, task__expires_at__gt=now
    )
    queued = 0
    for row in corrected:
        wanted = {k for k, url in (("upload", row.task.upload_url),
                                   ("callback", row.task.callback_url)) if url}  # fmt: skip
        taken = row.task.attempts.filter(ok=True, correction=_correction_key(row))
        if wanted - set(taken.values_list("kind", flat=True)):
            correction_enqueue(row)
            queued += 1
    return queued


def plate_correction_deliver(*, file_id: int, revision: int) -> None:
    row = PlateTaskFile.objects.select_related("task__client__anonymize").filter(pk=file_id).first()
    # A later correction replaces this one, and is delivered by its own job.
    if row is None or row.revision != revision:
        return
    if row.task.purged_at or row.task.expires_at < timezone.now():
        return
    _deliver(row.task, row)


def _deliver(task: PlateTask, corrected: PlateTaskFile | None) -> None:
    """POST to each of the task's webhooks not yet answered with success for this delivery."""
    key = _correction_key(corrected)
    secret = settings_for(task.client).webhook_secret
    delivered = set(task.attempts.filter(ok=True, correction=key).values_list("kind", flat=True))
    # A failed task has no image to upload: only its completion notice goes out.
    upload_url = task.upload_url if task.status == PlateTask.Status.COMPLETED else ""
    pending = [
        (kind, url)
        for kind, url in (("upload", upload_url), ("callback", task.callback_url))
        if url and kind not in delivered
    ]
    failures = [kind for kind, url in pending if not _post(task, kind, url, secret, corrected)]
    if failures:
        raise DeliveryFailed(f"{', '.join(failures)} delivery of {task.uuid} {key} failed")


def _correction_key(corrected: PlateTaskFile | None) -> str:
    return f"file {corrected.pk} revision {corrected.revision}" if corrected else ""


def _post(
    task: PlateTask, kind: str, url: str, secret: str, corrected: PlateTaskFile | None
) -> bool:
    """One webhook; a correction sends the corrected file alone, marked `correction`."""
    marks = {"correction": True, "filename": corrected.filename} if corrected else {}
    if kind == "upload":
        uploaded = [corrected] if corrected else task.files.filter(status="done")
        files = [
            ("images", (Path(r.result_file).name, _read(r.result_file), "image/webp"))
            for r in uploaded
        ]
        data = {"task_id": str(task.uuid), **{k: str(v).lower() for k, v in marks.items()}}
        body: dict = {"data": data, "files": files}
    else:
        # The notice lists every file, failed ones too; a correction, the corrected file alone.
        rows = [corrected] if corrected else None
        results = task_results(task, absolute_base=settings.PUBLIC_BASE_URL, rows=rows)
        payload = {
            "task_id": str(task.uuid),
            "status": task.status,
            "needs_review": awaiting_review(task),
            **marks,
            "results": results,
        }
        body = {"content": json.dumps(payload), "headers": {"Content-Type": "application/json"}}
    started = time.monotonic()
    attempt = WebhookAttempt(task=task, kind=kind, url=url, correction=_correction_key(corrected))
    try:
        trusted = is_operator_target(task.client, url)
        answer = outbound.webhook_post(url, secret=secret, trusted=trusted, **body)
        attempt.status_code = answer.status_code
        attempt.ok = answer.is_success
        attempt.error = "" if answer.is_success else answer.text[:500]
    except outbound.OutboundError as exc:
        attempt.error = f"{exc.code}: {exc.detail}"
    except httpx.HTTPError as exc:
        attempt.error = f"{type(exc).__name__}: {exc}"
    attempt.duration_ms = round((time.monotonic() - started) * 1000)
    attempt.save()
    return attempt.ok


def _read(name: str) -> bytes:
    with default_storage.open(name, "rb") as fp:
        return fp.read()
