"""Operators' review of covered results: mark one reviewed, or correct its boxes.

A correction re-renders the covered WebP from the ORIGINAL with the kept regions and the drawn
boxes, never from the covered result (so a removed box gives the original's pixels back). A task
file's correction is delivered again to the tenant's webhooks, marked as a correction. Stored
images' results live in their `anonymize` step; task files' on their own rows.
"""

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import PIL.Image
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from images.library import budget, storage
from images.models import Image, ImageStep, PlateTaskFile
from images.plates.covering import Covered, open_oriented, rerender_picture
from images.plates.delivery import correction_enqueue
from images.plates.tasks import covered_name

# The form field that carries the boxes: far more than ANONYMIZE_REVIEW_MAX_BOXES boxes need.
MAX_INPUT_CHARS = 64 * 1024

Box = tuple[float, float, float, float]


class ReviewRefused(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


@dataclass(frozen=True)
class Edit:
    """The regions kept (indices into the result's regions) and the boxes drawn, in pixels."""

    keep: list[int]
    add: list[Box]


def edit_parse(raw: str, *, regions: int, width: int, height: int) -> Edit:
    """The operator's boxes, as the review page sends them: {"keep": [...], "add": [[...]]}."""
    if len(raw) > MAX_INPUT_CHARS:
        raise ReviewRefused("too_large", f"At most {MAX_INPUT_CHARS} characters of boxes.")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ReviewRefused("invalid_boxes", f"The boxes are not JSON: {exc}.") from exc
    keep = data.get("keep", []) if isinstance(data, dict) else None
    add = data.get("add", []) if isinstance(data, dict) else None
    if not isinstance(keep, list) or not isinstance(add, list):
        raise ReviewRefused("invalid_boxes", 'Send {"keep": [indices], "add": [[x1, y1, x2, y2]]}.')
    cap = settings.ANONYMIZE_REVIEW_MAX_BOXES
    if len(keep) + len(add) > cap:
        raise ReviewRefused(
            "too_many_boxes", f"{len(keep) + len(add)} boxes sent; at most {cap} per result."
        )
    if not all(_integer(i) and 0 <= i < regions for i in keep) or len(set(keep)) != len(keep):
        raise ReviewRefused(
            "invalid_boxes", f"keep lists regions to keep, each once, from 0 to {regions - 1}."
        )
    return Edit(keep=sorted(keep), add=[_box(item, width, height) for item in add])


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    # JSON's NaN and Infinity parse as floats; a huge integer compares fine as it is.
    return _integer(value) or (isinstance(value, float) and math.isfinite(value))


def _box(item: object, width: int, height: int) -> Box:
    if not (isinstance(item, list) and len(item) == 4 and all(_number(v) for v in item)):
        raise ReviewRefused("invalid_boxes", "Each drawn box is [x1, y1, x2, y2] in pixels.")
    x1, y1, x2, y2 = item
    if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
        raise ReviewRefused(
            "box_out_of_image",
            f"{item} is not a box inside the {width} x {height} picture (x1 < x2, y1 < y2).",
        )
    return (float(x1), float(y1), float(x2), float(y2))


def picture_size(name: str) -> tuple[int, int]:
    """A covered result's width and height (only its header is read)."""
    with default_storage.open(name, "rb") as fp, PIL.Image.open(fp) as picture:
        return picture.size


def _quad(box: Box) -> list[list[float]]:
    x1, y1, x2, y2 = box
    return [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]


def _rerender(original: str, *, client: object, mode: str, regions: Sequence[Sequence]) -> Covered:
    try:
        with default_storage.open(original, "rb") as fp:
            picture = open_oriented(fp)
        return rerender_picture(picture, client=client, mode=mode, regions=regions)
    except budget.OverMemoryBudget as exc:
        raise ReviewRefused(exc.code, exc.detail) from exc
    except FileNotFoundError as exc:
        raise ReviewRefused("original_gone", "The original is no longer stored.") from exc


# Task files -----------------------------------------------------------------------------------


def task_file_check(row: PlateTaskFile) -> None:
    task = row.task
    if task.purged_at or task.expires_at <= timezone.now():
        raise ReviewRefused("task_expired", f"The task expired at {task.expires_at}.")
    if row.status != PlateTaskFile.Status.DONE or not row.result_file:
        raise ReviewRefused("not_covered", "This file has no covered result to review.")


def task_file_mark_reviewed(*, row: PlateTaskFile, user: AbstractBaseUser) -> None:
    task_file_check(row)
    row.needs_review, row.reviewed_by, row.reviewed_at = False, user, timezone.now()
    row.save(update_fields=["needs_review", "reviewed_by", "reviewed_at"])


def task_file_correct(*, row: PlateTaskFile, user: AbstractBaseUser, raw: str) -> None:
    """Re-render the result with the operator's boxes, then deliver it again."""
    task_file_check(row)
    width, height = picture_size(row.result_file)
    edit = edit_parse(raw, regions=len(row.regions), width=width, height=height)
    regions = [row.regions[i] for i in edit.keep] + [_quad(box) for box in edit.add]
    task = row.task
    covered = _rerender(row.source_file, client=task.client, mode=task.mode, regions=regions)
    # Beside the first result, so that its /tasks_storage/ path serves it: covered_<stem>_r<n>.webp
    stem = Path(covered_name(row)).stem
    name = storage.save_bytes(
        f"{task.storage_dir}/output/{stem}_r{row.revision + 1}.webp", covered.data
    )
    old = row.result_file
    with transaction.atomic():
        row.result_file, row.regions, row.revision = name, covered.regions, row.revision + 1
        row.operator_boxes = [*row.operator_boxes, *map(list, edit.add)]
        row.needs_review, row.reviewed_by, row.reviewed_at = False, user, timezone.now()
        row.save(
            update_fields=["result_file", "regions", "revision", "operator_boxes",
                           "needs_review", "reviewed_by", "reviewed_at"]
        )  # fmt: skip
        correction_enqueue(row)
    storage.delete_quietly([old])


# Stored images --------------------------------------------------------------------------------


def image_step(image: Image) -> ImageStep:
    step = image.steps.filter(name="anonymize").first()
    if step is None or step.status != "done" or not step.result.get("file"):
        raise ReviewRefused("not_covered", "This image has no covered result to review.")
    return step


def _reviewed(user: AbstractBaseUser) -> dict:
    return {
        "needs_review": False,
        "reviewed_by": user.get_username(),
        "reviewed_at": timezone.now().isoformat(),
    }


def image_mark_reviewed(*, image: Image, user: AbstractBaseUser) -> None:
    step = image_step(image)
    step.result = {**step.result, **_reviewed(user)}
    step.save(update_fields=["result"])


def image_correct(*, image: Image, user: AbstractBaseUser, raw: str) -> None:
    step = image_step(image)
    result = step.result
    width, height = picture_size(result["file"])
    edit = edit_parse(raw, regions=len(result.get("regions", [])), width=width, height=height)
    regions = [result["regions"][i] for i in edit.keep] + [_quad(box) for box in edit.add]
    covered = _rerender(image.file, client=image.client, mode=result["mode"], regions=regions)
    name = storage.save_bytes(
        f"{image.storage_dir}/anonymized/{int(time.time() * 1000)}.webp", covered.data
    )
    step.result = {
        **result,
        "file": name,
        "regions": covered.regions,
        "operator_boxes": [*result.get("operator_boxes", []), *map(list, edit.add)],
        "revision": result.get("revision", 0) + 1,
        **_reviewed(user),
    }
    step.save(update_fields=["result"])
    storage.delete_quietly([result["file"]])
