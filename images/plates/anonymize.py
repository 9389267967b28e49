"""Licence-plate (and face) anonymisation: find regions, cover them, deliver, expire.

Compatible with plate_detect: a task of up to 50 images answers at once with a task id, each plate
is covered by a stub image warped onto it (or blurred, pixelated, filled), the results are WebP
without EXIF, pushed to the tenant's backend by signed webhooks, and deleted after a TTL.
"""

import io
import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

import cv2
import django_rq
import httpx
import numpy as np
import PIL.Image
import PIL.ImageOps
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import default_storage
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import get_valid_filename
from rq import Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job

from images.compat.plate_detect.webhooks import is_operator_target
from images.detection.engine import Found
from images.detection.services import DetectionRefused, detect, detector_model_get
from images.library import budget, storage
from images.library.pipeline import SkipStep, queue_check, queue_name_for, step
from images.library.services import Upload
from images.library.validation import UploadRejected, inspect_upload
from images.models import (
    AnonymizeSettings,
    Client,
    CoverMode,
    DetectorModel,
    Image,
    PlateTask,
    PlateTaskFile,
    WebhookAttempt,
)
from kit import outbound
from kit.workers import StuckSweep, enqueue_after_commit, without_live_job

logger = logging.getLogger(__name__)

DEFAULT_STUB = Path(__file__).parent / "assets" / "plate-stub.png"
DECODED_FROM = "imago_decoded_from"  # picture.info key: the file's size before any reduction
# Two detections of one plate (full frame and a vehicle's crop) overlap far more than this;
# two plates, side by side or one behind the other, far less.
PLATE_MERGE_IOU = 0.4
# The vehicles get a closer look unless a plate this sure was found: the crops' low threshold finds
# lights and stickers on most vehicles, which must not stand for a plate.
ZOOM_UNLESS = 0.25


# Finding regions ------------------------------------------------------------------------------


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


# Covering -------------------------------------------------------------------------------------


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


def settings_for(client: Client) -> AnonymizeSettings:
    found, _ = AnonymizeSettings.objects.get_or_create(client=client)
    return found


# Tasks ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskOptions:
    mode: str
    cover_faces: bool
    upload_url: str
    callback_url: str


def plate_task_create(
    *, client: Client, uploads: Sequence[Upload], options: TaskOptions
) -> PlateTask:
    """Store the valid files, record the invalid ones with their error, and queue the work."""
    # Nothing would queue the task again later: refuse it before storing anything.
    queue_check()
    task = PlateTask(
        client=client,
        mode=options.mode,
        cover_faces=options.cover_faces,
        upload_url=options.upload_url,
        callback_url=options.callback_url,
        total=len(uploads),
        expires_at=timezone.now() + timedelta(hours=settings.TASK_TTL_HOURS),
    )
    files, saved = [], []
    committed: list[bool] = []
    try:
        for position, upload in enumerate(uploads):
            row = PlateTaskFile(position=position, filename=upload.name[:255])
            try:
                info = inspect_upload(upload.fp, upload.size)
            except UploadRejected as exc:
                row.status, row.error_code, row.error = "failed", exc.code, exc.detail
            else:
                name = f"{task.storage_dir}/in_{position}.{info.extension}"
                row.source_file = storage.save_file(name, upload.fp)
                saved.append(row.source_file)
            files.append(row)
        with transaction.atomic():
            transaction.on_commit(lambda: committed.append(True))
            task.processed = sum(row.status == "failed" for row in files)
            task.save()
            for row in files:
                row.task = task
            PlateTaskFile.objects.bulk_create(files)
            _enqueue_task(task)
    except BaseException:
        # Once committed, the task's rows point at the files (the enqueue runs after the commit).
        if not committed:
            storage.delete_quietly(saved)
        raise
    return task


def _enqueue_task(task: PlateTask) -> None:
    enqueue_after_commit(
        queue_name_for(task.client),
        "images.jobs.run_plate_task",
        task.pk,
        job_id=plate_task_job_id(task),
        description=f"plate task {task.uuid}",
    )


def plate_task_job_id(task: PlateTask) -> str:
    return f"plate-task-{task.uuid}"


