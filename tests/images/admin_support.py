"""Personas and rows for the admin's operator pages (dashboard, image page, tenant page)."""

import re
import uuid
from datetime import timedelta

from django.db import connection
from django.test import Client as BrowserClient
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from images.models import Client, Image


def stored(
    client: Client, *, status: str = "done", size: int = 1000, age: timedelta = timedelta(0)
) -> Image:
    """An image row (no file: the pages that count rows never open it)."""
    image = Image.objects.create(
        client=client, file=f"{client.storage_prefix}/images/x/original.jpg",
        content_type="image/jpeg", format="jpeg", width=64, height=48, size_bytes=size,
        sha256=uuid.uuid4().hex, status=status,
    )  # fmt: skip
    if age:
        Image.objects.filter(pk=image.pk).update(created_at=timezone.now() - age)
    return image


def csrf_token(page) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)


def queries(browser: BrowserClient, url: str) -> int:
    """How many SQL queries answering the page took (it must answer 200)."""
    with CaptureQueriesContext(connection) as captured:
        response = browser.get(url)
    assert response.status_code == 200
    return len(captured)


def result_count(browser: BrowserClient, url: str) -> int:
    """How many rows a changelist link shows (it must be a changelist the admin accepts)."""
    response = browser.get(url)
    assert response.status_code == 200, url
    return response.context["cl"].result_count
