"""The admin's front page: what an operator looks at first, each figure one bounded query.

Every figure links to the admin page that lists what it counts. Figures span the apps, so they
are read here rather than in any one app's selectors.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import django_rq
import redis
from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django_rq.settings import get_queues_map

from annotations.models import Insight
from images.models import Client, Image, ImageStatus, ImageStep, PlateTask, StepStatus
from kit.admin import capped_count, changelist

WINDOWS = {"last hour": timedelta(hours=1), "last day": timedelta(days=1)}
# The tenants listed, largest storage first; the client list has them all.
TENANT_ROWS = 20

# What an operator reads, the tasks it counts, and the task list's filter that shows them.
PLATE_TASK_STATES = [
    (
        "pending",
        Q(status__in=[PlateTask.Status.PENDING, PlateTask.Status.PROCESSING]),
        {"status__in": "pending,processing"},
    ),
    ("failed", Q(status=PlateTask.Status.FAILED), {"status__exact": PlateTask.Status.FAILED}),
    ("needing review", Q(files__needs_review=True), {"files__needs_review__exact": "1"}),
]


@dataclass(frozen=True)
class Figure:
    label: str
    count: int
    url: str


@dataclass(frozen=True)
class QueueRow:
    name: str
    queued: Figure
    failed: Figure


def recent_images(now: datetime) -> dict[str, list[Figure]]:
    """Images uploaded in each window, by status, counted in one query."""
    since = {window: now - length for window, length in WINDOWS.items()}
    keys = {(n, status): f"w{n}_{status}" for n in range(len(WINDOWS)) for status in ImageStatus}
    counts = Image.objects.filter(created_at__gte=min(since.values())).aggregate(
        **{
            key: Count("id", filter=Q(created_at__gte=list(since.values())[n], status=status))
            for (n, status), key in keys.items()
        }
    )
    return {
        window: [
            Figure(
                status.label,
                counts[keys[n, status]],
                changelist(Image, status__exact=status, created_at__gte=since[window].isoformat()),
            )
            for status in ImageStatus
        ]
        for n, window in enumerate(WINDOWS)
    }


def failed_steps() -> list[Figure]:
    rows = (
        ImageStep.objects.filter(status=StepStatus.FAILED)
        .values("name")
        .annotate(n=Count("id"))
        .order_by("name")
    )
    return [
        Figure(row["name"], row["n"], changelist(Image, failed_step=row["name"])) for row in rows
    ]


def queues() -> tuple[list[QueueRow], str]:
    """Each queue's waiting and failed jobs, and why Redis could not say (if it could not)."""
    indexes = get_queues_map()
    rows = []
    try:
        for name in settings.RQ_QUEUES:
            queue = django_rq.get_queue(name)
            index = indexes[name]
            rows.append(
                QueueRow(
                    name,
                    Figure("queued", queue.count, reverse("django_rq:jobs", args=[index])),
                    Figure(
                        "failed",
                        queue.failed_job_registry.count,
                        reverse("django_rq:failed_jobs", args=[index]),
                    ),
                )
            )
    except redis.exceptions.RedisError as exc:
        return [], f"Redis did not answer: {exc}"
    return rows, ""


def plate_tasks() -> list[Figure]:
    live = PlateTask.objects.filter(purged_at__isnull=True)
    # distinct: a state's condition may join the tasks' files.
    counts = live.aggregate(
        **{
            f"s{n}": Count("id", filter=q, distinct=True)
            for n, (_, q, _) in enumerate(PLATE_TASK_STATES)
        }
    )
    return [
        Figure(label, counts[f"s{n}"], changelist(PlateTask, **params))
        for n, (label, _, params) in enumerate(PLATE_TASK_STATES)
    ]


def open_insights() -> Figure:
    count = capped_count(Insight.objects.filter(annotation__isnull=True))
    return Figure(str(count), count.count, changelist(Insight, status="open"))


def tenants() -> QuerySet[Client]:
    """The tenants storing the most, with their image count and bytes (one query)."""
    return Client.objects.annotate(
        n_images=Count("images"), n_bytes=Coalesce(Sum("images__size_bytes"), 0)
    ).order_by("-n_bytes", "name")[:TENANT_ROWS]


def figures(now: datetime | None = None) -> dict[str, object]:
    rows, error = queues()
    return {
        "image_statuses": ImageStatus.labels,
        "recent_images": recent_images(now or timezone.now()),
        "failed_steps": failed_steps(),
        "queues": rows,
        "queues_error": error,
        "plate_tasks": plate_tasks(),
        "open_insights": open_insights(),
        "tenants": tenants(),
        "tenant_count": Client.objects.count(),
        "tenant_rows": TENANT_ROWS,
        "clients_url": changelist(Client, o="-6"),
    }
