"""Writes: every entry point (API, admin, commands, jobs) goes through these functions."""

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO

from django.db import IntegrityError, transaction
from django.db.models import Sum

from images.library import storage
from images.library.pipeline import pipeline_enqueue, step_names
from images.library.validation import ImageInfo, UploadRejected, inspect_upload
from images.models import Client, Image, ImageTag, Tag
from kit.errors import DomainError

logger = logging.getLogger(__name__)


# Images -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    name: str
    fp: IO[bytes]
    size: int


@dataclass(frozen=True)
class FileError:
    filename: str
    status: int
    code: str
    detail: str


class UploadsRejected(DomainError):
    """None of the files is stored: the first rejection's code and status, each one in `errors`."""

    def __init__(self, errors: list[FileError], *, sent: int) -> None:
        first = errors[0]
        super().__init__(
            first.code,
            first.detail if sent == 1 else f"{first.filename}: {first.detail}",
            first.status,
            errors=[{"file": e.filename, "code": e.code, "detail": e.detail} for e in errors],
        )


class QuotaExceeded(DomainError):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail, 403)


@dataclass(frozen=True)
class Stored:
    image: Image
    duplicate: bool


def image_create_many(
    *, client: Client, uploads: Sequence[Upload], library: bool = True
) -> list[Stored]:
    """Validate every upload, then store them all or none.

    Files are written before rows (never a row without its file) and deleted again when the rows
    cannot be written (never an orphan file). The same bytes uploaded again by the same tenant
    return the existing image.

    `library=False` stores detection inputs (Image.in_library): each upload gets a row of its
    own, outside the quota, and no pipeline step is queued.
    """
    infos = _inspect_all(uploads)
    if not library:
        return _store_outside_library(client, uploads, infos)
    try:
        return _store(client, uploads, infos)
    except IntegrityError:
        # Another request stored the same bytes between our check and our insert: now they're
        # duplicates of that image, and a second pass finds it.
        return _store(client, uploads, infos)


def _store_outside_library(
    client: Client, uploads: Sequence[Upload], infos: list[ImageInfo]
) -> list[Stored]:
    images = [_unsaved_image(client, u, i) for u, i in zip(uploads, infos, strict=True)]
    saved_files: list[str] = []
    try:
        for image, upload, info in zip(images, uploads, infos, strict=True):
            image.in_library = False
            image.file = storage.save_file(
                f"{image.storage_dir}/original.{info.extension}", upload.fp
            )
            saved_files.append(image.file)
        Image.objects.bulk_create(images)
    except BaseException:
        storage.delete_quietly(saved_files)
        raise
    return [Stored(image, duplicate=False) for image in images]


def _inspect_all(uploads: Sequence[Upload]) -> list[ImageInfo]:
    infos, errors = [], []
    for upload in uploads:
        try:
            infos.append(inspect_upload(upload.fp, upload.size))
        except UploadRejected as exc:
            errors.append(FileError(upload.name, exc.status, exc.code, exc.detail))
    if errors:
        raise UploadsRejected(errors, sent=len(uploads))
    return infos


def _store(client: Client, uploads: Sequence[Upload], infos: list[ImageInfo]) -> list[Stored]:
    existing = {
        image.sha256: image
        for image in Image.objects.filter(
            client=client, in_library=True, sha256__in=[i.sha256 for i in infos]
        )
    }
    new: dict[str, Image] = {}
    saved_files: list[str] = []
    committed: list[bool] = []
    try:
        for upload, info in zip(uploads, infos, strict=True):
            if info.sha256 in existing or info.sha256 in new:
                continue
            image = _unsaved_image(client, upload, info)
            image.file = storage.save_file(
                f"{image.storage_dir}/original.{info.extension}", upload.fp
            )
            saved_files.append(image.file)
            new[info.sha256] = image
        with transaction.atomic():
            _check_quota(client, list(new.values()))
            # Registered first, so it runs before any other after-commit work that might raise.
            transaction.on_commit(lambda: committed.append(True))
            for image in new.values():
                image.save()
                pipeline_enqueue(image=image)
    except BaseException:
        # Once committed, rows point at the files: deleting them then would lose the upload.
        if not committed:
            storage.delete_quietly(saved_files)
        raise
    results = []
    for info in infos:
        if info.sha256 in existing:
            results.append(Stored(existing[info.sha256], duplicate=True))
        else:
            results.append(Stored(new[info.sha256], duplicate=False))
    return results


def _unsaved_image(client: Client, upload: Upload, info: ImageInfo) -> Image:
    return Image(
        client=client,
        original_filename=upload.name[:255],
        content_type=info.content_type,
        format=info.format,
        width=info.width,
        height=info.height,
        size_bytes=info.size_bytes,
        sha256=info.sha256,
    )


def _check_quota(client: Client, images: list[Image]) -> None:
    if not images or (client.image_quota is None and client.storage_quota_bytes is None):
        return  # no totals to read, and a tenant's concurrent uploads need not wait on each other
    # The lock on the tenant's row makes concurrent uploads of one tenant check quotas in turn.
    Client.objects.select_for_update().filter(pk=client.pk).first()
    usage = client_usage(client=client)
    if client.image_quota is not None and usage["images"] + len(images) > client.image_quota:
        raise QuotaExceeded(
            "image_quota_exceeded",
            f"The tenant stores {usage['images']} of {client.image_quota} images allowed.",
        )
    added = sum(image.size_bytes for image in images)
    if (
        client.storage_quota_bytes is not None
        and usage["bytes"] + added > client.storage_quota_bytes
    ):
        raise QuotaExceeded(
            "storage_quota_exceeded",
            f"The tenant stores {usage['bytes']} of {client.storage_quota_bytes} bytes allowed; "
            f"this upload needs {added} more.",
        )


def client_usage(*, client: Client) -> dict[str, int | None]:
    library = Image.objects.filter(client=client, in_library=True)
    totals = library.aggregate(bytes=Sum("size_bytes"))
    return {
        "images": library.count(),
        "bytes": totals["bytes"] or 0,
        "image_quota": client.image_quota,
        "storage_quota_bytes": client.storage_quota_bytes,
    }


def image_reprocess(
    *, image: Image, steps: Iterable[str] | None = None, bulk: bool = False
) -> list[str]:
    names = list(steps) if steps else step_names()
    unknown = sorted(set(names) - set(step_names()))
    if unknown:
        raise ValueError(f"Unknown steps: {', '.join(unknown)}; known: {', '.join(step_names())}.")
    with transaction.atomic():
        pipeline_enqueue(image=image, steps=names, bulk=bulk)
    return names


def tag_name(name: str) -> str:
    """A tag's stored form: trimmed, lower-case, at most 100 characters."""
    return name.strip().lower()[:100]


def image_add_tags(*, image: Image, names: Iterable[str], source: str) -> list[str]:
    """Attach tags (lower-cased, deduplicated) to an image; returns the names attached."""
    clean = sorted({tag_name(name) for name in names if name and name.strip()})
    for name in clean:
        tag, _ = Tag.objects.get_or_create(client_id=image.client_id, name=name)
        ImageTag.objects.get_or_create(image=image, tag=tag, defaults={"source": source})
    return clean


def image_delete(*, image: Image) -> None:
    """Delete the rows, then the files (a failed delete leaves no row pointing at nothing)."""
    files = storage.files_under(image.storage_dir)
    with transaction.atomic():
        image.delete()
    storage.delete_quietly(files)
