"""Covering plates (and faces): each region grown to a quadrilateral and covered by the tenant's
stub warped onto it (or blurred, pixelated, filled); the result is WebP without any metadata."""

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import PIL.ImageOps
from django.conf import settings
from django.core.files.storage import default_storage

from images.detection.engine import Found
from images.library import budget
from images.models import Client, CoverMode
from images.plates.finding import PlateFindings, find_plates, review_reasons

DEFAULT_STUB = Path(__file__).parent / "assets" / "plate-stub.png"
DECODED_FROM = "imago_decoded_from"  # picture.info key: the file's size before any reduction


def quad_of(found: Found, margin: float) -> np.ndarray:
    """A plate's quadrilateral (4 x 2, clockwise from top-left), grown by `margin` on each side.

    Segmentation outlines and OBB corners give a rotated rectangle (cv2.minAreaRect); a plain box
    model gives its box.
    """
    if found.polygon and len(found.polygon) >= 3:
        (cx, cy), (w, h), angle = cv2.minAreaRect(np.asarray(found.polygon, dtype=np.float32))
    else:
        x1, y1, x2, y2 = found.box
        (cx, cy), (w, h), angle = ((x1 + x2) / 2, (y1 + y2) / 2), (x2 - x1, y2 - y1), 0.0
    grown = ((cx, cy), (w * (1 + 2 * margin), h * (1 + 2 * margin)), angle)
    return order_corners(cv2.boxPoints(grown))


def order_corners(points: np.ndarray) -> np.ndarray:
    """Top-left, top-right, bottom-right, bottom-left: the stub's corners map onto these."""
    points = np.asarray(points, dtype=np.float32)
    by_sum, by_diff = points.sum(axis=1), np.diff(points, axis=1).ravel()
    ordered = np.array(
        [
            points[by_sum.argmin()],
            points[by_diff.argmin()],
            points[by_sum.argmax()],
            points[by_diff.argmax()],
        ]
    )
    # Degenerate (e.g. a 45° square) orderings repeat a corner; fall back to angle order.
    if len({tuple(p) for p in ordered.tolist()}) < 4:
        centre = points.mean(axis=0)
        angles = np.arctan2(points[:, 1] - centre[1], points[:, 0] - centre[0])
        ordered = points[np.argsort(angles)]
    return ordered


@lru_cache(maxsize=1)
def _face_cascade() -> cv2.CascadeClassifier:
    # The cascade ships inside opencv-python-headless (< 5): no download.
    return cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def face_quads(rgb: np.ndarray, margin: float) -> list[np.ndarray]:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    faces = _face_cascade().detectMultiScale(
        grey, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24)
    )
    return [quad_of(Found(0, "face", 1.0, (x, y, x + w, y + h)), margin) for x, y, w, h in faces]


