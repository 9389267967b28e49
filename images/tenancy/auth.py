"""API keys, scopes and per-client rate limits for DRF."""

import hashlib
import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import redis
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request

from images.models import ApiKey, Client, Plan, Scope

if TYPE_CHECKING:
    # DRF's views module reads the authentication classes (this module) at import time.
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)

KEY_PREFIX = "imago_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


def generate_key() -> tuple[str, str, str]:
    """A new key as (key, visible prefix, SHA-256 hex)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key_prefix(key), hash_key(key)


def key_prefix(key: str) -> str:
    """The part of a key that is kept in clear, to tell keys apart in lists."""
    return key[: len(KEY_PREFIX) + 8]


def hash_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class ClientPrincipal:
    """request.user for a program calling with an API key, a keyless plate_detect client or a
    user logged in with a JWT (images.compat)."""

    client: Client
    api_key: ApiKey | None  # None: a keyless legacy client or a JWT user (images.compat)
    is_authenticated: bool = True
    is_staff: bool = False

    @property
    def username(self) -> str:
        return self.client.slug

    def has_scope(self, scope: str) -> bool:
        return scope in self.client.scopes


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Accepts `Authorization: Token <key>` and `X-API-Key: <key>`."""

    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[ClientPrincipal, ApiKey] | None:
        key = self._key_from(request)
        if key is None:
            return None
        api_key = (
            ApiKey.objects.select_related("client")
            .filter(key_hash=hash_key(key), revoked_at__isnull=True)
            .first()
        )
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.", code="invalid_key")
        if not api_key.client.is_active:
            raise exceptions.AuthenticationFailed("This client is deactivated.", code="inactive")
        self._touch(api_key)
        return ClientPrincipal(client=api_key.client, api_key=api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword

    def _key_from(self, request: Request) -> str | None:
        header = request.headers.get("X-API-Key")
        if header:
            return header.strip()
        parts = request.headers.get("Authorization", "").split()
        if len(parts) == 2 and parts[0] == self.keyword:
            return parts[1]
        return None

    @staticmethod
    def _touch(api_key: ApiKey) -> None:
        # A write per request would serialise a tenant's calls; a minute's precision is enough.
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
            api_key.last_used_at = now


def is_operator(user: object) -> bool:
    """A staff user logged in with a session: sees every tenant."""
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_staff", False))


class HasScopes(permissions.BasePermission):
    """Tenants' keys need the view's `required_scopes` (required_scopes()); staff need none."""

    def has_permission(self, request: Request, view: "APIView") -> bool:
        user = request.user
        if not getattr(user, "is_authenticated", False):
            raise exceptions.NotAuthenticated(
                "Send an API key as 'Authorization: Token <key>' or 'X-API-Key: <key>'."
            )
        if is_operator(user):
            return True
        if not isinstance(user, ClientPrincipal):
            raise exceptions.PermissionDenied("Only tenants' keys and staff may call the API.")
        scopes_check(user, request, view)
        return True


def scopes_check(user: ClientPrincipal, request: Request, view: "APIView") -> None:
    """Refuse (403 missing_scope) a key that lacks a scope the view needs for this method."""
    missing = [scope for scope in required_scopes(request, view) if not user.has_scope(scope)]
    if missing:
        raise exceptions.PermissionDenied(
            f"This key lacks the scope {', '.join(missing)}.", code="missing_scope"
        )


def required_scopes(request: Request, view: "APIView") -> list[Scope]:
    """The view's `required_scopes` for the request's method: a dict by HTTP method (HEAD reads
    as GET), or one list for every method. What a view leaves out needs `admin`: a forgotten
    declaration refuses rather than allows."""
    scopes = getattr(view, "required_scopes", None)
    if scopes is None:
        return [Scope.ADMIN]
    if isinstance(scopes, dict):
        if not _answers(view, request.method):
            # A viewset's dict covers all its routes: POST names the upload's scope, not one
            # for POST on the list's route, which has no such operation.
            return [Scope.ADMIN]
        method = "GET" if request.method == "HEAD" else request.method
        return list(scopes.get(method, [Scope.ADMIN]))
    return list(scopes)


def _answers(view: "APIView", method: str) -> bool:
    """Whether this route has an operation for the method (a viewset's route, its own map)."""
    action_map = getattr(view, "action_map", None)
    if action_map is not None:
        return method.lower() in action_map
    return hasattr(view, method.lower())


@dataclass(frozen=True)
class RateLimit:
    limit: int
    remaining: int
    reset_seconds: int


class RateLimitHeadersMiddleware:
    """`X-RateLimit-Limit`, `-Remaining` and `-Reset` (seconds until the window ends) on every
    answer to a key whose rate was counted, so that clients can slow down before a 429 (which
    carries `Retry-After` too)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        rate: RateLimit | None = getattr(request, "rate_limit", None)
        if rate is not None:
            response["X-RateLimit-Limit"] = str(rate.limit)
            response["X-RateLimit-Remaining"] = str(rate.remaining)
            response["X-RateLimit-Reset"] = str(rate.reset_seconds)
        return response


def client_rate_limit(client: Client) -> int:
    """Requests a minute the tenant's keys may make: its own limit, else its plan's."""
    return client.rate_limit or (
        settings.RATE_LIMIT_PREMIUM if client.plan == Plan.PREMIUM else settings.RATE_LIMIT_FREE
    )


class ClientRateThrottle(throttling.BaseThrottle):
    """Fixed one-minute windows counted with Redis INCR.

    DRF's SimpleRateThrottle keeps a list of timestamps that it reads and rewrites whole, which
    loses counts under concurrent requests; INCR is atomic.
    """

    window = 60

    def __init__(self) -> None:
        self.retry_after: float | None = None

    def allow_request(self, request: Request, view: "APIView") -> bool:
        user = request.user
        if not isinstance(user, ClientPrincipal):
            return True
        client = user.client
        limit = client_rate_limit(client)
        now = time.time()
        window_start = math.floor(now / self.window) * self.window
        key = f"ratelimit:{client.pk}:{window_start}"
        try:
            count = self._count(key)
        except redis.exceptions.RedisError as exc:
            # Losing the rate limit for a moment is better than refusing every request.
            logger.warning("Rate limiting skipped, Redis unavailable: %s", exc)
            return True
        reset = window_start + self.window
        # Read by RateLimitHeadersMiddleware: DRF has no hook for headers on every answer.
        request._request.rate_limit = RateLimit(
            limit, max(0, limit - count), math.ceil(reset - now)
        )
        if count > limit:
            self.retry_after = reset - now
            return False
        return True

    def _count(self, key: str) -> int:
        try:
            return cache.incr(key)
        except ValueError:
            # The window's first request, or its key was dropped (flushed, evicted): add it,
            # unless another request just did, which the second incr then counts on.
            return 1 if cache.add(key, 1, timeout=self.window + 5) else cache.incr(key)

    def wait(self) -> float | None:
        return self.retry_after
