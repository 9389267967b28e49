"""Logs never carry secrets: values under secret-looking keys, API keys and credentials in text
are redacted on every line, tracebacks rendered with their frames' locals included."""

import io
import logging
from collections.abc import Callable, Iterator

import django_rq
import pytest
import structlog
from django.test import Client as HttpClient
from django.urls import path

from imago_site.urls import urlpatterns as site_urlpatterns
from kit import logs

WEBHOOK_SECRET = "whsec-5f1c0a9e7b3d42c8"
API_KEY = "imago_Qm9vTRsk3yH7cXWn0fLpA1zVbE5uJ2iG"
SESSION = "sess-8c7a55d2e1f04b96"
logger = logging.getLogger("imago.test.secrets")


def deliver_holding_a_secret(task_id: int) -> None:
    """A job whose frame holds a webhook secret when it fails, and logs the failure."""
    webhook_secret = WEBHOOK_SECRET  # noqa: F841 (a local, as in plate_task_deliver)
    sent_with = f"Token {API_KEY}"  # noqa: F841 (a local whose name says nothing)
    try:
        raise ConnectionError(f"the receiver of task {task_id} hung up")
    except ConnectionError:
        logger.exception("Delivery of task %s failed", task_id)
        raise


def _explode(request):
    authorization = request.headers["Authorization"]  # noqa: F841
    raise RuntimeError("kaboom")


urlpatterns = [path("api/v1/explode", _explode), *site_urlpatterns]
handler500 = "kit.errors.json_500"


@pytest.fixture(params=["json", "console"])
def logged(request) -> Iterator[Callable[[], str]]:
    """Everything logged in the test, rendered by the production formatter of each format."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter(request.param))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream.getvalue
    finally:
        root.removeHandler(handler)


def test_a_failing_job_logs_its_traceback_without_the_secrets_it_held(run_jobs, logged):
    django_rq.get_queue("default").enqueue(deliver_holding_a_secret, 42)

    run_jobs()

    text = logged()
    assert "Delivery of task 42 failed" in text and "hung up" in text
    assert WEBHOOK_SECRET not in text
    assert API_KEY not in text


@pytest.mark.django_db
@pytest.mark.urls("tests.security.test_log_secrets")
def test_a_500_logs_no_authorization_header(logged):
    client = HttpClient(raise_request_exception=False)

    response = client.get(
        "/api/v1/explode", HTTP_AUTHORIZATION=f"Token {API_KEY}", HTTP_COOKIE=f"sessionid={SESSION}"
    )

    assert response.status_code == 500
    text = logged()
    assert "kaboom" in text
    assert API_KEY not in text
    assert SESSION not in text


def test_a_request_line_with_headers_is_redacted(logged):
    headers = {"Authorization": f"Bearer {API_KEY}", "Cookie": f"sessionid={SESSION}"}

    logger.info("Refused a request", extra={"headers": headers, "tokens_used": 12})
    logger.warning("Refused a request with headers %s", headers)
    structlog.get_logger("imago.test").info("calling", password="hunter2-xyz", url="/x?a=1")

    text = logged()
    for secret in (API_KEY, SESSION, "hunter2-xyz"):
        assert secret not in text
    # What is not secret stays readable.
    assert "Refused a request" in text and "/x?a=1" in text and "12" in text


@pytest.mark.django_db
def test_a_signed_links_token_is_not_written_to_the_access_log(logged):
    token = "eyJjIjoxLCJuIjoieC9vcmlnaW5hbC5qcGcifQ:1vQx2y:SiGnAtUrE-of-the-link"
    HttpClient().get(f"/files/signed/{token}")
    lines = logged()
    assert "/files/signed/[redacted]" in lines
    assert "SiGnAtUrE-of-the-link" not in lines
