"""The web service as compose and the image run it: gunicorn with gunicorn.conf.py, two workers."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
REQUESTS = 12
# As the Dockerfile and compose.yaml start it (their bind and worker count differ).
GUNICORN = [sys.executable, "-m", "gunicorn", "imago_site.wsgi", "--workers", "2"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, **headers: str) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, dict(response.headers), response.read()


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "LOG_FORMAT": "json",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
    }
    with log.open("w") as out:
        process = subprocess.Popen(
            [*GUNICORN, "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get(f"{base}/health")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not start:\n{log.read_text()}")
                time.sleep(0.2)
        yield base, log
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_metrics_add_up_every_gunicorn_worker_and_its_logs_are_json(gunicorn):
    base, log = gunicorn
    for _ in range(REQUESTS):
        status, headers, _ = get(f"{base}/health", **{"X-Request-ID": "probe-1"})
        assert (status, headers["X-Request-ID"]) == (200, "probe-1")
    _, _, body = get(f"{base}/metrics")
    served = {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.name == "imago_http_requests_total" and sample.labels["route"] == "health"
    }
    # Exact, whichever worker answered each request and the scrape (the readiness wait's one
    # successful probe included): one worker alone would only know its own share.
    assert served["200"] == REQUESTS + 1
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(line["logger"] == "gunicorn.error" for line in lines)
    probes = [line for line in lines if line.get("request_id") == "probe-1"]
    assert len(probes) == REQUESTS
    assert {line["route"] for line in probes} == {"health"}


def test_the_image_and_compose_start_gunicorn_with_this_configuration():
    """gunicorn reads ./gunicorn.conf.py: the image's working folder must hold it."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    web = compose["services"]["web"]
    assert "gunicorn imago_site.wsgi" in web["command"]
    assert web["environment"]["LOG_FORMAT"] == "json"
    assert "METRICS_TOKEN" in web["environment"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "WORKDIR /app\nCOPY --chown=imago . ." in dockerfile
    assert "gunicorn.conf.py" not in (ROOT / ".dockerignore").read_text()
