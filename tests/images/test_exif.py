import dataclasses
import io
import json
import math
import struct
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational

from images.library.exif import MAX_VALUE_CHARS, ExifData, json_safe, read_exif

EXIF_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "exif"
MISSING_DATA = f"shared EXIF samples not found at {EXIF_DATA} (see shared/data/README.md)"

# TIFF field types used by the hand-made EXIF blocks below, with their unit size in bytes.
ASCII, SHORT, LONG, RATIONAL, UNDEFINED, FLOAT, DOUBLE = 2, 3, 4, 5, 7, 11, 12
UNIT_SIZES = {ASCII: 1, SHORT: 2, LONG: 4, RATIONAL: 8, UNDEFINED: 1, FLOAT: 4, DOUBLE: 8}


def samples(folder: str) -> list[Any]:
    """One pytest param per shared sample file, or a single skipped param when they are absent."""
    files = sorted((EXIF_DATA / folder).glob("*.jp*g"))
    if not files:
        return [pytest.param(None, id="missing", marks=pytest.mark.skip(reason=MISSING_DATA))]
    return [pytest.param(path, id=path.name) for path in files]


def shared_sample(relative: str) -> Path:
    path = EXIF_DATA / relative
    if not path.is_file():
        pytest.skip(MISSING_DATA)
    return path


def read(source: Path | bytes) -> ExifData:
    """read_exif on a freshly opened image whose pixels must stay undecoded."""

    def fail_on_decode() -> None:
        pytest.fail("read_exif decoded the pixels")

    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
        image.load = fail_on_decode  # type: ignore[method-assign]
        return read_exif(image)


def jpeg(exif: Image.Exif | bytes) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def raw_exif(*entries: tuple[int, int, bytes]) -> bytes:
    """An EXIF block with one little-endian IFD of (tag, type, packed value) entries.

    Pillow's writer refuses or normalises broken values, so the odd cases are packed by hand.
    """
    data_start = 8 + 2 + 12 * len(entries) + 4
    table, data = b"", b""
    for tag, kind, payload in entries:
        count = len(payload) // UNIT_SIZES[kind]
        if len(payload) <= 4:
            field = payload.ljust(4, b"\x00")
        else:
            field = struct.pack("<I", data_start + len(data))
            data += payload
        table += struct.pack("<HHI", tag, kind, count) + field
    header = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries))
    return b"Exif\x00\x00" + header + table + b"\x00\x00\x00\x00" + data


def summary(data: ExifData) -> dict[str, Any]:
    fields = dataclasses.asdict(data)
    del fields["tags"]
    return fields


def assert_json_safe(data: ExifData) -> None:
    json.dumps(data.tags, allow_nan=False)


# --- Shared real-camera samples ------------------------------------------------------------


def test_it_reads_gps_of_dscn0010() -> None:
    data = read(shared_sample("gps/DSCN0010.jpg"))

    assert data.latitude == pytest.approx(43.467448, abs=1e-5)
    assert data.longitude == pytest.approx(11.885127, abs=1e-5)
    assert data.has_gps
    assert data.taken_at == datetime(2008, 10, 22, 16, 28, 39, tzinfo=UTC)
    assert data.make is not None and "NIKON" in data.make
    assert data.maps_url is not None
    assert "43.467448" in data.maps_url and "11.885127" in data.maps_url


def test_it_reads_the_exposure_of_dscn0010() -> None:
    data = read(shared_sample("gps/DSCN0010.jpg"))

    assert data.model == "COOLPIX P6000"
    assert data.iso == 64
    assert data.aperture == pytest.approx(5.9)
    assert data.shutter == "1/75"
    assert data.exposure_seconds == pytest.approx(1 / 75)
    assert data.focal_length == pytest.approx(24.0)
    assert data.tags["GPS"]["GPSMapDatum"] == "WGS-84"
    assert "MakerNote" not in data.tags["Exif"]


@pytest.mark.parametrize("path", samples("odd"))
def test_it_reads_every_odd_file_without_raising(path: Path) -> None:
    assert_json_safe(read(path))


