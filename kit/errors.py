"""One error shape for the whole API: {"code": "<stable_code>", "detail": "<sentence>", ...}."""

import logging
from typing import Any

import redis
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import (
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import Http404, HttpRequest, JsonResponse
from django.views import defaults
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)

# With the FastAPI Imago's root routes (images/compat/fastapi_imago) and plate_detect's result
# paths (images/compat/plate_detect).
API_PREFIXES = ("/api/", "/files/", "/health", "/images", "/auth/", "/ai/", "/tasks_storage/")


class DomainError(Exception):
    """An expected refusal: a stable code, a sentence a person can act on, and the HTTP status
    the API answers it with. Services raise it, or a subclass that gives each of its codes its
    status; views raise it too; api_exception_handler shapes it. `extra` joins the answer's
    body (e.g. `errors`, one per rejected file)."""

    def __init__(self, code: str, detail: str, status: int, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status
        self.extra = extra


class _Refusal(exceptions.APIException):
    """A DomainError as DRF's exception_handler takes it (it rolls back atomic requests)."""

    def __init__(self, error: DomainError) -> None:
        super().__init__(detail=error.detail, code=error.code)
        self.status_code = error.status
        self.code = error.code
        self.extra = error.extra


def _code_of(exc: exceptions.APIException) -> str:
    if isinstance(exc, _Refusal):
        return exc.code
    if isinstance(exc, exceptions.ValidationError):
        return "invalid"
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        logger.error("Redis is unreachable: %s", exc)
        return Response(
            {"code": "service_unavailable", "detail": "The job queue is unreachable; retry soon."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "30"},
        )
    # DRF turns these two into its own exceptions inside exception_handler; do it first so that
    # they get our shape too (get_object_or_404 raises Http404).
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("No such resource.", code="not_found")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DomainError):
        exc = _Refusal(exc)
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    body: dict[str, Any] = {"code": _code_of(exc)}
    if isinstance(exc, exceptions.ValidationError):
        body["detail"] = "The request has invalid fields; see errors."
        body["errors"] = exc.detail
    else:
        body["detail"] = str(exc.detail)
    if isinstance(exc, _Refusal):
        body.update(exc.extra)
    response.data = body
    return response


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIXES)


def json_404(request: HttpRequest, exception: Exception | None = None) -> Any:
    if _wants_json(request):
        return JsonResponse({"code": "not_found", "detail": "No such resource."}, status=404)
    return defaults.page_not_found(request, exception)


def _refusal(exception: Exception | None) -> tuple[int, str, str]:
    """Status, code and sentence for a request Django refused while reading it."""
    if isinstance(exception, TooManyFilesSent):
        return (
            400,
            "too_many_files",
            (
                f"At most {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files per request; "
                f"the upload routes take {settings.MAX_UPLOAD_FILES}."
            ),
        )
    if isinstance(exception, TooManyFieldsSent):
        return (
            400,
            "too_many_fields",
            (f"At most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} form fields per request."),
        )
    if isinstance(exception, RequestDataTooBig):
        return (
            413,
            "request_too_large",
            (
                f"The request body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes "
                "(files aside); send less."
            ),
        )
    return 400, "bad_request", "The request is malformed."


def json_400(request: HttpRequest, exception: Exception | None = None) -> Any:
    if _wants_json(request):
        status_code, code, detail = _refusal(exception)
        return JsonResponse({"code": code, "detail": detail}, status=status_code)
    return defaults.bad_request(request, exception)


def json_500(request: HttpRequest) -> Any:
    if _wants_json(request):
        # The request id lets a caller point operators at the logged traceback.
        return JsonResponse(
            {
                "code": "server_error",
                "detail": "An unexpected error occurred; it was logged.",
                "request_id": getattr(request, "request_id", None),
            },
            status=500,
        )
    return defaults.server_error(request)


class ErrorSerializer(serializers.Serializer):
    """The error shape, for the OpenAPI schema: every 4xx and 5xx of the API has it."""

    code = serializers.CharField(help_text="A stable, machine-readable code, e.g. `not_found`.")
    detail = serializers.CharField(help_text="A sentence a person can act on.")
    errors = serializers.JSONField(
        required=False,
        help_text="With `invalid`: the messages by field. With rejected uploads: one per file.",
    )
