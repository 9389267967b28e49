"""A client of the FastAPI Imago, written from its contract (legacy-contracts.md, section 3) alone,
runs its whole flow against a live Imago server and worker: only the base URL changed."""

import io
import math
import os
import re
import time
from pathlib import Path

import httpx
import PIL.Image
import pytest

from tests.ai.support import ENGLISH, FakeServer, Reply, text_image_bytes
from tests.helpers import make_tenant, shared_data
from tests.live import live_server, live_worker

pytestmark = pytest.mark.slow  # a live server and worker

ADMIN_API_KEY = "legacy-master-key-5f0c1e9a7b3d"
# ISO 8601 without an offset, to the second (!).
NAIVE_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")
ARTICLE = """<!doctype html><html><head><title>Pont</title><meta charset="utf-8"></head><body>
<article><h1>Le conseil approuve le nouveau pont</h1>
<p>Le conseil municipal a approuvé lundi le nouveau pont sur la rivière après deux ans de débat.
Les travaux commenceront au printemps et dureront environ dix-huit mois.</p>
<p>Le pont portera piétons, cyclistes et bus, mais aucune voiture particulière.</p>
</article></body></html>"""
ENVIRONMENT = {
    # The FastAPI Imago's own variables.
    "ADMIN_API_KEY": ADMIN_API_KEY,
    "SIGNED_URL_SECRET": "legacy-signed-url-secret",
    "MAX_UPLOAD_SIZE_MB": "1",
    "WORKER_MAX_TRIES": "2",
    # Imago's: a quick pipeline, the local AI provider, a page server on loopback.
    "PIPELINE_STEPS": "exif,thumbnails,ocr,vision",
    "AI_PROVIDER": "local",
    "OUTBOUND_ALLOWED_HOSTS": "127.0.0.1",
    "RATE_LIMIT_FREE": "10000",
}


