"""The plate search: a second look inside each vehicle finds plates the full frame misses."""

import os
import subprocess
import sys
from pathlib import Path

import PIL.Image
import PIL.ImageOps
import pytest
from django.conf import settings

from images.detection.engine import Found
from images.detection.services import detect, detector_model_get
from images.models import Client
from images.plates import finding
from images.plates.finding import (
    crop_box,
    find_plates,
    find_vehicles,
    merge_plates,
    plates_in_crop,
    quarters,
    shifted,
)
from tests.engine.test_models import iou
from tests.helpers import shared_data

# The full frame at 640 gives the marked plate 0.006; the crop of the car, 0.5.
FULL_FRAME_MISS = ("us", "us2.jpg")
# Four cars: the crop cap has something to cap.
MANY_VEHICLES = ("us", "us2.jpg")
# Found by the full frame.
PLAIN = ("eu", "eu1.jpg")
# A trailer's small plate: neither the full frame nor the trailer's crop finds it; a quarter of
# the trailer, zoomed in, does (0.88).
ZOOM_ONLY = ("us", "a03ced3f-5a97-4e75-8106-fabfd2b8b76e.jpg")


def photo(region: str, name: str) -> tuple[PIL.Image.Image, tuple[float, float, float, float]]:
    path = shared_data("plates", region, name)
    x, y, w, h = map(float, path.with_suffix(".txt").read_text().split()[1:5])
    with PIL.Image.open(path) as opened:
        return PIL.ImageOps.exif_transpose(opened).convert("RGB"), (x, y, x + w, y + h)


def plate(box: tuple[float, float, float, float], confidence: float) -> Found:
    return Found(
        0, "plate", confidence, box, ((box[0], box[1]), (box[2], box[1]), (box[2], box[3]))
    )


@pytest.fixture
def owner(db: None) -> Client:
    return Client.objects.create(name="Owner", slug="owner")


def found_on(findings_plates: list[Found], truth: tuple[float, ...]) -> bool:
    return any(iou(item.box, truth) >= 0.3 for item in findings_plates)


def test_a_vehicle_crop_finds_the_plate_the_full_frame_misses(owner, settings):
    picture, truth = photo(*FULL_FRAME_MISS)
    settings.ANONYMIZE_VEHICLE_CROPS = 0
    alone = find_plates(picture, client=owner)
    assert not found_on(alone.plates, truth)
    assert (alone.vehicles, alone.crops) == ([], 0)
    settings.ANONYMIZE_VEHICLE_CROPS = 8
    both = find_plates(picture, client=owner)
    assert found_on(both.plates, truth)
    assert {vehicle.class_name for vehicle in both.vehicles} <= {
        "car",
        "truck",
        "bus",
        "motorcycle",
    }
    assert set(both.seconds) == {"full", "vehicles", "crops", "zoom"}


def test_the_crop_cap_holds(owner, settings):
    picture, _ = photo(*MANY_VEHICLES)
    settings.ANONYMIZE_VEHICLE_CROPS = 1
    capped = find_plates(picture, client=owner)
    assert len(capped.vehicles) >= 3
    assert capped.crops == 1
    settings.ANONYMIZE_VEHICLE_CROPS = 64
    assert find_plates(picture, client=owner).crops == len(capped.vehicles)


def test_a_plate_found_by_both_passes_is_kept_once_with_its_best_score(owner, settings):
    picture, truth = photo(*PLAIN)
    settings.ANONYMIZE_VEHICLE_CROPS = 0
    [full] = [
        item for item in find_plates(picture, client=owner).plates if iou(item.box, truth) >= 0.3
    ]
    model = detector_model_get(name=settings.ANONYMIZE_MODEL, client=owner)
    in_crops = [
        item.confidence
        for vehicle in find_vehicles(picture, client=owner)
        for item in plates_in_crop(picture, vehicle.box, model=model)
        if iou(item.box, truth) >= 0.3
    ]
    assert in_crops
    settings.ANONYMIZE_VEHICLE_CROPS = 8
    findings = find_plates(picture, client=owner)
    [kept] = [item for item in findings.plates if iou(item.box, truth) >= 0.3]
    assert kept.confidence == max(full.confidence, *in_crops)


def test_zooming_into_the_vehicles_when_no_plate_is_sure_finds_a_small_one(owner, settings):
    picture, truth = photo(*ZOOM_ONLY)
    settings.ANONYMIZE_ZOOM_WINDOWS = 0
    assert not found_on(find_plates(picture, client=owner).plates, truth)
    settings.ANONYMIZE_ZOOM_WINDOWS = 4
    findings = find_plates(picture, client=owner)
    assert found_on(findings.plates, truth)
    assert "zoom" in findings.seconds


