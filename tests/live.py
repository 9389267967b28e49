"""A live Imago for tests that talk to it as its clients do: a server process and a worker process.

Both run `manage.py` as `make run` does (DEBUG off, static files collected, served by WhiteNoise)
on the test database, so a test that uses them needs `transactional_db`: what it writes is
committed and seen by the processes.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from selenium.webdriver.remote.webdriver import WebDriver

ROOT = Path(__file__).resolve().parents[1]
# Where the browser tests leave their screenshots for a reviewer (the README names it).
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or ROOT / "screenshots")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """The test database, as the processes' DATABASE_URL."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )


def collect_static(static_root: Path) -> Path:
    """The static files as `make run` and the image have them: hashed, compressed."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env={**os.environ, "STATIC_ROOT": str(static_root)},
        check=True,
    )
    return static_root


def process_env(static_root: Path, extra: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "DEBUG": "false",
        "DATABASE_URL": database_url(),
        "STATIC_ROOT": str(static_root),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "LOG_FORMAT": "console",
        **extra,
    }


def _wait_until_up(base: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/health", timeout=5)
            return
        except urllib.error.HTTPError:
            return  # it answers, even if a dependency is unwell
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.2)


@contextmanager
def running(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def live_server(static_root: Path, logs: Path, **extra: str) -> Iterator[str]:
    """A server process on a free port, with extra environment; its base URL."""
    port = free_port()
    log = logs / f"server-{port}.log"
    command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    with running(command, process_env(static_root, extra), log) as process:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(base, process, log)
        yield base


@contextmanager
def live_worker(static_root: Path, logs: Path, **extra: str) -> Iterator[subprocess.Popen]:
    """A worker process on every queue, as `make run` starts it."""
    queues = ["high", "default", "low"]
    command = [sys.executable, "manage.py", "rqworker", "--with-scheduler", *queues]
    with running(command, process_env(static_root, extra), logs / "worker.log") as process:
        yield process


def requested_urls(driver: WebDriver) -> list[str]:
    """The URLs the browser asked for since the last call (Chrome's DevTools log).

    Requests the page's Content-Security-Policy refused never left the browser: not counted.
    """
    sent, refused = [], set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message["params"]
        if message["method"] == "Network.requestWillBeSent":
            sent.append((params["requestId"], params["request"]["url"]))
        elif message["method"] == "Network.loadingFailed" and params.get("blockedReason") == "csp":
            refused.add(params["requestId"])
    return [url for request_id, url in sent if request_id not in refused]
