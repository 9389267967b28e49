"""Decide what an uploaded file is from its bytes alone, never from its name or declared type."""

import hashlib
import warnings
from dataclasses import dataclass
from typing import BinaryIO

import PIL.Image
from django.conf import settings

from images.library import budget
from kit.errors import DomainError

# Pillow format name → (content type, file extension).
ACCEPTED_FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
    "GIF": ("image/gif", "gif"),
    "TIFF": ("image/tiff", "tiff"),
    "HEIF": ("image/heif", "heic"),
}
HASH_CHUNK = 1024 * 1024


class UploadRejected(DomainError):
    STATUSES = {
        "empty_file": 400,
        "corrupt_image": 400,
        "file_too_large": 413,
        "too_many_pixels": 413,
        "over_memory_budget": 413,
        "not_an_image": 415,
        "unsupported_format": 415,
    }

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail, self.STATUSES[code])


@dataclass(frozen=True)
class ImageInfo:
    format: str
    content_type: str
    extension: str
    width: int
    height: int
    size_bytes: int
    sha256: str


def inspect_upload(fp: BinaryIO, size: int) -> ImageInfo:
    """Check one upload completely (including a decode) and describe it; raise UploadRejected."""
    if size == 0:
        raise UploadRejected("empty_file", "The file is empty.")
    if size > settings.MAX_UPLOAD_BYTES:
        raise UploadRejected(
            "file_too_large",
            f"The file has {size} bytes; the limit is {settings.MAX_UPLOAD_BYTES}.",
        )
    sha256 = _sha256(fp)
    fp.seek(0)
    fmt, width, height = _decode(fp)
    fp.seek(0)
    content_type, extension = ACCEPTED_FORMATS[fmt]
    return ImageInfo(fmt, content_type, extension, width, height, size, sha256)


def _sha256(fp: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := fp.read(HASH_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _decode(fp: BinaryIO) -> tuple[str, int, int]:
    limit = settings.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PIL.Image.DecompressionBombWarning)
            image = PIL.Image.open(fp)
            fmt = image.format or ""
            if fmt not in ACCEPTED_FORMATS:
                raise UploadRejected(
                    "unsupported_format",
                    f"{fmt} images are not accepted; send JPEG, PNG, WebP, GIF, TIFF or HEIC.",
                )
            width, height = image.size
            if width * height > limit:
                raise _too_many_pixels(width * height, limit)
            budget.check((width, height))
            _load_fully(image)
    except UploadRejected:
        raise
    except budget.OverMemoryBudget as exc:
        raise UploadRejected(exc.code, exc.detail) from exc
    except (PIL.Image.DecompressionBombError, PIL.Image.DecompressionBombWarning) as exc:
        raise UploadRejected("too_many_pixels", str(exc)) from exc
    except PIL.UnidentifiedImageError as exc:
        raise UploadRejected("not_an_image", "The file is not an image.") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UploadRejected("corrupt_image", f"The image is truncated or corrupt: {exc}") from exc
    return fmt, width, height


def _too_many_pixels(pixels: int, limit: int) -> UploadRejected:
    return UploadRejected(
        "too_many_pixels", f"The image has {pixels} pixels; the limit is {limit}."
    )


def _load_fully(image: PIL.Image.Image) -> None:
    """Decode every byte so that truncation shows now, not in a worker later."""
    if image.format == "JPEG":
        # DCT scaling at 1/8 still walks the whole entropy-coded stream, at a fraction of the cost.
        image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
    image.load()
