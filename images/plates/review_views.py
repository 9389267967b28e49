"""The admin's review page of one covered result: the original beside the covered result."""

import json
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse

from images.library.signing import signed_url
from images.models import Client, Image, PlateTaskFile
from images.plates import review

PERMISSION = "images.review_covering"


@dataclass
class Subject:
    """One covered result as the page shows it, and what an operator may do to it."""

    title: str
    client: Client
    original: str
    original_type: str
    result: str
    regions: list
    plates: int
    confidences: list[float]
    needs_review: bool
    reasons: list[str]
    reviewed_by: str
    reviewed_at: object
    revision: int
    operator_boxes: list
    redelivers: bool
    mark_reviewed: Callable[..., None] = field(repr=False)
    correct: Callable[..., None] = field(repr=False)
    width: int = 0
    height: int = 0

    @property
    def boxes(self) -> list[list[float]]:
        """Each covered region's bounding box, for the page to draw."""
        boxes = []
        for region in self.regions:
            quad = np.asarray(region, dtype=float)
            boxes.append([*quad.min(axis=0).round(1).tolist(), *quad.max(axis=0).round(1).tolist()])
        return boxes

    @property
    def unchanged(self) -> str:
        return json.dumps({"keep": list(range(len(self.regions))), "add": []})

    @property
    def original_url(self) -> str:
        kind = self.original_type
        return signed_url(None, client=self.client, name=self.original, content_type=kind)[0]

    @property
    def result_url(self) -> str:
        return signed_url(None, client=self.client, name=self.result, content_type="image/webp")[0]


def task_file_subject(row: PlateTaskFile) -> Subject:
    return Subject(
        title=f"{row.filename} in task {row.task.uuid}",
        client=row.task.client,
        original=row.source_file,
        original_type=mimetypes.guess_type(row.source_file)[0] or "application/octet-stream",
        result=row.result_file,
        regions=row.regions,
        plates=row.plates,
        confidences=row.plate_confidences,
        needs_review=row.needs_review,
        reasons=row.review_reasons,
        reviewed_by=row.reviewed_by.get_username() if row.reviewed_by else "",
        reviewed_at=row.reviewed_at,
        revision=row.revision,
        operator_boxes=row.operator_boxes,
        redelivers=row.task.needs_delivery,
        mark_reviewed=lambda user: review.task_file_mark_reviewed(row=row, user=user),
        correct=lambda user, raw: review.task_file_correct(row=row, user=user, raw=raw),
    )


def image_subject(image: Image) -> Subject:
    result = review.image_step(image).result
    return Subject(
        title=f"{image.original_filename or image.uuid}, anonymised",
        client=image.client,
        original=image.file,
        original_type=image.content_type,
        result=result["file"],
        regions=result.get("regions", []),
        plates=result.get("plates") or 0,
        confidences=result.get("plate_confidences", []),
        needs_review=result.get("needs_review", False),
        reasons=result.get("review_reasons", []),
        reviewed_by=result.get("reviewed_by", ""),
        reviewed_at=result.get("reviewed_at"),
        revision=result.get("revision", 0),
        operator_boxes=result.get("operator_boxes", []),
        redelivers=False,
        mark_reviewed=lambda user: review.image_mark_reviewed(image=image, user=user),
        correct=lambda user, raw: review.image_correct(image=image, user=user, raw=raw),
    )


def review_page(
    request: HttpRequest,
    *,
    site: AdminSite,
    load: Callable[[], Subject],
    back: tuple[str, str],
) -> HttpResponse:
    """GET shows the result; POST (with the permission) marks it reviewed or corrects it."""
    try:
        subject = load()
    except review.ReviewRefused as exc:
        messages.error(request, f"Refused ({exc.code}): {exc.detail}")
        return HttpResponseRedirect(back[0])
    status = 200
    if request.method == "POST":
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied
        status = _act(request, subject)
        if status == 200:
            return HttpResponseRedirect(request.path)
    subject.width, subject.height = review.picture_size(subject.result)
    context = {
        **site.each_context(request),
        "title": f"Review: {subject.title}",
        "subject": subject,
        "can_review": request.user.has_perm(PERMISSION),
        "back_url": back[0],
        "back_name": back[1],
    }
    return TemplateResponse(request, "admin/images/review.html", context, status=status)


def _act(request: HttpRequest, subject: Subject) -> int:
    try:
        if request.POST.get("action") == "reviewed":
            subject.mark_reviewed(request.user)
            messages.success(request, "Marked reviewed.")
        else:
            subject.correct(request.user, request.POST.get("boxes", ""))
            again = " and queued for delivery again" if subject.redelivers else ""
            messages.success(request, f"The result was re-rendered from the original{again}.")
    except review.ReviewRefused as exc:
        messages.error(request, f"Refused ({exc.code}): {exc.detail}")
        return 400
    return 200
