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
        f"{__name__}.without_final_slash",
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


def without_final_slash(result: dict, **kwargs: Any) -> dict:
    """Its paths as it documented them: the routes take a final slash, the docs show none."""
    result["paths"] = {path.rstrip("/"): item for path, item in result["paths"].items()}
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
