"""Test helpers: personas, small images made at run time, shared data lookup."""

import io
from dataclasses import dataclass
from pathlib import Path

import PIL.Image
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from images import services
from images.models import DEFAULT_SCOPES, Client

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


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
