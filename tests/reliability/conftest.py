"""Fixtures of the reliability suite: a Redis server of our own to stop, real worker processes."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import redis
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


class RedisServer:
    """A throwaway redis-server on a free loopback port, without persistence: a restart loses
    every job, like a crashed Redis that had not saved them."""

    def __init__(self, directory: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis(settings, tmp_path: Path) -> Iterator[RedisServer]:
    """Queues, cache and rate limits on a Redis server that the test may kill and restart."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (make test installs it)")
    server = RedisServer(tmp_path)
    server.start()
    settings.RQ_QUEUES = {
        name: {**config, "URL": server.url} for name, config in settings.RQ_QUEUES.items()
    }
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": server.url},
    }
    yield server
    server.kill()


def subprocess_env(settings) -> dict[str, str]:
    """The environment for a process that must see the test database, files and Redis."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        database_url = f"sqlite:///{db['NAME']}"
    else:
        database_url = (
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}"
            f"/{db['NAME']}"
        )
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "imago_site.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.RQ_QUEUES["default"]["URL"],
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PIPELINE_STEPS": ",".join(settings.PIPELINE_STEPS),
        "PYTHONPATH": str(ROOT),
    }


class WorkerProcess:
    """`python -m tests.reliability.worker`, in a process group of its own (RQ puts each
    work-horse in another group)."""

    def __init__(self, env: dict[str, str], log: Path, *, burst: bool = False) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.reliability.worker", *(["--burst"] if burst else [])],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill_all(self, *, horses: Iterable[int] = ()) -> None:
        """SIGKILL the worker, then its work-horses: nothing of RQ's runs to clean up."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        for pid in horses:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    """Started worker processes, killed at the end whatever happened."""
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.kill_all()
