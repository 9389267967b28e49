"""The OpenAPI schema's common parts: the error responses every operation can give."""

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import permissions

from imago_site.errors import ErrorSerializer

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

# images.selectors.request_client reads it on every tenant's operation.
STAFF_CLIENT = OpenApiParameter(
    "client",
    str,
    description="Staff sessions only: the tenant (id or slug) to act for. API keys act for theirs.",
)


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
