"""schemathesis over the whole API, in-process, against the test database.

The schema comes from /api/schema/ itself, so new routes are covered as soon as they are routed.
Every operation is called with a key that has every scope, half the time on the ids of a tenant's
real image (processed by the real pipeline), detection job and plate task; then with no key at
all, and as a staff user with a session. Nothing is excluded: every route runs in-process.
"""

import io
from collections.abc import Iterable
from functools import cached_property
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core import signals
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from images import jobs
from images.models import ALL_SCOPES, DetectionJob, Image, PlateTask
from tests.helpers import image_bytes, make_tenant, upload, upload_file

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

# Bounded and repeatable: a fixed number of examples per operation, the same ones on every run.
BOUNDED = settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    database=None,
    # Uploads and detection are slow next to Hypothesis's expectations; that is not a failure.
    # The world is made once per operation and shared by its examples, on purpose.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)


def in_test_transaction(app: WSGIApplication) -> WSGIApplication:
    """The Django app, minus the closing of the database connection after each request.

    Django's test client does the same: the test's transaction must outlive the requests.
    """

    def call(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # Servers always say who called (CGI requires it; Django's test client does too); the
        # in-process client does not.
        environ.setdefault("REMOTE_ADDR", "127.0.0.1")
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
        try:
            response = app(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                response.close()  # sends request_finished
        finally:
            signals.request_started.connect(close_old_connections)
            signals.request_finished.connect(close_old_connections)

    return call


class World:
    """A tenant with every scope, and its resources, made on first use (some take seconds).

    The test's transaction is never committed, so nothing is enqueued: the jobs run here, in
    the order a worker would run them.
    """

    def __init__(self) -> None:
        self.tenant = make_tenant("Schema Co", scopes=ALL_SCOPES, rate_limit=1_000_000)
        self.other = make_tenant("Other Co")
        self.headers = {"X-API-Key": self.tenant.key}

    @cached_property
    def image(self) -> Image:
        image = self._upload("street.jpg", image_bytes(size=(320, 240)))
        for step in image.steps.order_by("id"):
            jobs.run_step(image.pk, step.name)
        return image

    @cached_property
    def anonymized_image(self) -> Image:
        response = self.tenant.api.post(f"/api/v1/images/{self.image.pk}/anonymize/")
        assert response.status_code == 202
        jobs.run_step(self.image.pk, "anonymize")
        return self.image

    @cached_property
    def job(self) -> DetectionJob:
        response = self.tenant.api.post("/api/v1/detect/batch", {"image_ids": [self.image.pk]})
        job = DetectionJob.objects.get(uuid=response.json()["job_id"])
        jobs.run_detection_job(job.pk)
        return job

    @cached_property
    def task(self) -> PlateTask:
        response = self.tenant.api.post(
            "/api/v1/process-task/",
            {"files": [upload_file("car.png", image_bytes("PNG", size=(120, 80)))]},
            format="multipart",
        )
        task = PlateTask.objects.get(uuid=response.json()["task_id"])
        jobs.run_plate_task(task.pk)
        return task

    def point_at_known(self, case: schemathesis.Case) -> None:
        """Replace generated ids (in the path, or a body's image_id) with ids that exist."""
        path = case.operation.path
        for name in case.path_parameters or {}:
            known = self._known(path, case.method, name)
            if known is not None:
                case.path_parameters[name] = known
        if isinstance(case.body, dict) and "image_id" in case.body:
            case.body["image_id"] = str(self.image.pk)

    def _known(self, path: str, method: str, name: str) -> str | None:
        if name == "job_id":
            return str(self.job.uuid)
        if name == "task_id":
            return str(self.task.uuid)
        if path.startswith("/api/v1/clients/"):
            # Never our own client: deactivating it or narrowing its scopes ends the run.
            return str(self.other.client.pk)
        if not path.startswith("/api/v1/images/") or name not in ("id", "pk"):
            return None
        if method == "DELETE":
            spare = image_bytes(size=(40, 30), color=(Image.objects.count() % 255, 90, 90))
            return str(self._upload("spare.png", spare).pk)
        if path.endswith("/anonymize/"):
            return str(self.anonymized_image.pk)
        return str(self.image.pk)

    def _upload(self, name: str, data: bytes) -> Image:
        response = upload(self.tenant.api, (name, data))
        return Image.objects.get(pk=response.json()["images"][0]["id"])


@pytest.fixture
def world(db) -> World:
    return World()


# Loaded once, at collection: the schema view needs no database.
schema = schemathesis.openapi.from_wsgi(
    "/api/schema/?format=json", in_test_transaction(get_wsgi_application())
)


@schema.parametrize()
@schema.given(on_known_ids=st.booleans())
@BOUNDED
def test_the_api_answers_a_tenant_as_its_schema_says(
    case: schemathesis.Case, on_known_ids: bool, world: World
) -> None:
    if on_known_ids:
        world.point_at_known(case)
    case.call_and_validate(headers=world.headers, checks=CHECKS)


@schema.parametrize()
@settings(BOUNDED, max_examples=3)
def test_the_api_answers_anonymous_callers_as_its_schema_says(case: schemathesis.Case, db) -> None:
    case.call_and_validate(checks=CHECKS)


@pytest.fixture
def operator_cookies(db, django_user_model) -> dict[str, str]:
    user = django_user_model.objects.create_user("op", password="pw", is_staff=True)
    browser = Client()
    browser.force_login(user)
    name = django_settings.SESSION_COOKIE_NAME
    return {name: browser.cookies[name].value}


@schema.parametrize()
@settings(BOUNDED, max_examples=5)
def test_the_api_answers_an_operator_as_its_schema_says(
    case: schemathesis.Case, operator_cookies: dict[str, str]
) -> None:
    # A staff session: every tenant, `?client=` to act for one, and CSRF on writes.
    case.call_and_validate(cookies=operator_cookies, checks=CHECKS)


def test_the_schema_is_valid_without_warnings() -> None:
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    assert out.getvalue().startswith("openapi:")


def test_every_operation_that_needs_a_key_documents_the_shared_errors() -> None:
    document = SchemaGenerator().get_schema(request=None, public=True)
    error = {"$ref": "#/components/schemas/Error"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if {} in operation.get("security", [{}]):
                continue  # callers may come without a key
            for code in ("401", "403", "429"):
                body = operation["responses"][code]["content"]["application/json"]["schema"]
                assert body == error, (method, path, code)
            assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