def plate_tasks_sweep(*, older_than: timedelta) -> StuckSweep:
    """Queue again the tasks no job will run: pending ones whose job never reached Redis, and
    processing ones whose job Redis lost longer ago than any job may run (a rerun covers only the
    files still pending). One whose job RQ gave up on (it failed, or killed its worker on each
    try) ends with the files it had not covered failed, and is delivered."""
    now = timezone.now()
    timed_out = now - older_than - timedelta(seconds=settings.RQ_JOB_TIMEOUT)
    stale = PlateTask.objects.select_related("client").filter(
        status__in=[PlateTask.Status.PENDING, PlateTask.Status.PROCESSING],
        created_at__lt=now - older_than,
        purged_at__isnull=True,
    )
    sweep = StuckSweep([], [])
    for task, job in without_live_job(stale, plate_task_job_id):
        if job is None and (task.status == PlateTask.Status.PENDING or task.created_at < timed_out):
            # Back to pending, so that the job queued now can claim it; compare-and-set, so that
            # of two sweeps at once only one moves it.
            if task.status == PlateTask.Status.PROCESSING and not PlateTask.objects.filter(
                pk=task.pk, status=PlateTask.Status.PROCESSING
            ).update(status=PlateTask.Status.PENDING):
                continue
            _enqueue_task(task)
            sweep.requeued.append(task.uuid)
        elif job is not None:
            task.files.filter(status=PlateTaskFile.Status.PENDING).update(
                status=PlateTaskFile.Status.FAILED,
                error_code="worker_stopped",
                error="The worker covering this task stopped before it reached this file.",
            )
            _task_finish(task)
            sweep.failed.append(task.uuid)
    return sweep


def plate_task_run(*, task_id: int) -> None:
    # Claim the task: a job queued twice (two sweeps at once) must not cover files twice. The
    # sweep sets a task whose job Redis lost back to pending before queueing it again.
    claimed = PlateTask.objects.filter(
        pk=task_id, status=PlateTask.Status.PENDING, purged_at__isnull=True
    ).update(status=PlateTask.Status.PROCESSING)
    task = PlateTask.objects.select_related("client__anonymize").filter(pk=task_id).first()
    if not claimed or task is None:
        logger.info("Plate task %s is gone, purged or taken; nothing to do", task_id)
        return
    for row in task.files.filter(status=PlateTaskFile.Status.PENDING):
        _cover_file(task, row)
        PlateTask.objects.filter(pk=task.pk).update(
            processed=task.files.exclude(status=PlateTaskFile.Status.PENDING).count()
        )
    _task_finish(task)


def _task_finish(task: PlateTask) -> None:
    """Completed when one file at least was covered; then the results go out."""
    done = task.files.filter(status=PlateTaskFile.Status.DONE).exists()
    PlateTask.objects.filter(pk=task.pk).update(
        status=PlateTask.Status.COMPLETED if done else PlateTask.Status.FAILED,
        processed=task.files.exclude(status=PlateTaskFile.Status.PENDING).count(),
        finished_at=timezone.now(),
    )
    if task.needs_delivery:
        delivery_enqueue(task)


def _cover_file(task: PlateTask, row: PlateTaskFile) -> None:
    try:
        with default_storage.open(row.source_file, "rb") as fp:
            picture = open_oriented(fp)
        covered = anonymize_picture(
            picture, client=task.client, mode=task.mode, cover_faces=task.cover_faces
        )
    except budget.OverMemoryBudget as exc:
        # Stored before the budget was lowered: this file fails with the code, the others go on.
        row.status, row.error_code, row.error = "failed", exc.code, exc.detail
        row.save(update_fields=["status", "error_code", "error"])
        return
    except (OSError, DetectionRefused, PIL.UnidentifiedImageError) as exc:
        row.status, row.error_code, row.error = "failed", "processing_failed", str(exc)
        row.save(update_fields=["status", "error_code", "error"])
        return
    # The storage adds a suffix when two inputs share a stem: each name stays unique in its task.
    row.result_file = storage.save_bytes(
        f"{task.storage_dir}/output/{covered_name(row)}", covered.data
    )
    row.status = PlateTaskFile.Status.DONE
    row.plates, row.faces, row.regions = covered.plates, covered.faces, covered.regions
    row.plate_confidences, row.review_reasons = covered.confidences, covered.reasons
    row.needs_review = bool(covered.reasons)
    row.save(
        update_fields=["result_file", "status", "plates", "faces", "regions",
                       "plate_confidences", "review_reasons", "needs_review"]
    )  # fmt: skip


def covered_name(row: PlateTaskFile) -> str:
    """plate_detect's `covered_<stem>.webp`: the stem kept to letters, digits, `-_.` (it ends the
    result's URL path)."""
    try:
        stem = get_valid_filename(Path(row.filename).stem[:80])
    except SuspiciousFileOperation:  # nothing left of it: empty, "." or ".."
        stem = f"image_{row.position}"
    return f"covered_{stem}.webp"


# Delivery -------------------------------------------------------------------------------------


class DeliveryFailed(Exception):
    pass


def delivery_enqueue(task: PlateTask) -> None:
    _delivery_job(
        task,
        "images.jobs.deliver_plate_task",
        task.pk,
        job_id=f"deliver-{task.uuid}",
        description=f"deliver plate task {task.uuid}",
    )


