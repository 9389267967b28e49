"""POST /api/v1/insights/import and GET /api/v1/insights/imports/{id}: imports as RQ jobs."""

import django_rq
import pytest
from django.db import DatabaseError
from rq.job import Job

from annotations import importer
from annotations.models import Insight, InsightImport
from images.models import Scope
from tests.annotations.import_support import (
    jsonl,
    post_import,
    predictions,
    question,
    questions_json,
)
from tests.helpers import make_tenant, media_files, shared_data, upload_file


def assert_refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == code
    assert InsightImport.objects.count() == 0
    assert media_files() == []


def test_it_accepts_a_file_and_runs_the_import_as_a_job(owner, run_jobs):
    response = post_import(owner, "p.jsonl", jsonl([*predictions(5), b"{oops"]))

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending"
    assert body["status_url"].endswith(f"/api/v1/insights/imports/{body['id']}")
    [stored] = media_files()
    assert f"clients/{owner.client.pk}/imports/{body['id']}/" in str(stored)

    run_jobs()

    status = owner.api.get(body["status_url"]).json()
    assert status["status"] == "done"
    assert status["progress"] == 1.0
    assert (status["created"], status["updated"], status["unchanged"], status["bad"]) == (
        5,
        0,
        0,
        1,
    )
    assert status["lines_read"] == 6
    assert status["errors"] == [{"line": 6, "reason": status["errors"][0]["reason"]}]
    assert status["errors"][0]["reason"].startswith("not valid JSON")
    assert status["finished_at"] is not None
    assert Insight.objects.filter(client=owner.client).count() == 5
    # The upload is deleted once imported.
    assert media_files() == []


def test_the_job_reports_its_progress_in_its_meta(owner, run_jobs, settings):
    settings.INSIGHT_IMPORT_BATCH_SIZE = 2
    body = post_import(owner, "p.jsonl", jsonl(predictions(5))).json()
    run_jobs()
    job = Job.fetch(f"insight-import-{body['id']}", connection=django_rq.get_connection())
    assert job.meta["progress"] == 1.0
    assert job.meta["counts"] == {
        "created": 5,
        "updated": 0,
        "unchanged": 0,
        "bad": 0,
        "deleted": 0,
    }
    assert job.meta["lines_read"] == 5


def test_it_imports_questions_with_the_format_named(owner, run_jobs):
    data = questions_json([question(), question()])
    body = post_import(owner, "q.json", data, format="questions").json()
    run_jobs()
    status = owner.api.get(f"/api/v1/insights/imports/{body['id']}/").json()
    assert (status["status"], status["format"], status["created"]) == ("done", "questions", 2)


def test_it_imports_the_shared_bad_lines_file_over_http(owner, run_jobs):
    data = shared_data("robotoff", "predictions_with_bad_lines.jsonl").read_bytes()
    body = post_import(owner, "bad.jsonl", data).json()
    run_jobs()
    status = owner.api.get(body["status_url"]).json()
    assert (status["status"], status["created"], status["bad"]) == ("done", 60, 6)
    assert [e["line"] for e in status["errors"]] == [11, 22, 33, 44, 55, 66]


def test_an_import_with_no_good_record_fails(owner, run_jobs):
    body = post_import(owner, "p.jsonl", jsonl([b"{oops", {"id": "x"}])).json()
    run_jobs()
    status = owner.api.get(body["status_url"]).json()
    assert status["status"] == "failed"
    assert status["error"] == "No record could be read."
    assert status["bad"] == 2
    assert media_files() == []


def test_the_errors_kept_are_capped(owner, run_jobs, settings):
    settings.INSIGHT_IMPORT_MAX_ERRORS = 3
    body = post_import(owner, "p.jsonl", jsonl([*predictions(1), *[b"{x"] * 10])).json()
    run_jobs()
    status = owner.api.get(body["status_url"]).json()
    assert status["bad"] == 10
    assert [e["line"] for e in status["errors"]] == [2, 3, 4]


def test_another_tenant_cannot_see_an_import(owner, other, run_jobs):
    body = post_import(owner, "p.jsonl", jsonl(predictions(1))).json()
    response = other.api.get(body["status_url"])
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_staff_see_every_tenants_imports_and_import_for_a_named_one(owner, operator, db):
    response = operator.post(
        f"/api/v1/insights/import?client={owner.client.slug}",
        {"file": upload_file("p.jsonl", jsonl(predictions(1)))},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    run = InsightImport.objects.get()
    assert run.client == owner.client
    assert operator.get(response.json()["status_url"]).json()["status"] == "pending"


@pytest.mark.django_db
def test_an_unknown_import_is_a_json_404(owner):
    response = owner.api.get("/api/v1/insights/imports/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert owner.api.get("/api/v1/insights/imports/nope").json()["code"] == "not_found"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 400, "empty_file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", 400, "not_json"),
        (b"\x1f\x8b\x08\x00broken", 400, "unreadable_file"),
    ],
)
def test_it_refuses_a_bad_upload(owner, data, status, code):
    assert_refused(post_import(owner, "p.jsonl", data), status, code)


@pytest.mark.django_db
def test_it_refuses_a_file_over_the_limit(owner, settings):
    settings.INSIGHT_IMPORT_MAX_BYTES = 100
    response = post_import(owner, "p.jsonl", jsonl(predictions(2)))
    assert_refused(response, 413, "file_too_large")


@pytest.mark.django_db
def test_it_refuses_a_request_without_a_file_or_with_an_unknown_format(owner):
    response = owner.api.post("/api/v1/insights/import", {}, format="multipart")
    assert_refused(response, 400, "no_file")
    response = post_import(owner, "p.jsonl", jsonl(predictions(1)), format="csv")
    assert_refused(response, 400, "invalid")


@pytest.mark.django_db
def test_it_needs_the_insights_write_scope():
    reader = make_tenant("Reader", scopes=[Scope.INSIGHTS_READ])
    response = post_import(reader, "p.jsonl", jsonl(predictions(1)))
    assert_refused(response, 403, "missing_scope")


@pytest.mark.django_db
def test_a_failed_database_write_leaves_no_file(owner, monkeypatch):
    def fail(*args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(InsightImport, "save", fail)
    with pytest.raises(DatabaseError):
        importer.insight_import_create(
            client=owner.client, fp=upload_file("p.jsonl", jsonl(predictions(1))), size=300
        )
    assert media_files() == []


@pytest.mark.django_db
def test_the_schema_describes_the_import_routes(owner, operator):
    schema = operator.get("/api/schema/", {"format": "json"}).json()
    assert "post" in schema["paths"]["/api/v1/insights/import"]
    assert "get" in schema["paths"]["/api/v1/insights/imports/{import_id}"]
    assert "/api/v1/insights/import/" not in schema["paths"]
