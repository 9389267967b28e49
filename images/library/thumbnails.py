"""WebP thumbnails from one decode of an uploaded image.

The source is opened and decoded once, at the smallest resolution that still covers the largest
requested size; every smaller size is then resampled from the next larger thumbnail (a cascade)
rather than from the full image, which keeps the cost close to that of the largest thumbnail alone.
"""

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, ImageCms, ImageOps

from images.library import budget

# Fastest WebP effort whose files stay within a few per cent of the default (method 4) at the
# same quality; methods 3 and above cost roughly twice as much time for about 2% smaller files.
WEBP_METHOD = 2
# Pillow's thumbnail() defaults. Resizing is the costliest step; Lanczos would be about 0.5 dB
# PSNR sharper on real photos but takes 1.6x as long, while bicubic stays within 0.3 dB of
# Pillow's own thumbnail(). The gap box-reduces first only where a step shrinks 4x or more.
RESAMPLE = Image.Resampling.BICUBIC
REDUCING_GAP = 2.0

_SRGB = ImageCms.createProfile("sRGB")
# Modes an embedded ICC profile can describe, kept until the colour conversion. Anything else
# (palettes, bilevel, high bit depth) becomes RGB(A) before resizing, which cannot filter
# palettes and cannot box-reduce 16-bit greyscale.
_PROFILE_MODES = frozenset({"L", "LA", "RGB", "RGBA", "CMYK"})
# Modes box-reduced straight from the decode; the others are converted at full size (below).
_REDUCIBLE = _PROFILE_MODES - {"CMYK"}


@dataclass(frozen=True)
class Thumbnail:
    size: int  # the requested long-side size (e.g. 256)
    width: int
    height: int
    data: bytes  # WebP bytes


def render_thumbnails(
    source: BinaryIO | bytes, sizes: Sequence[int] = (256, 1024), *, quality: int = 80
) -> list[Thumbnail]:
    """Render one WebP thumbnail per long-side size, in the order of `sizes`.

    Images smaller than a size are kept at their own size, never enlarged. Raises what
    `PIL.Image.open` raises for data that is not a readable image.
    """
    if not sizes or min(sizes) < 1:
        raise ValueError(f"sizes must be positive integers, got {sizes!r}")
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    by_size: dict[int, Thumbnail] = {}
    # Everything happens inside the block: closing the file also frees the decoded pixels.
    with Image.open(stream) as image:
        current = _decode_for(image, max(sizes))
        for size in sorted(set(sizes), reverse=True):
            # Each size comes from the previous, larger one: far fewer pixels to filter.
            current = _resize(current, size)
            by_size[size] = _encode(current, size, quality)
    return [by_size[size] for size in sizes]


def _decode_for(image: Image.Image, long_side: int) -> Image.Image:
    """Decode, orient and colour-manage `image`, returning RGB(A) at most `long_side` long."""
    icc_profile = image.info.get("icc_profile")
    # Only JPEG implements draft (elsewhere a no-op): libjpeg then scales by 1/2, 1/4 or 1/8 in
    # the DCT, choosing the smallest scale still at least this box in *both* dimensions, so the
    # box must have the thumbnail's real proportions, not (long_side, long_side).
    image.draft("RGB", budget.fit(image.size, long_side))
    budget.check(image.size)
    # Rotations swap width and height, but the long side stays the long side, so the box above,
    # taken before orientation, holds afterwards too. Other formats are box-reduced straight
    # from the decode (before any full-size copy), at most to twice the long side.
    decoded = _upright_reduced(image, long_side)
    # A palette or colour-key transparency ("transparency" in info) must become an alpha channel
    # before resampling blends the keyed pixels with their neighbours.
    if decoded.mode not in _PROFILE_MODES or "transparency" in decoded.info:
        decoded = _to_rgb(decoded)
    # Colour-convert after shrinking: both steps work on gamma-encoded values, so the order
    # barely shows, and the transform then runs on far fewer pixels.
    return _to_rgb(_to_srgb(_resize(decoded, long_side), icc_profile))


def _upright_reduced(image: Image.Image, long_side: int) -> Image.Image:
    factor = max(image.size) // (2 * long_side)
    # Keyed transparency must become alpha before pixels are blended (see _decode_for).
    if factor < 2 or image.mode not in _REDUCIBLE or "transparency" in image.info:
        ImageOps.exif_transpose(image, in_place=True)
        return image
    orientation = image.getexif().get(budget.ORIENTATION_TAG)
    reduced = image.reduce(factor)
    if orientation not in budget.UPRIGHT:
        return reduced
    return reduced.transpose(budget.UPRIGHT[orientation])


def _resize(image: Image.Image, long_side: int) -> Image.Image:
    target = budget.fit(image.size, long_side)
    if target == image.size:
        return image
    return image.resize(target, RESAMPLE, reducing_gap=REDUCING_GAP)


def _to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Convert from the embedded profile to sRGB; on any profile problem leave pixels as they are.

    A broken or mismatched profile is common in the wild and must not cost the upload its
    thumbnails, so the plain mode conversion that follows is the fallback.
    """
    if not icc_profile:
        return image
    output_mode = "RGBA" if image.has_transparency_data else "RGB"
    try:
        source_profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        transform = ImageCms.buildTransform(source_profile, _SRGB, image.mode, output_mode)
    except (OSError, ImageCms.PyCMSError):
        return image
    return transform.apply(image)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Normalise any mode to RGB, or RGBA when the image has transparency."""
    if image.mode == "F" or image.mode.startswith("I"):
        image = _to_8bit_grey(image)
    # has_transparency_data also covers palette and colour-key transparency, which convert()
    # turns into alpha.
    target = "RGBA" if image.has_transparency_data else "RGB"
    return image if image.mode == target else image.convert(target)


def _to_8bit_grey(image: Image.Image) -> Image.Image:
    """Map high bit depth greyscale to L; a plain convert() would clip everything above 255."""
    if image.mode.startswith("I;16"):
        # Pillow opens 16-bit greyscale (PNG, TIFF) as I;16*, with 65535 as white.
        return image.convert("I").point(lambda value: value / 256).convert("L")
    # 32-bit integer and float samples have no conventional range (floats are often 0..1),
    # so the range actually used is stretched onto 0..255.
    low, high = image.getextrema()
    scale = 255 / (high - low) if high > low else 0.0
    return image.point(lambda value: value * scale - low * scale).convert("L")


def _encode(image: Image.Image, size: int, quality: int) -> Thumbnail:
    buffer = io.BytesIO()
    # Only pixels are written: no EXIF (orientation is already applied, and GPS must not leak)
    # and no ICC profile (the pixels are sRGB now, which is what WebP assumes without one).
    image.save(buffer, "WEBP", quality=quality, method=WEBP_METHOD)
    return Thumbnail(size=size, width=image.width, height=image.height, data=buffer.getvalue())
