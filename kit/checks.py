"""Readiness checks of what every app stands on, shared by Imago's health routes and the
ObjectVision ones (images.compat.objectvision.health)."""

from typing import Any

from django.db import connection


def database_check() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"vendor": connection.vendor}
