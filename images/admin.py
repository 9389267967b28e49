from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count, QuerySet, Sum
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from images import admin_html, review_views, services
from images.auth import client_rate_limit
from images.models import (
    ALL_SCOPES,
    DEFAULT_SCOPES,
    AnonymizeSettings,
    ApiKey,
    Client,
    Detection,
    DetectionJob,
    DetectorModel,
    Image,
    ImageStep,
    ImageTag,
    PlateTask,
    PlateTaskFile,
    Scope,
    StepStatus,
    WebhookAttempt,
)
from images.pipeline import step_names
from images.signing import signed_url
from imago_site import outbound
from imago_site.dashboard import capped_count, changelist

# The context of a page whose fields are all read-only: no Save buttons.
READ_ONLY_PAGE = {
    "show_save": False,
    "show_save_and_continue": False,
    "show_save_and_add_another": False,
}


class ReadOnlyInline(admin.TabularInline):
    """Rows shown for reference on their parent's page: none added, changed or deleted there."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return list(self.fields or [])

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ApiKeyInline(ReadOnlyInline):
    model = ApiKey
    fields = ["prefix", "created_at", "last_used_at", "revoked_at"]


class AnonymizeSettingsInline(admin.StackedInline):
    model = AnonymizeSettings
    extra = 0
    max_num = 1
    formfield_overrides = {
        models.URLField: {"assume_scheme": "https", "validators": [outbound.url_validator]}
    }


# The usual sets of scopes, so that nobody has to remember which of eight boxes a role needs.
SCOPE_PRESETS = {
    "read_only": [Scope.IMAGES_READ, Scope.INSIGHTS_READ],
    "tenant": DEFAULT_SCOPES,
}


class ClientForm(forms.ModelForm):
    """Scopes as one checkbox per real scope (a JSON textarea saved typos and empty lists)."""

    preset = forms.ChoiceField(
        choices=[
            ("", "As ticked below"),
            ("read_only", "Read-only: images:read and insights:read"),
            ("tenant", "Full tenant: every scope but admin"),
        ],
        required=False,
        widget=forms.RadioSelect,
        help_text="A preset replaces the ticks below.",
    )
    scopes = forms.MultipleChoiceField(
        # Labelled as the API and its docs spell them.
        choices=[(scope, scope) for scope in ALL_SCOPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Client
        fields = ["name", "slug", "plan", "scopes", "storage_quota_bytes", "image_quota",
                  "rate_limit", "detection_model", "is_active"]  # fmt: skip

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            # A new tenant can use the API at once; admin is granted on purpose only.
            self.initial["scopes"] = [str(scope) for scope in DEFAULT_SCOPES]

    def clean(self) -> dict:
        cleaned = super().clean()
        preset = cleaned.get("preset")
        chosen = SCOPE_PRESETS[preset] if preset else cleaned.get("scopes", [])
        # Kept in the declared order, so that the stored list reads the same for everyone.
        cleaned["scopes"] = [scope for scope in ALL_SCOPES if scope in chosen]
        if not cleaned["scopes"] and "scopes" not in self.errors:
            self.add_error(
                "scopes",
                "Choose at least one scope, or a preset: a key without any can do nothing.",
            )
        return cleaned


CLIENT_FIELDS = ["name", "slug", "plan", "preset", "scopes", "storage_quota_bytes", "image_quota",
                 "rate_limit", "detection_model", "is_active"]  # fmt: skip


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    form = ClientForm
    readonly_fields = ["usage", "related"]
    list_display = [
        "name",
        "slug",
        "plan",
        "is_active",
        "image_count",
        "storage_used",
        "image_quota",
        "storage_quota_bytes",
        "created_at",
    ]
    list_filter = ["plan", "is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [ApiKeyInline, AnonymizeSettingsInline]
    actions = ["deactivate", "rotate_key"]

    def get_fieldsets(self, request: HttpRequest, obj: Client | None = None) -> list[tuple]:
        settings_fieldset = (None, {"fields": CLIENT_FIELDS})
        if obj is None:
            return [settings_fieldset]
        return [("At a glance", {"fields": ["usage", "related"]}), settings_fieldset]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Client]:
        return (
            super()
            .get_queryset(request)
            .annotate(n_images=Count("images"), n_bytes=Sum("images__size_bytes"))
        )

    def get_urls(self) -> list[URLPattern]:
        rotate = path(
            "<path:object_id>/rotate-key/",
            self.admin_site.admin_view(self.rotate_key_view),
            name="images_client_rotate_key",
        )
        return [rotate, *super().get_urls()]

    def rotate_key_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The tenant page's Rotate key button: a confirmation page, then a POST that rotates."""
        client = _object_or_404(self, request, object_id)
        if request.method == "POST":
            _show_key_once(request, client, services.client_rotate_key(client=client))
            return HttpResponseRedirect(reverse("admin:images_client_change", args=[client.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": client,
            "active_keys": client.api_keys.filter(revoked_at__isnull=True).count(),
            "title": f"Rotate the API key of {client}",
        }
        return TemplateResponse(request, "admin/images/client/rotate_key.html", context)

    @admin.display(description="images", ordering="n_images")
    def image_count(self, client: Client) -> int:
        return client.n_images

    @admin.display(description="storage used", ordering="n_bytes")
    def storage_used(self, client: Client) -> str:
        return filesizeformat(client.n_bytes or 0)

    @admin.display(description="usage")
    def usage(self, client: Client) -> str:
        used = services.client_usage(client=client)
        state = "active" if client.is_active else "inactive: its keys are refused"
        storage = admin_html.usage(used["bytes"], client.storage_quota_bytes, filesizeformat)
        rate = f"{client_rate_limit(client)} requests a minute"
        if not client.rate_limit:
            rate += f" (the {client.plan} plan's)"
        return admin_html.facts(
            [
                ("Plan", f"{client.get_plan_display()}, {state}"),
                ("Images", admin_html.usage(used["images"], client.image_quota, str)),
                ("Storage", storage),
                ("Rate limit", rate),
            ]
        )

    @admin.display(description="its data")
    def related(self, client: Client) -> str:
        mine = {"client__id__exact": client.pk}
        links = [
            ("Images", changelist(Image, **mine), client.images.count()),
            ("Plate tasks", changelist(PlateTask, **mine), client.plate_tasks.count()),
            ("Detection jobs", changelist(DetectionJob, **mine), client.detection_jobs.count()),
            (
                "Insights waiting for a decision",
                changelist(client.insights.model, **mine, status="open"),
                capped_count(client.insights.filter(annotation__isnull=True)),
            ),
        ]
        return admin_html.facts(
            (label, format_html('<a href="{}">{}</a>', url, count)) for label, url, count in links
        )

    def save_model(self, request: HttpRequest, obj: Client, form: object, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            key = services.api_key_create(client=obj)
            _show_key_once(request, obj, key)

    @admin.action(description="Deactivate the selected clients (their keys stop working)")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Client]) -> None:
        for client in queryset:
            services.client_deactivate(client=client)
        self.message_user(request, f"Deactivated {queryset.count()} client(s).")

    @admin.action(description="Rotate the API key (old keys stop working)")
    def rotate_key(self, request: HttpRequest, queryset: QuerySet[Client]) -> None:
        for client in queryset:
            _show_key_once(request, client, services.client_rotate_key(client=client))


def _object_or_404(model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str) -> Any:
    """The page's object as the admin finds it: 404 for an unknown or malformed id, 403 for a
    user who may not change it."""
    obj = model_admin.get_object(request, unquote(object_id))
    if obj is None:
        raise Http404("No such object.")
    if not model_admin.has_change_permission(request, obj):
        raise PermissionDenied
    return obj


def _show_key_once(request: HttpRequest, client: Client, key: str) -> None:
    messages.warning(
        request,
        format_html(
            "New API key for {}: <code>{}</code> — copy it now, it will not be shown again.",
            client,
            key,
        ),
    )


class StepInline(ReadOnlyInline):
    model = ImageStep
    fields = ["name", "status", "attempts", "duration_ms", "error", "finished_at"]


def thumbnail_tag(image: Image, max_px: int) -> str:
    thumbnails = sorted(image.thumbnails.all(), key=lambda t: t.size)
    if not thumbnails:
        return "—"
    # The smallest thumbnail at least as large as shown, else the largest there is.
    thumbnail = next((t for t in thumbnails if t.size >= max_px), thumbnails[-1])
    # A relative signed link: no request needed, and it works behind any host name.
    url, _ = signed_url(None, client=image.client, name=thumbnail.file, content_type="image/webp")
    return format_html(
        '<img src="{}" style="max-width:{}px;max-height:{}px" alt="">', url, max_px, max_px
    )


class DetectionInline(ReadOnlyInline):
    model = Detection
    fields = ["model_name", "class_name", "confidence", "x1", "y1", "x2", "y2", "source"]
    ordering = ["model_name", "-confidence"]


class FailedStepFilter(admin.SimpleListFilter):
    """Images whose given step failed (the dashboard's failed-step figures link here)."""

    title = "failed step"
    parameter_name = "failed_step"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [(name, name) for name in step_names()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Image]) -> QuerySet[Image]:
        name = self.value()
        if not name:
            return queryset
        if name not in step_names():
            # No step has that name; PostgreSQL would refuse some values (a NUL) outright.
            return queryset.none()
        return queryset.filter(steps__name=name, steps__status=StepStatus.FAILED)


