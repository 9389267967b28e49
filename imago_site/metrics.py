"""GET /metrics: the recorded figures (kit.metrics) and those read at scrape time, served to
allowed networks or with the metrics token."""

import functools
import hmac
import ipaddress
import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

import django_rq
from django.conf import settings
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.django import PrometheusDjangoView
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from rq import Worker
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)

from images.models import Client
from kit import metrics as recorded
from kit.addresses import client_address

logger = logging.getLogger(__name__)


# Collectors read at scrape time -----------------------------------------------------------------


class SafeCollector(Collector):
    """A collector whose failure (database or Redis down) drops its own figures, not the scrape.

    Each reports imago_collector_up{collector="<name>"} 1 or 0.
    """

    name = ""

    def families(self) -> Iterable[Metric]:
        raise NotImplementedError

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "imago_collector_up",
            "1 when this collector could read its source at this scrape.",
            labels=["collector"],
        )
        try:
            families = list(self.families())
        except Exception:
            logger.warning("Metrics collector %s failed", self.name, exc_info=True)
            families = []
            up.add_metric([self.name], 0)
        else:
            up.add_metric([self.name], 1)
        yield from families
        yield up


class QueueCollector(SafeCollector):
    name = "queues"

    def families(self) -> Iterable[Metric]:
        jobs = GaugeMetricFamily(
            "imago_rq_jobs",
            "RQ jobs by queue and state (queued, started, deferred, scheduled, failed).",
            labels=["queue", "state"],
        )
        for name in settings.RQ_QUEUES:
            queue = django_rq.get_queue(name)
            registries = {
                "started": StartedJobRegistry,
                "deferred": DeferredJobRegistry,
                "scheduled": ScheduledJobRegistry,
                "failed": FailedJobRegistry,
            }
            jobs.add_metric([name, "queued"], queue.count)
            for state, registry in registries.items():
                jobs.add_metric([name, state], registry(queue=queue).count)
        workers = GaugeMetricFamily("imago_rq_workers", "RQ workers alive.")
        workers.add_metric([], Worker.count(connection=recorded.redis_connection()))
        return [jobs, workers]


class TenantCollector(SafeCollector):
    name = "tenants"

    def families(self) -> Iterable[Metric]:
        images = GaugeMetricFamily(
            "imago_tenant_images", "Images stored per tenant.", labels=["tenant"]
        )
        stored = GaugeMetricFamily(
            "imago_tenant_image_bytes", "Bytes of original images per tenant.", labels=["tenant"]
        )
        rows = Client.objects.annotate(
            image_count=Count("images"), image_bytes=Sum("images__size_bytes")
        ).values_list("slug", "image_count", "image_bytes")
        for slug, count, size in rows:
            images.add_metric([slug], count)
            stored.add_metric([slug], size or 0)
        return [images, stored]


class RedisMetricsCollector(SafeCollector):
    name = "redis_metrics"

    def families(self) -> Iterable[Metric]:
        with recorded.redis_connection().pipeline(transaction=False) as pipe:
            for metric in recorded.REDIS_METRICS:
                pipe.hgetall(metric.key)
            hashes = pipe.execute()
        return [
            metric.collect({_text(k): _text(v) for k, v in fields.items()})
            for metric, fields in zip(recorded.REDIS_METRICS, hashes, strict=True)
        ]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@functools.cache
def scrape_registry() -> CollectorRegistry:
    """Our process's metrics (or all gunicorn workers' in multiprocess mode) and the collectors."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REGISTRY)  # a registry is a collector of its own metrics
    for collector in (QueueCollector(), TenantCollector(), RedisMetricsCollector()):
        registry.register(collector)
    return registry


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


# The endpoint ---------------------------------------------------------------------------------


def _address_allowed(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in allowed_networks())


@functools.cache
def _networks(spec: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in spec)


def allowed_networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return _networks(tuple(settings.METRICS_ALLOWED_NETWORKS))


def refusal(request: HttpRequest) -> JsonResponse | None:
    """None when the caller may read the metrics, else the JSON answer that says why not.

    A right Bearer token is enough from anywhere; without credentials, the caller's address must
    be in METRICS_ALLOWED_NETWORKS. That address is the client's (kit.addresses): the
    socket's peer, or behind TRUSTED_PROXIES the client they forward for, never a header an
    untrusted caller wrote. Never allow a proxy's own network: every request through it would
    pass.
    """
    authorization = request.headers.get("Authorization", "")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        expected = settings.METRICS_TOKEN
        if (
            scheme.lower() == "bearer"
            and expected
            and hmac.compare_digest(token.strip().encode(), expected.encode())
        ):
            return None
        response = JsonResponse(
            {"code": "invalid_metrics_token", "detail": "The metrics token is not valid."},
            status=401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if _address_allowed(client_address(request)):
        return None
    return JsonResponse(
        {
            "code": "metrics_forbidden",
            "detail": "Metrics are served to METRICS_ALLOWED_NETWORKS, or with the metrics token "
            "as 'Authorization: Bearer <token>'.",
        },
        status=403,
    )


class MetricsView(PrometheusDjangoView):
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return refusal(request) or super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.registry = scrape_registry()
        return super().get(request, *args, **kwargs)
