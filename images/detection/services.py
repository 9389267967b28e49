"""Object detection on stored images: the model registry, runs, annotated previews, batch jobs."""

import colorsys
import io
import logging
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import IO

import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from images.detection import model_files
from images.detection.engine import (
    BackendUnavailable,
    Found,
    ModelSpec,
    get_detector,
    ordered_map,
    read_onnx_metadata,
)
from images.library import budget, storage
from images.library.pipeline import SkipStep, queue_name_for, step
from images.library.services import image_add_tags
from images.models import Client, Detection, DetectionJob, DetectionRun, DetectorModel, Image
from kit import metrics
from kit.errors import DomainError
from kit.workers import StuckSweep, enqueue_after_commit, without_live_job

logger = logging.getLogger(__name__)

ANNOTATED_MAX_SIDE = 2048


class DetectionRefused(DomainError):
    # A model the request names that cannot run is the server's lack (a file not installed, a
    # backend it cannot load), not the caller's mistake: 503, wherever it is met.
    STATUSES = {
        "unknown_model": 400,
        "unknown_class": 400,
        "no_picture": 404,
        "model_missing": 503,
        "model_unavailable": 503,
    }

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail, self.STATUSES[code])


# Registry -------------------------------------------------------------------------------------


def models_sync() -> list[DetectorModel]:
    """Register the built-in models of settings.DETECTION_MODELS whose files are present: after
    every `migrate` (images.apps), and when a request or a job names one not registered yet
    (detector_model_get). Never on a read: listing the models writes nothing."""
    synced = []
    for name, entry in settings.DETECTION_MODELS.items():
        path = Path(settings.MODELS_DIR) / entry["file"]
        if not path.exists():
            continue
        meta = _metadata(path, path.stat().st_mtime)
        model, _ = DetectorModel.objects.update_or_create(
            name=name,
            client=None,
            defaults={
                "task": meta["task"],
                "file": entry["file"],
                "class_names": meta["class_names"],
                "input_size": meta["input_size"],
                "default_confidence": entry.get("confidence", 0.25),
                "backend": DetectorModel.Backend.ONNX,
            },
        )
        synced.append(model)
    return synced


@lru_cache(maxsize=32)
def _metadata(path: Path, mtime: float) -> dict:
    return read_onnx_metadata(path)


def detector_model_get(*, name: str, client: Client | None) -> DetectorModel:
    """The tenant's own model of that name, else the built-in one."""
    for attempt in range(2):
        model = (
            DetectorModel.objects.filter(Q(client=client) | Q(client__isnull=True), name=name)
            .order_by(F("client_id").asc(nulls_last=True))  # the tenant's own first
            .first()
            if client is not None
            else DetectorModel.objects.filter(client__isnull=True, name=name).first()
        )
        if model is not None:
            return model
        if attempt == 0 and name in settings.DETECTION_MODELS:
            models_sync()
    if name in settings.DETECTION_MODELS:
        raise DetectionRefused(
            "model_missing",
            f"The model file of {name!r} is not installed: run `python manage.py fetch_models`.",
        )
    raise DetectionRefused("unknown_model", f"No model named {name!r} is registered.")


def detector_model_register(
    *,
    client: Client | None,
    name: str,
    fp: IO[bytes],
    filename: str,
    confidence: float = 0.25,
) -> DetectorModel:
    """Register an ONNX model: a tenant's own, or with no client one that every tenant can use
    (operators, through `register_model`). Refused files leave nothing behind."""
    folder = f"tenants/{client.pk}" if client is not None else "registered"
    relative = f"{folder}/{name}.onnx"
    path = Path(settings.MODELS_DIR) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    # One partial file per upload: two uploads of the same name must not write into each other.
    partial = path.with_name(f".{name}.{uuid.uuid4().hex}.part.onnx")
    try:
        model_files.model_file_save(
            fp=fp, filename=filename, path=partial, limit=settings.DETECTION_MODEL_MAX_BYTES
        )
        meta = model_files.onnx_describe(partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)
    model, _ = DetectorModel.objects.update_or_create(
        client=client,
        name=name,
        defaults={
            "file": relative,
            "backend": DetectorModel.Backend.ONNX,
            "default_confidence": confidence,
            **meta,
        },
    )
    return model


def model_for_tenant(client: Client) -> DetectorModel:
    return detector_model_get(
        name=client.detection_model or settings.DETECTION_DEFAULT_MODEL, client=client
    )


def spec_of(model: DetectorModel) -> ModelSpec:
    return ModelSpec(
        name=model.name,
        path=Path(settings.MODELS_DIR) / model.file,
        task=model.task,
        input_size=model.input_size,
        class_names=tuple(model.class_names),
        confidence=model.default_confidence,
        backend=model.backend,
    )


