"""Detector models and detection batch jobs in the admin."""

from django.contrib import admin
from django.http import HttpRequest

from images.models import (
    DetectionJob,
    DetectorModel,
)


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
        from images.detection.services import models_sync

        models_sync()  # files fetched since the last migrate show up here
        return super().changelist_view(request, extra_context)


@admin.register(DetectionJob)
class DetectionJobAdmin(admin.ModelAdmin):
    list_display = ["uuid", "client", "status", "processed", "total", "created_at", "finished_at"]
    list_filter = ["status", "client"]
    readonly_fields = ["uuid", "client", "status", "params", "total", "processed", "error",
                       "created_at", "finished_at"]  # fmt: skip
    exclude = ["images"]
