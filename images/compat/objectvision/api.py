"""ObjectVision's /api/v1/auth/* and /api/v1/users/* routes."""

import uuid
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from images.compat.objectvision import services
from images.compat.objectvision.auth import MemberPrincipal
from images.compat.objectvision.models import Member
from images.models import Scope
from kit.errors import DomainError
from kit.openapi import error_responses
from kit.throttles import AddressRateThrottle

TAGS = ["users"]
# Argon2 reads the whole password: a longer one only costs the server time.
PASSWORD_MAX_LENGTH = 256


class AuthThrottle(AddressRateThrottle):
    """Signup, login and refresh by address: they take no key to count by."""

    scope = "objectvision-auth"

    def get_rate(self) -> str:
        return settings.OBJECTVISION_AUTH_RATE


class SignupSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=PASSWORD_MAX_LENGTH, trim_whitespace=False)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=254, help_text="The user's email.")
    password = serializers.CharField(max_length=PASSWORD_MAX_LENGTH, trim_whitespace=False)


class RefreshSerializer(serializers.Serializer):
    refresh_token = serializers.CharField(
        max_length=4096, help_text="The login's refresh_token (simplejwt's `refresh` also works)."
    )

    def to_internal_value(self, data: Any) -> dict[str, str]:
        if isinstance(data, Mapping) and "refresh_token" not in data and "refresh" in data:
            data = {"refresh_token": data["refresh"]}
        return super().to_internal_value(data)


class MemberChangeSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=254, required=False)
    password = serializers.CharField(
        max_length=PASSWORD_MAX_LENGTH, required=False, trim_whitespace=False
    )
    current_password = serializers.CharField(
        max_length=PASSWORD_MAX_LENGTH,
        required=False,
        trim_whitespace=False,
        help_text="Required to change `email` or `password`.",
    )


class TokensSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    refresh_token = serializers.CharField()
    token_type = serializers.CharField(help_text='Always "bearer".')


class MemberSerializer(serializers.ModelSerializer):
    class Meta:
        model = Member
        fields = ["id", "email", "name", "created_at", "updated_at"]


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class PublicView(APIView):
    """No credentials read (a key sent along would lift the address limit), limited by address."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [AuthThrottle]


class SignupView(PublicView):
    @extend_schema(
        tags=TAGS,
        summary="Sign up (ObjectVision; OBJECTVISION_SIGNUP)",
        request=SignupSerializer,
        responses={
            201: MemberSerializer,
            **error_responses(
                {403: "Signup is closed (OBJECTVISION_SIGNUP).", 409: "The email is taken."}
            ),
        },
    )
    def post(self, request: Request) -> Response:
        if not settings.OBJECTVISION_SIGNUP:
            raise DomainError("signup_closed", "Signup is closed; an operator makes accounts.", 403)
        data = _valid(SignupSerializer, request)
        member = services.member_signup(**data)
        return Response(MemberSerializer(member).data, status=status.HTTP_201_CREATED)


class LoginView(PublicView):
    @extend_schema(
        tags=TAGS,
        summary="Log in with an email and a password (form)",
        request={"application/x-www-form-urlencoded": LoginSerializer},
        responses={200: TokensSerializer, **error_responses({401: "Wrong email or password."})},
    )
    def post(self, request: Request) -> Response:
        data = _valid(LoginSerializer, request)
        return Response(services.member_login(email=data["username"], password=data["password"]))


class RefreshView(PublicView):
    @extend_schema(
        tags=TAGS,
        summary="A new access token from a refresh token",
        request=RefreshSerializer,
        responses={200: TokensSerializer, **error_responses({401: "A refused refresh token."})},
    )
    def post(self, request: Request) -> Response:
        data = _valid(RefreshSerializer, request)
        return Response(services.access_refresh(**data))


def _member(request: Request) -> Member:
    user = request.user
    if not isinstance(user, MemberPrincipal) or user.member is None:
        raise DomainError("jwt_required", "Only users logged in with a JWT have a profile.", 403)
    return user.member


class LogoutView(APIView):
    required_scopes: list[Scope] = []

    @extend_schema(
        tags=TAGS,
        summary="Log out: refuse the refresh token from now on",
        request=RefreshSerializer,
        responses={200: None},
    )
    def post(self, request: Request) -> Response:
        data = _valid(RefreshSerializer, request)
        services.member_logout(member=_member(request), **data)
        return Response({"detail": "Logged out."})


class ProfileView(APIView):
    required_scopes: list[Scope] = []

    @extend_schema(
        tags=TAGS, summary="Read the logged-in user's profile", responses=MemberSerializer
    )
    def get(self, request: Request) -> Response:
        return Response(MemberSerializer(_member(request)).data)


def _own(request: Request, user_id: uuid.UUID) -> Member:
    """The caller itself; another user's id is no different from an unknown one."""
    member = _member(request)
    if member.id != user_id:
        raise DomainError("not_found", "No such user.", 404)
    return member


class UserView(APIView):
    required_scopes: list[Scope] = []

    @extend_schema(
        tags=TAGS,
        summary="Read a user: only the logged-in user itself",
        responses={200: MemberSerializer, **error_responses({404: "Another or unknown user."})},
    )
    def get(self, request: Request, user_id: uuid.UUID) -> Response:
        return Response(MemberSerializer(_own(request, user_id)).data)

    @extend_schema(
        tags=TAGS,
        summary="Change the logged-in user's name, email or password",
        request=MemberChangeSerializer,
        responses={
            200: MemberSerializer,
            **error_responses(
                {
                    403: "current_password is wrong.",
                    404: "Another or unknown user.",
                    409: "The email is taken.",
                }
            ),
        },
    )
    def patch(self, request: Request, user_id: uuid.UUID) -> Response:
        member = _own(request, user_id)
        data = _valid(MemberChangeSerializer, request)
        member = services.member_update(member=member, **data)
        return Response(MemberSerializer(member).data)
