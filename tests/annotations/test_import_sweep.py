"""Import runs whose job never reached Redis, or whose worker died, are not left hanging."""

from datetime import timedelta

import django_rq
from django.utils import timezone
from rq.job import Job

from annotations import importer
from annotations.models import Insight, InsightImport
from tests.annotations.import_support import jsonl, predictions
from tests.helpers import media_files, upload_file

AN_HOUR = timedelta(hours=1)


def post_import(tenant, data: bytes):
    payload = {"file": upload_file("p.jsonl", data)}
    return tenant.api.post("/api/v1/insights/import", payload, format="multipart")


def age(run_id: str) -> None:
    InsightImport.objects.filter(pk=run_id).update(created_at=timezone.now() - 2 * AN_HOUR)


def test_a_run_whose_job_was_lost_is_queued_again_and_ends_done(owner, run_jobs):
    run_id = post_import(owner, jsonl(predictions(3))).json()["id"]
    django_rq.get_connection().flushdb()  # Redis lost the job (restarted empty)
    age(run_id)

    sweep = importer.insight_imports_sweep(older_than=AN_HOUR)
    run_jobs()

    assert [str(i) for i in sweep.requeued] == [run_id]
    assert InsightImport.objects.get(pk=run_id).status == "done"
    assert Insight.objects.filter(client=owner.client).count() == 3


def test_a_run_whose_worker_died_fails_and_its_upload_is_deleted(owner, transactional_db):
    run_id = post_import(owner, jsonl(predictions(3))).json()["id"]
    # What a SIGKILLed worker leaves: the run marked running, its job moved to the failed list.
    InsightImport.objects.filter(pk=run_id).update(status="running")
    job = Job.fetch(f"insight-import-{run_id}", connection=django_rq.get_connection())
    job.set_status("failed")
    age(run_id)

    sweep = importer.insight_imports_sweep(older_than=AN_HOUR)

    assert [str(i) for i in sweep.failed] == [run_id]
    run = InsightImport.objects.get(pk=run_id)
    assert run.status == "failed" and "upload the file again" in run.error
    assert media_files() == []


def test_runs_with_a_live_job_or_too_young_are_left_alone(owner, transactional_db):
    queued = post_import(owner, jsonl(predictions(2))).json()["id"]
    age(queued)
    young = post_import(owner, jsonl(predictions(1))).json()["id"]
    django_rq.get_connection().delete(f"rq:job:insight-import-{young}")

    sweep = importer.insight_imports_sweep(older_than=AN_HOUR)

    assert sweep == importer.ImportSweep([], [])
    assert set(InsightImport.objects.values_list("status", flat=True)) == {"pending"}


def test_a_running_run_whose_job_redis_lost_is_failed_only_after_the_job_timeout(
    owner, transactional_db, settings
):
    run_id = post_import(owner, jsonl(predictions(2))).json()["id"]
    InsightImport.objects.filter(pk=run_id).update(status="running")
    django_rq.get_connection().flushdb()  # its worker may still be reading the upload
    age(run_id)

    settings.INSIGHT_IMPORT_JOB_TIMEOUT = 3 * 3600
    assert importer.insight_imports_sweep(older_than=AN_HOUR) == importer.ImportSweep([], [])
    assert len(media_files()) == 1

    settings.INSIGHT_IMPORT_JOB_TIMEOUT = 0
    sweep = importer.insight_imports_sweep(older_than=AN_HOUR)
    assert [str(i) for i in sweep.failed] == [run_id]
    assert media_files() == []
