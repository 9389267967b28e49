"""Fixtures of the insight API tests: insights, public tenants, a downstream product store."""

import socket
from collections.abc import Callable, Iterator

import pytest
from rest_framework.test import APIClient

from annotations.models import Insight
from images.models import Client
from tests.ai.support import FakeServer, Reply
from tests.annotations.support import BARCODE
from tests.factories import InsightFactory
from tests.helpers import Tenant


@pytest.fixture
def make_insight(db) -> Callable[..., Insight]:
    """An open label insight of a tenant; any field can be given."""

    def make(tenant: Tenant | Client, **fields: object) -> Insight:
        client = tenant.client if isinstance(tenant, Tenant) else tenant
        values: dict[str, object] = {
            "barcode": BARCODE,
            "type": "label",
            "value": "Organic",
            "value_tag": "en:organic",
            "predictor": "ocr",
            "confidence": 0.5,
            "source_image": "/301/762/042/2003/1.jpg",
            **fields,
        }
        return InsightFactory(client=client, **values)

    return make


@pytest.fixture
def anonymous(db) -> APIClient:
    return APIClient()


@pytest.fixture
def downstream(settings) -> Iterator[FakeServer]:
    """A product store on 127.0.0.1, an intranet the operator allows; it accepts every update."""
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    server = FakeServer()
    server.route("/updates", Reply(200, {"ok": True}))
    yield server
    server.close()


@pytest.fixture
def closed_port_url(settings) -> str:
    """A URL on 127.0.0.1 (allowed) where nothing listens: connections are refused at once."""
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/updates"
