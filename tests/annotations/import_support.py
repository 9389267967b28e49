"""Small Robotoff-format data made at run time, for the import tests."""

import gzip
import io
import json
import uuid
from pathlib import Path
from typing import Any

from django.core.management import call_command
from rest_framework.response import Response

from tests.helpers import Tenant, upload_file

ROBOTOFF = ("robotoff",)


def prediction(**fields: Any) -> dict[str, Any]:
    base = {
        "id": str(uuid.uuid4()),
        "type": "label",
        "barcode": "3017620422003",
        "value": None,
        "value_tag": "en:organic",
        "data": {"text": "bio"},
        "automatic_processing": False,
        "predictor": "flashtext",
        "predictor_version": "1",
        "timestamp": "2026-02-22T15:55:36",
        "source_image": "/301/762/042/2003/1.jpg",
        "confidence": None,
        "server_type": "off",
    }
    return {**base, **fields}


def predictions(count: int) -> list[dict[str, Any]]:
    return [prediction(barcode=f"{n:013d}", value_tag=f"en:label-{n}") for n in range(count)]


def jsonl(records: list[Any]) -> bytes:
    return b"".join(
        (r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records
    )


def questions_json(questions: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {"count": len(questions), "questions": questions, "status": "found"}, indent=1
    ).encode()


def question(**fields: Any) -> dict[str, Any]:
    base = {
        "barcode": "7758628000041",
        "type": "add-binary",
        "value": "PE-BIO-141",
        "question": "Does the product have this label?",
        "insight_id": str(uuid.uuid4()),
        "insight_type": "label",
        "source_image_url": "https://static.example.org/images/775/862/800/0041/1.400.jpg",
    }
    return {**base, **fields}


def write(tmp_path: Path, name: str, data: bytes, *, gz: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def import_command(*paths: Path, client: str, **options: Any) -> tuple[str, str]:
    """`manage.py import_insights PATH… --client …`: its stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "import_insights",
        *[str(p) for p in paths],
        client=client,
        stdout=out,
        stderr=err,
        **options,
    )
    return out.getvalue(), err.getvalue()


def post_import(tenant: Tenant, name: str, data: bytes, **fields: Any) -> Response:
    payload = {"file": upload_file(name, data), **fields}
    return tenant.api.post("/api/v1/insights/import", payload, format="multipart")
