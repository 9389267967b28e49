"""The figures Imago records, and where each lives (imago_site.metrics serves them at /metrics).

- HTTP requests are counted by the web process that answers them (prometheus-client). Under
  gunicorn, several worker processes answer, so gunicorn.conf.py turns on prometheus-client's
  multiprocess mode (PROMETHEUS_MULTIPROC_DIR) and a scrape adds up every worker's files.
- Pipeline steps and model inference mostly run in RQ work horses: a worker forks a new process
  for every job. In multiprocess mode each of those pids would leave its own files behind (counter
  and histogram files cannot be removed without losing counts), growing without end, and the
  worker containers do not share the web's disk anyway. So these are kept in Redis, which every
  process already talks to: a job adds to a hash in one MULTI, a scrape reads the hash. The counts
  are cluster-wide, survive worker restarts, and cost one round trip per step or inference.
- Queue lengths and per-tenant images and bytes are read at scrape time (imago_site.metrics).
"""

import functools
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import django_rq
import redis
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
)

logger = logging.getLogger(__name__)

# Each counter and histogram series would get a `_created` twin that Prometheus does not need.
disable_created_metrics()

HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# Seconds: API calls are quick, uploads and synchronous detection take longer.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
INFERENCE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

http_requests = Counter(
    "imago_http_requests",
    "HTTP requests answered, by route (URL name), method and status.",
    ["route", "method", "status"],
)
http_duration = Histogram(
    "imago_http_request_duration_seconds",
    "Time to answer an HTTP request, by route (URL name) and method.",
    ["route", "method"],
    buckets=HTTP_BUCKETS,
)


def route_of(request: HttpRequest) -> str:
    """The URL pattern's name, never the raw path: one series per route, not per image id."""
    match = request.resolver_match
    return match.view_name if match else "unmatched"


class MetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        route = route_of(request)
        method = request.method if request.method in HTTP_METHODS else "other"
        http_duration.labels(route, method).observe(time.perf_counter() - started)
        http_requests.labels(route, method, str(response.status_code)).inc()
        return response


# Redis-kept metrics -----------------------------------------------------------------------------


@functools.cache
def redis_connection() -> redis.Redis:
    # get_connection builds a new pool on each call; redis-py pools reset themselves after a fork.
    return django_rq.get_connection("default")


class RedisHistogram:
    """A histogram in one Redis hash, written by any process and read at scrape time.

    Fields are JSON lists: [*label values, "bucket", upper bound] and [*labels, "sum"]; bucket
    counts are kept per bucket and made cumulative when read (the +Inf one is the count).
    """

    def __init__(
        self, name: str, documentation: str, labelnames: list[str], buckets: Iterable[float]
    ) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self.buckets = [*sorted(buckets), float("inf")]
        self.key = f"imago:metrics:{name}"

    def observe(self, labels: Iterable[str], seconds: float) -> None:
        values = list(labels)
        bound = next(b for b in self.buckets if seconds <= b)
        try:
            with redis_connection().pipeline(transaction=True) as pipe:
                pipe.hincrby(self.key, json.dumps([*values, "bucket", _le(bound)]), 1)
                pipe.hincrbyfloat(self.key, json.dumps([*values, "sum"]), seconds)
                pipe.execute()
        except redis.RedisError:
            # A figure lost is better than a step failed for want of its figure.
            logger.warning("Could not record %s in Redis", self.name, exc_info=True)

    def collect(self, fields: dict[str, str]) -> Metric:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        series: dict[tuple[str, ...], dict[str, Any]] = {}
        for field, value in fields.items():
            parts = json.loads(field)
            if parts[-1] == "sum":
                labels, figure = parts[:-1], "sum"
            else:  # [*labels, "bucket", le]
                labels, figure = parts[:-2], parts[-1]
            series.setdefault(tuple(labels), {})[figure] = float(value)
        for values, figures in sorted(series.items()):
            running, buckets = 0.0, []
            for bound in self.buckets:
                running += figures.get(_le(bound), 0.0)
                buckets.append((_le(bound), running))
            family.add_metric(list(values), buckets, figures.get("sum", 0.0))
        return family


class RedisCounter:
    """A labelled counter in one Redis hash (fields: JSON lists of label values)."""

    def __init__(self, name: str, documentation: str, labelnames: list[str]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self.key = f"imago:metrics:{name}"

    def inc(self, labels: Iterable[str]) -> None:
        try:
            redis_connection().hincrby(self.key, json.dumps(list(labels)), 1)
        except redis.RedisError:
            logger.warning("Could not record %s in Redis", self.name, exc_info=True)

    def collect(self, fields: dict[str, str]) -> Metric:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for field, value in sorted(fields.items()):
            family.add_metric(json.loads(field), float(value))
        return family


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


step_runs = RedisCounter(
    "imago_pipeline_step_runs",
    "Pipeline step runs by step and outcome: done, skipped, failed (gave up), retried "
    "(failed, will run again).",
    ["step", "outcome"],
)
step_duration = RedisHistogram(
    "imago_pipeline_step_duration_seconds",
    "Time one pipeline step run took, by step and outcome.",
    ["step", "outcome"],
    STEP_BUCKETS,
)
inference_duration = RedisHistogram(
    "imago_model_inference_seconds",
    "Time of one detection model inference (pre-processing, ONNX Runtime or ultralytics, "
    "decoding), by model: the built-in model's name, or `custom` for tenants' own.",
    ["model", "backend"],
    INFERENCE_BUCKETS,
)
REDIS_METRICS: list[RedisHistogram | RedisCounter] = [step_runs, step_duration, inference_duration]


def step_observed(*, step: str, outcome: str, seconds: float) -> None:
    step_runs.inc([step, outcome])
    step_duration.observe([step, outcome], seconds)


def inference_observed(*, model: str, backend: str, seconds: float) -> None:
    inference_duration.observe([model, backend], seconds)