def _roi(quad: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    x, y, w, h = cv2.boundingRect(quad.astype(np.float32))
    x1, y1 = max(0, x), max(0, y)
    x2, y2 = min(shape[1], x + w), min(shape[0], y + h)
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def cover(rgb: np.ndarray, quads: Sequence[np.ndarray], mode: str, stub: np.ndarray) -> None:
    """Cover each quad of an RGB array in place. Work happens in each quad's bounding box only."""
    for quad in quads:
        box = _roi(quad, rgb.shape)
        if box is None:
            continue
        x1, y1, x2, y2 = box
        roi = rgb[y1:y2, x1:x2]
        local = (quad - (x1, y1)).astype(np.float32)
        if mode == CoverMode.STUB:
            _warp_stub(roi, local, stub)
            continue
        mask = np.zeros(roi.shape[:2], dtype=np.uint8)
        cv2.fillConvexPoly(mask, np.round(local).astype(np.int32), 255)
        inside = mask.astype(bool)
        if mode == CoverMode.SOLID:
            roi[inside] = (0, 0, 0)
        elif mode == CoverMode.BLUR:
            kernel = max(3, (min(roi.shape[:2]) // 2) | 1)
            roi[inside] = cv2.GaussianBlur(roi, (kernel, kernel), 0)[inside]
        elif mode == CoverMode.PIXELATE:
            block = max(4, min(roi.shape[:2]) // 6)
            small = cv2.resize(
                roi,
                (max(1, roi.shape[1] // block), max(1, roi.shape[0] // block)),
                interpolation=cv2.INTER_AREA,
            )
            blocks = cv2.resize(small, roi.shape[1::-1], interpolation=cv2.INTER_NEAREST)
            roi[inside] = blocks[inside]


def _warp_stub(roi: np.ndarray, quad: np.ndarray, stub: np.ndarray) -> None:
    """Perspective-warp the RGBA stub onto the quad and blend it by its alpha."""
    height, width = stub.shape[:2]
    source = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(source, quad)
    warped = cv2.warpPerspective(
        stub, matrix, roi.shape[1::-1], flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0)
    )
    alpha = warped[:, :, 3:4].astype(np.float32) / 255.0
    roi[:] = (warped[:, :, :3] * alpha + roi * (1.0 - alpha)).astype(np.uint8)


@lru_cache(maxsize=64)
def _stub_pixels(name: str, mtime: float) -> np.ndarray:
    source = default_storage.open(name, "rb") if name else DEFAULT_STUB.open("rb")
    with source as fp, PIL.Image.open(fp) as opened:
        return np.asarray(opened.convert("RGBA"))


def stub_for(client: Client) -> np.ndarray:
    name = getattr(getattr(client, "anonymize", None), "stub_file", "") or ""
    if name and default_storage.exists(name):
        return _stub_pixels(name, default_storage.get_modified_time(name).timestamp())
    return _stub_pixels("", DEFAULT_STUB.stat().st_mtime)


@dataclass
class Covered:
    data: bytes
    width: int
    height: int
    plates: int
    faces: int
    regions: list[list[list[float]]] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    findings: PlateFindings | None = None


def _fit(picture: PIL.Image.Image) -> tuple[PIL.Image.Image, bool]:
    """RGB within ANONYMIZE_MAX_SIDE, and whether it is smaller than its file."""
    decoded_from = picture.info.get(DECODED_FROM, picture.size)
    if max(picture.size) > settings.ANONYMIZE_MAX_SIDE:
        picture = PIL.ImageOps.contain(
            picture, (settings.ANONYMIZE_MAX_SIDE, settings.ANONYMIZE_MAX_SIDE)
        )
    picture = picture if picture.mode == "RGB" else picture.convert("RGB")
    return picture, max(picture.size) < max(decoded_from)


def anonymize_picture(
    picture: PIL.Image.Image,
    *,
    client: Client,
    mode: str,
    cover_faces: bool = False,
) -> Covered:
    """Find and cover plates (and faces) in an oriented picture; WebP without any metadata."""
    picture, scaled = _fit(picture)
    findings = find_plates(picture, client=client, scaled=scaled)
    # After detection, whose arrays of the picture are freed by then (the image budget counts
    # the copies held at once: images.library.budget).
    rgb = np.array(picture)
    quads = [quad_of(item, settings.ANONYMIZE_MARGIN) for item in findings.plates]
    faces = face_quads(rgb, settings.ANONYMIZE_MARGIN) if cover_faces else []
    covered = _render(rgb, [*quads, *faces], mode=mode, client=client)
    covered.plates, covered.faces = len(quads), len(faces)
    covered.confidences = [round(p.confidence, 3) for p in findings.plates]
    covered.reasons, covered.findings = review_reasons(findings), findings
    return covered


def _render(rgb: np.ndarray, quads: Sequence[np.ndarray], *, mode: str, client: Client) -> Covered:
    cover(rgb, quads, mode, stub_for(client))
    buffer = io.BytesIO()
    # Pillow writes no EXIF unless asked: GPS and camera data stay out of the result.
    PIL.Image.fromarray(rgb).save(
        buffer, "WEBP", quality=settings.ANONYMIZE_QUALITY, method=settings.ANONYMIZE_WEBP_METHOD
    )
    return Covered(
        data=buffer.getvalue(),
        width=rgb.shape[1],
        height=rgb.shape[0],
        plates=0,
        faces=0,
        regions=[np.asarray(q).round(1).tolist() for q in quads],
    )


def rerender_picture(
    picture: PIL.Image.Image, *, client: Client, mode: str, regions: Sequence[Sequence]
) -> Covered:
    """Cover exactly these regions of the original (an operator's correction): no detection."""
    picture, _ = _fit(picture)
    rgb = np.array(picture)
    quads = [np.asarray(region, dtype=np.float32) for region in regions]
    return _render(rgb, quads, mode=mode, client=client)


def open_oriented(fp: object) -> PIL.Image.Image:
    """Upright RGB, reduced on decode towards ANONYMIZE_MAX_SIDE (anonymize_picture fits it)."""
    opened = PIL.Image.open(fp)  # type: ignore[arg-type]
    size = opened.size
    picture = budget.decode(opened, mode="RGB", long_side=settings.ANONYMIZE_MAX_SIDE)
    # The decode may reduce it already: anonymize_picture says whether the picture was scaled.
    picture.info[DECODED_FROM] = size
    return picture
