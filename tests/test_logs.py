"""Structured logs: a request id on every line of a request and in X-Request-ID; job ids on
worker lines, in-process and in a real forking `manage.py rqworker`."""

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import django_rq
import pytest
from django.db import connection, transaction
from django.test import Client as HttpClient
from django.urls import path

from images.library import pipeline
from images.models import Image
from imago_site.urls import urlpatterns as site_urlpatterns
from kit import logs
from kit.workers import Worker
from tests.helpers import image_bytes, upload


def _explode(request):
    raise RuntimeError("kaboom")


# A URLconf for the 500 test: the site's routes plus one view that fails.
urlpatterns = [path("api/v1/explode", _explode), *site_urlpatterns]
handler404 = "kit.errors.json_404"
handler500 = "kit.errors.json_500"


@pytest.fixture
def logged() -> Iterator[Callable[[], list[dict]]]:
    """The lines logged so far in the test, rendered by the production JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("json"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: read_lines(stream.getvalue())
    finally:
        root.removeHandler(handler)


def read_lines(stream_text: str) -> list[dict]:
    return [json.loads(line) for line in stream_text.splitlines() if line.startswith("{")]


@pytest.mark.django_db
def test_it_gives_every_response_a_request_id():
    first = HttpClient().get("/health")["X-Request-ID"]
    second = HttpClient().get("/health")["X-Request-ID"]
    assert len(first) == 32 and first != second


@pytest.mark.django_db
def test_it_echoes_a_well_formed_incoming_request_id():
    response = HttpClient().get("/health", HTTP_X_REQUEST_ID="edge-7f3a:42")
    assert response["X-Request-ID"] == "edge-7f3a:42"


@pytest.mark.django_db
@pytest.mark.parametrize("sent", ["has spaces", "x" * 129, 'quote"d', "semi;colon", "é"])
def test_it_replaces_a_malformed_request_id(sent):
    response = HttpClient().get("/health", HTTP_X_REQUEST_ID=sent)
    assert response["X-Request-ID"] != sent
    assert len(response["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_a_404_from_the_api_is_json_with_the_request_id():
    response = HttpClient().get("/api/v1/no-such-thing/", HTTP_X_REQUEST_ID="req-404")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert response["X-Request-ID"] == "req-404"


@pytest.mark.django_db
@pytest.mark.urls("tests.test_logs")
def test_a_500_is_json_with_the_request_id_in_header_body_and_logged_traceback(logged):
    client = HttpClient(raise_request_exception=False)
    response = client.get("/api/v1/explode", HTTP_X_REQUEST_ID="req-500")
    assert response.status_code == 500
    assert response.json()["code"] == "server_error"
    assert response.json()["request_id"] == "req-500"
    assert response["X-Request-ID"] == "req-500"
    [error] = [line for line in logged() if line["logger"] == "django.request"]
    assert error["request_id"] == "req-500"
    assert error["level"] == "error"
    assert "kaboom" in json.dumps(error["exception"])


@pytest.mark.django_db
def test_every_line_of_a_request_carries_its_id(owner, logged):
    owner.api.get("/api/v1/images/999/", HTTP_X_REQUEST_ID="req-lines")
    json_lines = logged()
    request_lines = [line for line in json_lines if line.get("request_id") == "req-lines"]
    # Ours (structlog) and Django's (stdlib) alike.
    assert {line["logger"] for line in request_lines} >= {"imago.request", "django.request"}
    assert all(line.get("request_id") == "req-lines" for line in json_lines)
    [access] = [line for line in request_lines if line["logger"] == "imago.request"]
    assert (access["route"], access["status"], access["method"]) == ("image-detail", 404, "GET")
    assert access["timestamp"].endswith("Z")
    logging.getLogger("tests").warning("after the request")
    assert "request_id" not in logged()[-1]


def test_a_job_run_logs_its_job_id_and_its_requests_id(owner, run_jobs, logged):
    created = upload(owner.api, ("a.jpg", image_bytes()), HTTP_X_REQUEST_ID="req-upload")
    image_id = created.json()["images"][0]["id"]
    run_jobs()
    json_lines = logged()
    steps = [line for line in json_lines if line.get("step") == "exif"]
    assert steps, json_lines
    job_id = Image.objects.get(pk=image_id).steps.get(name="exif").job_id
    for line in steps:
        assert line["job_id"] == job_id
        assert line["image_id"] == image_id
        assert line["request_id"] == "req-upload"
    # RQ's own lines about the job carry it too.
    assert any(line["logger"] == "rq.worker" and line.get("job_id") for line in json_lines)


def test_manage_rqworker_uses_our_worker_class():
    assert isinstance(django_rq.get_worker("default"), Worker)


@pytest.mark.slow
def test_a_forking_rqworker_logs_job_ids_as_json(owner, run_jobs, settings):
    """`manage.py rqworker`, as make run and compose start it: the work horse's lines too."""
    created = upload(owner.api, ("a.jpg", image_bytes()), HTTP_X_REQUEST_ID="req-fork")
    image = Image.objects.get(pk=created.json()["images"][0]["id"])
    # Only the exif step, to keep the worker quick: drop the upload's jobs and enqueue it alone.
    django_rq.get_connection("default").flushdb()
    with transaction.atomic():
        pipeline.pipeline_enqueue(image=image, steps=["exif"])
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        database_url = f"sqlite:///{db['NAME']}"
    else:
        database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "LOG_FORMAT": "json",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "rqworker", "--burst", "default"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = read_lines(result.stdout + result.stderr)
    job_id = image.steps.get(name="exif").job_id
    step_lines = [line for line in lines if line.get("step") == "exif"]
    assert step_lines, result.stderr
    assert all(line["job_id"] == job_id for line in step_lines)
    # Enqueued without a request here; RQ's "Job OK" line comes from the forked work horse.
    assert any(
        "Job OK" in line["event"] and line.get("job_id") == job_id
        for line in lines
        if line["logger"] == "rq.worker"
    )
    assert not any("\x1b[" in line["event"] for line in lines)
