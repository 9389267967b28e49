"""The FastAPI Imago's routes have their own schema and docs (/openapi.json, /docs, /redoc),
as FastAPI served them; Imago's schema (/api/schema/) leaves them out."""

from typing import Any

from django.urls import URLPattern, URLResolver, path
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.views import (
    SpectacularJSONAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

PACKAGE = __name__.rpartition(".")[0]

SCHEMA_SETTINGS = {
    "TITLE": "Imago: the FastAPI Imago's routes",
    "DESCRIPTION": (
        "The routes clients of the FastAPI Imago call, served by Imago. "
        "Imago's own API: /api/docs/."
    ),
    "PREPROCESSING_HOOKS": [],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        f"{__name__}.as_it_documented_them",
    ],
    "TAGS": [],
}


class AdminKeyScheme(OpenApiAuthenticationExtension):
    target_class = f"{PACKAGE}.auth.AdminKeyAuthentication"
    name = "AdminApiKey"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "The operator's ADMIN_API_KEY.",
        }


def without_legacy_routes(endpoints: list[tuple], **kwargs: Any) -> list[tuple]:
    """A drf-spectacular preprocessing hook for Imago's own schema."""
    return [
        endpoint
        for endpoint in endpoints
        if not getattr(getattr(endpoint[3], "cls", None), "__module__", "").startswith(PACKAGE)
    ]


SUMMARIES = {
    "ai_draft_task_create": "Draft a task from a text",
    "ai_summarize_create": "Summarise a web page",
    "auth_clients_list": "List clients",
    "auth_clients_create": "Create a client and its key",
    "auth_clients_retrieve": "Read a client",
    "auth_clients_partial_update": "Change a client's plan or scopes",
    "auth_clients_destroy": "Deactivate a client",
    "auth_clients_rotate_key_create": "Replace a client's key",
    "images_list": "List images, with the quotas' use",
    "images_retrieve": "Read an image with its EXIF, OCR and AI results",
    "images_destroy": "Delete an image and its files",
    "images_ai_retrieve": "Read an image's AI description",
    "images_download_url_retrieve": "Get a signed link to the original",
    "images_exif_retrieve": "Read an image's EXIF",
    "images_ocr_retrieve": "Read an image's OCR text",
    "images_reprocess_create": "Process an image again",
    "images_status_retrieve": "Follow an image's processing",
    "images_thumbnail_url_retrieve": "Get a signed link to a thumbnail",
    "images_tags_all_retrieve": "List the client's tags",
    "images_upload_create": "Upload an image",
}


def as_it_documented_them(result: dict, **kwargs: Any) -> dict:
    """Its paths without the final slash the routes also take, each operation with a summary."""
    result["paths"] = {path.rstrip("/"): item for path, item in result["paths"].items()}
    for item in result["paths"].values():
        for operation in item.values():
            operation["summary"] = SUMMARIES.get(operation["operationId"], "")
    return result


# Subclasses, so that this module's name takes them out of Imago's schema: otherwise their paths
# at the root would change the common prefix, hence every operation id, of Imago's schema.
class SchemaView(SpectacularJSONAPIView):
    custom_settings = SCHEMA_SETTINGS


class SwaggerView(SpectacularSwaggerSplitView):
    url_name = "fastapi-imago-schema"


class RedocView(SpectacularRedocView):
    url_name = "fastapi-imago-schema"
    template_name = "api/redoc.html"


def docs_urls(api_urls: list[URLPattern | URLResolver]) -> list[URLPattern]:
    return [
        path("openapi.json", SchemaView.as_view(urlconf=api_urls), name="fastapi-imago-schema"),
        path("docs", SwaggerView.as_view(), name="fastapi-imago-docs"),
        path("redoc", RedocView.as_view(), name="fastapi-imago-redoc"),
    ]