def test_the_zoom_cap_holds_and_a_sure_plate_stops_the_zoom(owner, settings, monkeypatch):
    picture, _ = photo(*ZOOM_ONLY)
    regions: list[tuple[int, ...]] = []
    real = finding.plates_in_region

    def counted(picture: PIL.Image.Image, region: tuple[int, int, int, int], **kw: object) -> list:
        regions.append(region)
        return real(picture, region, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(finding, "plates_in_region", counted)
    settings.ANONYMIZE_VEHICLE_CROPS, settings.ANONYMIZE_ZOOM_WINDOWS = 8, 3
    findings = find_plates(picture, client=owner)
    assert 4 * len(findings.vehicles) > 3  # windows enough to cap
    assert len(regions) == findings.crops + 3
    regions.clear()
    sure, _ = photo(*PLAIN)
    findings = find_plates(sure, client=owner)
    assert len(regions) == findings.crops


def test_boxes_found_in_a_crop_land_where_the_plate_is(owner):
    """A real plate with some of its car, pasted into a large grey canvas: the full frame
    (reduced about 6 times) misses it, its crop finds it, mapped back by the crop's offset."""
    picture, (x1, y1, x2, y2) = photo(*PLAIN)
    cut = picture.crop((int(x1) - 100, int(y1) - 60, int(x2) + 100, int(y2) + 60))
    canvas = PIL.Image.new("RGB", (4000, 3000), (118, 120, 116))
    left, top = 2711, 1533
    canvas.paste(cut, (left, top))
    expected = (left + 100, top + 60, left + 100 + x2 - x1, top + 60 + y2 - y1)
    model = detector_model_get(name=settings.ANONYMIZE_MODEL, client=owner)
    assert not found_on(detect(model, canvas, confidence=settings.ANONYMIZE_CONFIDENCE), expected)
    around = (float(left), float(top), float(left + cut.width), float(top + cut.height))
    [found] = [
        item for item in plates_in_crop(canvas, around, model=model) if item.confidence > 0.3
    ]
    assert iou(found.box, expected) >= 0.7
    assert found.polygon
    assert all(
        found.box[0] - 1 <= x <= found.box[2] + 1 and found.box[1] - 1 <= y <= found.box[3] + 1
        for x, y in found.polygon
    )


def test_a_crop_grows_by_its_margin_and_stays_inside_the_picture():
    assert crop_box((100.0, 50.0, 300.0, 150.0), 0.1, (1000, 800)) == (80, 40, 320, 160)
    assert crop_box((-5.0, 700.0, 990.5, 799.0), 0.1, (1000, 800)) == (0, 690, 1000, 800)


def test_quarters_overlap_and_stay_inside_the_picture():
    assert quarters((100.0, 100.0, 300.0, 200.0), (1000, 800)) == [
        (100, 100, 210, 155),
        (190, 100, 300, 155),
        (100, 145, 210, 200),
        (190, 145, 300, 200),
    ]
    assert all(q[2] <= 250 for q in quarters((0.0, 0.0, 400.0, 10.0), (250, 10)))


def test_shifted_moves_the_box_and_the_outline():
    moved = shifted(plate((10.0, 20.0, 50.0, 40.0), 0.8), 100, 7)
    assert moved.box == (110.0, 27.0, 150.0, 47.0)
    assert moved.polygon == ((110.0, 27.0), (150.0, 27.0), (150.0, 47.0))
    assert shifted(Found(0, "plate", 0.5, (0.0, 0.0, 1.0, 1.0)), 3, 4).polygon is None


def test_merging_keeps_the_most_confident_of_overlapping_plates_and_every_separate_one():
    full = plate((100.0, 100.0, 200.0, 150.0), 0.3)
    crop = plate((103.0, 98.0, 204.0, 151.0), 0.7)
    other = plate((400.0, 100.0, 500.0, 150.0), 0.1)
    merged = merge_plates([full, other, crop])
    assert merged == [crop, other]
    assert merge_plates([]) == []


def test_the_engine_runs_other_input_sizes_rounded_to_its_stride(owner):
    picture, truth = photo(*PLAIN)
    model = detector_model_get(name=settings.ANONYMIZE_MODEL, client=owner)
    for size in (300, 320, 1000):
        [best, *_] = detect(model, picture, confidence=0.25, size=size)
        assert iou(best.box, truth) >= 0.7, size


@pytest.mark.parametrize(
    "env", [{"ANONYMIZE_VEHICLE_CROPS": "100000"}, {"ANONYMIZE_VEHICLE_CROPS": "-1"},
            {"ANONYMIZE_CROP_SIZE": "100000"}, {"ANONYMIZE_CROP_SIZE": "0"},
            {"ANONYMIZE_ZOOM_WINDOWS": "65"}, {"ANONYMIZE_ZOOM_SIZE": "4096"}],
)  # fmt: skip
def test_unbounded_crop_settings_are_refused_at_start(env):
    started = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=Path(__file__).resolve().parents[2],
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "imago_site.settings", **env},
        capture_output=True,
        text=True,
    )
    assert started.returncode != 0
    assert "ANONYMIZE_VEHICLE_CROPS and ANONYMIZE_ZOOM_WINDOWS must be 0-64" in started.stderr
