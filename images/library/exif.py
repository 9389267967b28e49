"""Read EXIF metadata from an opened Pillow image into a typed, JSON-safe summary.

Camera metadata is hostile input: truncated IFDs, rationals over zero, binary blobs in text
tags and dates like "0000:00:00 00:00:00" are all common. Everything here degrades to None (or
skips the broken part) instead of raising, so one odd upload never fails a whole import.
"""

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from numbers import Rational
from typing import Any, TypeAlias

from PIL import ExifTags, Image, TiffImagePlugin

logger = logging.getLogger(__name__)

JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"

# Keeps one tag from bloating the stored metadata (a MakerNote alone can be tens of KB).
MAX_VALUE_CHARS = 2048

# Group name -> IFD, in display order. The 0th IFD ("Image") is the Exif mapping itself.
_SUB_IFDS: tuple[tuple[str, ExifTags.IFD], ...] = (
    ("Exif", ExifTags.IFD.Exif),
    ("GPS", ExifTags.IFD.GPSInfo),
    ("Interop", ExifTags.IFD.Interop),
    ("Thumbnail", ExifTags.IFD.IFD1),
)

# Pointers and strip/tile offsets only describe the file layout (sub-IFDs are read as their own
# groups); MakerNote and Padding are opaque vendor/filler blobs that would only bloat `tags`.
_SKIPPED_TAGS = frozenset(
    {
        ExifTags.IFD.Exif,
        ExifTags.IFD.GPSInfo,
        ExifTags.IFD.Interop,
        ExifTags.Base.MakerNote,
        ExifTags.Base.JpegIFOffset,
        ExifTags.Base.JpegIFByteCount,
        ExifTags.Base.StripOffsets,
        ExifTags.Base.StripByteCounts,
        ExifTags.Base.TileOffsets,
        ExifTags.Base.TileByteCounts,
        0xEA1C,  # Microsoft "Padding": kilobytes of zeros, unnamed in ExifTags
    }
)

# Windows "XP" tags are stored as BYTE arrays but always hold UTF-16LE text.
_UTF16LE_TAGS = frozenset(
    {
        ExifTags.Base.XPTitle,
        ExifTags.Base.XPComment,
        ExifTags.Base.XPAuthor,
        ExifTags.Base.XPKeywords,
        ExifTags.Base.XPSubject,
    }
)

# Each capture date paired with the offset tag that qualifies it, most meaningful first.
_DATE_SOURCES: tuple[tuple[int, int], ...] = (
    (ExifTags.Base.DateTimeOriginal, ExifTags.Base.OffsetTimeOriginal),
    (ExifTags.Base.DateTimeDigitized, ExifTags.Base.OffsetTimeDigitized),
    (ExifTags.Base.DateTime, ExifTags.Base.OffsetTime),
)

_DATETIME_RE = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET_RE = re.compile(r"([+-])(\d{2}):(\d{2})")


@dataclass(frozen=True)
class ExifData:
    make: str | None
    model: str | None
    lens: str | None
    iso: int | None
    aperture: float | None
    shutter: str | None
    exposure_seconds: float | None
    focal_length: float | None
    taken_at: datetime | None
    orientation: int | None
    latitude: float | None
    longitude: float | None
    altitude: float | None
    tags: dict[str, dict[str, JSONValue]]

    @property
    def has_gps(self) -> bool:
        return self.latitude is not None and self.longitude is not None

    @property
    def maps_url(self) -> str | None:
        return maps_url(self.latitude, self.longitude)


def maps_url(latitude: float | None, longitude: float | None) -> str | None:
    """An OpenStreetMap link centred on the point, or None without both coordinates."""
    if latitude is None or longitude is None:
        return None
    lat, lon = f"{latitude:.6f}", f"{longitude:.6f}"
    return f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=16/{lat}/{lon}"


def read_exif(image: Image.Image) -> ExifData:
    """Summarise the EXIF of an opened image without decoding its pixels; never raises."""
    exif = _load_exif(image)
    ifds = _read_ifds(exif)
    # 0th and Exif IFDs share one tag namespace, and some cameras (e.g. Pentax) put Exif tags
    # in the 0th IFD, so semantic fields look them up in both.
    main = {**ifds["Image"], **ifds["Exif"]}
    gps = ifds["GPS"]
    exposure = _positive_float(main.get(ExifTags.Base.ExposureTime))
    return ExifData(
        make=_text(main.get(ExifTags.Base.Make)),
        model=_text(main.get(ExifTags.Base.Model)),
        lens=_lens(main),
        iso=_iso(main.get(ExifTags.Base.ISOSpeedRatings)),
        aperture=_positive_float(main.get(ExifTags.Base.FNumber)),
        shutter=_shutter(exposure),
        exposure_seconds=exposure,
        focal_length=_positive_float(main.get(ExifTags.Base.FocalLength)),
        taken_at=_taken_at(main),
        orientation=_orientation(main.get(ExifTags.Base.Orientation)),
        latitude=_coordinate(gps, ExifTags.GPS.GPSLatitude, ExifTags.GPS.GPSLatitudeRef, "NS", 90),
        longitude=_coordinate(
            gps, ExifTags.GPS.GPSLongitude, ExifTags.GPS.GPSLongitudeRef, "EW", 180
        ),
        altitude=_altitude(gps),
        tags=_named_tags(ifds, big_endian=exif.endian == ">"),
    )


