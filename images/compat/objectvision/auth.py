"""`Authorization: Bearer <JWT>` for ObjectVision's users: they act as their tenant does."""

from dataclasses import dataclass

from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.tokens import Token

from images.compat.objectvision.models import Member
from images.tenancy.auth import ClientPrincipal


@dataclass
class MemberPrincipal(ClientPrincipal):
    """request.user for a user logged in with a JWT: the tenant's scopes, no API key."""

    member: Member | None = None


class MemberJwtAuthentication(JWTAuthentication):
    """Access tokens made by /api/v1/auth/login; refresh tokens are refused here."""

    def authenticate(self, request: Request) -> tuple[MemberPrincipal, Token] | None:
        try:
            found = super().authenticate(request)
        except InvalidToken as exc:
            raise exceptions.AuthenticationFailed(
                "The token is invalid or expired; log in again or refresh it.",
                code="token_not_valid",
            ) from exc
        if found is None:
            return None
        user, token = found
        member = Member.objects.select_related("client").filter(user=user).first()
        if member is None:
            raise exceptions.AuthenticationFailed("This user has no tenant.", code="no_tenant")
        if not member.client.is_active:
            raise exceptions.AuthenticationFailed("This client is deactivated.", code="inactive")
        return MemberPrincipal(client=member.client, api_key=None, member=member), token

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"
