import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils import timezone

from images.models import ALL_SCOPES, ApiKey, Client, Plan
from images.tenancy import services
from images.tenancy.auth import hash_key, key_prefix

DEMO_SLUG = "demo"


class Command(BaseCommand):
    help = "Create (once) a demo tenant with a known key and an admin user, for `make run`."
    # Its questions: annotations' seed_demo_questions, which `make run` runs next.

    def handle(self, *args: Any, **options: Any) -> None:
        key = os.environ.get("IMAGO_DEMO_KEY", "imago_demo-key-change-me")
        client = Client.objects.filter(slug=DEMO_SLUG).first()
        if client is None:
            client, _ = services.client_create(
                name="Demo tenant", slug=DEMO_SLUG, plan=Plan.PREMIUM, scopes=ALL_SCOPES
            )
        # The demo key is known in advance so that the README's curl examples work as printed.
        demo_key, _ = ApiKey.objects.update_or_create(
            key_hash=hash_key(key),
            defaults={"client": client, "prefix": key_prefix(key), "revoked_at": None},
        )
        # The tenant's first key (made with it) and earlier demo keys: nobody holds their secret.
        client.api_keys.filter(revoked_at__isnull=True).exclude(pk=demo_key.pk).update(
            revoked_at=timezone.now()
        )
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "admin")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "admin")
        user_model = get_user_model()
        if not user_model.objects.filter(username=username).exists():
            user_model.objects.create_superuser(username, f"{username}@localhost", password)
            self.stdout.write(f"Admin user: {username} / {password}")
        else:
            self.stdout.write(f"Admin user: {username} (password unchanged)")
        self.stdout.write(f"Demo tenant '{client.slug}' API key: {key}")