@pytest.mark.parametrize("path", samples("cameras"))
def test_it_reads_make_and_model_of_every_camera(path: Path) -> None:
    data = read(path)

    assert data.make
    assert data.model
    assert data.taken_at is not None and data.taken_at.tzinfo is not None
    assert_json_safe(data)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_it_reads_orientation_n_of_landscape_n(orientation: int) -> None:
    data = read(shared_sample(f"orientation/landscape_{orientation}.jpg"))

    assert data.orientation == orientation


# --- Small data made at run time -----------------------------------------------------------


def test_it_makes_south_west_and_below_sea_level_negative() -> None:
    exif = Image.Exif()
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "S"
    gps[ExifTags.GPS.GPSLatitude] = (33.0, 51.0, 54.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (70.0, 30.0, 0.0)
    gps[ExifTags.GPS.GPSAltitudeRef] = 1
    gps[ExifTags.GPS.GPSAltitude] = 12.5

    data = read(jpeg(exif))

    assert data.latitude == pytest.approx(-33.865)
    assert data.longitude == pytest.approx(-70.5)
    assert data.altitude == pytest.approx(-12.5)
    assert data.maps_url == (
        "https://www.openstreetmap.org/?mlat=-33.865000&mlon=-70.500000"
        "#map=16/-33.865000/-70.500000"
    )


def test_it_has_no_gps_when_the_gps_ifd_lacks_coordinates() -> None:
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSVersionID] = b"\x02\x02\x00\x00"

    data = read(jpeg(exif))

    assert (data.latitude, data.longitude, data.altitude) == (None, None, None)
    assert not data.has_gps
    assert data.maps_url is None


def test_it_ignores_coordinates_without_a_hemisphere() -> None:
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude] = (10.0, 0.0, 0.0)

    assert read(jpeg(exif)).latitude is None


def test_it_returns_nothing_for_a_png_without_exif() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")

    data = read(buffer.getvalue())

    assert set(summary(data).values()) == {None}
    assert data.tags == {}
    assert not data.has_gps


def test_it_reads_a_png_exif_chunk_without_decoding() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PngCam"
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG", exif=exif)

    assert read(buffer.getvalue()).make == "PngCam"


def test_it_turns_a_rational_over_zero_into_none() -> None:
    over_zero = struct.pack("<II", 28, 0)
    block = raw_exif(
        (ExifTags.Base.FNumber, RATIONAL, over_zero),
        (ExifTags.Base.ExposureTime, RATIONAL, struct.pack("<II", 1, 0)),
        (ExifTags.Base.FocalLength, RATIONAL, struct.pack("<II", 0, 0)),
    )

    data = read(jpeg(block))

    assert (data.aperture, data.shutter, data.exposure_seconds, data.focal_length) == (
        None,
        None,
        None,
        None,
    )
    assert data.tags["Image"]["FNumber"] is None
    assert_json_safe(data)


def test_it_keeps_binary_garbage_json_safe_and_small() -> None:
    garbage = bytes(range(256)) * 20
    block = raw_exif(
        (ExifTags.Base.PrintImageMatching, UNDEFINED, garbage),
        (ExifTags.Base.UserComment, UNDEFINED, b"JUNK\x00\xff\x00\x01" + garbage[:40]),
    )

    data = read(jpeg(block))

    value = data.tags["Image"]["PrintImageMatching"]
    assert isinstance(value, str)
    assert len(value) <= MAX_VALUE_CHARS + 1
    assert value.startswith("000102")
    assert isinstance(data.tags["Image"]["UserComment"], str)
    assert_json_safe(data)


def test_it_strips_nul_padding_and_drops_non_finite_numbers() -> None:
    block = raw_exif(
        (ExifTags.Base.Make, ASCII, b"Canon\x00\x00\x00\x00"),
        (ExifTags.Base.Model, ASCII, b"\x00"),
        (ExifTags.Base.ExposureBiasValue, FLOAT, struct.pack("<f", math.nan)),
        (ExifTags.Base.FocalLength, DOUBLE, struct.pack("<d", math.inf)),
        (ExifTags.Base.XPTitle, UNDEFINED, "Titre\x00".encode("utf-16-le")),
    )

    data = read(jpeg(block))

    assert data.make == "Canon"
    assert data.model is None
    assert data.focal_length is None
    assert data.tags["Image"]["ExposureBiasValue"] is None
    assert data.tags["Image"]["XPTitle"] == "Titre"
    assert_json_safe(data)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_it_skips_broken_sub_ifds_and_keeps_the_rest() -> None:
    block = raw_exif(
        (ExifTags.Base.Make, ASCII, b"Broken\x00"),
        (ExifTags.IFD.Exif, LONG, struct.pack("<I", 0xFFFFFF)),
        (ExifTags.IFD.GPSInfo, LONG, struct.pack("<I", 3)),
    )

    data = read(jpeg(block))

    assert data.make == "Broken"
    assert not data.has_gps
    assert_json_safe(data)


