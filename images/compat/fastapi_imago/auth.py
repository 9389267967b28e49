"""ADMIN_API_KEY: the FastAPI Imago's master key, an operator's key for /auth/clients only."""

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework import authentication, permissions
from rest_framework.request import Request

from kit.errors import DomainError

if TYPE_CHECKING:
    from rest_framework.views import APIView


@dataclass(frozen=True)
class AdminKeyHolder:
    """request.user for a caller with ADMIN_API_KEY: staff, for the routes that accept the key."""

    username: str = "ADMIN_API_KEY"
    is_authenticated: bool = True
    is_staff: bool = True


class AdminKeyAuthentication(authentication.BaseAuthentication):
    """`X-API-Key: <ADMIN_API_KEY>`; any other key is left to Imago's own authentication."""

    def authenticate(self, request: Request) -> tuple[AdminKeyHolder, None] | None:
        admin_key = settings.ADMIN_API_KEY
        sent = request.headers.get("X-API-Key", "").strip()
        if admin_key and sent and hmac.compare_digest(sent.encode(), admin_key.encode()):
            return AdminKeyHolder(), None
        return None

    def authenticate_header(self, request: Request) -> str:
        return "Token"


class AdminKeyConfigured(permissions.BasePermission):
    """The client routes exist only where the operator set ADMIN_API_KEY."""

    def has_permission(self, request: Request, view: "APIView") -> bool:
        if not settings.ADMIN_API_KEY:
            raise DomainError(
                "admin_api_key_unset",
                "Client management under /auth/clients is off: ADMIN_API_KEY is not set.",
                403,
            )
        return True
