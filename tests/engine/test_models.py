"""The real models on the shared plate photos: recall, COCO cars, and parity with ultralytics."""

import os
from functools import cache
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageOps
import pytest
from django.conf import settings

from images.detection.engine import (
    Found,
    ModelSpec,
    OnnxDetector,
    get_detector,
    read_onnx_metadata,
    ultralytics_model,
)
from images.management.commands.fetch_models import sha256_of
from tests.engine import reference
from tests.engine.reference import Expected, outline
from tests.helpers import shared_data

# ultralytics' findings are recorded for every 11th US photo (tests/engine/reference/).
REFERENCE_REGION, REFERENCE_EVERY = "us", 11


@cache
def spec(name: str) -> ModelSpec:
    path = Path(settings.MODELS_DIR) / settings.DETECTION_MODELS[name]["file"]
    if not path.exists():
        pytest.fail(f"{path} is missing: `make install` runs `python manage.py fetch_models`.")
    meta = read_onnx_metadata(path)
    return ModelSpec(name, path, meta["task"], meta["input_size"], tuple(meta["class_names"]))


def oriented(path: Path) -> PIL.Image.Image:
    with PIL.Image.open(path) as opened:
        return PIL.ImageOps.exif_transpose(opened).convert("RGB")


def photos(region: str, every: int = 1) -> list[tuple[PIL.Image.Image, tuple[float, ...]]]:
    """(oriented photo, marked plate box as x1, y1, x2, y2) for every n-th photo of a region."""
    folder = shared_data("plates", region)
    result = []
    for path in sorted(folder.glob("*.jpg"))[::every]:
        x, y, w, h = map(float, path.with_suffix(".txt").read_text().split()[1:5])
        result.append((oriented(path), (x, y, x + w, y + h)))
    return result


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def test_the_model_registry_reads_names_task_and_size_from_the_files():
    coco, plates = spec("coco"), spec("plates")
    assert (coco.task, len(coco.class_names), coco.input_size) == ("detect", 80, 640)
    assert coco.class_names[2] == "car"
    assert (plates.task, plates.class_names) == ("segment", ("plate",))


@pytest.mark.slow
def test_platedet_finds_the_marked_plate_in_at_least_90_percent_of_us_photos():
    detector = get_detector(spec("plates"))
    data = photos("us")
    hits = sum(
        any(iou(found.box, truth) >= 0.3 for found in detector.predict(picture))
        for picture, truth in data
    )
    assert hits / len(data) >= 0.9, f"recall {hits}/{len(data)}"


def test_plate_masks_become_polygons_inside_their_boxes():
    detector = get_detector(spec("plates"))
    picture, _ = photos("us")[0]
    [plate, *_] = detector.predict(picture)
    assert plate.polygon and len(plate.polygon) >= 4
    x1, y1, x2, y2 = plate.box
    assert all(x1 - 1 <= x <= x2 + 1 and y1 - 1 <= y <= y2 + 1 for x, y in plate.polygon)


@pytest.mark.slow
def test_the_coco_model_finds_a_vehicle_in_most_us_plate_photos():
    detector = get_detector(spec("coco"))
    data = photos("us", every=4)
    vehicles = {"car", "truck", "bus"}
    found = sum(
        any(item.class_name in vehicles for item in detector.predict(picture))
        for picture, _ in data
    )
    assert found / len(data) >= 0.7, f"{found}/{len(data)}"


def assert_matches(found: list[Found], expected: list[Expected]) -> None:
    """Our findings are ultralytics': as many, each where one of theirs is, of its class and
    score, with a mask outline of about the same area and bounds (the outlines are traced
    differently)."""
    assert len(found) == len(expected)
    for item in found:
        same = max(
            (row for row in expected if row.class_id == item.class_id),
            key=lambda row: iou(item.box, row.box),
        )
        assert iou(item.box, same.box) >= 0.9
        assert item.confidence == pytest.approx(same.score, abs=2e-3)
        if same.mask is not None:
            assert item.polygon is not None
            mask = outline(item.polygon)
            assert mask.area == pytest.approx(same.mask.area, rel=0.15)
            assert iou(mask.box, same.mask.box) >= 0.8


@pytest.mark.parametrize("name", ["plates", "coco"])
def test_our_decoder_finds_what_ultralytics_found(name):
    """ultralytics, running the same ONNX files, is the reference for our decoding: what it found
    is recorded in tests/engine/reference/.

    It feeds a static export the square letterbox, so ours runs square too here; the
    rectangular path is compared with this one in test_level_cut.py.
    """
    recorded = reference.load(name)
    model = spec(name).path
    assert (recorded.model, recorded.sha256) == (model.name, sha256_of(model)), (
        "the recording is another model's: `make test-yolo RECORD_REFERENCE=1` records it again"
    )
    detector = OnnxDetector(spec(name), rect=False)
    folder = shared_data("plates", REFERENCE_REGION)
    for photo, expected in recorded.photos.items():
        assert_matches(detector.predict(oriented(folder / photo)), expected)
    assert sum(len(rows) for rows in recorded.photos.values()) >= 10


@pytest.mark.yolo
@pytest.mark.parametrize("name", ["plates", "coco"])
def test_the_recording_is_what_ultralytics_finds(name):
    """Live: ultralytics on the same photos finds what the recording holds, and what we find.

    With RECORD_REFERENCE set, what it finds is recorded instead.
    """
    model = ultralytics_model(spec(name).path, task=spec(name).task)
    detector = OnnxDetector(spec(name), rect=False)
    live = {}
    folder = shared_data("plates", REFERENCE_REGION)
    for path in sorted(folder.glob("*.jpg"))[::REFERENCE_EVERY]:
        picture = oriented(path)
        result = model.predict(
            np.asarray(picture)[:, :, ::-1], conf=reference.CONFIDENCE, verbose=False
        )
        live[path.name] = reference.from_ultralytics(result[0])
        assert_matches(detector.predict(picture), live[path.name])
    fresh = reference.recording(spec(name).path, live)
    if os.environ.get("RECORD_REFERENCE"):
        reference.save(name, fresh)
    recorded = reference.load(name)
    assert (recorded.model, recorded.sha256) == (fresh.model, fresh.sha256)
    assert recorded.photos.keys() == fresh.photos.keys()
    for photo, rows in fresh.photos.items():
        for mine, theirs in zip(recorded.photos[photo], rows, strict=True):
            assert mine.class_id == theirs.class_id
            assert mine.box == pytest.approx(theirs.box, abs=0.5)
            assert mine.score == pytest.approx(theirs.score, abs=1e-3)
            assert (mine.mask is None) == (theirs.mask is None)
            if mine.mask and theirs.mask:
                assert mine.mask.area == pytest.approx(theirs.mask.area, rel=0.01)
