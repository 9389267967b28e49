"""ObjectVision's health routes (no auth, no prefix) over Imago's own checks.

ObjectVision answered a failure with 200 and `"status": "error"`; Imago answers 503 with the same
body (plus a stable `code`), so that a load balancer sees the failure too."""

from collections.abc import Callable
from typing import Any

import django_rq
from django.http import HttpRequest, JsonResponse
from rq import Worker

from kit.checks import database_check


def _redis_ping() -> dict[str, Any]:
    django_rq.get_connection("default").ping()
    return {"redis": "connected"}


def _database_select() -> dict[str, Any]:
    database_check()
    return {"database": "connected"}


def _workers() -> dict[str, Any]:
    names = sorted(worker.name for worker in Worker.all(connection=django_rq.get_connection()))
    if not names:
        raise _NoWorkers("No active workers found")
    return {"workers": names}


class _NoWorkers(Exception):
    pass


def _answer(check: Callable[[], dict[str, Any]], name: str) -> JsonResponse:
    try:
        return JsonResponse({"status": "ok", **check()})
    except _NoWorkers as exc:
        message = str(exc)
    except Exception as exc:  # whatever the driver raises: its text may hold addresses
        message = f"{name} is unreachable ({type(exc).__name__})"
    body = {"status": "error", "code": f"{name.lower()}_unavailable", "message": message}
    return JsonResponse(body, status=503)


def database(request: HttpRequest) -> JsonResponse:
    return _answer(_database_select, "Database")


def redis(request: HttpRequest) -> JsonResponse:
    return _answer(_redis_ping, "Redis")


def celery(request: HttpRequest) -> JsonResponse:
    """ObjectVision's Celery workers are Imago's RQ workers: their names."""
    return _answer(_workers, "Workers")
