"""Expiring links to stored files: presigned by S3, or HMAC-signed and served by /files/signed/."""

from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, JsonResponse
from django.urls import reverse
from django.utils import timezone

from images.library import storage
from images.models import Client

SALT = "imago.files.signed"
CACHE_CONTROL = "private, max-age=300"


def signed_url(
    request: HttpRequest | None, *, client: Client, name: str, content_type: str
) -> tuple[str, datetime]:
    ttl = settings.SIGNED_URL_TTL
    expires_at = timezone.now() + timedelta(seconds=ttl)
    if storage.is_remote():
        # S3 answers with the type the link names, as /files/signed/ does, whatever the object's
        # metadata says.
        params = {"ResponseContentType": content_type, "ResponseCacheControl": CACHE_CONTROL}
        return default_storage.url(name, parameters=params, expire=ttl), expires_at
    token = signing.dumps(
        {"c": client.pk, "n": name, "t": content_type},
        key=settings.SIGNED_URL_SECRET,
        salt=SALT,
        compress=True,
    )
    path = reverse("signed-file", kwargs={"token": token})
    return (request.build_absolute_uri(path) if request else path), expires_at


def _error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"code": code, "detail": detail}, status=status)


def serve_signed(request: HttpRequest, token: str) -> FileResponse | JsonResponse:
    try:
        payload = signing.loads(
            token, key=settings.SIGNED_URL_SECRET, salt=SALT, max_age=settings.SIGNED_URL_TTL
        )
    except signing.SignatureExpired:
        return _error(410, "link_expired", "This link has expired; ask the API for a new one.")
    except signing.BadSignature:
        return _error(403, "bad_signature", "This link is not valid.")
    client = Client.objects.filter(pk=payload["c"], is_active=True).first()
    # The token names its tenant, and only that tenant's files can be reached through it.
    if client is None or not payload["n"].startswith(f"{client.storage_prefix}/"):
        return _error(403, "bad_signature", "This link is not valid.")
    if not default_storage.exists(payload["n"]):
        return _error(404, "not_found", "The file no longer exists.")
    response = FileResponse(default_storage.open(payload["n"], "rb"), content_type=payload["t"])
    response["Cache-Control"] = CACHE_CONTROL
    return response
