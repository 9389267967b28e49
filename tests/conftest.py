"""Shared fixtures: personas (two tenants, an operator), real Redis, real RQ burst workers."""

import importlib.util
from collections.abc import Callable
from pathlib import Path

import django_rq
import pytest
from rest_framework.test import APIClient

from images.models import ALL_SCOPES
from kit.workers import SimpleWorker
from tests.helpers import Tenant, make_tenant


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        help="Only the tests that use the database (make test's PostgreSQL pass: the others "
        "answered the same on SQLite).",
    )


def uses_database(item: pytest.Item) -> bool:
    return item.get_closest_marker("django_db") is not None or "django_db_setup" in getattr(
        item, "fixturenames", ()
    )


@pytest.hookimpl(tryfirst=True)  # pytest-django then groups them: rolled back, transactional, none
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("database_tests_only"):
        config.hook.pytest_deselected(items=[i for i in items if not uses_database(i)])
        items[:] = [i for i in items if uses_database(i)]
    # The slow tests first in each group: no test process ends the run alone on a long one.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("yolo") and importlib.util.find_spec("ultralytics") is None:
        pytest.skip("needs the [yolo] extra (torch): make test-yolo installs it")


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path: Path) -> None:
    """Files under a fresh folder, an empty test Redis, immediate retries, quick password hashes."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # Static files straight from the apps: the suite needs no collectstatic (the browser test
    # runs the real one), and an empty STATIC_ROOT stands in for the collected files.
    settings.WHITENOISE_USE_FINDERS = True
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STATIC_ROOT.mkdir()
    # First, it makes the new hashes and checks every argon2 one.
    settings.PASSWORD_HASHERS = [
        "tests.helpers.QuickArgon2PasswordHasher",
        *settings.PASSWORD_HASHERS,
    ]
    settings.PIPELINE_RETRY_INTERVALS = [0]
    settings.WEBHOOK_RETRY_INTERVALS = [0]
    settings.WEBHOOK_RETRY_MAX = 2
    # Tenants' own models land in a fresh folder; the built-in files are linked, not copied.
    models = tmp_path / "models"
    models.mkdir()
    for built_in in Path(settings.MODELS_DIR).glob("*.onnx"):
        (models / built_in.name).symlink_to(built_in)
    settings.MODELS_DIR = models
    redis = django_rq.get_connection("default")
    db = redis.connection_pool.connection_kwargs.get("db", 0)
    if db == 0:
        pytest.exit("Tests flush Redis: point REDIS_URL at a spare database (make test uses /15).")
    redis.flushdb()


@pytest.fixture
def owner(db) -> Tenant:
    return make_tenant("Owner Co")


@pytest.fixture
def other(db) -> Tenant:
    return make_tenant("Other Co")


@pytest.fixture
def admin_tenant(db) -> Tenant:
    return make_tenant("Platform", scopes=ALL_SCOPES)


@pytest.fixture
def operator(db, django_user_model) -> APIClient:
    user = django_user_model.objects.create_user("op", password="pw", is_staff=True)
    api = APIClient()
    api.force_login(user)
    return api


@pytest.fixture
def run_jobs(transactional_db) -> Callable[[], None]:
    """Run every queued job on a real burst worker (in-process, so it sees the test database).

    Our worker class, as `manage.py rqworker` uses it: jobs run with their log context bound.
    """

    def run() -> None:
        queues = [django_rq.get_queue(name) for name in ("high", "default", "low")]
        SimpleWorker(queues, connection=queues[0].connection).work(burst=True)

    return run
