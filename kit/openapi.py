"""The OpenAPI schema's common parts: areas, summaries, the errors every operation can give."""

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import permissions

from kit.errors import ErrorSerializer

SECONDS = {"type": "integer"}
# DRF always names the scheme on a 401 and the wait on a 429; the queue's 503 gives a wait, a
# refused detection does not.
ERROR_HEADERS = {
    "401": {
        "WWW-Authenticate": {
            "schema": {"type": "string"},
            "required": True,
            "description": "`Token`: how to send the key.",
        }
    },
    "429": {
        "Retry-After": {"schema": SECONDS, "required": True, "description": "Seconds to wait."}
    },
    "503": {"Retry-After": {"schema": SECONDS, "description": "Seconds to wait, when known."}},
}

# images.tenancy.selectors.request_client reads it on every tenant's operation.
STAFF_CLIENT = OpenApiParameter(
    "client",
    str,
    description="Staff sessions only: the tenant (id or slug) to act for. API keys act for theirs.",
)


# Each operation's area in the docs: the first prefix its path starts with.
AREAS = [
    ("/api/v1/images/{id}/anonymize/", "plates"),
    ("/api/v1/images", "images"),
    ("/api/v1/detect/", "detection"),
    ("/api/v1/anonymize/", "plates"),
    ("/api/v1/process-task/", "plates"),
    ("/api/v1/task-status/", "plates"),
    ("/api/v1/ai/", "ai"),
    ("/api/v1/insights", "insights"),
    ("/api/v1/questions", "questions"),
    # Robotoff's count of a user's annotations: the answers to questions.
    ("/api/v1/users/statistics/", "questions"),
    ("/api/v1/clients/", "clients"),
]

# One line per operation in the docs' lists, for views that do not set extend_schema(summary=).
SUMMARIES = {
    "v1_ai_draft_task_create": "Draft a task from a text",
    "v1_ai_summarize_create": "Summarise a web page",
    "v1_anonymize_settings_retrieve": "Read the plate-covering defaults",
    "v1_anonymize_settings_partial_update": "Change the plate-covering defaults",
    "v1_anonymize_stub_update": "Upload the stub image that covers plates",
    "v1_anonymize_stub_destroy": "Go back to the built-in stub image",
    "v1_clients_list": "List tenants",
    "v1_clients_create": "Create a tenant and its first key",
    "v1_clients_retrieve": "Read a tenant",
    "v1_clients_partial_update": "Change a tenant",
    "v1_clients_destroy": "Deactivate a tenant",
    "v1_clients_rotate_key_create": "Replace a tenant's API key",
    "v1_detect_batch_create": "Queue detection over stored images",
    "v1_detect_history_list": "List past detections",
    "v1_detect_image_create": "Detect objects in one image now",
    "v1_detect_jobs_retrieve": "Follow a detection job",
    "v1_detect_models_list": "List detection models",
    "v1_detect_models_create": "Register a detection model",
    "v1_images_list": "List images",
    "v1_images_create": "Upload images",
    "v1_images_retrieve": "Read an image and its steps",
    "v1_images_destroy": "Delete an image and its files",
    "v1_images_ai_retrieve": "Read an image's AI description",
    "v1_images_anonymize_retrieve": "Read an image's covered copy",
    "v1_images_anonymize_create": "Cover the plates of a stored image",
    "v1_images_detections_list": "List an image's detections",
    "v1_images_download_url_retrieve": "Get a signed link to the original",
    "v1_images_exif_retrieve": "Read an image's EXIF",
    "v1_images_ocr_retrieve": "Read an image's OCR text",
    "v1_images_reprocess_create": "Run an image's steps again",
    "v1_images_status_retrieve": "Follow an image's processing",
    "v1_images_thumbnail_url_retrieve": "Get a signed link to a thumbnail",
    "v1_images_tags_list": "List tags with their image counts",
    "v1_insights_import_create": "Import a file of insights",
    "v1_insights_imports_retrieve": "Follow an insight import",
    "v1_process_task_create": "Cover plates in uploaded files (a task)",
    "v1_task_status_retrieve": "Follow a plate-covering task",
}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's AutoSchema, plus the error responses that the views share.

    Views document their own success bodies and the errors only they give (409, 410, 413...);
    the errors that come from DRF's machinery (validation, authentication, scopes, throttling,
    unknown ids and pages, an unreachable queue) are added here so that no view forgets them.
    """

    def get_override_parameters(self) -> list[Any]:
        parameters = super().get_override_parameters()
        if self._needs_credentials():
            parameters = [*parameters, STAFF_CLIENT]
        return parameters

    def get_tags(self) -> list[str]:
        area = next((tag for prefix, tag in AREAS if self.path.startswith(prefix)), None)
        return [area] if area else super().get_tags()

    def get_summary(self) -> str | None:
        return super().get_summary() or SUMMARIES.get(self.get_operation_id())

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation["responses"]
        for code, description in self._shared_errors(operation).items():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    ErrorSerializer, code, media_types=["application/json"]
                )
                responses[code]["description"] = description
                if code in ERROR_HEADERS:
                    responses[code]["headers"] = ERROR_HEADERS[code]
        return operation

    def _shared_errors(self, operation: dict[str, Any]) -> dict[str, str]:
        locations = {parameter["in"] for parameter in operation.get("parameters", [])}
        errors = {}
        if "requestBody" in operation or "query" in locations:
            errors["400"] = "Invalid input: `invalid` with the messages by field, or a refusal."
        if "requestBody" in operation:
            errors["415"] = "The body's Content-Type is not one this operation reads."
        if self._needs_credentials():
            errors["401"] = "No API key, or an unknown or revoked one."
            errors["403"] = "The key lacks a scope this operation needs, or a quota is reached."
        if "path" in locations or (self._is_list_view() and self._get_paginator()):
            errors["404"] = "No such resource, or no such page."
        if self.view.get_throttles():
            errors["429"] = "Too many requests for this client; wait for Retry-After seconds."
        if self.method not in permissions.SAFE_METHODS:
            errors["503"] = "The job queue is unreachable; retry after Retry-After seconds."
        return errors

    def _needs_credentials(self) -> bool:
        return not all(
            isinstance(permission, permissions.AllowAny)
            for permission in self.view.get_permissions()
        )


def error_responses(described: dict[int, str]) -> dict[int, OpenApiResponse]:
    """The errors only one view gives, for its extend_schema(responses=...)."""
    return {
        status: OpenApiResponse(ErrorSerializer, description=description)
        for status, description in described.items()
    }
