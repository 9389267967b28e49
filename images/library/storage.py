"""File storage through Django's storage API (local disk, or S3/MinIO with django-storages)."""

import logging
import os
from collections.abc import Iterable
from typing import IO, Any

from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage

from images.models import Image

logger = logging.getLogger(__name__)


def open_original(image: Image) -> IO[bytes]:
    return open_file(image.file)


def open_file(name: str) -> IO[bytes]:
    return default_storage.open(name, "rb")


def save_bytes(name: str, data: bytes) -> str:
    return default_storage.save(name, ContentFile(data))


def save_file(name: str, fp: IO[bytes]) -> str:
    fp.seek(0)
    return default_storage.save(name, File(fp))


def files_under(folder: str) -> list[str]:
    """Every file below a folder (an image's original, thumbnails, previews, …)."""
    try:
        subfolders, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return []
    names = [f"{folder}/{name}" for name in files]
    for sub in subfolders:
        names.extend(files_under(f"{folder}/{sub}"))
    return names


def delete_quietly(names: Iterable[str]) -> None:
    """Delete files, logging (not raising) failures: callers are already cleaning up."""
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:
            logger.exception("Could not delete %s from storage", name)


def is_remote() -> bool:
    """S3-like storages sign their own URLs; the local one is served by /files/signed/."""
    return hasattr(default_storage, "bucket_name")


def check() -> dict[str, Any]:
    """For /health/detailed: the bucket answers to our credentials, or the folder is writable."""
    if is_remote():
        default_storage.connection.meta.client.head_bucket(Bucket=default_storage.bucket_name)
        return {"backend": "s3", "bucket": default_storage.bucket_name}
    location = default_storage.location
    # The folder is made on the first save; one that exists must take files.
    if os.path.exists(location) and not os.access(location, os.W_OK):
        raise PermissionError(f"{location} is not writable")
    return {"backend": "local"}
