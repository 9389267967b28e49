"""The admin's front page: each figure right, each link listing what the figure counts."""

from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone

import kit.admin
from images.models import ImageStep
from imago_site import dashboard
from kit.workers import SimpleWorker
from tests.factories import InsightFactory, PlateTaskFactory, PlateTaskFileFactory
from tests.images.admin_support import queries, result_count, stored

HOUR, DAY = "last hour", "last day"


def figures(root) -> dict:
    response = root.get("/admin/")
    assert response.status_code == 200
    return response.context["dashboard"]


def by_label(row: list) -> dict:
    return {figure.label: figure for figure in row}


def test_it_counts_the_images_of_the_last_hour_and_day_by_status(root, owner, other):
    stored(owner.client, status="done")
    stored(owner.client, status="failed", age=timedelta(minutes=30))
    stored(other.client, status="failed", age=timedelta(hours=5))
    stored(other.client, status="pending", age=timedelta(hours=2))
    stored(owner.client, status="failed", age=timedelta(days=2))  # too old for either
    recent = figures(root)["recent_images"]
    hour, day = by_label(recent[HOUR]), by_label(recent[DAY])
    assert {k: f.count for k, f in hour.items()} == {
        "Pending": 0,
        "Processing": 0,
        "Done": 1,
        "Failed": 1,
    }
    assert {k: f.count for k, f in day.items()} == {
        "Pending": 1,
        "Processing": 0,
        "Done": 1,
        "Failed": 2,
    }
    for figure in [*hour.values(), *day.values()]:
        assert result_count(root, figure.url) == figure.count, figure


def test_failed_steps_are_counted_by_step_and_link_to_their_images(root, owner, other):
    for image, name in [
        (stored(owner.client), "ocr"),
        (stored(other.client), "ocr"),
        (stored(owner.client), "vision"),
    ]:
        ImageStep.objects.create(image=image, name=name, status="failed", error="boom")
    ImageStep.objects.create(image=stored(owner.client), name="ocr", status="done")
    steps = by_label(figures(root)["failed_steps"])
    assert {name: f.count for name, f in steps.items()} == {"ocr": 2, "vision": 1}
    assert result_count(root, steps["ocr"].url) == 2
    assert result_count(root, steps["vision"].url) == 1


@pytest.mark.parametrize("value", ["<script>", "ocr' OR 1=1 --", "x" * 5000, "\x00"])
def test_a_hostile_failed_step_filter_lists_nothing(root, owner, value):
    ImageStep.objects.create(image=stored(owner.client), name="ocr", status="failed")
    assert result_count(root, f"/admin/images/image/?failed_step={value}") == 0


def test_it_shows_waiting_and_failed_jobs_per_queue_with_links_to_the_queue_pages(root):
    low = django_rq.get_queue("low", commit_mode="auto")  # the test's transaction never commits
    low.enqueue("builtins.int", "not a number")  # fails when run
    SimpleWorker([low], connection=low.connection).work(burst=True)
    low.enqueue("builtins.int", "12")  # waits: no worker runs it
    rows = {row.name: row for row in figures(root)["queues"]}
    assert set(rows) == {"high", "default", "low"}
    assert (rows["low"].queued.count, rows["low"].failed.count) == (1, 1)
    assert (rows["high"].queued.count, rows["high"].failed.count) == (0, 0)
    failed_page = root.get(rows["low"].failed.url)
    assert failed_page.status_code == 200
    assert low.failed_job_registry.get_job_ids()[0] in failed_page.content.decode()
    assert root.get(rows["low"].queued.url).status_code == 200


def test_a_redis_that_does_not_answer_is_said_and_the_page_still_shows(root, settings):
    settings.RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:9/1"}}  # nothing listens there
    response = root.get("/admin/")
    assert response.status_code == 200
    assert "Redis did not answer" in response.content.decode()


def test_plate_tasks_pending_and_failed_are_counted_without_purged_ones(root, owner, other):
    later = timezone.now() + timedelta(days=1)
    for client, status, purged in [
        (owner.client, "pending", None),
        (other.client, "processing", None),
        (owner.client, "failed", None),
        (owner.client, "failed", timezone.now()),
        (owner.client, "completed", None),
    ]:
        PlateTaskFactory(client=client, status=status, expires_at=later, purged_at=purged)
    tasks = by_label(figures(root)["plate_tasks"])
    assert (tasks["pending"].count, tasks["failed"].count) == (2, 1)
    assert result_count(root, tasks["pending"].url) == 2
    # The task list keeps purged tasks (they answer 410): the link shows them too.
    assert result_count(root, tasks["failed"].url) == 2


def test_plate_tasks_with_a_result_needing_review_are_counted_once_each(root, owner, other):
    later = timezone.now() + timedelta(days=1)
    for client, flags in [
        (owner.client, [True, True, False]),
        (other.client, [True]),
        (owner.client, [False]),
    ]:
        task = PlateTaskFactory(client=client, status="completed", expires_at=later)
        for position, needs_review in enumerate(flags):
            PlateTaskFileFactory(
                task=task, position=position, filename=f"{position}.jpg", needs_review=needs_review
            )
    review = by_label(figures(root)["plate_tasks"])["needing review"]
    assert review.count == 2
    assert result_count(root, review.url) == 2


def open_insights(client, n: int) -> None:
    for i in range(n):
        InsightFactory(client=client, barcode=str(i), value="Bio")


def test_insights_waiting_for_a_decision_are_counted_up_to_a_cap(root, owner, other, monkeypatch):
    open_insights(owner.client, 2)
    open_insights(other.client, 1)
    InsightFactory(client=owner.client, barcode="9", annotation=1)
    waiting = figures(root)["open_insights"]
    assert (waiting.count, waiting.label) == (3, "3")
    assert result_count(root, waiting.url) == 3
    monkeypatch.setattr(kit.admin, "COUNT_CAP", 2)
    waiting = figures(root)["open_insights"]
    assert (waiting.count, waiting.label) == (2, "2+")
    assert "2+" in root.get("/admin/").content.decode()


def test_storage_per_tenant_is_each_tenants_own_largest_first(root, owner, other, monkeypatch):
    stored(owner.client, size=1000)
    stored(other.client, size=5000)
    stored(other.client, size=2000)
    rows = [(t.name, t.n_images, t.n_bytes) for t in figures(root)["tenants"]]
    assert rows == [("Other Co", 2, 7000), ("Owner Co", 1, 1000)]
    # The link to every tenant sorts the list the same way.
    response = root.get(figures(root)["clients_url"])
    assert [c.name for c in response.context["cl"].result_list] == ["Other Co", "Owner Co"]
    monkeypatch.setattr(dashboard, "TENANT_ROWS", 1)
    page = root.get("/admin/").content.decode()
    assert "The 1 largest of 2 tenants" in page and "Owner Co" not in page


def test_a_tenant_without_images_stores_zero_bytes(root, owner):
    [tenant] = figures(root)["tenants"]
    assert (tenant.n_images, tenant.n_bytes) == (0, 0)


def test_the_dashboard_reads_as_many_rows_in_as_few_queries_whatever_there_is(root, owner, other):
    stored(owner.client)
    few = queries(root, "/admin/")
    for client in (owner.client, other.client):
        for status in ("done", "failed", "pending"):
            image = stored(client, status=status)
            ImageStep.objects.create(image=image, name="ocr", status=status)
        open_insights(client, 3)
    assert queries(root, "/admin/") == few


def test_only_staff_see_the_dashboard(client, owner):
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