def _delivery_job(
    task: PlateTask, function: str, *args: int, job_id: str, description: str
) -> None:
    """Queue a delivery once: a job already waiting or retrying for it is left alone."""
    queue = django_rq.get_queue(queue_name_for(task.client))
    try:
        job = Job.fetch(job_id, connection=queue.connection)
        if job.get_status(refresh=True) in ("queued", "scheduled", "started", "deferred"):
            return
        job.delete()
    except NoSuchJobError:
        pass
    queue.enqueue(
        function,
        *args,
        job_id=job_id,
        retry=Retry(max=settings.WEBHOOK_RETRY_MAX, interval=settings.WEBHOOK_RETRY_INTERVALS),
        description=description,
    )


def plate_task_deliver(*, task_id: int) -> None:
    task = PlateTask.objects.select_related("client__anonymize").filter(pk=task_id).first()
    if task is None or task.delivered_at or task.purged_at or task.expires_at < timezone.now():
        return
    _deliver(task, None)
    PlateTask.objects.filter(pk=task.pk).update(delivered_at=timezone.now())


def correction_enqueue(row: PlateTaskFile) -> None:
    """Send a corrected result again (queued once committed, retried as deliveries are)."""
    task = row.task
    if not task.needs_delivery:
        return
    _delivery_job(
        task,
        "images.jobs.deliver_plate_correction",
        row.pk,
        row.revision,
        job_id=f"correct-{task.uuid}-{row.position}-{row.revision}",
        description=f"deliver correction {row.revision} of {row.filename} in {task.uuid}",
    )


def corrections_resume(*, now: object) -> int:
    """Queue again the latest corrections of live tasks that a webhook has not taken yet."""
    corrected = PlateTaskFile.objects.select_related("task__client").filter(
        revision__gt=0, task__purged_at__isnull=True, task__expires_at__gt=now
    )
    queued = 0
    for row in corrected:
        wanted = {k for k, url in (("upload", row.task.upload_url),
                                   ("callback", row.task.callback_url)) if url}  # fmt: skip
        taken = row.task.attempts.filter(ok=True, correction=_correction_key(row))
        if wanted - set(taken.values_list("kind", flat=True)):
            correction_enqueue(row)
            queued += 1
    return queued


def plate_correction_deliver(*, file_id: int, revision: int) -> None:
    row = PlateTaskFile.objects.select_related("task__client__anonymize").filter(pk=file_id).first()
    # A later correction replaces this one, and is delivered by its own job.
    if row is None or row.revision != revision:
        return
    if row.task.purged_at or row.task.expires_at < timezone.now():
        return
    _deliver(row.task, row)


def _deliver(task: PlateTask, corrected: PlateTaskFile | None) -> None:
    """POST to each of the task's webhooks not yet answered with success for this delivery."""
    key = _correction_key(corrected)
    secret = settings_for(task.client).webhook_secret
    delivered = set(task.attempts.filter(ok=True, correction=key).values_list("kind", flat=True))
    # A failed task has no image to upload: only its completion notice goes out.
    upload_url = task.upload_url if task.status == PlateTask.Status.COMPLETED else ""
    pending = [
        (kind, url)
        for kind, url in (("upload", upload_url), ("callback", task.callback_url))
        if url and kind not in delivered
    ]
    failures = [kind for kind, url in pending if not _post(task, kind, url, secret, corrected)]
    if failures:
        raise DeliveryFailed(f"{', '.join(failures)} delivery of {task.uuid} {key} failed")


def _correction_key(corrected: PlateTaskFile | None) -> str:
    return f"file {corrected.pk} revision {corrected.revision}" if corrected else ""


def _post(
    task: PlateTask, kind: str, url: str, secret: str, corrected: PlateTaskFile | None
) -> bool:
    """One webhook; a correction sends the corrected file alone, marked `correction`."""
    marks = {"correction": True, "filename": corrected.filename} if corrected else {}
    if kind == "upload":
        uploaded = [corrected] if corrected else task.files.filter(status="done")
        files = [
            ("images", (Path(r.result_file).name, _read(r.result_file), "image/webp"))
            for r in uploaded
        ]
        data = {"task_id": str(task.uuid), **{k: str(v).lower() for k, v in marks.items()}}
        body: dict = {"data": data, "files": files}
    else:
        # The notice lists every file, failed ones too; a correction, the corrected file alone.
        rows = [corrected] if corrected else None
        results = task_results(task, absolute_base=settings.PUBLIC_BASE_URL, rows=rows)
        payload = {
            "task_id": str(task.uuid),
            "status": task.status,
            "needs_review": awaiting_review(task),
            **marks,
            "results": results,
        }
        body = {"content": json.dumps(payload), "headers": {"Content-Type": "application/json"}}
    started = time.monotonic()
    attempt = WebhookAttempt(task=task, kind=kind, url=url, correction=_correction_key(corrected))
    try:
        trusted = is_operator_target(task.client, url)
        answer = outbound.webhook_post(url, secret=secret, trusted=trusted, **body)
        attempt.status_code = answer.status_code
        attempt.ok = answer.is_success
        attempt.error = "" if answer.is_success else answer.text[:500]
    except outbound.OutboundError as exc:
        attempt.error = f"{exc.code}: {exc.detail}"
    except httpx.HTTPError as exc:
        attempt.error = f"{type(exc).__name__}: {exc}"
    attempt.duration_ms = round((time.monotonic() - started) * 1000)
    attempt.save()
    return attempt.ok


