"""A real S3 endpoint on loopback: moto's server, checking presigned links as S3 does.

moto answers every S3 call the way AWS does, but it takes any presigned link as valid: it never
checks the link's signature or its expiry. A thin WSGI layer in front of it does both, following
AWS's SigV4 query-string rules, so that a tampered or expired link is refused here as it would be
by S3 or MinIO. Links that botocore signs pass it, which the tests that fetch them show.
"""

import hashlib
import hmac
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

ACCESS_KEY = "imago-test-access"
SECRET_KEY = "imago-test-secret"
REGION = "us-east-1"
MAX_EXPIRES = 7 * 24 * 3600


class _QuietHandler(MotoRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class S3Server:
    def __init__(self) -> None:
        self.clock_offset = timedelta()
        self._app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            "127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler
        )
        self.port = self._server.server_port
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)

    def now(self) -> datetime:
        """The server's clock: tests move it on instead of waiting for links to expire."""
        return datetime.now(UTC) + self.clock_offset

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        query = environ.get("QUERY_STRING", "")
        if "X-Amz-Signature=" in query:
            refusal = self._refusal(environ, query)
            if refusal:
                status, code, message = refusal
                body = (
                    f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
                    f"<Message>{message}</Message></Error>"
                ).encode()
                start_response(status, [("Content-Type", "application/xml")])
                return [body]
        return self._app(environ, start_response)

    def _refusal(self, environ: dict[str, Any], query: str) -> tuple[str, str, str] | None:
        pairs = [
            (unquote(k), unquote(v))
            for k, _, v in (item.partition("=") for item in query.split("&") if item)
        ]
        params = dict(pairs)
        try:
            signed_at = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
                tzinfo=UTC
            )
            expires = int(params["X-Amz-Expires"])
            access_key, scope = params["X-Amz-Credential"].split("/", 1)
            signed_headers = params["X-Amz-SignedHeaders"].split(";")
        except (KeyError, ValueError):
            return "400 Bad Request", "AuthorizationQueryParametersError", "Malformed link."
        if not 1 <= expires <= MAX_EXPIRES:
            return (
                "400 Bad Request",
                "AuthorizationQueryParametersError",
                "X-Amz-Expires must be less than a week (in seconds); that is, the given "
                "X-Amz-Expires must be less than 604800 seconds",
            )
        if access_key != ACCESS_KEY:
            return "403 Forbidden", "InvalidAccessKeyId", "The access key does not exist."
        if self.now() > signed_at + timedelta(seconds=expires):
            return "403 Forbidden", "AccessDenied", "Request has expired"
        expected = _signature(environ, pairs, signed_headers, params["X-Amz-Date"], scope)
        if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
            return (
                "403 Forbidden",
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        return None


def _signature(
    environ: dict[str, Any],
    pairs: list[tuple[str, str]],
    signed_headers: list[str],
    amz_date: str,
    scope: str,
) -> str:
    """AWS Signature Version 4, query-string form, with an unsigned payload."""
    raw_path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ["PATH_INFO"]
    canonical_query = "&".join(
        f"{_encode(k)}={_encode(v)}" for k, v in sorted(pairs) if k != "X-Amz-Signature"
    )
    headers = {"host": environ.get("HTTP_HOST", "")}
    for name in signed_headers:
        if name != "host":
            headers[name] = environ.get("HTTP_" + name.upper().replace("-", "_"), "")
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in signed_headers)
    canonical_request = "\n".join(
        [
            environ["REQUEST_METHOD"],
            raw_path.split("?", 1)[0],
            canonical_query,
            canonical_headers,
            ";".join(signed_headers),
            "UNSIGNED-PAYLOAD",
        ]
    )
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    date, region, service, terminator = scope.split("/")
    key = f"AWS4{SECRET_KEY}".encode()
    for part in (date, region, service, terminator):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")