def class_ids(model: DetectorModel, classes: Iterable[str]) -> list[int]:
    """Class filters given by name or by id."""
    ids = []
    for value in classes:
        value = str(value).strip()
        if value.isdigit() and int(value) < len(model.class_names):
            ids.append(int(value))
        elif value in model.class_names:
            ids.append(model.class_names.index(value))
        else:
            raise DetectionRefused(
                "unknown_class", f"{model.name} has no class {value!r}; see /detect/models."
            )
    return ids


# Runs -----------------------------------------------------------------------------------------


def oriented_picture(image: Image) -> PIL.Image.Image:
    """The stored original, decoded, with its EXIF orientation applied, as RGB."""
    with storage.open_original(image) as fp:
        return budget.decode(PIL.Image.open(fp), mode="RGB")


def detect(
    model: DetectorModel,
    picture: PIL.Image.Image,
    *,
    confidence: float | None = None,
    classes: Sequence[int] | None = None,
    threads: int | None = None,
    size: int | None = None,
) -> list[Found]:
    """Run a model on a picture; `threads` (ONNX Runtime's, default DETECTION_THREADS) is for
    callers that run several pictures at once; `size` the input side (OnnxDetector.predict)."""
    try:
        detector = get_detector(
            spec_of(model),
            threads=threads or settings.DETECTION_THREADS,
            spin=settings.DETECTION_SPIN,
            device=settings.DETECTION_DEVICE,
        )
    except (BackendUnavailable, FileNotFoundError) as exc:
        raise DetectionRefused("model_unavailable", str(exc)) from exc
    started = time.monotonic()
    found = detector.predict(picture, confidence=confidence, classes=classes, size=size)
    # Tenants' own models share one label: their names are theirs to choose, without bound.
    metrics.inference_observed(
        model=model.name if model.client_id is None else "custom",
        backend=model.backend,
        seconds=time.monotonic() - started,
    )
    return found


def detection_run_create(
    *,
    image: Image,
    model: DetectorModel,
    confidence: float | None = None,
    classes: Sequence[str] | None = None,
    annotated: bool = False,
    source: str = "api",
    job: DetectionJob | None = None,
) -> DetectionRun:
    ids = class_ids(model, classes) if classes else None
    picture, found, duration = _detected(image, model, confidence=confidence, classes=ids)
    return _run_store(
        image=image,
        model=model,
        picture=picture,
        found=found,
        duration=duration,
        confidence=confidence,
        classes=classes,
        annotated=annotated,
        source=source,
        job=job,
    )


# The decoded picture, what was found in it, and the inference's milliseconds.
Detected = tuple[PIL.Image.Image, list[Found], int]


def _detected(
    image: Image,
    model: DetectorModel,
    *,
    confidence: float | None,
    classes: Sequence[int] | None,
    threads: int | None = None,
) -> Detected:
    """Decode and detect, touching no database: batch jobs run it in threads."""
    picture = oriented_picture(image)
    started = time.monotonic()
    found = detect(model, picture, confidence=confidence, classes=classes, threads=threads)
    return picture, found, round((time.monotonic() - started) * 1000)


def _run_store(
    *,
    image: Image,
    model: DetectorModel,
    picture: PIL.Image.Image,
    found: list[Found],
    duration: int,
    confidence: float | None,
    classes: Sequence[str] | None,
    annotated: bool,
    source: str,
    job: DetectionJob | None,
) -> DetectionRun:
    annotated_file = ""
    if annotated:
        annotated_file = storage.save_bytes(
            f"{image.storage_dir}/annotated_{model.name}_{int(time.time() * 1000)}.webp",
            annotate(picture, found),
        )
    try:
        with transaction.atomic():
            run = DetectionRun.objects.create(
                client_id=image.client_id,
                image=image,
                job=job,
                model_name=model.name,
                confidence=model.default_confidence if confidence is None else confidence,
                classes=list(classes) if classes else None,
                source=source,
                annotated_file=annotated_file,
                duration_ms=duration,
                count=len(found),
            )
            Detection.objects.bulk_create(_rows(run, found))
    except BaseException:
        storage.delete_quietly([annotated_file] if annotated_file else [])
        raise
    return run


def _rows(run: DetectionRun, found: list[Found]) -> list[Detection]:
    return [
        Detection(
            run=run,
            image_id=run.image_id,
            model_name=run.model_name,
            class_id=item.class_id,
            class_name=item.class_name,
            confidence=item.confidence,
            x1=item.box[0],
            y1=item.box[1],
            x2=item.box[2],
            y2=item.box[3],
            polygon=[list(point) for point in item.polygon] if item.polygon else None,
            source=run.source,
        )
        for item in found
    ]