def json_safe(value: Any) -> JSONValue:
    """Convert a metadata value to what `json.dumps(..., allow_nan=False)` accepts, size-capped.

    Non-finite numbers become None, text loses NUL padding, bytes become text when printable
    and hex otherwise, and no single value grows past about MAX_VALUE_CHARS characters.
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float | Rational):
        return _finite_float(value)
    if isinstance(value, str):
        return _safe_text(value)
    if isinstance(value, bytes | bytearray):
        return _safe_bytes(bytes(value))
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return _safe_sequence(value)
    return _safe_text(str(value))


# --- Loading -------------------------------------------------------------------------------


def _load_exif(image: Image.Image) -> Image.Exif:
    """Parse the raw EXIF block ourselves rather than calling image.getexif().

    PngImageFile.getexif() decodes the whole image looking for a trailing eXIf chunk, and
    getexif() in general folds XMP orientation in, so an XMP-only file would look like EXIF.
    TIFF is the exception: its EXIF is the file's own IFD, which getexif() reads lazily.
    """
    exif = Image.Exif()
    try:
        raw = image.info.get("exif")
        if isinstance(raw, bytes):
            exif.load(raw)
        elif isinstance(image, TiffImagePlugin.TiffImageFile):
            exif = image.getexif()
    except Exception:  # Pillow raises many types (SyntaxError, struct.error...) on bad headers
        logger.debug("Ignoring unreadable EXIF block", exc_info=True)
        return Image.Exif()
    return exif


def _read_ifds(exif: Image.Exif) -> dict[str, dict[int, Any]]:
    ifds = {"Image": _base_ifd(exif)}
    for name, ifd in _SUB_IFDS:
        ifds[name] = _sub_ifd(exif, ifd)
    return ifds


def _base_ifd(exif: Image.Exif) -> dict[int, Any]:
    # Pillow decodes 0th-IFD values lazily on access, so one corrupt entry is skipped alone.
    values: dict[int, Any] = {}
    for tag in list(exif):
        try:
            values[tag] = exif[tag]
        except Exception:
            logger.debug("Skipping unreadable EXIF tag %s", tag, exc_info=True)
    return values


def _sub_ifd(exif: Image.Exif, ifd: ExifTags.IFD) -> dict[int, Any]:
    # Sub-IFDs are decoded in one go, so a corrupt one is dropped as a whole.
    try:
        return dict(exif.get_ifd(ifd))
    except Exception:
        logger.debug("Skipping unreadable EXIF %s IFD", ifd.name, exc_info=True)
        return {}


# --- Raw tags ------------------------------------------------------------------------------


def _named_tags(
    ifds: Mapping[str, Mapping[int, Any]], big_endian: bool
) -> dict[str, dict[str, JSONValue]]:
    named: dict[str, dict[str, JSONValue]] = {}
    for group, values in ifds.items():
        names = ExifTags.GPSTAGS if group == "GPS" else ExifTags.TAGS
        entries = {
            names.get(tag, str(tag)): _tag_value(tag, value, big_endian)
            for tag, value in values.items()
            if tag not in _SKIPPED_TAGS
        }
        if entries:
            named[group] = entries
    return named


def _tag_value(tag: int, value: Any, big_endian: bool) -> JSONValue:
    if isinstance(value, bytes):
        if tag == ExifTags.Base.UserComment:
            return _user_comment(value, big_endian)
        if tag in _UTF16LE_TAGS:
            return _safe_text(value.decode("utf-16-le", "replace"))
    return json_safe(value)


def _user_comment(raw: bytes, big_endian: bool) -> JSONValue:
    # UserComment starts with an 8-byte character code; UNICODE follows the file's byte order.
    code, body = raw[:8], raw[8:]
    if code == b"UNICODE\x00":
        return _safe_text(body.decode("utf-16-be" if big_endian else "utf-16-le", "replace"))
    if code in (b"ASCII\x00\x00\x00", b"\x00" * 8):
        # Cameras reserve the field with NULs or spaces; an empty comment is not binary data.
        text = body.replace(b"\x00", b" ").strip()
        return _safe_bytes(text) if text else ""
    return _safe_bytes(raw)


def _safe_text(text: str) -> str:
    # NULs pad fixed-size fields and separate multi-strings; PostgreSQL JSON rejects them anyway.
    cleaned = text.replace("\x00", " ").strip()
    return _cap(cleaned)


def _safe_bytes(raw: bytes) -> str:
    try:
        text = raw.rstrip(b"\x00").decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and all(char.isprintable() or char in "\t\n\r" for char in text):
        return _safe_text(text)
    limit = MAX_VALUE_CHARS // 2
    return raw[:limit].hex() + ("…" if len(raw) > limit else "")


def _safe_sequence(values: Sequence[Any]) -> list[JSONValue]:
    # Long arrays are cut once their serialised size would exceed the per-value budget.
    items: list[JSONValue] = []
    budget = MAX_VALUE_CHARS - len("[]")
    for value in values:
        item = json_safe(value)
        budget -= len(json.dumps(item)) + len(", ")
        if budget < 0:
            break
        items.append(item)
    return items


def _cap(text: str) -> str:
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "…"


# --- Semantic fields -----------------------------------------------------------------------


def _finite_float(value: Any) -> float | None:
    # IFDRational over zero converts to NaN; malformed tags may hold tuples or strings.
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) else None


def _positive_float(value: Any) -> float | None:
    number = _finite_float(value)
    return number if number is not None and number > 0 else None


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return _safe_text(value) or None


def _lens(tags: Mapping[int, Any]) -> str | None:
    make = _text(tags.get(ExifTags.Base.LensMake))
    model = _text(tags.get(ExifTags.Base.LensModel))
    if model is None:
        return make
    if make is None or model.lower().startswith(make.lower()):
        return model
    return f"{make} {model}"


def _iso(value: Any) -> int | None:
    # The tag may carry several values (one per sensitivity type); the first is the ISO.
    if isinstance(value, tuple | list) and value:
        value = value[0]
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def _shutter(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    if seconds >= 1:
        return f"{round(seconds, 1):g}"
    denominator = 1 / seconds
    if not math.isfinite(denominator):  # a subnormal float "exposure" is not a shutter speed
        return None
    # Slow speeds like 0.4 s are not 1/N; printing "1/2" for them would be wrong.
    if abs(denominator - round(denominator)) <= 0.05 * denominator:
        return f"1/{round(denominator)}"
    return f"{round(seconds, 2):g}"


def _orientation(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 8:
        return value
    return None


def _taken_at(tags: Mapping[int, Any]) -> datetime | None:
    # OffsetTime belongs to DateTime but is the device clock's offset, so it is the fallback.
    fallback = _parse_offset(tags.get(ExifTags.Base.OffsetTime))
    for date_tag, offset_tag in _DATE_SOURCES:
        naive = _parse_datetime(tags.get(date_tag))
        if naive is not None:
            offset = _parse_offset(tags.get(offset_tag)) or fallback or UTC
            return naive.replace(tzinfo=offset)
    return None


def _parse_datetime(value: Any) -> datetime | None:
    text = _text(value)
    match = _DATETIME_RE.match(text) if text else None
    if match is None:
        return None
    try:
        # Naive on purpose: the caller attaches the offset recorded alongside the date.
        return datetime(*(int(part) for part in match.groups()))
    except ValueError:  # placeholders such as "0000:00:00 00:00:00"
        return None


def _parse_offset(value: Any) -> timezone | None:
    text = _text(value)
    match = _OFFSET_RE.fullmatch(text) if text else None
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    if int(hours) > 23 or int(minutes) > 59:
        return None
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-delta if sign == "-" else delta)


def _coordinate(
    gps: Mapping[int, Any], value_tag: int, ref_tag: int, hemispheres: str, limit: float
) -> float | None:
    """Decimal degrees from a degrees/minutes/seconds triple, negative for S or W."""
    ref = _hemisphere(gps.get(ref_tag))
    degrees = _dms_to_degrees(gps.get(value_tag))
    # Without a valid reference the sign is unknown, and a mirrored location is worse than none.
    if ref is None or ref not in hemispheres or degrees is None or degrees > limit:
        return None
    return -degrees if ref == hemispheres[1] else degrees


def _hemisphere(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    text = _text(value)
    return text[0].upper() if text else None


def _dms_to_degrees(value: Any) -> float | None:
    # Pillow unwraps one-element tuples, and some writers store plain decimal degrees.
    parts = value if isinstance(value, tuple | list) else (value,)
    if not 1 <= len(parts) <= 3:
        return None
    degrees = 0.0
    for index, part in enumerate(parts):
        number = _finite_float(part)
        if number is None or number < 0:
            return None
        degrees += number / 60**index
    return degrees


def _altitude(gps: Mapping[int, Any]) -> float | None:
    altitude = _finite_float(gps.get(ExifTags.GPS.GPSAltitude))
    if altitude is None:
        return None
    ref = gps.get(ExifTags.GPS.GPSAltitudeRef)
    below_sea_level = ref == 1 or (isinstance(ref, bytes) and ref[:1] == b"\x01")
    return -abs(altitude) if below_sea_level else altitude
