"""The real models on the shared plate photos: recall, COCO cars, and parity with ultralytics."""

from functools import cache
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageOps
import pytest
from django.conf import settings

from images.detection.engine import (
    ModelSpec,
    OnnxDetector,
    get_detector,
    read_onnx_metadata,
    ultralytics_model,
)
from tests.helpers import shared_data


@cache
def spec(name: str) -> ModelSpec:
    path = Path(settings.MODELS_DIR) / settings.DETECTION_MODELS[name]["file"]
    if not path.exists():
        pytest.fail(f"{path} is missing: `make install` runs `python manage.py fetch_models`.")
    meta = read_onnx_metadata(path)
    return ModelSpec(name, path, meta["task"], meta["input_size"], tuple(meta["class_names"]))


def photos(region: str, every: int = 1) -> list[tuple[PIL.Image.Image, tuple[float, ...]]]:
    """(oriented photo, marked plate box as x1, y1, x2, y2) for every n-th photo of a region."""
    folder = shared_data("plates", region)
    result = []
    for path in sorted(folder.glob("*.jpg"))[::every]:
        x, y, w, h = map(float, path.with_suffix(".txt").read_text().split()[1:5])
        with PIL.Image.open(path) as opened:
            picture = PIL.ImageOps.exif_transpose(opened).convert("RGB")
        result.append((picture, (x, y, x + w, y + h)))
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


def test_the_coco_model_finds_a_vehicle_in_most_us_plate_photos():
    detector = get_detector(spec("coco"))
    data = photos("us", every=4)
    vehicles = {"car", "truck", "bus"}
    found = sum(
        any(item.class_name in vehicles for item in detector.predict(picture))
        for picture, _ in data
    )
    assert found / len(data) >= 0.7, f"{found}/{len(data)}"


@pytest.mark.parametrize("name", ["plates", "coco"])
def test_our_decoder_matches_ultralytics(name):
    """ultralytics runs the same ONNX file and is the reference for our decoding.

    It feeds a static export the square letterbox, so ours runs square too here; the
    rectangular path is compared with this one in test_level_cut.py.
    """
    pytest.importorskip("ultralytics", reason="the [yolo] extra is not installed")
    ours = OnnxDetector(spec(name), rect=False)
    reference = ultralytics_model(spec(name).path, task=spec(name).task)
    compared = 0
    for picture, _ in photos("us", every=11):
        mine = ours.predict(picture)
        result = reference.predict(np.asarray(picture)[:, :, ::-1], conf=0.25, verbose=False)[0]
        theirs = result.boxes.xyxy.cpu().numpy().tolist()
        assert len(mine) == len(theirs)
        for found in mine:
            assert max(iou(found.box, tuple(box)) for box in theirs) >= 0.9
            compared += 1
    assert compared >= 10
