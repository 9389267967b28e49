"""Thumbnail rendering: sizes, orientation, colour management, odd modes and formats.

No database: everything is made in memory, apart from the shared EXIF orientation samples.
"""

import io
import random
import struct
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageCms, ImageDraw, ImageStat, JpegImagePlugin

from images.library.thumbnails import Thumbnail, render_thumbnails

ORIENTATION_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "exif" / "orientation"
# Correctly oriented samples differ from sample 1 by about 5 (their own JPEG re-encoding);
# a flip or a 180° turn of the same picture scores 35 to 65. 10 separates the two clearly.
SAME_PICTURE_MAX_DIFFERENCE = 10.0


def _photo(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Gradients, shapes and noise: enough structure for orientation and resampling to show."""
    rng = random.Random(f"{size}")
    image = Image.merge(
        "RGB",
        [
            Image.linear_gradient("L").resize(size),
            Image.radial_gradient("L").resize(size),
            Image.linear_gradient("L").rotate(90).resize(size),
        ],
    )
    draw = ImageDraw.Draw(image)
    width, height = size
    for _ in range(20):
        x, y = rng.randrange(width), rng.randrange(height)
        box = (x, y, x + rng.randrange(1, width // 3 + 2), y + rng.randrange(1, height // 3 + 2))
        draw.ellipse(box, fill=tuple(rng.randrange(256) for _ in range(3)))
    noise = Image.effect_noise(size, 40).convert("RGB")
    return Image.blend(image, noise, 0.1).convert(mode)


def _encode(image: Image.Image, format: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **params)
    return buffer.getvalue()


def _decode(thumbnail: Thumbnail) -> Image.Image:
    image = Image.open(io.BytesIO(thumbnail.data))
    image.load()
    return image


def _mean_difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel, on a 0-255 scale."""
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def _centre(thumbnail: Thumbnail) -> tuple[int, ...]:
    image = _decode(thumbnail)
    return image.getpixel((image.width // 2, image.height // 2))  # type: ignore[return-value]


def _adobe_like_rgb_profile() -> bytes:
    """A minimal ICC v2 matrix/TRC profile with Adobe RGB (1998) primaries and gamma 2.2.

    No profile files ship with Pillow or this system, and ImageCms can only create sRGB, so
    the few tags LittleCMS needs are written by hand.
    """

    def s15fixed16(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ \0\0\0\0" + s15fixed16(x) + s15fixed16(y) + s15fixed16(z)

    gamma = b"curv\0\0\0\0" + struct.pack(">IH", 1, 563) + b"\0\0"  # 563/256 ≈ 2.2
    name = b"Adobe-like RGB\0"
    description = b"desc\0\0\0\0" + struct.pack(">I", len(name)) + name + b"\0" * 78
    tags = [
        (b"desc", description),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.6097, 0.3111, 0.0195)),
        (b"gXYZ", xyz(0.2053, 0.6257, 0.0609)),
        (b"bXYZ", xyz(0.1492, 0.0632, 0.7446)),
        (b"rTRC", gamma),
        (b"gTRC", gamma),
        (b"bTRC", gamma),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table = body = b""
    for signature, data in tags:
        padded = data + b"\0" * (-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(padded))
        body += padded
    header = (
        struct.pack(">I", offset + len(body))
        + b"\0" * 4
        + bytes([2, 0x10, 0, 0])
        + b"mntrRGB XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 28
        + s15fixed16(0.9642)
        + s15fixed16(1.0)
        + s15fixed16(0.8249)
        + b"\0" * 48
    )
    return header + struct.pack(">I", len(tags)) + table + body


def _orientation_samples(kind: str) -> dict[int, Thumbnail]:
    if not ORIENTATION_DIR.is_dir():
        pytest.skip(f"shared EXIF orientation samples not found at {ORIENTATION_DIR}")
    paths = {number: ORIENTATION_DIR / f"{kind}_{number}.jpg" for number in range(1, 9)}
    return {
        number: render_thumbnails(path.read_bytes(), (256,))[0] for number, path in paths.items()
    }


@pytest.mark.parametrize(("kind", "size"), [("landscape", (256, 192)), ("portrait", (192, 256))])
def test_it_applies_exif_orientation(kind: str, size: tuple[int, int]) -> None:
    thumbnails = _orientation_samples(kind)
    upright = _decode(thumbnails[1]).convert("RGB")

    assert upright.size == size
    for number, thumbnail in thumbnails.items():
        oriented = _decode(thumbnail).convert("RGB")
        assert oriented.size == size, f"{kind}_{number}"
        difference = _mean_difference(upright, oriented)
        assert difference < SAME_PICTURE_MAX_DIFFERENCE, f"{kind}_{number}: {difference:.1f}"


@pytest.mark.parametrize(
    "wrong",
    [Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.ROTATE_180],
)
def test_the_orientation_check_catches_a_wrongly_turned_picture(wrong: Image.Transpose) -> None:
    upright = _decode(_orientation_samples("landscape")[1]).convert("RGB")

    assert _mean_difference(upright, upright.transpose(wrong)) > SAME_PICTURE_MAX_DIFFERENCE


@pytest.mark.parametrize("format", ["JPEG", "PNG"])
@pytest.mark.parametrize(
    ("source_size", "expected"),
    [
        ((3000, 2000), {256: (256, 171), 1024: (1024, 683)}),
        ((2000, 3000), {256: (171, 256), 1024: (683, 1024)}),
    ],
)
def test_the_long_side_is_exactly_the_requested_size(
    format: str, source_size: tuple[int, int], expected: dict[int, tuple[int, int]]
) -> None:
    # compress_level=1: the default zlib effort on noisy 6 MP pixels only slows the test down.
    params = {"compress_level": 1} if format == "PNG" else {}
    thumbnails = render_thumbnails(_encode(_photo(source_size), format, **params))

    assert [t.size for t in thumbnails] == [256, 1024]
    for thumbnail in thumbnails:
        assert (thumbnail.width, thumbnail.height) == expected[thumbnail.size]
        assert _decode(thumbnail).size == expected[thumbnail.size]


def test_thumbnails_are_webp() -> None:
    for thumbnail in render_thumbnails(_encode(_photo((800, 600)), "JPEG")):
        assert thumbnail.data[:4] == b"RIFF"
        assert thumbnail.data[8:12] == b"WEBP"
        assert Image.open(io.BytesIO(thumbnail.data)).format == "WEBP"


def test_it_returns_thumbnails_in_the_order_requested() -> None:
    thumbnails = render_thumbnails(_encode(_photo((1200, 900)), "JPEG"), (128, 1024, 512, 128))

    assert [t.size for t in thumbnails] == [128, 1024, 512, 128]
    assert [t.width for t in thumbnails] == [128, 1024, 512, 128]


def test_it_accepts_a_file_object() -> None:
    with io.BytesIO(_encode(_photo((800, 600)), "JPEG")) as stream:
        (thumbnail,) = render_thumbnails(stream, (256,))

    assert (thumbnail.width, thumbnail.height) == (256, 192)


def test_it_never_upscales_a_small_image() -> None:
    thumbnails = render_thumbnails(_encode(_photo((100, 80)), "JPEG"))

    assert [(t.size, t.width, t.height) for t in thumbnails] == [(256, 100, 80), (1024, 100, 80)]
    assert all(_decode(t).size == (100, 80) for t in thumbnails)


def test_it_decodes_a_jpeg_at_the_smallest_dct_scale_that_covers_the_largest_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded_sizes = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(image: JpegImagePlugin.JpegImageFile, mode: str | None, size: tuple[int, int] | None):
        result = real_draft(image, mode, size)
        decoded_sizes.append(image.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    # A square (500, 500) box would only allow 1/4 here; the real 500x375 box allows 1/8.
    (thumbnail,) = render_thumbnails(_encode(_photo((4000, 3000)), "JPEG"), (500,))

    assert decoded_sizes == [(500, 375)]
    assert (thumbnail.width, thumbnail.height) == (500, 375)


def test_it_keeps_the_alpha_of_an_rgba_png() -> None:
    image = _photo((600, 400), "RGBA")
    image.putalpha(Image.linear_gradient("L").resize(image.size))

    for thumbnail in render_thumbnails(_encode(image, "PNG")):
        decoded = _decode(thumbnail)
        assert decoded.mode == "RGBA"
        low, high = decoded.getchannel("A").getextrema()
        assert low < 10
        assert high > 245


def test_it_renders_a_cmyk_jpeg() -> None:
    red = Image.new("CMYK", (1500, 1000), (0, 255, 255, 0))

    for thumbnail in render_thumbnails(_encode(red, "JPEG")):
        r, g, b = _centre(thumbnail)
        assert r > 220
        assert g < 40
        assert b < 40


def test_it_renders_a_palette_gif_with_transparency() -> None:
    image = Image.new("P", (600, 400), 1)
    image.putpalette([0, 0, 0, 255, 0, 0])
    ImageDraw.Draw(image).rectangle((0, 0, 100, 100), fill=0)

    (thumbnail,) = render_thumbnails(_encode(image, "GIF", transparency=0), (256,))

    decoded = _decode(thumbnail)
    assert decoded.mode == "RGBA"
    assert decoded.getpixel((5, 5))[3] == 0  # type: ignore[index]
    r, g, b, a = decoded.getpixel((200, 150))  # type: ignore[misc]
    assert (r, a) == (255, 255)
    assert g + b < 10


def test_it_turns_a_colour_key_into_alpha() -> None:
    image = Image.new("RGB", (600, 400), (0, 0, 255))
    image.paste((255, 255, 255), (0, 0, 300, 400))

    (thumbnail,) = render_thumbnails(_encode(image, "PNG", transparency=(255, 255, 255)), (256,))

    decoded = _decode(thumbnail)
    assert decoded.mode == "RGBA"
    assert decoded.getpixel((10, 85))[3] == 0  # type: ignore[index]
    assert decoded.getpixel((245, 85))[3] == 255  # type: ignore[index]


@pytest.mark.parametrize("format", ["GIF", "TIFF"])
def test_it_uses_the_first_frame_of_a_multi_frame_image(format: str) -> None:
    red, blue = Image.new("RGB", (600, 400), (255, 0, 0)), Image.new("RGB", (600, 400), (0, 0, 255))

    (thumbnail,) = render_thumbnails(
        _encode(red, format, save_all=True, append_images=[blue]), (256,)
    )

    red, _, blue = _centre(thumbnail)[:3]
    assert red > 220
    assert blue < 40


def test_it_renders_a_16_bit_greyscale_png_without_clipping() -> None:
    ramp = b"".join(struct.pack("<H", value * 257) for value in range(256))
    image = Image.frombytes("I;16", (256, 1), ramp).resize((1024, 200))
    source = _encode(image, "PNG")
    assert Image.open(io.BytesIO(source)).mode == "I;16"

    (thumbnail,) = render_thumbnails(source, (256,))

    decoded = _decode(thumbnail).convert("L")
    assert decoded.size == (256, 50)
    # A clipping conversion turns everything above 255 (all but the first step) white.
    assert 110 < ImageStat.Stat(decoded).mean[0] < 145
    assert decoded.getpixel((2, 25)) < 20  # type: ignore[operator]


def _grey_ramp(mode: str) -> Image.Image:
    """A left-to-right ramp from black to white in `mode`, using that mode's usual value range."""
    ramp = Image.linear_gradient("L").rotate(90).resize((600, 400))
    if mode == "I":
        return ramp.convert("I").point(lambda value: value * 257)  # 0..65535
    if mode == "F":
        return ramp.convert("F").point(lambda value: value / 255)  # 0..1
    if mode == "LA":
        return Image.merge("LA", (ramp, ramp.transpose(Image.Transpose.FLIP_TOP_BOTTOM)))
    return ramp.convert(mode)


@pytest.mark.parametrize(("mode", "expected"), [("I", "RGB"), ("F", "RGB"), ("L", "RGB")])
def test_it_maps_the_value_range_of_greyscale_modes(mode: str, expected: str) -> None:
    (thumbnail,) = render_thumbnails(_encode(_grey_ramp(mode), "TIFF"), (256,))

    decoded = _decode(thumbnail)
    assert decoded.mode == expected
    grey = decoded.convert("L")
    assert grey.getpixel((2, 85)) < 20  # type: ignore[operator]
    assert grey.getpixel((253, 85)) > 235  # type: ignore[operator]
    assert 110 < ImageStat.Stat(grey).mean[0] < 145


@pytest.mark.parametrize(("mode", "expected"), [("1", "RGB"), ("LA", "RGBA")])
def test_it_renders_bilevel_and_grey_alpha_images(mode: str, expected: str) -> None:
    (thumbnail,) = render_thumbnails(_encode(_grey_ramp(mode), "PNG"), (256,))

    assert _decode(thumbnail).mode == expected


def test_it_converts_an_embedded_wide_gamut_profile_to_srgb() -> None:
    adobe_rgb = _adobe_like_rgb_profile()
    colour = (60, 160, 70)
    image = Image.new("RGB", (1200, 800), colour)
    expected = ImageCms.profileToProfile(
        image.resize((1, 1)),
        ImageCms.ImageCmsProfile(io.BytesIO(adobe_rgb)),
        ImageCms.createProfile("sRGB"),
    ).getpixel((0, 0))  # type: ignore[union-attr]
    assert expected[0] < 20  # the same numbers mean a much purer green in Adobe RGB

    for thumbnail in render_thumbnails(_encode(image, "JPEG", icc_profile=adobe_rgb, quality=95)):
        centre = _centre(thumbnail)
        assert all(abs(a - b) <= 6 for a, b in zip(centre, expected, strict=True)), centre
        assert "icc_profile" not in _decode(thumbnail).info


def test_it_keeps_colours_with_an_embedded_srgb_profile() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    colour = (60, 160, 70)
    image = Image.new("RGB", (1200, 800), colour)

    for thumbnail in render_thumbnails(_encode(image, "JPEG", icc_profile=srgb, quality=95)):
        assert all(abs(a - b) <= 6 for a, b in zip(_centre(thumbnail), colour, strict=True))


@pytest.mark.parametrize(
    "profile",
    [
        pytest.param(b"not an icc profile" * 20, id="garbage"),
        pytest.param(_adobe_like_rgb_profile()[:128] + b"\0" * 300, id="header-only"),
        pytest.param(
            ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes(),
            id="wrong-colour-space",
        ),
    ],
)
def test_it_ignores_a_broken_icc_profile(profile: bytes) -> None:
    colour = (60, 160, 70)
    image = Image.new("RGB", (1200, 800), colour)

    thumbnails = render_thumbnails(_encode(image, "PNG", icc_profile=profile))

    assert [(t.width, t.height) for t in thumbnails] == [(256, 171), (1024, 683)]
    for thumbnail in thumbnails:
        assert all(abs(a - b) <= 6 for a, b in zip(_centre(thumbnail), colour, strict=True))


def test_it_writes_no_metadata_into_thumbnails() -> None:
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"  # Make
    exif[0x0112] = 6  # Orientation
    source = _encode(_photo((800, 600)), "JPEG", exif=exif, icc_profile=_adobe_like_rgb_profile())

    thumbnails = render_thumbnails(source)

    assert [(t.width, t.height) for t in thumbnails] == [(192, 256), (600, 800)]
    for thumbnail in thumbnails:
        assert b"EXIF" not in thumbnail.data
        assert b"ICCP" not in thumbnail.data
        assert b"Camera maker" not in thumbnail.data


@pytest.mark.parametrize("sizes", [(), (256, 0), (-1,)])
def test_it_rejects_sizes_that_are_not_positive(sizes: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="positive"):
        render_thumbnails(_encode(_photo((100, 80)), "JPEG"), sizes)


def test_it_renders_heic_when_the_caller_registered_the_opener() -> None:
    pillow_heif = pytest.importorskip("pillow_heif", reason="pillow-heif is not installed")
    if not pillow_heif.libheif_info().get("encoders"):
        pytest.skip("this libheif build has no HEIC encoder to make a sample with")
    pillow_heif.register_heif_opener()
    source = _encode(_photo((1280, 960)), "HEIF", quality=50)

    thumbnails = render_thumbnails(source)

    assert [(t.size, t.width, t.height) for t in thumbnails] == [(256, 256, 192), (1024, 1024, 768)]
    assert all(t.data[8:12] == b"WEBP" for t in thumbnails)
