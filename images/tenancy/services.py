"""Writes on tenants and their keys (API, admin, commands): one function per change."""

from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from images.models import DEFAULT_SCOPES, ApiKey, Client
from images.tenancy.auth import generate_key


def client_create(
    *,
    name: str,
    slug: str = "",
    plan: str = "free",
    scopes: Sequence[str] | None = None,
    with_key: bool = True,
    **fields: object,
) -> tuple[Client, str]:
    """Create a tenant and its first API key; the key is returned once and never stored.

    `with_key=False` (tenants whose users log in instead) makes no key and returns "".
    """
    with transaction.atomic():
        client = Client.objects.create(
            name=name,
            slug=slug or _unique_slug(name),
            plan=plan,
            scopes=list(scopes if scopes is not None else DEFAULT_SCOPES),
            **fields,
        )
        key = api_key_create(client=client) if with_key else ""
    return client, key


def _unique_slug(name: str) -> str:
    base = slugify(name)[:90] or "client"
    slug, n = base, 1
    while Client.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def api_key_create(*, client: Client) -> str:
    key, prefix, key_hash = generate_key()
    ApiKey.objects.create(client=client, prefix=prefix, key_hash=key_hash)
    return key


def client_rotate_key(*, client: Client) -> str:
    """Revoke every key of the client and make a new one."""
    with transaction.atomic():
        client.api_keys.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        return api_key_create(client=client)


def client_deactivate(*, client: Client) -> None:
    """A soft delete: the tenant's keys stop working, its data stays."""
    client.is_active = False
    client.save(update_fields=["is_active", "updated_at"])
