"""Signup, login, refresh, logout and profile changes of ObjectVision's users."""

import uuid

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from images.compat.objectvision.models import Member
from images.models import Plan
from images.tenancy.services import client_create
from kit.errors import DomainError


class AuthRefused(DomainError):
    STATUSES = {
        "weak_password": 400,
        "current_password_required": 400,
        "invalid_credentials": 401,
        "token_not_valid": 401,
        "not_your_token": 403,
        "wrong_password": 403,
        "email_taken": 409,
    }

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail, self.STATUSES[code])


def member_signup(*, email: str, password: str, name: str) -> Member:
    """A user with a tenant of its own on the free plan (no API key: it logs in)."""
    email = email.strip().lower()
    member_id = uuid.uuid4()
    user = get_user_model()(username=str(member_id), email=email, first_name=name[:150])
    _password_check(password, user)
    if Member.objects.filter(email=email).exists():
        raise _email_taken()
    try:
        with transaction.atomic():
            client, _ = client_create(name=name or email, plan=Plan.FREE, with_key=False)
            user.set_password(password)
            user.save()
            return Member.objects.create(
                id=member_id, user=user, client=client, email=email, name=name
            )
    except IntegrityError as exc:  # the same email signed up at the same moment
        raise _email_taken() from exc


def _password_check(password: str, user: AbstractBaseUser) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise AuthRefused("weak_password", " ".join(exc.messages)) from exc


def _email_taken() -> AuthRefused:
    return AuthRefused("email_taken", "A user with this email exists; log in instead.")


def member_login(*, email: str, password: str) -> dict[str, str]:
    member = (
        Member.objects.select_related("user", "client").filter(email=email.strip().lower()).first()
    )
    if member is None:
        # As long as a real check, so that the answer's time does not tell who has an account.
        get_user_model()().set_password(password)
        raise _bad_credentials()
    user = member.user
    if not user.check_password(password) or not user.is_active or not member.client.is_active:
        raise _bad_credentials()
    refresh = RefreshToken.for_user(user)
    return {
        "access_token": str(refresh.access_token),
        "refresh_token": str(refresh),
        "token_type": "bearer",
    }


def _bad_credentials() -> AuthRefused:
    return AuthRefused("invalid_credentials", "The email or the password is wrong.")


def access_refresh(*, refresh_token: str) -> dict[str, str]:
    """A new access token; the refresh token stays the same (no rotation)."""
    refresh = _refresh_token(refresh_token)
    member = Member.objects.select_related("user", "client").filter(
        user__username=refresh.get("sub")
    )
    found = member.first()
    if found is None or not found.user.is_active or not found.client.is_active:
        raise _refused_token()
    return {
        "access_token": str(refresh.access_token),
        "refresh_token": refresh_token,
        "token_type": "bearer",
    }


def member_logout(*, member: Member, refresh_token: str) -> None:
    """Blacklist the refresh token: it is refused from now on (access tokens expire)."""
    refresh = _refresh_token(refresh_token)
    if refresh.get("sub") != member.user.username:
        raise AuthRefused("not_your_token", "This refresh token is another user's.")
    refresh.blacklist()


def _refresh_token(value: str) -> RefreshToken:
    try:
        return RefreshToken(value)  # checks the signature, the expiry and the blacklist
    except TokenError as exc:
        raise _refused_token() from exc


def _refused_token() -> AuthRefused:
    return AuthRefused("token_not_valid", "The refresh token is invalid, expired or logged out.")


def member_update(
    *,
    member: Member,
    name: str | None = None,
    email: str | None = None,
    password: str | None = None,
    current_password: str | None = None,
) -> Member:
    """Change the user's own name, email or password. The email and the password ask for the
    current password too: a stolen access token alone cannot take the account over."""
    user = member.user
    if email is not None or password is not None:
        _check_current(user, current_password)
    if name is not None:
        member.name = name
        user.first_name = name[:150]
    if email is not None:
        member.email = user.email = email.strip().lower()
        if Member.objects.filter(email=member.email).exclude(pk=member.pk).exists():
            raise _email_taken()
    if password is not None:
        _password_check(password, user)
        user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
            member.save()
    except IntegrityError as exc:  # the same email taken at the same moment
        raise _email_taken() from exc
    if password is not None:
        _log_out_everywhere(user)
    return member


def _check_current(user: AbstractBaseUser, current_password: str | None) -> None:
    if not current_password:
        raise AuthRefused(
            "current_password_required", "Send current_password to change these fields."
        )
    if not user.check_password(current_password):
        raise AuthRefused("wrong_password", "current_password is wrong.")


def _log_out_everywhere(user: AbstractBaseUser) -> None:
    """A new password refuses every refresh token issued before it."""
    outstanding = OutstandingToken.objects.filter(user=user)
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in outstanding], ignore_conflicts=True
    )
