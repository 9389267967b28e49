"""plate_detect had no authentication: its clients send no credentials at all."""

import logging

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication
from rest_framework.request import Request

from images.models import Client
from images.tenancy.auth import ClientPrincipal

logger = logging.getLogger(__name__)


class KeylessAuthentication(authentication.BaseAuthentication):
    """On plate_detect's routes only (views with `plate_detect_route = True`), a request with no
    credentials acts as the tenant PLATE_DETECT_CLIENT names, with that tenant's scopes and rate
    limit. Unset, or on any other route, such a request answers 401 as before."""

    def authenticate(self, request: Request) -> tuple[ClientPrincipal, None] | None:
        slug = settings.PLATE_DETECT_CLIENT
        view = (request.parser_context or {}).get("view")
        if (
            not slug
            or not getattr(view, "plate_detect_route", False)
            or _sends_credentials(request)
        ):
            return None
        client = Client.objects.filter(slug=slug, is_active=True).first()
        if client is None:
            logger.error(
                "PLATE_DETECT_CLIENT=%s names no active tenant: keyless requests refused", slug
            )
            return None
        return ClientPrincipal(client=client, api_key=None), None


def _sends_credentials(request: Request) -> bool:
    # A caller that sends a credential meant it: one Imago did not accept is not made keyless.
    return bool(request.headers.get("Authorization") or request.headers.get("X-API-Key"))


class KeylessScheme(OpenApiAuthenticationExtension):
    """Nothing to document: whether these routes need a key depends on the deployment
    (docs/coming-from-plate-detect.md), and the schema names the key they always accept."""

    target_class = KeylessAuthentication
    name: list[str] = []

    def get_security_requirement(self, auto_schema: object) -> None:
        return None

    def get_security_definition(self, auto_schema: object) -> list[dict]:
        return []
