"""The admin of each room of the app: importing them registers their pages. The two pages that
show several rooms, a tenant's and an image's, are put together here from the rooms' parts."""

from django.contrib import admin
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html

from images.detection import admin as detection_admin
from images.library import admin as library_admin
from images.library import admin_html
from images.library.services import client_usage
from images.models import Client, DetectionJob, Image, PlateTask
from images.plates import admin as plates_admin
from images.tenancy import admin as tenancy_admin
from images.tenancy.auth import client_rate_limit
from kit.admin import capped_count, changelist

GLANCE_FIELDS = ["usage", "related"]


@admin.register(Client)
class ClientAdmin(tenancy_admin.ClientAdmin):
    """A tenant: at a glance its usage and its data in every room, then its settings and keys."""

    readonly_fields = GLANCE_FIELDS
    inlines = [*tenancy_admin.ClientAdmin.inlines, plates_admin.AnonymizeSettingsInline]

    def get_fieldsets(self, request: HttpRequest, obj: Client | None = None) -> list[tuple]:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        return [("At a glance", {"fields": GLANCE_FIELDS}), *fieldsets]

    @admin.display(description="usage")
    def usage(self, client: Client) -> str:
        used = client_usage(client=client)
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


@admin.register(Image)
class ImageAdmin(
    plates_admin.ImageCoveringAdmin,
    detection_admin.ImageDetectionsAdmin,
    library_admin.ImageAdmin,
):
    """An image's story: the picture and what was found first, the file after."""

    list_filter = [*library_admin.ImageAdmin.list_filter, plates_admin.AnonymizeReviewFilter]
    inlines = [*library_admin.ImageAdmin.inlines, detection_admin.DetectionInline]
    fieldsets = [
        (None, {"fields": ["detection_overlay"]}),
        ("What was found", {"fields": [*library_admin.IMAGE_FOUND_FIELDS, "anonymization"]}),
        ("File", {"fields": library_admin.IMAGE_FILE_FIELDS}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]
