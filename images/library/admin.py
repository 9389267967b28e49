"""Images in the admin: the whole story of one image, and the lists operators filter."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from images.library import admin_html, services
from images.library.pipeline import step_names
from images.library.signing import signed_url
from images.models import Image, ImageStep, ImageTag, StepStatus
from kit.admin import READ_ONLY_PAGE, ReadOnlyInline, object_or_404


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


IMAGE_FILE_FIELDS = ["original", "client", "status", "dimensions", "size", "sha256", "uuid",
                     "created_at", "updated_at"]  # fmt: skip
IMAGE_FOUND_FIELDS = ["tag_list", "ocr_text", "ai_description", "exif_summary"]


class ImageAdmin(admin.ModelAdmin):
    """An image's page and the list, as far as the library knows the image: images/admin.py adds
    what the rooms above found in it (detections, covered plates) and registers the page."""

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
    list_filter = ["client", "status", "format", FailedStepFilter]
    search_fields = ["original_filename", "uuid", "sha256"]
    date_hierarchy = "created_at"
    inlines = [StepInline]
    actions = ["reprocess"]
    fieldsets = [
        ("What was found", {"fields": IMAGE_FOUND_FIELDS}),
        ("File", {"fields": IMAGE_FILE_FIELDS}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

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
        return [reprocess, *super().get_urls()]

    def reprocess_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The image page's Reprocess button: the bulk action's service, for one image."""
        image = object_or_404(self, request, object_id)
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

    @admin.action(description="Reprocess all steps")
    def reprocess(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        for image in queryset.select_related("client"):
            services.image_reprocess(image=image)
        self.message_user(request, f"Queued {queryset.count()} image(s) for reprocessing.")
