"""Helpers of the insight API tests."""

from rest_framework.test import APIClient

from annotations.models import Insight, InsightSettings
from images.models import Image, Thumbnail
from tests.helpers import Tenant

BARCODE = "3017620422003"
# An object insight's box, in Robotoff's order: y_min, x_min, y_max, x_max, from 0 to 1.
EVIDENCE_BOX = [0.25, 0.1, 0.75, 0.6]


def make_public(tenant: Tenant, **fields: object) -> InsightSettings:
    settings, _ = InsightSettings.objects.update_or_create(
        client=tenant.client, defaults={"public_questions": True, **fields}
    )
    return settings


def answers(
    api: APIClient,
    insight: Insight | str,
    annotation: int,
    *,
    address: str = "127.0.0.1",
    **fields: object,
):
    """POST /insights/annotate form-encoded, as Robotoff's clients do, from a client address."""
    insight_id = insight if isinstance(insight, str) else str(insight.id)
    payload = {"insight_id": insight_id, "annotation": annotation, **fields}
    return api.post("/api/v1/insights/annotate", payload, format="multipart", REMOTE_ADDR=address)


def an_image(tenant: Tenant, *, thumbnail: bool = True) -> Image:
    """An Image row (its files are not needed by these tests) with a 256 px thumbnail row."""
    image = Image.objects.create(
        client=tenant.client,
        file=f"{tenant.client.storage_prefix}/images/x/original.jpg",
        content_type="image/jpeg",
        format="JPEG",
        width=640,
        height=480,
        size_bytes=1000,
        sha256="a" * 64,
    )
    if thumbnail:
        Thumbnail.objects.create(
            image=image,
            size=256,
            file=f"{image.storage_dir}/256.webp",
            width=256,
            height=192,
            size_bytes=100,
        )
    return image
