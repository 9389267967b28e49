"""Reads of plate covering: the tenant's settings (its defaults until it changes them), and what
a task's results say."""

from collections.abc import Iterable
from pathlib import Path

from django.urls import reverse

from images.models import AnonymizeSettings, Client, PlateTask, PlateTaskFile


def settings_for(client: Client) -> AnonymizeSettings:
    """The tenant's settings; unsaved defaults when it never changed them (a read writes
    nothing: images.plates.services makes the row)."""
    return AnonymizeSettings.objects.filter(client=client).first() or AnonymizeSettings(
        client=client
    )


def review_of(result: PlateTaskFile) -> dict:
    """What a result says of its review, in the API, the webhooks and the admin alike."""
    return {
        "plate_confidences": result.plate_confidences,
        "needs_review": result.needs_review,
        "review_reasons": result.review_reasons,
        "reviewed_at": result.reviewed_at.isoformat() if result.reviewed_at else None,
        "revision": result.revision,
    }


def awaiting_review(task: PlateTask) -> int:
    """The task's results flagged for a person and not reviewed yet."""
    return task.files.filter(needs_review=True).count()


def task_results(
    task: PlateTask, *, absolute_base: str = "", rows: Iterable[PlateTaskFile] | None = None
) -> list[dict]:
    """plate_detect's results: `url` is a path served until the task expires (absolute when
    `absolute_base` is given: the webhooks' PUBLIC_BASE_URL)."""
    results = []
    for row in task.files.all() if rows is None else rows:
        name = Path(row.result_file).name
        url = None
        if name:
            url = reverse("plate-detect-result", kwargs={"task_id": task.uuid, "filename": name})
            url = absolute_base.rstrip("/") + url
        results.append(
            {
                "filename": name or row.filename,
                "source_filename": row.filename,
                "url": url,
                "status": row.status,
                "plates": row.plates,
                "faces": row.faces,
                "has_plate": row.plates > 0,
                "error": {"code": row.error_code, "detail": row.error} if row.error else None,
                **review_of(row),
            }
        )
    return results
