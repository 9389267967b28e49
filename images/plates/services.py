"""Writes of a tenant's plate covering on request: its defaults, its stub image, a stored image
queued for covering."""

import uuid
from typing import IO, Any

from django.db import transaction

from images.library import storage
from images.library.pipeline import pipeline_enqueue
from images.library.validation import ImageInfo, inspect_upload
from images.models import AnonymizeSettings, Client, Image, ImageStep


def image_anonymize_request(*, image: Image, mode: str | None) -> None:
    """Queue the anonymize step for a stored image, in `mode` (else the tenant's default)."""
    with transaction.atomic():
        ImageStep.objects.update_or_create(
            image=image,
            name="anonymize",
            defaults={"result": {"requested": True, "mode": mode}},
        )
        pipeline_enqueue(image=image, steps=["anonymize"])


def anonymize_settings_update(*, client: Client, changes: dict[str, Any]) -> AnonymizeSettings:
    """Change the tenant's defaults; its row is made on its first change."""
    with transaction.atomic():
        row = _settings_locked(client)
        for field, value in changes.items():
            setattr(row, field, value)
        row.save()
    return row


def stub_replace(*, client: Client, fp: IO[bytes], size: int) -> ImageInfo:
    """Make an image the tenant's own stub (UploadRejected when it is none); the last one's file
    is deleted once the row no longer names it."""
    info = inspect_upload(fp, size)
    name = storage.save_file(
        f"{client.storage_prefix}/stub/{uuid.uuid4().hex[:8]}.{info.extension}", fp
    )
    try:
        with transaction.atomic():
            row = _settings_locked(client)
            old, row.stub_file = row.stub_file, name
            row.save(update_fields=["stub_file"])
    except BaseException:
        storage.delete_quietly([name])
        raise
    if old:
        storage.delete_quietly([old])
    return info


def stub_reset(*, client: Client) -> None:
    """Go back to the built-in stub, deleting the tenant's own."""
    with transaction.atomic():
        row = AnonymizeSettings.objects.select_for_update().filter(client=client).first()
        if row is None or not row.stub_file:
            return
        old, row.stub_file = row.stub_file, ""
        row.save(update_fields=["stub_file"])
    storage.delete_quietly([old])


def _settings_locked(client: Client) -> AnonymizeSettings:
    # Locked: two changes at once must not both make the row, nor lose each other's stub file.
    row, _ = AnonymizeSettings.objects.select_for_update().get_or_create(client=client)
    return row
