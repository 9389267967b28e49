"""Liveness and readiness checks for load balancers and operators."""

import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import django_rq
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from rq import Worker

from images.detection.engine import execution_providers
from images.library import storage
from kit.checks import database_check

QUEUES = ("high", "default", "low")


def health(request: HttpRequest) -> JsonResponse:
    # `service` is what ObjectVision's /health answered beside `status`.
    return JsonResponse({"status": "ok", "service": "imago"})


def _redis() -> dict[str, Any]:
    redis = django_rq.get_connection("default")
    redis.ping()
    queues = {name: django_rq.get_queue(name) for name in QUEUES}
    return {
        "queues": {
            name: {"queued": q.count, "failed": q.failed_job_registry.count}
            for name, q in queues.items()
        },
        "workers": Worker.count(connection=redis),
    }


def _tesseract() -> dict[str, Any]:
    binary = shutil.which("tesseract")
    if binary is None:
        raise RuntimeError("tesseract is not installed")
    output = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    langs = subprocess.run(
        [binary, "--list-langs"], capture_output=True, text=True, timeout=10, check=True
    ).stdout.splitlines()[1:]  # the first line is a heading
    return {"version": output.splitlines()[0], "languages": langs}


def _detection() -> dict[str, Any]:
    import onnxruntime

    providers = execution_providers(settings.DETECTION_DEVICE)
    return {
        "device": settings.DETECTION_DEVICE,
        "provider": providers[0],
        "available_providers": onnxruntime.get_available_providers(),
    }


CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "database": database_check,
    "redis": _redis,
    "tesseract": _tesseract,
    "storage": storage.check,
    "detection": _detection,
}


def health_detailed(request: HttpRequest) -> JsonResponse:
    results: dict[str, Any] = {}
    healthy = True
    for name, check in CHECKS.items():
        try:
            results[name] = {"ok": True, **check()}
        except Exception as exc:
            healthy = False
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    body = {"status": "ok" if healthy else "unavailable", "checks": results}
    return JsonResponse(body, status=200 if healthy else 503)
