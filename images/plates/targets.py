"""BACKEND_UPLOAD_URL and BACKEND_CALLBACK_URL (plate_detect's names): the operator's webhook
targets for the tenant that PLATE_DETECT_CLIENT names, used where its tasks name none."""

from django.conf import settings

from images.models import Client


def operator_targets(client: Client) -> tuple[str, str]:
    """(upload URL, callback URL) from the environment: set only for the keyless tenant."""
    if not settings.PLATE_DETECT_CLIENT or client.slug != settings.PLATE_DETECT_CLIENT:
        return "", ""
    return settings.BACKEND_UPLOAD_URL, settings.BACKEND_CALLBACK_URL


def is_operator_target(client: Client, url: str) -> bool:
    """The operator set this target (it may be internal); a tenant's own targets are guarded."""
    return bool(url) and url in operator_targets(client)
