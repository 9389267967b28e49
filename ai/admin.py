from django.contrib import admin

from ai.models import AiProfile, OcrResult, VisionResult


@admin.register(AiProfile)
class AiProfileAdmin(admin.ModelAdmin):
    list_display = ["client", "language", "provider", "ocr_languages", "updated_at"]
    list_filter = ["provider", "language"]
    search_fields = ["client__name", "client__slug"]
    autocomplete_fields = ["client"]


class ResultAdmin(admin.ModelAdmin):
    """Results are written by the pipeline; the admin shows them."""

    list_select_related = ["image__client"]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(OcrResult)
class OcrResultAdmin(ResultAdmin):
    list_display = ["image", "engine", "language", "confidence", "has_text", "words", "updated_at"]
    list_filter = ["engine", "has_text", "language"]
    search_fields = ["text", "image__original_filename"]


@admin.register(VisionResult)
class VisionResultAdmin(ResultAdmin):
    list_display = ["image", "provider", "model", "description", "confidence", "updated_at"]
    list_filter = ["provider"]
    search_fields = ["description", "image__original_filename"]