@admin.register(DetectorModel)
class DetectorModelAdmin(admin.ModelAdmin):
    list_display = ["name", "client", "task", "backend", "input_size", "default_confidence",
                    "classes", "file"]  # fmt: skip
    list_filter = ["task", "backend", "client"]
    readonly_fields = ["class_names", "created_at"]

    @admin.display(description="classes")
    def classes(self, model: DetectorModel) -> int:
        return len(model.class_names)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):  # type: ignore[override]
        from images.detection import models_sync

        models_sync()  # files fetched since the last migrate show up here
        return super().changelist_view(request, extra_context)


@admin.register(DetectionJob)
class DetectionJobAdmin(admin.ModelAdmin):
    list_display = ["uuid", "client", "status", "processed", "total", "created_at", "finished_at"]
    list_filter = ["status", "client"]
    readonly_fields = ["uuid", "client", "status", "params", "total", "processed", "error",
                       "created_at", "finished_at"]  # fmt: skip
    exclude = ["images"]


IMAGE_FILE_FIELDS = ["original", "client", "status", "dimensions", "size", "sha256", "uuid",
                     "created_at", "updated_at"]  # fmt: skip


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


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = [
        "preview",
        "original_filename",
        "client",
        "status",
        "format",
        "dimensions",
        "size",
        "created_at",
    ]
    list_filter = ["client", "status", "format", FailedStepFilter, AnonymizeReviewFilter]
    search_fields = ["original_filename", "uuid", "sha256"]
    date_hierarchy = "created_at"
    inlines = [StepInline, DetectionInline]
    actions = ["reprocess"]
    # The page tells the image's story: the picture and what was found first, the file after.
    fieldsets = [
        (None, {"fields": ["detection_overlay"]}),
        (
            "What was found",
            {"fields": ["tag_list", "ocr_text", "ai_description", "exif_summary", "anonymization"]},
        ),
        ("File", {"fields": IMAGE_FILE_FIELDS}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

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

    def get_queryset(self, request: HttpRequest) -> QuerySet[Image]:
        return (
            super()
            .get_queryset(request)
            .select_related("client", "exif")
            .prefetch_related("thumbnails")
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Uploads go through the API, which validates the bytes and enforces quotas.
        return False

    def get_urls(self) -> list[URLPattern]:
        reprocess = path(
            "<path:object_id>/reprocess/",
            self.admin_site.admin_view(require_POST(self.reprocess_view)),
            name="images_image_reprocess",
        )
        review = path(
            "<path:object_id>/review/",
            self.admin_site.admin_view(self.review_view),
            name="images_image_review",
        )
        return [reprocess, review, *super().get_urls()]

    def reprocess_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The image page's Reprocess button: the bulk action's service, for one image."""
        image = _object_or_404(self, request, object_id)
        names = services.image_reprocess(image=image)
        self.message_user(request, f"Queued {len(names)} steps again: {', '.join(names)}.")
        return HttpResponseRedirect(reverse("admin:images_image_change", args=[image.pk]))

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None
    ):  # type: ignore[override]
        # Every field is read-only: the page's action is its Reprocess button, not Save.
        extra_context = {**(extra_context or {}), **READ_ONLY_PAGE}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="")
    def preview(self, image: Image) -> str:
        return thumbnail_tag(image, 80)

    @admin.display(description="size")
    def size(self, image: Image) -> str:
        return filesizeformat(image.size_bytes)

    @admin.display(description="pixels")
    def dimensions(self, image: Image) -> str:
        return f"{image.width} x {image.height}"

    @admin.display(description="original")
    def original(self, image: Image) -> str:
        return admin_html.download_link(image)

    @admin.display(description="tags")
    def tag_list(self, image: Image) -> str:
        return admin_html.chips(
            ImageTag.objects.filter(image=image).select_related("tag").order_by("tag__name")
        )

    @admin.display(description="OCR text")
    def ocr_text(self, image: Image) -> str:
        ocr = getattr(image, "ocr", None)
        if ocr is None or not ocr.text:
            return "—" if ocr is None else "No text found."
        about = f"{ocr.engine}, {ocr.language or 'language unknown'}, {ocr.words} words, "
        about += f"{ocr.confidence:.0%} confidence"
        return admin_html.text_block(ocr.text, about, monospace=True)

    @admin.display(description="AI description")
    def ai_description(self, image: Image) -> str:
        vision = getattr(image, "vision", None)
        if vision is None:
            return "—"
        if not vision.description:
            return format_html('<span class="errornote">{}</span>', vision.error or "No answer.")
        about = " ".join(filter(None, [vision.provider, vision.model]))
        return admin_html.text_block(vision.description, about)

    @admin.display(description="EXIF")
    def exif_summary(self, image: Image) -> str:
        exif = getattr(image, "exif", None)
        if exif is None:
            return "—"
        gps = None
        if exif.has_gps:
            # A plain link: the page loads no map, so no request leaves the server.
            gps = format_html(
                '<a href="{}" target="_blank" rel="noopener noreferrer">{} (map)</a>',
                exif.maps_url,
                # format_html escapes its arguments to strings first: numbers are formatted here.
                f"{exif.latitude:.6f}, {exif.longitude:.6f}",
            )
        exposure = ", ".join(
            filter(None, [exif.iso and f"ISO {exif.iso}", exif.aperture and f"f/{exif.aperture}",
                          exif.shutter and f"{exif.shutter} s"])
        )  # fmt: skip
        return admin_html.facts(
            [
                ("Camera", f"{exif.make} {exif.model}".strip()),
                ("Lens", exif.lens),
                ("Taken", exif.taken_at),
                ("Exposure", exposure),
                ("Focal length", exif.focal_length and f"{exif.focal_length} mm"),
                ("GPS", gps),
            ]
        )

    @admin.display(description="picture")
    def detection_overlay(self, image: Image) -> str:
        thumbnail = max(image.thumbnails.all(), key=lambda t: t.size, default=None)
        if thumbnail is None:
            return "No thumbnail yet."
        return admin_html.overlay(image, thumbnail, list(image.detections.all()))

    @admin.action(description="Reprocess all steps")
    def reprocess(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        for image in queryset.select_related("client"):
            services.image_reprocess(image=image)
        self.message_user(request, f"Queued {queryset.count()} image(s) for reprocessing.")


def _flag(result: dict) -> str:
    if result.get("needs_review"):
        return "needs review: " + ", ".join(result.get("review_reasons", []))
    return "reviewed" if result.get("reviewed_at") else "no review needed"


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
    list_filter = ["status", "mode", "client"]
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
        from images.anonymize import delivery_enqueue

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
