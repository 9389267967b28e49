"""GET /metrics: Prometheus text that parses, figures that move, and who may read them."""

import django_rq
import pytest
import redis
from django.test import Client as HttpClient
from prometheus_client.parser import text_string_to_metric_families
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue

from images.library import pipeline
from kit import metrics
from tests.helpers import image_bytes, upload, upload_file

OUTSIDE = "203.0.113.7"  # TEST-NET-3: never in the default allowed networks


def scrape(**extra) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape, keyed by name and labels."""
    response = HttpClient().get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.django_db
def test_it_serves_prometheus_text_to_loopback_with_every_collector_up():
    HttpClient().get("/health")
    samples = scrape()
    health = {"route": "health", "method": "GET", "status": "200"}
    assert value(samples, "imago_http_requests_total", **health) >= 1
    assert ("imago_rq_workers", frozenset()) in samples
    for collector in ("queues", "tenants", "redis_metrics"):
        assert value(samples, "imago_collector_up", collector=collector) == 1


@pytest.mark.django_db
def test_requests_are_counted_by_route_and_status_not_by_path(owner):
    before = scrape()
    for image_id in (101, 102, 103):
        assert owner.api.get(f"/api/v1/images/{image_id}/").status_code == 404
    owner.api.get("/api/v1/images/")
    after = scrape()
    detail = {"route": "image-detail", "method": "GET"}
    assert value(after, "imago_http_requests_total", status="404", **detail) - value(
        before, "imago_http_requests_total", status="404", **detail
    ) == pytest.approx(3)
    assert value(after, "imago_http_request_duration_seconds_count", **detail) - value(
        before, "imago_http_request_duration_seconds_count", **detail
    ) == pytest.approx(3)
    listed = {"route": "image-list", "method": "GET", "status": "200"}
    assert value(after, "imago_http_requests_total", **listed) > value(
        before, "imago_http_requests_total", **listed
    )
    assert not any("101" in str(labels) for _, labels in after)


def test_a_step_run_shows_in_the_step_metrics(owner, run_jobs):
    upload(owner.api, ("a.jpg", image_bytes()))
    run_jobs()
    samples = scrape()
    done = {"step": "exif", "outcome": "done"}
    assert value(samples, "imago_pipeline_step_runs_total", **done) == 1
    assert value(samples, "imago_pipeline_step_duration_seconds_count", **done) == 1
    assert value(samples, "imago_pipeline_step_duration_seconds_bucket", le="+Inf", **done) == 1
    assert value(samples, "imago_pipeline_step_duration_seconds_sum", **done) > 0
    steps = {
        dict(labels)["step"]
        for name, labels in samples
        if name == "imago_pipeline_step_duration_seconds_count"
    }
    assert steps == set(pipeline.STEPS)


def test_failed_and_retried_step_runs_are_counted_apart(owner, run_jobs, monkeypatch, settings):
    def broken(image):
        raise RuntimeError("model exploded")

    settings.PIPELINE_RETRY_MAX = 1
    monkeypatch.setitem(pipeline.STEPS, "thumbnails", pipeline.Step("thumbnails", broken))
    upload(owner.api, ("a.jpg", image_bytes()))
    run_jobs()
    samples = scrape()
    runs = "imago_pipeline_step_runs_total"
    assert value(samples, runs, step="thumbnails", outcome="retried") == 1
    assert value(samples, runs, step="thumbnails", outcome="failed") == 1
    assert value(samples, runs, step="thumbnails", outcome="done") == 0
    assert value(samples, "imago_rq_jobs", queue="default", state="failed") == 1


@pytest.mark.django_db
def test_queue_lengths_reflect_enqueued_jobs():
    queue = django_rq.get_queue("low", commit_mode="auto")
    for _ in range(2):
        queue.enqueue("images.jobs.cleanup_tasks")
    samples = scrape()
    assert value(samples, "imago_rq_jobs", queue="low", state="queued") == 2
    assert value(samples, "imago_rq_jobs", queue="high", state="queued") == 0
    assert value(samples, "imago_rq_jobs", queue="low", state="failed") == 0


@pytest.mark.django_db
def test_images_and_bytes_are_reported_per_tenant(owner, other):
    photos = [image_bytes(color=(10, 20, 30)), image_bytes(color=(40, 50, 60))]
    for index, photo in enumerate(photos):
        assert upload(owner.api, (f"{index}.jpg", photo)).status_code == 201
    samples = scrape()
    assert value(samples, "imago_tenant_images", tenant=owner.client.slug) == 2
    assert value(samples, "imago_tenant_image_bytes", tenant=owner.client.slug) == sum(
        len(p) for p in photos
    )
    assert ("imago_tenant_images", frozenset({("tenant", other.client.slug)})) in samples
    assert value(samples, "imago_tenant_images", tenant=other.client.slug) == 0


@pytest.mark.django_db
def test_model_inference_time_is_recorded_by_model(owner):
    picture = upload_file("street.jpg", image_bytes(size=(320, 240)))
    response = owner.api.post("/api/v1/detect/image", {"file": picture}, format="multipart")
    assert response.status_code == 200, response.content
    samples = scrape()
    coco = {"model": "coco", "backend": "onnx"}
    assert value(samples, "imago_model_inference_seconds_count", **coco) == 1
    assert value(samples, "imago_model_inference_seconds_sum", **coco) > 0
    series = {labels for name, labels in samples if name == "imago_model_inference_seconds_count"}
    assert series == {frozenset(coco.items())}


@pytest.mark.django_db
def test_other_networks_are_refused_without_the_token():
    response = HttpClient().get("/metrics", REMOTE_ADDR=OUTSIDE)
    assert response.status_code == 403
    assert response.json()["code"] == "metrics_forbidden"


@pytest.mark.django_db
def test_the_token_opens_the_metrics_from_anywhere(settings):
    settings.METRICS_TOKEN = "s3cret-token"
    samples = scrape(REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert value(samples, "imago_collector_up", collector="queues") == 1


@pytest.mark.django_db
def test_a_wrong_token_is_refused_even_from_loopback(settings):
    settings.METRICS_TOKEN = "s3cret-token"
    for header in ("Bearer wrong", "Token s3cret-token", "Bearer "):
        response = HttpClient().get("/metrics", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401, header
        assert response.json()["code"] == "invalid_metrics_token"
        assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_no_token_is_accepted_when_none_is_configured(settings):
    settings.METRICS_TOKEN = ""
    response = HttpClient().get("/metrics", HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 401


@pytest.mark.django_db
def test_the_allowed_networks_come_from_settings(settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "2001:db8::/32"]
    assert HttpClient().get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert HttpClient().get("/metrics", REMOTE_ADDR="2001:db8::5").status_code == 200
    assert HttpClient().get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    # A forged X-Forwarded-For is not believed.
    forged = HttpClient().get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_X_FORWARDED_FOR="10.0.0.1")
    assert forged.status_code == 403


@pytest.mark.django_db
def test_a_scrape_survives_redis_being_down_and_says_so(monkeypatch):
    unreachable = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    monkeypatch.setattr(metrics, "redis_connection", lambda: unreachable)
    monkeypatch.setattr(django_rq, "get_queue", lambda name: Queue(name, connection=unreachable))
    # Recording a figure must not fail the step that produced it.
    metrics.step_observed(step="exif", outcome="done", seconds=0.1)
    samples = scrape()
    assert value(samples, "imago_collector_up", collector="queues") == 0
    assert value(samples, "imago_collector_up", collector="redis_metrics") == 0
    assert value(samples, "imago_collector_up", collector="tenants") == 1


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_internet_is_not_let_in_as_the_proxys_loopback(settings):
    # The proxy runs on the same host: every request reaches us from 127.0.0.1.
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    from_the_internet = HttpClient().get("/metrics", HTTP_X_FORWARDED_FOR=OUTSIDE)
    assert from_the_internet.status_code == 403
    assert HttpClient().get("/metrics").status_code == 200  # the local scraper, not proxied
