"""ObjectVision's health routes: no auth, no prefix, a 503 when a part is down."""

import django_rq
import pytest
from django.db import OperationalError, connection
from django.test import Client as HttpClient
from rq import Worker

DOWN_REDIS = {"URL": "redis://127.0.0.1:1/0"}  # nothing listens on port 1: a real refusal


def _get(path: str, **headers):
    return HttpClient().get(path, **headers)


@pytest.fixture
def redis_down(settings) -> None:
    settings.RQ_QUEUES = {name: DOWN_REDIS for name in settings.RQ_QUEUES}


@pytest.fixture
def worker() -> Worker:
    live = Worker(["default"], connection=django_rq.get_connection(), name="imago-worker-1")
    live.register_birth()
    yield live
    live.register_death()


def _error(response, code: str) -> dict:
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["status"] == "error" and body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


@pytest.mark.django_db
def test_health_answers_the_service_beside_imagos_status():
    assert _get("/health").json() == {"status": "ok", "service": "imago"}


@pytest.mark.django_db
def test_a_bearer_that_is_garbage_is_not_even_read():
    response = _get("/health/database", HTTP_AUTHORIZATION="Bearer \x00not-a-token")
    assert response.json() == {"status": "ok", "database": "connected"}


def _refuse(execute, sql, params, many, context):
    raise OperationalError("could not connect to server at 10.0.0.5")


@pytest.mark.django_db
def test_database_down_is_a_503_without_the_drivers_text():
    with connection.execute_wrapper(_refuse):
        body = _error(_get("/health/database"), "database_unavailable")
    assert "10.0.0.5" not in body["message"]


@pytest.mark.django_db
def test_redis_is_connected():
    assert _get("/health/redis").json() == {"status": "ok", "redis": "connected"}


@pytest.mark.django_db
def test_redis_down_is_a_503_without_its_address(redis_down):
    body = _error(_get("/health/redis"), "redis_unavailable")
    assert "127.0.0.1" not in body["message"] and ":1" not in body["message"]


@pytest.mark.django_db
def test_workers_down_with_redis_is_a_503(redis_down):
    _error(_get("/health/celery"), "workers_unavailable")


@pytest.mark.django_db
def test_no_live_worker_is_the_contracts_message():
    body = _error(_get("/health/celery"), "workers_unavailable")
    assert body["message"] == "No active workers found"


@pytest.mark.django_db
def test_live_workers_are_named(worker):
    assert _get("/health/celery").json() == {"status": "ok", "workers": ["imago-worker-1"]}


@pytest.mark.django_db
def test_a_dead_worker_is_no_longer_listed(worker):
    worker.register_death()
    _error(_get("/health/celery"), "workers_unavailable")


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/health/database/", "/health/redis/x", "/health/celery/"])
def test_other_paths_are_json_404s(path):
    response = _get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
