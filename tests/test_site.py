import io
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.test import Client as HttpClient

from imago_site import health


@pytest.mark.django_db
def test_health_is_alive():
    response = HttpClient().get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "imago"}


@pytest.mark.django_db
def test_detailed_health_reports_each_dependency():
    response = HttpClient().get("/health/detailed")
    body = response.json()
    assert response.status_code == 200, body
    assert body["checks"]["database"]["ok"] is True
    assert set(body["checks"]["redis"]["queues"]) == {"high", "default", "low"}
    assert {"eng", "fra"} <= set(body["checks"]["tesseract"]["languages"])
    assert not any(" " in lang for lang in body["checks"]["tesseract"]["languages"])


@pytest.mark.django_db
def test_detailed_health_answers_503_when_redis_is_down(settings, monkeypatch):
    def unreachable() -> dict:
        raise ConnectionError("Connection refused")

    monkeypatch.setitem(health.CHECKS, "redis", unreachable)
    response = HttpClient().get("/health/detailed")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["error"].startswith("ConnectionError")


@pytest.mark.django_db
def test_the_openapi_schema_and_docs_are_served():
    client = HttpClient()
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/images/{id}/thumbnail-url/" in paths
    assert "/api/v1/clients/{id}/rotate-key/" in paths
    assert client.get("/api/docs/").status_code == 200
    assert client.get("/api/redoc/").status_code == 200


def test_the_schema_generates_without_warnings():
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--fail-on-warn",
            "--validate",
            "--file",
            "/dev/null",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_migrations_match_the_models():
    result = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
def test_seed_demo_gives_the_question_page_something_to_ask_once():
    for _ in range(2):  # as `make run` does, each time
        call_command("seed_demo", stdout=io.StringIO())
        call_command("seed_demo_questions", stdout=io.StringIO())

    # Anonymous visitors see the demo tenant's questions, imported once.
    body = HttpClient().get("/api/v1/questions/random?count=100").json()
    assert body["status"] == "found"
    assert len(body["questions"]) == 6
