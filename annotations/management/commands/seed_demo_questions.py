"""`make run`'s questions: Robotoff-shaped ones for the demo tenant, so that the question page has
something to ask on a fresh install."""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from annotations.importer import insights_import
from annotations.models import InsightSettings
from images.management.commands.seed_demo import DEMO_SLUG
from images.models import Client

DEMO_QUESTIONS = Path(settings.BASE_DIR) / "fixtures" / "demo-questions.json"


class Command(BaseCommand):
    help = "Import (once) the demo questions for the tenant `seed_demo` makes, for `make run`."

    def handle(self, *args: Any, **options: Any) -> None:
        client = Client.objects.filter(slug=DEMO_SLUG).first()
        if client is None:
            raise CommandError("No demo tenant: run `manage.py seed_demo` first.")
        InsightSettings.objects.update_or_create(client=client, defaults={"public_questions": True})
        with DEMO_QUESTIONS.open("rb") as fp:
            counts = insights_import(client=client, fp=fp)
        self.stdout.write(f"Demo questions: {counts.created} new, {counts.unchanged} unchanged")
