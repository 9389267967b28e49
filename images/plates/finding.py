"""Finding plates in a picture: a full-frame pass, a second look inside each vehicle (zoomed in
when no plate is sure), the detections merged, and what a person should review."""

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
import PIL.Image
from django.conf import settings

from images.detection.engine import Found
from images.detection.services import detect, detector_model_get
from images.models import Client, DetectorModel

# Two detections of one plate (full frame and a vehicle's crop) overlap far more than this;
# two plates, side by side or one behind the other, far less.
PLATE_MERGE_IOU = 0.4
# The vehicles get a closer look unless a plate this sure was found: the crops' low threshold finds
# lights and stickers on most vehicles, which must not stand for a plate.
ZOOM_UNLESS = 0.25


@dataclass(frozen=True)
class PlateFindings:
    """What the plate search found in one picture, in its pixels (after any scaling down).

    `vehicles` are the COCO model's cars, motorcycles, buses and trucks, most confident first;
    the first `crops` of them had a second look. `scaled` says the picture was reduced before the
    search (small plates had fewer pixels); `seconds` is each pass's time (full, vehicles, crops).
    """

    plates: list[Found]
    vehicles: list[Found]
    scaled: bool
    crops: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


VEHICLE_CLASSES = ("car", "motorcycle", "bus", "truck")


def find_plates(picture: PIL.Image.Image, *, client: Client, scaled: bool = False) -> PlateFindings:
    """Plates in an RGB picture: a full-frame pass, then a second look at full resolution inside
    each vehicle (at most ANONYMIZE_VEHICLE_CROPS of them, the most confident), merged (a plate
    both passes found is kept once, with its best score)."""
    seconds: dict[str, float] = {}
    model = detector_model_get(name=settings.ANONYMIZE_MODEL, client=client)
    with _timed(seconds, "full"):
        plates = detect(model, picture, confidence=settings.ANONYMIZE_CONFIDENCE)
    if settings.ANONYMIZE_VEHICLE_CROPS <= 0:
        return PlateFindings(plates, [], scaled, 0, seconds)
    with _timed(seconds, "vehicles"):
        vehicles = find_vehicles(picture, client=client)
    looked = vehicles[: settings.ANONYMIZE_VEHICLE_CROPS]
    with _timed(seconds, "crops"):
        for vehicle in looked:
            plates += plates_in_crop(picture, vehicle.box, model=model)
    if settings.ANONYMIZE_ZOOM_WINDOWS > 0:
        with _timed(seconds, "zoom"):
            plates += plates_zoomed(picture, looked, plates, model=model)
    return PlateFindings(merge_plates(plates), vehicles, scaled, len(looked), seconds)


@contextmanager
def _timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started


def find_vehicles(picture: PIL.Image.Image, *, client: Client) -> list[Found]:
    """The vehicles the COCO model sees, most confident first."""
    model = detector_model_get(name=settings.ANONYMIZE_VEHICLE_MODEL, client=client)
    names = model.class_names
    wanted = [names.index(name) for name in VEHICLE_CLASSES if name in names]
    found = detect(model, picture, confidence=settings.ANONYMIZE_VEHICLE_CONFIDENCE, classes=wanted)
    return sorted(found, key=lambda item: -item.confidence)


