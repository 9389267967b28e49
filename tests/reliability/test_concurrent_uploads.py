"""200 concurrent uploads from 20 tenants over loopback HTTP: every file stored exactly once."""

import hashlib
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from images.library import pipeline
from images.models import Image, ImageStep
from tests.helpers import Tenant, image_bytes, make_tenant, media_files

# slow: hundreds of uploads over loopback
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300), pytest.mark.django_db(transaction=True)]

TENANTS = 20
IMAGES_PER_TENANT = 10
THREADS = 20


@pytest.fixture
def cheap_pipeline(monkeypatch) -> None:
    """EXIF and thumbnails only: the point is the storage, not the models' speed."""
    monkeypatch.setattr(
        pipeline, "STEPS", {name: pipeline.STEPS[name] for name in ("exif", "thumbnails")}
    )


def _png(tenant: int, n: int) -> bytes:
    # PNG is lossless, so every colour gives different bytes.
    return image_bytes("PNG", size=(40, 30), color=(tenant * 12, n * 25, 99))


def test_concurrent_uploads_store_each_file_once(live_server, cheap_pipeline, run_jobs):
    tenants = [make_tenant(f"Tenant {t}") for t in range(TENANTS)]
    requests: list[tuple[int, str, bytes]] = []
    for t in range(TENANTS):
        requests += [(t, f"t{t}-{n}.png", _png(t, n)) for n in range(IMAGES_PER_TENANT)]
        # The same bytes again under other names (deduplicated for the tenant), and a file that
        # another tenant also sends (stored for each of them).
        requests += [(t, f"t{t}-again-{n}.png", _png(t, n)) for n in range(2)]
        requests.append((t, f"t{t}-shared.png", _png(TENANTS, 0)))
    random.Random(7).shuffle(requests)

    def post(request: tuple[int, str, bytes]) -> tuple[int, int, dict]:
        t, name, data = request
        response = clients[t].post("/api/v1/images/", files={"file": (name, data, "image/png")})
        return t, response.status_code, response.json()

    clients = [_client(live_server.url, tenant) for tenant in tenants]
    try:
        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(post, requests))
    finally:
        for client in clients:
            client.close()

    assert [(status, body) for _, status, body in results if status != 201] == []
    uuids_by_bytes: dict[tuple[int, str], set[str]] = {}
    for (t, _, data), (_, _, body) in zip(requests, results, strict=True):
        [stored] = body["images"]
        uuids_by_bytes.setdefault((t, hashlib.sha256(data).hexdigest()), set()).add(stored["uuid"])
    assert all(len(uuids) == 1 for uuids in uuids_by_bytes.values())
    for tenant in tenants:
        assert Image.objects.filter(client=tenant.client).count() == IMAGES_PER_TENANT + 1
    rows = set(Image.objects.values_list("file", flat=True))
    assert len(rows) == TENANTS * (IMAGES_PER_TENANT + 1)
    assert _originals() == rows
    assert ImageStep.objects.count() == len(rows) * 2

    run_jobs()
    assert set(Image.objects.values_list("status", flat=True)) == {"done"}


def _client(base_url: str, tenant: Tenant) -> httpx.Client:
    return httpx.Client(
        base_url=base_url, headers={"Authorization": f"Token {tenant.key}"}, timeout=60
    )


def _originals() -> set[str]:
    root = Path(settings.MEDIA_ROOT)
    return {str(p.relative_to(root)) for p in media_files() if p.stem == "original"}


def test_the_same_file_sent_at_once_on_many_connections_is_stored_once(live_server, owner):
    data = _png(0, 0)
    start = threading.Barrier(THREADS)

    def post(n: int) -> httpx.Response:
        with _client(live_server.url, owner) as client:
            start.wait(timeout=30)
            return client.post("/api/v1/images/", files={"file": (f"{n}.png", data, "image/png")})

    with ThreadPoolExecutor(THREADS) as pool:
        responses = list(pool.map(post, range(THREADS)))

    assert [r.status_code for r in responses] == [201] * THREADS
    assert len({r.json()["images"][0]["uuid"] for r in responses}) == 1
    assert sum(not r.json()["images"][0]["duplicate"] for r in responses) == 1
    assert _originals() == set(Image.objects.values_list("file", flat=True))
    assert Image.objects.count() == 1
