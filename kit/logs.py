"""Structured logs: structlog for our lines; stdlib logging (Django, RQ, gunicorn) alike.

Every line goes through one stdlib handler whose formatter is structlog's ProcessorFormatter, so a
line from `logging.getLogger(...)` and one from `structlog.get_logger()` both carry the context
bound in contextvars (request_id, job_id, image_id, step) and come out as JSON in production or as
readable columns in development. gunicorn.conf.py configures its own lines with it too.
"""

import re
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from django.core.signals import request_finished
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from structlog.typing import EventDict, Processor

REQUEST_ID_HEADER = "X-Request-ID"
# Ids from a proxy or a client are echoed in headers and logs: bounded and plain, or replaced.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:=+/-]{1,128}")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

access_logger = structlog.get_logger("imago.request")

REDACTED = "[redacted]"
# Keys whose values are secrets wherever they appear: fields, extras, headers, traceback locals.
_SECRET_NAME = r"[\w-]*(?:secret|passw(?:or)?d|token|authorization|cookie|signature|key)[\w-]*"
_SECRET_KEY = re.compile(_SECRET_NAME, re.IGNORECASE)
# The same in text (messages, reprs of dicts, formatted tracebacks): `name: value`, `name=value`,
# `'name': 'value'`; an auth scheme before the value is kept.
_SECRET_IN_TEXT = re.compile(
    rf"""(?P<name>\b{_SECRET_NAME})(?P<sep>['"]?\s*[:=]\s*['"]?(?:(?:Bearer|Token|Basic)\s+)?)"""
    r"""[^\s'",;&)}]+""",
    re.IGNORECASE,
)
# Imago's API keys (images/tenancy/auth.py): the prefix and 43 URL-safe characters.
_API_KEY = re.compile(r"imago_[A-Za-z0-9_-]{20,}")
# A signed link's token is a credential for as long as the link lives (access lines, Django's
# "Forbidden: <path>" warnings).
_SIGNED_LINK = re.compile(r"/files/signed/[^\s\"'?#]+")


def _strip_colours(logger: Any, method: str, event_dict: EventDict) -> EventDict:
    """RQ colours its messages when stdout is a terminal; JSON wants the plain text."""
    event = event_dict.get("event")
    if isinstance(event, str):
        event_dict["event"] = _ANSI.sub("", event)
    return event_dict


def redact_text(text: str) -> str:
    text = _API_KEY.sub(f"imago_{REDACTED}", text)
    text = _SIGNED_LINK.sub(f"/files/signed/{REDACTED}", text)
    return _SECRET_IN_TEXT.sub(lambda m: f"{m['name']}{m['sep']}{REDACTED}", text)


def _redact(value: Any, key: str = "") -> Any:
    # Numbers and flags under such keys (tokens_used, key_count) are not secrets: kept.
    if key and _SECRET_KEY.fullmatch(key) and isinstance(value, str | bytes | dict | list | tuple):
        return REDACTED
    if isinstance(value, dict):
        return {k: _redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, int | float | bool | type(None)):
        return value
    # Objects (a request, a model) are rendered by repr at the end: redact that text now.
    return redact_text(repr(value))


def _redact_secrets(logger: Any, method: str, event_dict: EventDict) -> EventDict:
    """The last step before rendering, after tracebacks became data: nothing escapes it."""
    return {key: _redact(value, key) for key, value in event_dict.items()}


def _shared_processors() -> list[Processor]:
    """What every line gets, whether it came from structlog or from a stdlib logger."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _renderers(fmt: str) -> list[Processor]:
    if fmt == "json":
        return [
            _strip_colours,
            # With each frame's locals, which are redacted below like any other field.
            structlog.processors.dict_tracebacks,
            _redact_secrets,
            structlog.processors.JSONRenderer(),
        ]
    return [
        # The traceback as text before redaction, so that the renderer prints it as it is.
        structlog.processors.format_exc_info,
        _redact_secrets,
        structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        ),
    ]


def formatter(fmt: str) -> structlog.stdlib.ProcessorFormatter:
    """The formatter of every handler: `json` (one object a line) or `console` (columns)."""
    if fmt not in ("json", "console"):
        raise ValueError(f"LOG_FORMAT must be json or console, not {fmt!r}")
    return structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_renderers(fmt)],
        # Applied to lines from stdlib loggers, which did not go through structlog's chain.
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.PositionalArgumentsFormatter()],
    )


def logging_config(fmt: str, level: str) -> dict[str, Any]:
    """A dictConfig for Django's LOGGING (and gunicorn's logconfig_dict): one structured handler."""
    formatter(fmt)  # refuse a wrong format when settings load, not at the first line logged
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": formatter, "fmt": fmt}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "structured"},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's defaults give these their own handlers and formats; send them to the root.
            "django": {"handlers": [], "level": level, "propagate": True},
            "django.server": {"handlers": [], "level": level, "propagate": True},
            "gunicorn.error": {"handlers": [], "level": level, "propagate": True},
            # Our access lines replace gunicorn's, which know neither routes nor request ids.
            "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": True},
        },
    }


def configure_structlog() -> None:
    """structlog loggers hand their events to stdlib logging, which renders them (see above)."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def request_id_from(value: str | None) -> str:
    """The caller's request id when it is well formed, else a new one."""
    if value and _VALID_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Binds a request id to every log line of the request and returns it in X-Request-ID.

    First in MIDDLEWARE, so that error responses made by inner layers (404, 500) get it too.
    It also writes one access line per request, with the route rather than the raw path.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        started = time.perf_counter()
        # Unbound when the request finishes (below), not on the way out of this middleware:
        # Django logs 4xx and 5xx answers ("Not Found: …") after the middleware has returned.
        structlog.contextvars.bind_contextvars(request_id=request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        match = request.resolver_match
        access_logger.info(
            "request",
            method=request.method,
            path=request.path,
            route=match.view_name if match else None,
            status=response.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return response


@receiver(request_finished, dispatch_uid="imago_forget_request_id")
def _forget_request_id(**kwargs: Any) -> None:
    structlog.contextvars.unbind_contextvars("request_id")
