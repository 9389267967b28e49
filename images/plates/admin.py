"""Plate tasks and their files in the admin, with the covering review pages; the parts of the image
and tenant pages that are about covering (images/admin.py puts those pages together)."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from images.library.signing import signed_url
from images.models import (
    AnonymizeSettings,
    Client,
    Image,
    PlateTask,
    PlateTaskFile,
    WebhookAttempt,
)
from images.plates import review_views
from kit import outbound
from kit.admin import ReadOnlyInline


def _preview(client: Client, name: str, max_px: int = 240) -> str:
    if not name:
        return "—"
    url, _ = signed_url(None, client=client, name=name, content_type="image/webp")
    return format_html(
        '<img src="{}" style="max-width:{}px;max-height:{}px" alt="">', url, max_px, max_px
    )


class PlateTaskFileInline(ReadOnlyInline):
    model = PlateTaskFile
    fields = ["filename", "status", "plates", "faces", "needs_review", "review_reasons",
              "error_code", "before", "after", "review_link"]  # fmt: skip

    @admin.display(description="review")
    def review_link(self, row: PlateTaskFile) -> str:
        url = reverse("admin:images_platetaskfile_change", args=[row.pk])
        return format_html('<a href="{}">Review</a>', url) if row.result_file else "—"

    @admin.display(description="before")
    def before(self, row: PlateTaskFile) -> str:
        return _preview(row.task.client, row.source_file)

    @admin.display(description="after")
    def after(self, row: PlateTaskFile) -> str:
        return _preview(row.task.client, row.result_file)


class WebhookAttemptInline(ReadOnlyInline):
    model = WebhookAttempt
    fields = ["created_at", "kind", "url", "status_code", "ok", "duration_ms", "error"]


@admin.register(PlateTask)
class PlateTaskAdmin(admin.ModelAdmin):
    list_display = ["uuid", "client", "status", "mode", "processed", "total", "plate_count",
                    "review_count", "delivered_at", "created_at", "expires_at"]  # fmt: skip
    # files__needs_review: the dashboard's link to tasks with a result waiting for a person.
    list_filter = ["status", "mode", "client", "files__needs_review"]
    readonly_fields = ["uuid", "client", "status", "mode", "cover_faces", "upload_url",
                       "callback_url", "total", "processed", "created_at", "finished_at",
                       "delivered_at", "expires_at", "purged_at"]  # fmt: skip
    inlines = [PlateTaskFileInline, WebhookAttemptInline]
    actions = ["retry_delivery"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PlateTask]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_plates=Sum("files__plates"),
                n_review=Count("files", filter=models.Q(files__needs_review=True)),
            )
        )

    @admin.display(description="plates", ordering="n_plates")
    def plate_count(self, task: PlateTask) -> int:
        return task.n_plates or 0

    @admin.display(description="need review", ordering="n_review")
    def review_count(self, task: PlateTask) -> int:
        return task.n_review

    @admin.action(description="Retry delivery of what the tenant's backend has not received")
    def retry_delivery(self, request: HttpRequest, queryset: QuerySet[PlateTask]) -> None:
        from images.plates.delivery import delivery_enqueue

        waiting = queryset.select_related("client").filter(
            delivered_at__isnull=True, purged_at__isnull=True
        )
        queued = [task for task in waiting if task.needs_delivery]
        for task in queued:
            delivery_enqueue(task)
        self.message_user(request, f"Queued delivery of {len(queued)} task(s).")


@admin.register(PlateTaskFile)
class PlateTaskFileAdmin(admin.ModelAdmin):
    """The review queue of task files: filter by needs_review; a row opens its review page."""

    list_display = ["filename", "client", "status", "plates", "confidences", "needs_review",
                    "review_reasons", "reviewed_by", "reviewed_at", "revision", "before",
                    "after"]  # fmt: skip
    list_filter = ["needs_review", ("reviewed_at", admin.EmptyFieldListFilter), "status",
                   "task__client"]  # fmt: skip
    list_select_related = ["task__client", "reviewed_by"]
    search_fields = ["filename", "task__uuid"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="client", ordering="task__client__name")
    def client(self, row: PlateTaskFile) -> Client:
        return row.task.client

    @admin.display(description="confidences")
    def confidences(self, row: PlateTaskFile) -> str:
        return ", ".join(f"{c:.2f}" for c in row.plate_confidences) or "—"

    @admin.display(description="original")
    def before(self, row: PlateTaskFile) -> str:
        return _preview(row.task.client, row.source_file, 120)

    @admin.display(description="covered")
    def after(self, row: PlateTaskFile) -> str:
        return _preview(row.task.client, row.result_file, 120)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None
    ) -> HttpResponse:
        row = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not self.has_view_permission(request, row):
            raise PermissionDenied
        return review_views.review_page(
            request,
            site=self.admin_site,
            load=lambda: review_views.task_file_subject(self.get_queryset(request).get(pk=row.pk)),
            back=(reverse("admin:images_platetaskfile_changelist"), "Task files to review"),
        )


class AnonymizeSettingsInline(admin.StackedInline):
    """A tenant's plate-covering defaults, on its page."""

    model = AnonymizeSettings
    extra = 0
    max_num = 1
    formfield_overrides = {
        models.URLField: {"assume_scheme": "https", "validators": [outbound.url_validator]}
    }


class AnonymizeReviewFilter(admin.SimpleListFilter):
    """The review queue of stored images: their anonymize step's result, flagged or not."""

    title = "covered plates"
    parameter_name = "anonymized"

    def lookups(self, request: HttpRequest, model_admin: object) -> list[tuple[str, str]]:
        return [("review", "needs review"), ("done", "anonymised")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Image]) -> QuerySet[Image]:
        covered = queryset.filter(steps__name="anonymize", steps__status="done")
        if self.value() == "review":
            return covered.filter(steps__result__needs_review=True)
        return covered if self.value() == "done" else queryset


class ImageCoveringAdmin(admin.ModelAdmin):
    """The image page's covered plates, and their review page beside the original."""

    def get_urls(self) -> list[URLPattern]:
        review = path(
            "<path:object_id>/review/",
            self.admin_site.admin_view(self.review_view),
            name="images_image_review",
        )
        return [review, *super().get_urls()]

    def review_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The stored image's covered result beside its original (POST /images/{id}/anonymize/)."""
        image = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not self.has_view_permission(request, image):
            raise PermissionDenied
        return review_views.review_page(
            request,
            site=self.admin_site,
            load=lambda: review_views.image_subject(self.get_queryset(request).get(pk=image.pk)),
            back=(reverse("admin:images_image_changelist") + "?anonymized=review", "Images"),
        )

    @admin.display(description="covered plates")
    def anonymization(self, image: Image) -> str:
        step = image.steps.filter(name="anonymize", status="done").first()
        if step is None:
            return "—"
        result = step.result
        url = reverse("admin:images_image_review", args=[image.pk])
        return format_html(
            '{} plate(s), {} — <a href="{}">Review</a>', result.get("plates"), _flag(result), url
        )


def _flag(result: dict) -> str:
    if result.get("needs_review"):
        return "needs review: " + ", ".join(result.get("review_reasons", []))
    return "reviewed" if result.get("reviewed_at") else "no review needed"