def crop_box(
    box: tuple[float, float, float, float], margin: float, size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """A box grown by `margin` of its size on each side, in whole pixels inside the picture."""
    x1, y1, x2, y2 = box
    grow_x, grow_y = (x2 - x1) * margin, (y2 - y1) * margin
    return (
        max(0, int(x1 - grow_x)),
        max(0, int(y1 - grow_y)),
        min(size[0], int(np.ceil(x2 + grow_x))),
        min(size[1], int(np.ceil(y2 + grow_y))),
    )


def plates_in_crop(
    picture: PIL.Image.Image, box: tuple[float, float, float, float], *, model: DetectorModel
) -> list[Found]:
    """The plate model on one region (with a margin) at full resolution, mapped back."""
    region = crop_box(box, settings.ANONYMIZE_CROP_MARGIN, picture.size)
    return plates_in_region(picture, region, model=model, size=settings.ANONYMIZE_CROP_SIZE)


def plates_zoomed(
    picture: PIL.Image.Image,
    vehicles: Sequence[Found],
    plates: Sequence[Found],
    *,
    model: DetectorModel,
) -> list[Found]:
    """A closer look when no plate found so far is sure: each quarter of the vehicles
    (overlapping) at ANONYMIZE_ZOOM_SIZE, at most ANONYMIZE_ZOOM_WINDOWS windows a photo. The
    plate model finds plates that fill a good part of its input; a small plate on a large vehicle
    is found once zoomed in (bench/README.md). Each window costs about a full-frame pass, so a
    photo with a sure plate is not zoomed into."""
    if any(plate.confidence >= ZOOM_UNLESS for plate in plates):
        return []
    windows = [window for vehicle in vehicles for window in quarters(vehicle.box, picture.size)]
    found: list[Found] = []
    for window in windows[: settings.ANONYMIZE_ZOOM_WINDOWS]:
        found += plates_in_region(picture, window, model=model, size=settings.ANONYMIZE_ZOOM_SIZE)
    return found


def quarters(
    box: tuple[float, float, float, float], size: tuple[int, int]
) -> list[tuple[int, int, int, int]]:
    """A box's four quarters, each 55% of its width and height (a plate on a middle line is
    whole in one of them), in whole pixels inside the picture."""
    x1, y1, x2, y2 = box
    width, height = (x2 - x1) * 0.55, (y2 - y1) * 0.55
    corners = [(x1, y1), (x2 - width, y1), (x1, y2 - height), (x2 - width, y2 - height)]
    return [crop_box((x, y, x + width, y + height), 0.0, size) for x, y in corners]


def plates_in_region(
    picture: PIL.Image.Image, region: tuple[int, int, int, int], *, model: DetectorModel, size: int
) -> list[Found]:
    """The plate model on a region of the picture, at input side `size`, mapped back."""
    x1, y1, x2, y2 = region
    if x2 - x1 < 2 or y2 - y1 < 2:
        return []
    # A copy of the region only. Lower threshold: a vehicle is where a plate is expected.
    found = detect(
        model,
        picture.crop(region),
        confidence=settings.ANONYMIZE_CROP_CONFIDENCE,
        size=size,
    )
    return [shifted(item, x1, y1) for item in found]


def shifted(found: Found, dx: float, dy: float) -> Found:
    """A detection made on a crop, in the pixels of the picture the crop was cut from."""
    x1, y1, x2, y2 = found.box
    points = found.polygon or ()
    polygon = tuple((round(float(x) + dx, 1), round(float(y) + dy, 1)) for x, y in points)
    box = (round(x1 + dx, 1), round(y1 + dy, 1), round(x2 + dx, 1), round(y2 + dy, 1))
    return replace(found, box=box, polygon=polygon or None)


def merge_plates(found: Sequence[Found], iou: float = PLATE_MERGE_IOU) -> list[Found]:
    """One detection per plate: the most confident of those overlapping by `iou` or more."""
    if not found:
        return []
    boxes = [[x1, y1, x2 - x1, y2 - y1] for x1, y1, x2, y2 in (item.box for item in found)]
    scores = [item.confidence for item in found]
    keep = np.asarray(cv2.dnn.NMSBoxes(boxes, scores, 0.0, iou), dtype=int).reshape(-1)
    return sorted((found[i] for i in keep), key=lambda item: -item.confidence)


# Never silent: what a person should look at, with a stable code each.
VEHICLE_WITHOUT_PLATE = "vehicle_without_plate"
LOW_CONFIDENCE = "low_confidence"
SCALED_DOWN = "scaled_down"
REVIEW_REASONS = (VEHICLE_WITHOUT_PLATE, LOW_CONFIDENCE, SCALED_DOWN)


def _carries(vehicle: Found, plate: Found) -> bool:
    x1, y1, x2, y2 = vehicle.box
    cx, cy = (plate.box[0] + plate.box[2]) / 2, (plate.box[1] + plate.box[3]) / 2
    return x1 <= cx <= x2 and y1 <= cy <= y2


def review_reasons(findings: PlateFindings) -> list[str]:
    reasons = []
    if any(not any(_carries(v, p) for p in findings.plates) for v in findings.vehicles):
        reasons.append(VEHICLE_WITHOUT_PLATE)
    if any(p.confidence < settings.ANONYMIZE_REVIEW_CONFIDENCE for p in findings.plates):
        reasons.append(LOW_CONFIDENCE)
    if findings.scaled:
        reasons.append(SCALED_DOWN)
    return reasons
