import io
import struct
import zlib

import PIL.Image
import pillow_heif
import pytest

from images.library.pipeline import step_names
from images.models import Image, ImageStep
from tests.helpers import image_bytes, make_tenant, media_files, upload, upload_file

pytestmark = pytest.mark.django_db


def _assert_rejected(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == code
    assert Image.objects.count() == 0
    assert media_files() == []


def test_it_stores_one_image_and_answers_pending(owner):
    response = upload(owner.api, ("cat.jpg", image_bytes()))
    assert response.status_code == 201
    [created] = response.json()["images"]
    assert created["status"] == "pending"
    assert created["duplicate"] is False
    assert (created["width"], created["height"]) == (64, 48)
    image = Image.objects.get(pk=created["id"])
    assert str(image.uuid) == created["uuid"]
    assert image.original_filename == "cat.jpg"
    assert image.file.startswith(f"clients/{owner.client.pk}/")
    steps = set(ImageStep.objects.filter(image=image).values_list("name", flat=True))
    assert steps == set(step_names())
    assert steps >= {"exif", "thumbnails", "detection", "ocr", "vision", "insights"}
    assert len(media_files()) == 1


@pytest.mark.parametrize(
    ("fmt", "save", "content_type"),
    [
        ("JPEG", {}, "image/jpeg"),
        ("PNG", {}, "image/png"),
        ("WEBP", {}, "image/webp"),
        ("GIF", {}, "image/gif"),
        ("TIFF", {}, "image/tiff"),
    ],
)
def test_it_accepts_each_format_by_content(owner, fmt, save, content_type):
    # The name lies on purpose: only the bytes decide.
    response = upload(owner.api, ("picture.txt", image_bytes(fmt, **save)))
    assert response.status_code == 201, response.content
    assert Image.objects.get().content_type == content_type


def test_it_accepts_heic(owner):
    buffer = io.BytesIO()
    heif = pillow_heif.from_pillow(PIL.Image.new("RGB", (64, 48), "blue"))
    heif.save(buffer, quality=60)
    response = upload(owner.api, ("photo.heic", buffer.getvalue()))
    assert response.status_code == 201, response.content
    assert Image.objects.get().format == "HEIF"


def test_it_stores_up_to_fifty_files_at_once(owner):
    files = [(f"{n}.png", image_bytes("PNG", color=(n, n, n))) for n in range(50)]
    response = upload(owner.api, *files, field="files")
    assert response.status_code == 201
    assert len(response.json()["images"]) == 50
    assert Image.objects.count() == 50


def test_it_refuses_fifty_one_files(owner):
    files = [(f"{n}.png", image_bytes("PNG", color=(n, n, n))) for n in range(51)]
    _assert_rejected(upload(owner.api, *files, field="files"), 400, "too_many_files")


def test_it_asks_for_a_file(owner):
    _assert_rejected(owner.api.post("/api/v1/images/", {}, format="multipart"), 400, "no_file")


def test_it_rejects_an_empty_file(owner):
    _assert_rejected(upload(owner.api, ("empty.jpg", b"")), 400, "empty_file")


def test_it_rejects_a_file_that_is_not_an_image(owner):
    _assert_rejected(upload(owner.api, ("cat.jpg", b"%PDF-1.4 not an image")), 415, "not_an_image")


def test_it_rejects_a_truncated_jpeg(owner):
    data = image_bytes(size=(400, 300))
    _assert_rejected(upload(owner.api, ("cut.jpg", data[: len(data) // 2])), 400, "corrupt_image")


def test_it_rejects_a_truncated_png(owner):
    data = image_bytes("PNG", size=(400, 300))
    _assert_rejected(upload(owner.api, ("cut.png", data[: len(data) - 40])), 400, "corrupt_image")


def test_it_rejects_corrupt_bytes_behind_a_valid_header(owner):
    data = bytearray(image_bytes(size=(400, 300)))
    data[400:2000] = b"\xff\x00" * 800
    _assert_rejected(upload(owner.api, ("bad.jpg", bytes(data))), 400, "corrupt_image")


def test_it_rejects_an_unsupported_format(owner):
    _assert_rejected(upload(owner.api, ("pic.bmp", image_bytes("BMP"))), 415, "unsupported_format")


def test_it_rejects_a_file_over_the_size_limit(owner, settings):
    settings.MAX_UPLOAD_BYTES = 1000
    data = image_bytes("PNG", size=(200, 200), color=(1, 2, 3))
    big = image_bytes("BMP", size=(200, 200))  # BMP is large and uncompressed
    assert len(data) < 1000 < len(big)
    _assert_rejected(upload(owner.api, ("big.bmp", big)), 413, "file_too_large")


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims huge dimensions: a decompression bomb's signature."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def test_it_rejects_a_decompression_bomb(owner):
    _assert_rejected(
        upload(owner.api, ("bomb.png", _png_header_only(50_000, 50_000))), 413, "too_many_pixels"
    )


def test_it_rejects_too_many_pixels_by_setting(owner, settings):
    settings.MAX_IMAGE_PIXELS = 100 * 100
    _assert_rejected(
        upload(owner.api, ("big.png", image_bytes("PNG", size=(101, 100)))), 413, "too_many_pixels"
    )


def test_one_bad_file_rejects_the_batch_and_names_it(owner):
    files = [("good.png", image_bytes("PNG")), ("bad.jpg", b"nope")]
    response = upload(owner.api, *files, field="files")
    _assert_rejected(response, 415, "not_an_image")
    assert response.json()["errors"] == [
        {"file": "bad.jpg", "code": "not_an_image", "detail": "The file is not an image."}
    ]


def test_the_same_bytes_again_return_the_existing_image(owner):
    first = upload(owner.api, ("a.jpg", image_bytes())).json()["images"][0]
    again = upload(owner.api, ("b.jpg", image_bytes())).json()["images"][0]
    assert again["id"] == first["id"]
    assert again["duplicate"] is True
    assert Image.objects.count() == 1
    assert len(media_files()) == 1


def test_duplicates_within_one_batch_are_stored_once(owner):
    data = image_bytes()
    response = upload(owner.api, ("a.jpg", data), ("b.jpg", data), field="files")
    first, second = response.json()["images"]
    assert first["id"] == second["id"]
    assert Image.objects.count() == 1


def test_the_same_bytes_from_another_tenant_are_a_new_image(owner, other):
    upload(owner.api, ("a.jpg", image_bytes()))
    response = upload(other.api, ("a.jpg", image_bytes()))
    assert response.json()["images"][0]["duplicate"] is False
    assert Image.objects.count() == 2


def test_it_enforces_the_image_quota(db):
    tenant = make_tenant("Small", image_quota=1)
    assert upload(tenant.api, ("a.png", image_bytes("PNG", color=(1, 1, 1)))).status_code == 201
    response = upload(tenant.api, ("b.png", image_bytes("PNG", color=(2, 2, 2))))
    assert response.status_code == 403
    assert response.json()["code"] == "image_quota_exceeded"
    assert Image.objects.count() == 1
    assert len(media_files()) == 1


def test_it_enforces_the_storage_quota(db):
    tenant = make_tenant("Tiny", storage_quota_bytes=100)
    response = upload(tenant.api, ("a.png", image_bytes("PNG", size=(300, 300))))
    assert response.status_code == 403
    assert response.json()["code"] == "storage_quota_exceeded"
    assert media_files() == []


def test_the_list_reports_usage(owner):
    upload(owner.api, ("a.png", image_bytes("PNG")))
    usage = owner.api.get("/api/v1/images/").json()["usage"]
    assert usage["images"] == 1
    assert usage["bytes"] == Image.objects.get().size_bytes
    assert usage["image_quota"] is None


def test_staff_upload_for_a_chosen_client(operator, owner):
    response = upload(operator, ("a.png", image_bytes("PNG")), field="file")
    assert response.json()["code"] == "client_required"
    response = operator.post(
        f"/api/v1/images/?client={owner.client.slug}",
        {"file": upload_file("a.png", image_bytes("PNG"))},
        format="multipart",
    )
    assert response.status_code == 201
    assert Image.objects.get().client == owner.client