def detection_runs_delete(runs: Iterable[DetectionRun]) -> None:
    runs = list(runs)
    files = [run.annotated_file for run in runs if run.annotated_file]
    DetectionRun.objects.filter(pk__in=[run.pk for run in runs]).delete()
    storage.delete_quietly(files)


# Annotated previews ---------------------------------------------------------------------------


def _colour(class_id: int) -> tuple[int, int, int]:
    hue = (zlib.crc32(str(class_id).encode()) % 360) / 360
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return round(red * 255), round(green * 255), round(blue * 255)


def annotate(picture: PIL.Image.Image, found: list[Found], *, fmt: str = "WEBP") -> bytes:
    """Boxes, outlines and labels drawn on a copy, as WebP (or JPEG).

    The font is Pillow's bundled one (load_default with a size): nothing is downloaded.
    """
    canvas = picture.copy()
    scale = min(1.0, ANNOTATED_MAX_SIDE / max(canvas.size))
    if scale < 1:
        canvas = canvas.resize((round(canvas.width * scale), round(canvas.height * scale)))
    draw = PIL.ImageDraw.Draw(canvas)
    width = max(2, round(max(canvas.size) / 400))
    font = PIL.ImageFont.load_default(size=max(12, round(max(canvas.size) / 50)))
    for item in found:
        colour = _colour(item.class_id)
        box = [v * scale for v in item.box]
        draw.rectangle(box, outline=colour, width=width)
        if item.polygon:
            draw.polygon([(x * scale, y * scale) for x, y in item.polygon], outline=colour)
        label = f"{item.class_name} {item.confidence:.2f}"
        height = font.size + 2 * width
        # Above the box, or inside it when the box touches the top edge.
        top = box[1] - height if box[1] >= height else box[1]
        right = box[0] + draw.textlength(label, font=font) + 2 * width
        draw.rectangle((box[0], top, right, top + height), fill=colour)
        draw.text((box[0] + width, top + width), label, fill=(0, 0, 0), font=font)
    buffer = io.BytesIO()
    extra = {"method": 2} if fmt == "WEBP" else {}
    canvas.save(buffer, fmt, quality=settings.THUMBNAIL_QUALITY, **extra)
    return buffer.getvalue()


def annotated_jpeg(run: DetectionRun) -> bytes:
    """The run's annotated picture as JPEG: its stored preview converted, or else drawn now on
    the original (not stored: a library image's runs are drawn only when asked)."""
    if run.annotated_file:
        with storage.open_file(run.annotated_file) as fp:
            picture = budget.decode(PIL.Image.open(fp), mode="RGB")
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=settings.THUMBNAIL_QUALITY)
        return buffer.getvalue()
    if not run.image.file:
        raise DetectionRefused("no_picture", "This detection kept no picture to draw on.")
    found = [
        Found(
            d.class_id,
            d.class_name,
            d.confidence,
            (d.x1, d.y1, d.x2, d.y2),
            tuple((x, y) for x, y in d.polygon) if d.polygon else None,
        )
        for d in run.detections.all()
    ]
    return annotate(oriented_picture(run.image), found, fmt="JPEG")


def detection_inputs_discard(images: Iterable[Image]) -> None:
    """Delete the originals of detection inputs kept outside the library, once detected: they
    count in no quota. Their rows stay, for the runs' history; the annotated preview stays."""
    inputs = [image for image in images if not image.in_library and image.file]
    if not inputs:
        return
    Image.objects.filter(pk__in=[image.pk for image in inputs]).update(file="")
    storage.delete_quietly([image.file for image in inputs])
    for image in inputs:
        image.file = ""


# Pipeline step --------------------------------------------------------------------------------


@step("detection")
def detection_step(image: Image) -> dict:
    try:
        model = model_for_tenant(image.client)
    except DetectionRefused as exc:
        if exc.code == "model_missing":
            raise SkipStep(exc.detail) from exc
        raise
    previous = list(image.detection_runs.filter(source="pipeline"))
    run = detection_run_create(image=image, model=model, source="pipeline")
    detection_runs_delete(previous)
    found = list(run.detections.all())
    tags = {d.class_name for d in found if d.confidence >= settings.DETECTION_TAG_CONFIDENCE}
    image_add_tags(image=image, names=tags, source="detection")
    return {
        "model": model.name,
        "count": len(found),
        "classes": dict(Counter(d.class_name for d in found)),
        "duration_ms": run.duration_ms,
    }


