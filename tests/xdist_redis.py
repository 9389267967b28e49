"""Each pytest-xdist worker on a Redis database of its own, since every test empties its database:
worker gwN uses REDIS_URL's database + N (the databases of PostgreSQL and SQLite are suffixed
per worker by pytest-django).

A plugin (`-p tests.xdist_redis` in pyproject's addopts), not the conftest: it must change the
environment before pytest-django reads the settings, and the processes the tests start inherit it.
"""

import os
from urllib.parse import urlsplit, urlunsplit

import pytest


def worker_redis_url(url: str, worker: int) -> str:
    parts = urlsplit(url)
    database = int(parts.path.strip("/") or 0) + worker
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests() -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1, ...: set in xdist's workers only
    if worker and "REDIS_URL" in os.environ:
        os.environ["REDIS_URL"] = worker_redis_url(
            os.environ["REDIS_URL"], int(worker.removeprefix("gw"))
        )
