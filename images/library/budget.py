"""The per-image memory budget (IMAGE_MEMORY_BUDGET_MB), and decoding that keeps to it.

A small file can decode to hundreds of megabytes (a flat 100-megapixel PNG is 300 KB), so
memory is counted in decoded pixels, never in file bytes. Pillow keeps every decoded pixel in at
most 4 bytes (RGB is padded to 4), and the step that holds the most copies of a full-resolution
picture at once (anonymisation: the decode and its upright copy while turning, the RGB picture,
the array the model reads, the array it covers and the picture it encodes) peaks under
PEAK_BYTES_PER_PIXEL. An upload over budget at that rate is refused (413 over_memory_budget); a
step meets the same check before it decodes anything, for images stored before the budget was
lowered.

Steps that need fewer pixels (thumbnails, OCR, vision AI, anonymisation) decode reduced: JPEG in
the DCT (draft), other formats by an integer box reduction straight after the decode, before any
copy is made at full size.
"""

import PIL.Image
import PIL.ImageOps
from django.conf import settings

from kit.errors import DomainError

MIB = 1024 * 1024
# The peak of the heaviest step, anonymisation at full size (12.4 bytes a pixel measured by
# tests/security/test_memory.py on a flat RGBA PNG turned by its EXIF), with a margin.
PEAK_BYTES_PER_PIXEL = 14
ORIENTATION_TAG = 0x0112
# What ImageOps.exif_transpose does for each EXIF orientation.
UPRIGHT = {
    2: PIL.Image.Transpose.FLIP_LEFT_RIGHT,
    3: PIL.Image.Transpose.ROTATE_180,
    4: PIL.Image.Transpose.FLIP_TOP_BOTTOM,
    5: PIL.Image.Transpose.TRANSPOSE,
    6: PIL.Image.Transpose.ROTATE_270,
    7: PIL.Image.Transpose.TRANSVERSE,
    8: PIL.Image.Transpose.ROTATE_90,
}
# Modes Image.reduce() takes; the others (palettes, bilevel, 16-bit) are converted first.
_REDUCIBLE = frozenset({"L", "LA", "La", "RGB", "RGBA", "RGBa", "CMYK", "YCbCr", "I", "F"})


class OverMemoryBudget(DomainError):
    """Raised wherever a stored image is decoded: 413 over the API, and a step that fails at
    once in a worker (pipeline.NOT_RETRIED)."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__(
            "over_memory_budget",
            f"The image has {width}x{height} pixels, which take about "
            f"{peak_bytes(width, height) // MIB} MiB to process; the limit is "
            f"{settings.IMAGE_MEMORY_BUDGET_MB} MiB (IMAGE_MEMORY_BUDGET_MB).",
            413,
        )

    def __str__(self) -> str:
        # Step and job errors keep it as text: the code first, as StepRefused's.
        return f"{self.code}: {self.detail}"


def peak_bytes(width: int, height: int) -> int:
    return width * height * PEAK_BYTES_PER_PIXEL


def max_pixels() -> int:
    """The most pixels an accepted image may have."""
    return settings.IMAGE_MEMORY_BUDGET_MB * MIB // PEAK_BYTES_PER_PIXEL


def check(size: tuple[int, int]) -> None:
    """Raise OverMemoryBudget when a picture of this size cannot be processed within budget."""
    width, height = size
    if width * height > max_pixels():
        raise OverMemoryBudget(width, height)


def decode(image: PIL.Image.Image, *, mode: str, long_side: int | None = None) -> PIL.Image.Image:
    """An opened image decoded upright in `mode`, within the budget; reduced (never below
    `long_side` on its long side) when a long side is given. Raises OverMemoryBudget."""
    orientation = image.getexif().get(ORIENTATION_TAG)
    if long_side is not None:
        # Only JPEG implements draft (a no-op elsewhere): libjpeg scales by 1/2, 1/4 or 1/8.
        image.draft("L" if mode == "L" else "RGB", fit(image.size, long_side))
    check(image.size)
    factor = max(image.size) // long_side if long_side is not None else 1
    if factor < 2:
        image.load()
        # In place: the unturned pixels are freed as the turned ones are made, and the
        # orientation tag is removed, so that nothing downstream turns the picture again.
        PIL.ImageOps.exif_transpose(image, in_place=True)
        return image if image.mode == mode else image.convert(mode)
    picture = image
    if picture.mode not in _REDUCIBLE:
        picture = picture.convert("RGBA" if picture.has_transparency_data else "RGB")
    # A box reduction straight from the decode: the only full-size pixels held.
    picture = picture.reduce(factor)
    if orientation in UPRIGHT:
        picture = picture.transpose(UPRIGHT[orientation])
    # The reduced copy inherits the file's metadata, orientation included: drop it, so that
    # nothing downstream turns the picture again.
    for key in ("exif", "Raw profile type exif", "XML:com.adobe.xmp"):
        picture.info.pop(key, None)
    return picture if picture.mode == mode else picture.convert(mode)


def fit(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """Scale `size` so its long side is `long_side`, never enlarging."""
    width, height = size
    scale = long_side / max(width, height)
    if scale >= 1:
        return size
    return max(1, round(width * scale)), max(1, round(height * scale))