def review_of(result: PlateTaskFile) -> dict:
    """What a result says of its review, in the API, the webhooks and the admin alike."""
    return {
        "plate_confidences": result.plate_confidences,
        "needs_review": result.needs_review,
        "review_reasons": result.review_reasons,
        "reviewed_at": result.reviewed_at.isoformat() if result.reviewed_at else None,
        "revision": result.revision,
    }


def _read(name: str) -> bytes:
    with default_storage.open(name, "rb") as fp:
        return fp.read()


def awaiting_review(task: PlateTask) -> int:
    """The task's results flagged for a person and not reviewed yet."""
    return task.files.filter(needs_review=True).count()


def task_results(
    task: PlateTask, *, absolute_base: str = "", rows: Iterable[PlateTaskFile] | None = None
) -> list[dict]:
    """plate_detect's results: `url` is a path served until the task expires (absolute when
    `absolute_base` is given: the webhooks' PUBLIC_BASE_URL)."""
    results = []
    for row in task.files.all() if rows is None else rows:
        name = Path(row.result_file).name
        url = None
        if name:
            url = reverse("plate-detect-result", kwargs={"task_id": task.uuid, "filename": name})
            url = absolute_base.rstrip("/") + url
        results.append(
            {
                "filename": name or row.filename,
                "source_filename": row.filename,
                "url": url,
                "status": row.status,
                "plates": row.plates,
                "faces": row.faces,
                "has_plate": row.plates > 0,
                "error": {"code": row.error_code, "detail": row.error} if row.error else None,
                **review_of(row),
            }
        )
    return results


# Expiry ---------------------------------------------------------------------------------------


def tasks_cleanup(*, now: object = None) -> tuple[int, int]:
    """Purge expired tasks (files and result rows; the task row stays to answer 410), and
    queue delivery again for finished, undelivered tasks and corrections. Returns (purged,
    redelivered)."""
    now = now or timezone.now()
    purged = 0
    for task in PlateTask.objects.filter(expires_at__lte=now, purged_at__isnull=True):
        files = storage.files_under(task.storage_dir)
        with transaction.atomic():
            task.files.all().delete()
            task.attempts.all().delete()
            PlateTask.objects.filter(pk=task.pk).update(purged_at=now)
        storage.delete_quietly(files)
        purged += 1
    waiting = PlateTask.objects.select_related("client").filter(
        status__in=[PlateTask.Status.COMPLETED, PlateTask.Status.FAILED],
        delivered_at__isnull=True,
        purged_at__isnull=True,
        expires_at__gt=now,
    )
    redelivered = 0
    for task in waiting:
        if task.needs_delivery:
            delivery_enqueue(task)
            redelivered += 1
    return purged, redelivered + corrections_resume(now=now)


# The pipeline step for stored images ----------------------------------------------------------


@step("anonymize")
def anonymize_step(image: Image) -> dict:
    options = settings_for(image.client)
    requested = image.steps.filter(name="anonymize", result__requested=True).exists()
    if not (options.on_upload or requested):
        raise SkipStep("anonymisation is off for this tenant (POST /images/{id}/anonymize/)")
    mode = image.steps.get(name="anonymize").result.get("mode") or options.mode
    with storage.open_original(image) as fp:
        picture = open_oriented(fp)
    covered = anonymize_picture(
        picture, client=image.client, mode=mode, cover_faces=options.cover_faces
    )
    old = storage.files_under(f"{image.storage_dir}/anonymized")
    name = storage.save_bytes(
        f"{image.storage_dir}/anonymized/{int(time.time() * 1000)}.webp", covered.data
    )
    storage.delete_quietly(old)
    return {
        "requested": requested,
        "mode": mode,
        "file": name,
        "plates": covered.plates,
        "faces": covered.faces,
        "regions": covered.regions,
        "plate_confidences": covered.confidences,
        "needs_review": bool(covered.reasons),
        "review_reasons": covered.reasons,
        "reviewed_at": None,
        "revision": 0,
    }