class LegacyClient:
    """What a FastAPI Imago client does: X-API-Key on every call, paths at the root."""

    def __init__(self, base: str, key: str) -> None:
        self.http = httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30)

    def upload(self, name: str, data: bytes) -> httpx.Response:
        return self.http.post("/images/upload", files={"file": (name, data, "image/jpeg")})

    def wait_done(self, image_id: int, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            status = self.http.get(f"/images/{image_id}/status").json()
            if status["status"] in {"done", "failed"} or time.monotonic() > deadline:
                return status
            time.sleep(0.5)


@pytest.fixture
def page_server():
    server = FakeServer()
    server.route("/article", Reply(200, ARTICLE, {"Content-Type": "text/html; charset=utf-8"}))
    yield server
    server.close()


@pytest.fixture
def legacy(transactional_db, collected, tmp_path):
    with (
        live_server(collected, tmp_path, **ENVIRONMENT) as base,
        live_worker(collected, tmp_path, **ENVIRONMENT),
    ):
        yield base


def noise_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    PIL.Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_fastapi_imago_client_runs_its_whole_flow(legacy, page_server):
    photo_path = shared_data("exif", "gps", "DSCN0010.jpg")
    tenant = make_tenant("Default")  # the FastAPI Imago printed its first client's key once
    client = LegacyClient(legacy, tenant.key)
    photo, text = _upload_both(client, Path(photo_path).read_bytes())
    _check_status_and_detail(client, photo, text)
    _check_signed_links(client, photo, Path(photo_path).read_bytes())
    _check_tags_reprocess_and_ai(client, text, page_server)
    _check_delete(client, photo)
    _check_client_management(legacy, tenant)
    _check_docs_and_refusals(legacy, client)


def _upload_both(client: LegacyClient, photo_bytes: bytes) -> tuple[int, int]:
    acks = [
        client.upload("DSCN0010.jpg", photo_bytes),
        client.upload("note.png", text_image_bytes(ENGLISH)),
    ]
    for response in acks:
        assert response.status_code in {200, 201}, response.text
        ack = response.json()
        assert isinstance(ack["id"], int) and ack["status"] == "pending"
        assert ack["uuid"] and ack["message"] and ack["original_name"]
    assert acks[0].json()["original_name"] == "DSCN0010.jpg"
    # MAX_UPLOAD_SIZE_MB=1: a file over a mebibyte is refused with a JSON error.
    too_big = client.upload("big.png", noise_png(700, 600))
    assert too_big.status_code == 413 and too_big.json()["code"]
    return acks[0].json()["id"], acks[1].json()["id"]


def _check_status_and_detail(client: LegacyClient, photo: int, text: int) -> None:
    for image_id in (photo, text):
        status = client.wait_done(image_id)
        assert status["id"] == image_id and status["status"] == "done", status
        assert NAIVE_SECONDS.match(status["started_at"]) and NAIVE_SECONDS.match(status["done_at"])
        assert status["started_at"] <= status["done_at"]
    detail = client.http.get(f"/images/{photo}").json()
    assert detail["id"] == photo and detail["processing_status"] == "done"
    assert detail["original_name"] == "DSCN0010.jpg"
    camera, gps = detail["exif"]["camera"], detail["exif"]["gps"]
    assert camera["make"] == "NIKON" and camera["model"] == "COOLPIX P6000"
    assert isinstance(camera["iso"], int)
    assert re.fullmatch(r"f/\d+(\.\d+)?", camera["aperture"])
    assert re.fullmatch(r"1/\d+", camera["shutter_speed"])
    assert re.fullmatch(r"\d+(\.\d+)?mm", camera["focal_length"])
    assert camera["taken_at"] == "2008-10-22T16:28:39"
    assert gps["has_gps"] is True
    assert math.isclose(gps["latitude"], 43.467448, abs_tol=1e-5)
    assert math.isclose(gps["longitude"], 11.885127, abs_tol=1e-5)
    assert "?q=" in gps["maps_url"] and f"{gps['latitude']},{gps['longitude']}" in gps["maps_url"]
    assert client.http.get(f"/images/{photo}/exif").json() == detail["exif"]
    read = client.http.get(f"/images/{text}").json()
    ocr, ai = read["ocr"], read["ai"]
    assert ocr["has_text"] is True and "quick brown fox" in ocr["text"]
    assert ocr["language"] == "en" and 0 < ocr["confidence"] <= 1
    # The local provider describes nothing; its tags are the text's keywords.
    assert ai["description"] is None and ai["model_used"] == "local"
    assert ai["tags"] and all(isinstance(tag, str) for tag in ai["tags"])
    assert isinstance(ai["confidence"], float | int | None)
    assert client.http.get(f"/images/{text}/ocr").json() == ocr
    assert client.http.get(f"/images/{text}/ai").json() == ai


def _check_signed_links(client: LegacyClient, photo: int, photo_bytes: bytes) -> None:
    download = client.http.get(f"/images/{photo}/download-url").json()
    thumbnail = client.http.get(f"/images/{photo}/thumbnail-url").json()
    assert "/files/signed/" in download["url"] and "/files/signed/" in thumbnail["url"]
    anonymous = httpx.Client(timeout=30)  # the HMAC token alone authorises the file
    original = anonymous.get(download["url"])
    assert original.status_code == 200 and original.content == photo_bytes
    small = anonymous.get(thumbnail["url"])
    assert small.status_code == 200 and small.headers["content-type"] == "image/webp"
    forged = anonymous.get(download["url"][:-3] + "AAA")
    assert forged.status_code == 403 and forged.json()["code"]


def _check_tags_reprocess_and_ai(client: LegacyClient, text: int, pages: FakeServer) -> None:
    tags = client.http.get("/images/tags/all").json()["tags"]
    assert set(client.http.get(f"/images/{text}").json()["ai"]["tags"]) <= set(tags)
    again = client.http.post(f"/images/{text}/reprocess")
    assert again.status_code in {200, 202} and again.json()["id"] == text
    assert client.wait_done(text)["status"] == "done"
    body = {"url": f"{pages.url}/article", "language": "français"}
    summary = client.http.post("/ai/summarize", json=body)
    assert summary.status_code == 200, summary.text
    assert summary.json()["language"] == "fr" and "pont" in summary.json()["summary"]
    task = {"description": "Corriger la page de connexion", "context": "Le bouton ne répond plus"}
    draft = client.http.post("/ai/draft-task", json=task)
    assert draft.status_code == 200 and draft.json()["task"]["title"]


def _check_delete(client: LegacyClient, photo: int) -> None:
    link = client.http.get(f"/images/{photo}/download-url").json()["url"]
    assert client.http.delete(f"/images/{photo}").status_code in {200, 204}
    gone = client.http.get(f"/images/{photo}")
    assert gone.status_code == 404 and gone.json()["code"]
    assert httpx.get(link).status_code == 404


def _check_client_management(base: str, tenant) -> None:
    admin = httpx.Client(base_url=base, headers={"X-API-Key": ADMIN_API_KEY}, timeout=30)
    listed = admin.get("/auth/clients")
    assert listed.status_code == 200
    assert tenant.client.pk in [c["id"] for c in listed.json()["results"]]
    body = {"name": "Second", "plan": "premium", "scopes": ["images:read"]}
    created = admin.post("/auth/clients", json=body)
    assert created.status_code in {200, 201}, created.text
    second = created.json()
    assert admin.get(f"/auth/clients/{second['id']}").json()["plan"] == "premium"
    changed = admin.patch(f"/auth/clients/{second['id']}", json={"plan": "free"}).json()
    assert changed["plan"] == "free"
    new_key = admin.post(f"/auth/clients/{second['id']}/rotate-key").json()["api_key"]
    assert LegacyClient(base, second["api_key"]).http.get("/images").status_code == 401
    assert LegacyClient(base, new_key).http.get("/images").status_code == 200
    assert admin.delete(f"/auth/clients/{second['id']}").json()["is_active"] is False
    assert LegacyClient(base, new_key).http.get("/images").status_code == 401
    # The master key manages clients and does nothing else.
    assert admin.get("/images").status_code == 401


def _check_docs_and_refusals(base: str, client: LegacyClient) -> None:
    public = httpx.Client(base_url=base, timeout=30)
    assert "/images/upload" in public.get("/openapi.json").json()["paths"]
    info = public.get("/", headers={"Accept": "application/json"})
    assert info.status_code == 200 and info.json()["docs"] == "/docs"
    for page in ("/docs", "/redoc"):
        response = public.get(page)
        assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    refused = public.get("/images")
    assert refused.status_code == 401 and refused.json()["code"]
    assert client.http.get("/images/999999").status_code == 404