def test_it_returns_nothing_for_an_exif_block_that_is_not_tiff() -> None:
    data = read(jpeg(b"Exif\x00\x00this is not a TIFF header at all"))

    assert set(summary(data).values()) == {None}
    assert data.tags == {}


def test_it_prefers_the_original_date_with_its_offset() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.DateTime] = "2021:01:01 00:00:00"
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.DateTimeOriginal] = "2020:06:15 14:30:00"
    sub[ExifTags.Base.OffsetTimeOriginal] = "+02:00"

    taken_at = read(jpeg(exif)).taken_at

    assert taken_at == datetime(2020, 6, 15, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    assert taken_at is not None and taken_at.utcoffset() == timedelta(hours=2)


def test_it_falls_back_to_datetime_when_the_original_date_is_a_placeholder() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.DateTime] = "2019:03:04 05:06:07"
    exif[ExifTags.Base.OffsetTime] = "-05:30"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "0000:00:00 00:00:00"

    taken_at = read(jpeg(exif)).taken_at

    assert taken_at == datetime(2019, 3, 4, 5, 6, 7, tzinfo=timezone(-timedelta(hours=5.5)))


def test_it_has_no_date_when_every_date_is_a_placeholder() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.DateTime] = "    :  :     :  :  "
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "0000:00:00 00:00:00"

    assert read(jpeg(exif)).taken_at is None


@pytest.mark.parametrize(
    ("exposure", "shutter"),
    [
        (IFDRational(1, 250), "1/250"),
        (IFDRational(10, 600), "1/60"),
        (IFDRational(2, 5), "0.4"),
        (IFDRational(5, 2), "2.5"),
        (IFDRational(30, 1), "30"),
    ],
)
def test_it_writes_shutter_speeds_as_photographers_do(exposure: IFDRational, shutter: str) -> None:
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.ExposureTime] = exposure

    data = read(jpeg(exif))

    assert data.shutter == shutter
    assert data.exposure_seconds == pytest.approx(float(exposure))


def test_it_names_the_lens_with_its_maker_once() -> None:
    exif = Image.Exif()
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.LensMake] = "Canon"
    sub[ExifTags.Base.LensModel] = "EF50mm f/1.8 STM"

    assert read(jpeg(exif)).lens == "Canon EF50mm f/1.8 STM"

    sub[ExifTags.Base.LensModel] = "Canon EF50mm f/1.8 STM"
    assert read(jpeg(exif)).lens == "Canon EF50mm f/1.8 STM"


@pytest.mark.parametrize("value", [0, 9, 65535])
def test_it_ignores_orientations_outside_one_to_eight(value: int) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = value

    assert read(jpeg(exif)).orientation is None


# --- json_safe -----------------------------------------------------------------------------


def test_json_safe_turns_non_finite_and_zero_denominators_into_none() -> None:
    assert json_safe(math.nan) is None
    assert json_safe(-math.inf) is None
    assert json_safe(IFDRational(1, 0)) is None
    assert json_safe((IFDRational(1, 2), IFDRational(3, 0))) == [0.5, None]


def test_json_safe_decodes_printable_bytes_and_hexes_the_rest() -> None:
    assert json_safe(b"0230") == "0230"
    assert json_safe(b"text\x00\x00") == "text"
    assert json_safe(b"\x01\x02\x03\x00") == "01020300"


def test_json_safe_caps_long_values() -> None:
    long_text = json_safe("x" * 100_000)
    long_list = json_safe(list(range(100_000)))

    assert isinstance(long_text, str) and len(long_text) <= MAX_VALUE_CHARS + 1
    assert isinstance(long_list, list) and len(json.dumps(long_list)) <= MAX_VALUE_CHARS
    assert json.dumps(json_safe({"nested": (b"\xff" * 10_000, math.nan)}), allow_nan=False)