# Batch jobs -----------------------------------------------------------------------------------


def detection_job_create(*, client: Client, images: Sequence[Image], params: dict) -> DetectionJob:
    with transaction.atomic():
        job = DetectionJob.objects.create(client=client, params=params, total=len(images))
        job.images.set(images)
        _enqueue_job(job)
    return job


def _enqueue_job(job: DetectionJob) -> None:
    enqueue_after_commit(
        queue_name_for(job.client),
        "images.jobs.run_detection_job",
        job.pk,
        job_id=detection_job_id(job),
        description=f"detection job {job.uuid}",
    )


def detection_job_id(job: DetectionJob) -> str:
    return f"detection-job-{job.uuid}"


def detection_jobs_sweep(*, older_than: timedelta) -> StuckSweep:
    """Queue again the pending batch jobs that never reached Redis; fail the processing ones
    whose worker stopped (RQ gave up on their job, or lost it longer ago than any job may run).
    A rerun would store some images' runs twice, so a stopped one is not rerun."""
    now = timezone.now()
    timed_out = now - older_than - timedelta(seconds=settings.RQ_JOB_TIMEOUT)
    stale = DetectionJob.objects.select_related("client").filter(
        status__in=[DetectionJob.Status.PENDING, DetectionJob.Status.PROCESSING],
        created_at__lt=now - older_than,
    )
    sweep = StuckSweep([], [])
    for row, job in without_live_job(stale, detection_job_id):
        if row.status == DetectionJob.Status.PENDING and job is None:
            _enqueue_job(row)
            sweep.requeued.append(row.uuid)
        elif job is not None or row.created_at < timed_out:
            failed = DetectionJob.objects.filter(pk=row.pk, status=row.status).update(
                status=DetectionJob.Status.FAILED,
                error="The worker running this job stopped before it ended; send it again.",
                finished_at=now,
            )
            if failed:
                sweep.failed.append(row.uuid)
    return sweep


def detection_job_run(*, job_id: int) -> None:
    # Claim the row: a job queued twice (two sweeps at once) must not store every run twice.
    claimed = DetectionJob.objects.filter(pk=job_id, status=DetectionJob.Status.PENDING).update(
        status=DetectionJob.Status.PROCESSING
    )
    job = DetectionJob.objects.select_related("client").filter(pk=job_id).first()
    if not claimed or job is None:
        logger.info("Detection job %s is gone or taken; nothing to do", job_id)
        return
    params = job.params
    errors = []
    try:
        model = detector_model_get(name=params["model"], client=job.client)
        confidence, classes = params.get("confidence"), params.get("classes")
        ids = class_ids(model, classes) if classes else None

        # The next images are decoded and detected while this one's rows are written; only
        # this thread touches the database. Images in flight share the cores: each gets its
        # share of ONNX Runtime's threads (on 2 cores, two single-threaded runs give ~8% more
        # images/s than two 2-thread runs contending; bench/detect.py).
        workers = settings.DETECTION_CONCURRENCY if model.backend == "onnx" else 1
        threads = max(1, settings.DETECTION_THREADS // workers)

        def detected(image: Image) -> tuple[Image, Detected | Exception]:
            try:
                return image, _detected(
                    image, model, confidence=confidence, classes=ids, threads=threads
                )
            # One image's refusal (e.g. over a lowered memory budget) fails that image alone.
            except (DetectionRefused, OSError, budget.OverMemoryBudget) as exc:
                return image, exc

        images = job.images.select_related("client").order_by("pk")
        for image, outcome in ordered_map(detected, images, workers=workers):
            if isinstance(outcome, Exception):
                errors.append(f"image {image.pk}: {outcome}")
            else:
                try:
                    _run_store(
                        image=image,
                        model=model,
                        picture=outcome[0],
                        found=outcome[1],
                        duration=outcome[2],
                        confidence=confidence,
                        classes=classes,
                        annotated=params.get("annotated", False),
                        source="api",
                        job=job,
                    )
                except OSError as exc:
                    errors.append(f"image {image.pk}: {exc}")
            DetectionJob.objects.filter(pk=job.pk).update(processed=job.runs.count() + len(errors))
    except DetectionRefused as exc:
        errors.append(exc.detail)
    detection_inputs_discard(job.images.all())
    failed = bool(errors) and not job.runs.exists()
    DetectionJob.objects.filter(pk=job.pk).update(
        status=DetectionJob.Status.FAILED if failed else DetectionJob.Status.COMPLETED,
        error="\n".join(errors),
        finished_at=timezone.now(),
    )
