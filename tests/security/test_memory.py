"""Hostile files cannot take a worker's memory: import lines and images are decoded within bounds.

Peak memory is measured in a child process (its VmHWM, less what it held before the work began),
so the test's own heap does not blur the number.
"""

import gzip
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from annotations.importer import insights_import
from annotations.models import Insight
from images.models import DetectionJob, Image, ImageStep, Thumbnail
from tests.annotations.import_support import jsonl, prediction, question, questions_json
from tests.helpers import image_bytes, media_files, upload, upload_file

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


def gzip_bomb_jsonl(inflated_line_bytes: int) -> bytes:
    """Three predictions, the second padded (in a JSON string) to inflate to this many bytes."""
    good_before = prediction(barcode="0000000000001")
    good_after = prediction(barcode="0000000000002")
    head = json.dumps(prediction(barcode="0000000000003"))[:-1] + ', "padding": "'
    tail = '"}\n'
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as gz:
        gz.write(jsonl([good_before]))
        gz.write(head.encode())
        chunk = b"x" * MIB
        for _ in range(inflated_line_bytes // MIB):
            gz.write(chunk)
        gz.write(tail.encode())
        gz.write(jsonl([good_after]))
    return out.getvalue()


def peak_of_child(script: str, *args: str) -> dict:
    """Run a script under Django's settings in a child; it prints a JSON line, which is returned
    with `grown_kib`: the child's peak resident memory beyond what it held before `work()`."""
    preamble = textwrap.dedent(
        """
        import json, sys, django
        django.setup()

        def vm(key):
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith(key + ":"):
                        return int(line.split()[1])
        """
    )
    epilogue = textwrap.dedent(
        """
        before = vm("VmHWM")
        answer = work()
        print(json.dumps({**answer, "grown_kib": vm("VmHWM") - before}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", preamble + textwrap.dedent(script) + epilogue, *args],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "imago_site.settings"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- Insight imports


def test_a_gzip_line_inflating_past_the_cap_is_a_bad_line_and_the_rest_is_imported(owner, settings):
    settings.INSIGHT_IMPORT_MAX_LINE_BYTES = MIB
    bad = []
    counts = insights_import(
        client=owner.client, fp=io.BytesIO(gzip_bomb_jsonl(8 * MIB)), on_bad=bad.append
    )
    assert (counts.created, counts.bad) == (2, 1)
    assert [str(b) for b in bad] == [f"line 2: longer than {MIB} bytes"]
    assert set(Insight.objects.values_list("barcode", flat=True)) == {
        "0000000000001",
        "0000000000002",
    }


def test_a_line_of_exactly_the_cap_is_read(owner, settings):
    line = json.dumps(prediction()).encode()
    settings.INSIGHT_IMPORT_MAX_LINE_BYTES = len(line)
    counts = insights_import(client=owner.client, fp=io.BytesIO(line + b"\n" + line))
    assert (counts.created, counts.unchanged, counts.bad) == (1, 1, 0)


@pytest.mark.slow
def test_reading_a_300_mib_gzip_line_stays_within_a_few_mib(tmp_path):
    bomb = tmp_path / "bomb.jsonl.gz"
    bomb.write_bytes(gzip_bomb_jsonl(300 * MIB))
    assert bomb.stat().st_size < 400_000
    found = peak_of_child(
        """
        from annotations.importer.reading import BadLine, open_source, read_records

        def work():
            with open(sys.argv[1], "rb") as fp:
                items = list(read_records(open_source(fp)))
            bad = [str(i) for i in items if isinstance(i, BadLine)]
            return {"good": len(items) - len(bad), "bad": bad}
        """,
        str(bomb),
    )
    assert found["good"] == 2
    assert found["bad"] == ["line 2: longer than 1048576 bytes"]
    # The default cap (1 MiB) bounds the line; buffers and parsing add a few MiB at most.
    assert found["grown_kib"] < 16 * 1024, found


@pytest.mark.slow
def test_a_questions_file_with_a_huge_value_stops_there_within_bounds(tmp_path):
    huge = question(value="x" * (64 * MIB))
    data = questions_json([question(), huge, question()])
    path = tmp_path / "questions.json.gz"
    path.write_bytes(gzip.compress(data))
    found = peak_of_child(
        """
        from annotations.importer.reading import BadLine, open_source, read_records

        def work():
            with open(sys.argv[1], "rb") as fp:
                items = list(read_records(open_source(fp)))
            bad = [str(i) for i in items if isinstance(i, BadLine)]
            return {"good": len(items) - len(bad), "bad": bad}
        """,
        str(path),
    )
    assert found["good"] == 1
    assert found["bad"] == ["file 2: question 2 is longer than 1048576 bytes"]
    assert found["grown_kib"] < 16 * 1024, found


def test_an_import_stops_once_the_file_inflates_past_its_cap(owner, settings):
    settings.INSIGHT_IMPORT_MAX_INFLATED_BYTES = 200_000
    lines = jsonl([prediction(barcode=f"{n:013d}") for n in range(1000)])
    bad = []
    counts = insights_import(
        client=owner.client, fp=io.BytesIO(gzip.compress(lines)), on_bad=bad.append
    )
    assert bad[-1].unit == "file"
    assert "inflates to more than 200000 bytes" in bad[-1].reason
    assert 0 < counts.created < 1000
    # A file not read to its end replaces nothing.
    assert counts.deleted == 0


# --- Images
#
# The worst accepted image: the largest a budget lets in, flat (a few hundred kilobytes of PNG),
# RGBA (4 bytes a pixel decoded) and turned by its EXIF (a full-size copy while turning).
# A small budget keeps the test quick; the accounting does not depend on it.

TEST_BUDGET_MB = 96

WORST_ACCEPTED = """
import io
import os
import numpy as np
import PIL.Image
from pathlib import Path
from django.conf import settings
from images.plates.covering import open_oriented
from images.detection.services import annotate
from images.detection.engine import ModelSpec, get_detector, read_onnx_metadata
from images.library.validation import UploadRejected, inspect_upload
from images.library.thumbnails import render_thumbnails
from ai import ocr
from ai.services import picture_for_ai

def png(side):
    exif = PIL.Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    PIL.Image.new("RGBA", (side, side), (90, 120, 150, 255)).save(buffer, "PNG", exif=exif)
    return buffer.getvalue()

def worst_accepted():
    # From an image whose decode alone fills the budget, down by 5% until one is accepted.
    side = int((int(os.environ["IMAGE_MEMORY_BUDGET_MB"]) * 2**20 / 4) ** 0.5)
    while True:
        data = png(side)
        try:
            inspect_upload(io.BytesIO(data), len(data))
            return side, data
        except UploadRejected:
            side = int(side * 0.95)

def detector(name):
    path = Path(settings.MODELS_DIR) / settings.DETECTION_MODELS[name]["file"]
    meta = read_onnx_metadata(path)
    spec = ModelSpec(
        name=name,
        path=path,
        task=meta["task"],
        input_size=meta["input_size"],
        class_names=tuple(meta["class_names"]),
    )
    found = get_detector(spec)
    found.predict(PIL.Image.new("RGB", (64, 64)))  # its arena, before anything is measured
    return found

def detect(data):
    picture = open_full(data)
    annotate(picture, detector("coco").predict(picture))

def open_full(data):
    from images.library import budget
    return budget.decode(PIL.Image.open(io.BytesIO(data)), mode="RGB")

def anonymize(data):
    # anonymize_picture's work on pixels (its model and stub come from the database).
    picture = open_oriented(io.BytesIO(data))
    if max(picture.size) > settings.ANONYMIZE_MAX_SIDE:
        picture = PIL.ImageOps.contain(picture, (settings.ANONYMIZE_MAX_SIDE,) * 2)
    plates.predict(picture)
    # find_plates' second look: the vehicles, then a crop of one (a copy of that region only).
    coco.predict(picture)
    plates.predict(picture.crop((0, 0, picture.width // 2, picture.height // 2)), size=320)
    rgb = np.array(picture)
    PIL.Image.fromarray(rgb).save(io.BytesIO(), "WEBP", quality=85, method=2)

import PIL.ImageOps
side, data = worst_accepted()
coco, plates = detector("coco"), detector("plates")
steps = {
    "upload": lambda: inspect_upload(io.BytesIO(data), len(data)),
    "thumbnails": lambda: render_thumbnails(io.BytesIO(data), settings.THUMBNAIL_SIZES),
    "ocr": lambda: ocr.read(io.BytesIO(data), languages="eng"),
    "vision_ai": lambda: picture_for_ai(io.BytesIO(data)),
    "detection": lambda: detect(data),
    "anonymize": lambda: anonymize(data),
}

def work():
    grown = {}
    for name, run in steps.items():
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # the peak (VmHWM) starts again from what is resident now
        before = vm("VmRSS")
        run()
        grown[name] = (vm("VmHWM") - before) // 1024
    return {"side": side, "png_bytes": len(data), "grown_mib": grown}
"""


@pytest.mark.slow
def test_the_worst_accepted_image_keeps_every_step_within_the_budget(monkeypatch):
    monkeypatch.setenv("IMAGE_MEMORY_BUDGET_MB", str(TEST_BUDGET_MB))
    found = peak_of_child(WORST_ACCEPTED)
    assert found["png_bytes"] < 300_000, found
    over = {name: mib for name, mib in found["grown_mib"].items() if mib > TEST_BUDGET_MB}
    assert not over, found


def test_an_image_over_the_budget_is_refused_at_upload_and_nothing_is_written(owner, settings):
    # 1 MiB holds 74,898 pixels at 14 bytes each (images.library.budget.PEAK_BYTES_PER_PIXEL).
    settings.IMAGE_MEMORY_BUDGET_MB = 1
    refused = upload(owner.api, ("wide.png", image_bytes("PNG", size=(300, 300))))
    assert refused.status_code == 413, refused.json()
    assert refused.json()["code"] == "over_memory_budget"
    assert "IMAGE_MEMORY_BUDGET_MB" in refused.json()["detail"]
    assert Image.objects.count() == 0
    assert media_files() == []
    accepted = upload(owner.api, ("fits.png", image_bytes("PNG", size=(273, 274))))
    assert accepted.status_code == 201, accepted.json()


def test_a_stored_image_over_a_lowered_budget_fails_its_steps_without_thumbnails(
    owner, run_jobs, settings
):
    created = upload(owner.api, ("photo.jpg", image_bytes(size=(300, 300)))).json()["images"][0]
    settings.IMAGE_MEMORY_BUDGET_MB = 1  # lowered by the operator before the worker ran
    run_jobs()
    steps = {s.name: s for s in ImageStep.objects.filter(image_id=created["id"])}
    assert steps["exif"].status == "done"  # reads tags, decodes no pixel
    assert steps["thumbnails"].status == "failed"
    assert "over_memory_budget" in steps["thumbnails"].error
    assert not Thumbnail.objects.filter(image_id=created["id"]).exists()
    assert not [p for p in media_files() if p.name.startswith("thumb_")]


# Images stored before the operator lowered the budget: every later decode refuses them with
# over_memory_budget, and only the image concerned fails. 300x300 is over 1 MiB (74,898 pixels);
# 100x100 is well within it. PNG: no draft reduces it before the check.
def _stored(owner, name: str, side: int) -> int:
    created = upload(owner.api, (name, image_bytes("PNG", size=(side, side))))
    return created.json()["images"][0]["id"]


def test_the_detect_route_answers_413_for_a_stored_image_over_a_lowered_budget(owner, settings):
    image_id = _stored(owner, "wide.png", 300)
    settings.IMAGE_MEMORY_BUDGET_MB = 1
    refused = owner.api.post("/api/v1/detect/image", {"image_id": image_id}, format="multipart")
    assert refused.status_code == 413, refused.content
    assert refused.json()["code"] == "over_memory_budget"
    assert "IMAGE_MEMORY_BUDGET_MB" in refused.json()["detail"]


def test_a_batch_with_one_image_over_a_lowered_budget_completes_with_the_others(
    owner, run_jobs, settings
):
    wide, small = _stored(owner, "wide.png", 300), _stored(owner, "small.png", 100)
    run_jobs()  # the pipeline, before the budget is lowered
    settings.IMAGE_MEMORY_BUDGET_MB = 1
    job_id = owner.api.post(
        "/api/v1/detect/batch", {"image_ids": [wide, small]}, format="multipart"
    ).json()["job_id"]
    run_jobs()
    job = DetectionJob.objects.get(uuid=job_id)
    assert (job.status, job.processed) == ("completed", 2)
    assert list(job.runs.values_list("image_id", flat=True)) == [small]
    assert f"image {wide}: over_memory_budget" in job.error


def test_a_plate_task_with_one_file_over_a_lowered_budget_covers_the_others(
    owner, run_jobs, settings
):
    files = [
        upload_file("wide.png", image_bytes("PNG", size=(300, 300))),
        upload_file("small.png", image_bytes("PNG", size=(100, 100))),
    ]
    created = owner.api.post("/api/v1/process-task/", {"files": files}, format="multipart")
    settings.IMAGE_MEMORY_BUDGET_MB = 1
    run_jobs()
    status = owner.api.get(f"/api/v1/task-status/{created.json()['task_id']}").json()
    assert status["status"] == "completed"
    by_name = {r["source_filename"]: r for r in status["results"]}
    assert by_name["small.png"]["status"] == "done"
    assert by_name["wide.png"]["status"] == "failed"
    assert by_name["wide.png"]["error"]["code"] == "over_memory_budget"


def test_a_step_over_a_lowered_budget_fails_at_once_without_retries(owner, run_jobs, settings):
    image_id = _stored(owner, "wide.png", 300)
    settings.IMAGE_MEMORY_BUDGET_MB = 1
    run_jobs()
    # Thumbnails decode in images, OCR in ai (ocr.read): neither is retried.
    for name in ("thumbnails", "ocr"):
        step = ImageStep.objects.get(image_id=image_id, name=name)
        assert (step.status, step.attempts) == ("failed", 1), name
        assert "over_memory_budget" in step.error
