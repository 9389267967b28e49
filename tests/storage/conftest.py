"""S3 fixtures: one loopback S3 server for the session, a fresh bucket for each test.

The storage is configured by running imago_site/settings.py with a MinIO-like environment, so the
tests exercise the settings a deployment gets, not a configuration written for them.
"""

import os
import runpy
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.storage.s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server

SETTINGS_FILE = Path(__file__).resolve().parents[2] / "imago_site" / "settings.py"


def settings_from_env(environ: dict[str, str]) -> dict[str, Any]:
    """The module namespace settings.py builds from this environment (and nothing else of ours)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("S3_", "AWS_", "STORAGE_", "SIGNED_URL")):
                patch.delenv(name)
        patch.setenv("SECRET_KEY", "settings-under-test")
        for name, value in environ.items():
            patch.setenv(name, value)
        return runpy.run_path(str(SETTINGS_FILE))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    yield server
    server.stop()


@dataclass
class Bucket:
    name: str
    server: S3Server
    client: Any

    def objects(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=prefix
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def content_type(self, key: str) -> str:
        return self.client.head_object(Bucket=self.name, Key=key)["ContentType"]


def s3_client(endpoint_url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def s3_environ(server: S3Server, bucket: str, **extra: str) -> dict[str, str]:
    """What compose.yaml gives the app services, pointed at the loopback server."""
    return {
        "STORAGE_BACKEND": "s3",
        "S3_ENDPOINT_URL": server.endpoint_url,
        "S3_BUCKET": bucket,
        "S3_ACCESS_KEY_ID": ACCESS_KEY,
        "S3_SECRET_ACCESS_KEY": SECRET_KEY,
        **extra,
    }


@pytest.fixture
def s3_env(s3_server: S3Server) -> dict[str, str]:
    """Extra environment for the next `bucket`: a test may add to it before asking for one."""
    return {}


@pytest.fixture
def bucket(s3_server: S3Server, s3_env: dict[str, str], settings) -> Iterator[Bucket]:
    """A new, empty bucket, and Django's default storage pointed at it."""
    name = f"imago-test-{uuid.uuid4().hex[:12]}"
    client = s3_client(s3_server.endpoint_url)
    client.create_bucket(Bucket=name)
    configured = settings_from_env(s3_environ(s3_server, name, **s3_env))
    settings.STORAGES = {**settings.STORAGES, "default": configured["STORAGES"]["default"]}
    settings.SIGNED_URL_TTL = configured["SIGNED_URL_TTL"]
    found = Bucket(name, s3_server, client)
    yield found
    s3_server.clock_offset = timedelta()
    for key in found.objects():
        client.delete_object(Bucket=name, Key=key)
    client.delete_bucket(Bucket=name)
