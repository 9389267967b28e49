"""Test helpers: personas, small images made at run time, shared data lookup, a webhook receiver."""

import io
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import PIL.Image
import pytest
from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher
from rest_framework.test import APIClient

from images.models import DEFAULT_SCOPES, Client
from images.tenancy import services

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


class QuickArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2 at its cheapest, for the suite's hundreds of passwords (Django's costs ~0.2 s)."""

    time_cost = 1
    memory_cost = 64  # KiB
    parallelism = 1


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test when that data is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data {path} is not present")
    return path


@dataclass
class Tenant:
    client: Client
    key: str
    api: APIClient


def make_tenant(name: str, *, scopes: list[str] | None = None, **fields: object) -> Tenant:
    client, key = services.client_create(name=name, scopes=scopes or DEFAULT_SCOPES, **fields)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return Tenant(client, key, api)


def image_bytes(
    fmt: str = "JPEG", size: tuple[int, int] = (64, 48), color: tuple = (200, 30, 30), **save
) -> bytes:
    mode = "RGBA" if len(color) == 4 else "RGB"
    buffer = io.BytesIO()
    PIL.Image.new(mode, size, color).save(buffer, fmt, **save)
    return buffer.getvalue()


def upload_file(name: str, data: bytes) -> io.BytesIO:
    fp = io.BytesIO(data)
    fp.name = name
    return fp


def upload(tenant_api: APIClient, *files: tuple[str, bytes], field: str = "file", **extra):
    payload = {field: [upload_file(n, d) for n, d in files]}
    return tenant_api.post("/api/v1/images/", payload, format="multipart", **extra)


def media_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


class Receiver:
    """A tenant's backend on 127.0.0.1: records each POST (path, headers, body) and answers 200.
    Down (its port closed) until started."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict, bytes]] = []
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, dict(self.headers), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def at(self, path: str) -> list[tuple[dict, bytes]]:
        """The headers and body of each POST to `path`."""
        return [(headers, body) for got, headers, body in self.received if got == path]
