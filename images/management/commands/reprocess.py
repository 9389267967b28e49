from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from images.library import services
from images.library.pipeline import step_names
from images.models import Image, ImageStatus


class Command(BaseCommand):
    help = "Queue images for reprocessing (on the low queue), all steps or named ones."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--client", help="Only this tenant's images (slug).")
        parser.add_argument("--status", choices=ImageStatus.values, help="Only images in status.")
        parser.add_argument(
            "--step", action="append", dest="steps", help="A step to rerun (repeatable)."
        )
        parser.add_argument("--all", action="store_true", help="Every image (no filter needed).")

    def handle(self, *args: Any, **options: Any) -> None:
        if not (options["all"] or options["client"] or options["status"]):
            raise CommandError("Name --client and/or --status, or pass --all.")
        unknown = sorted(set(options["steps"] or []) - set(step_names()))
        if unknown:
            raise CommandError(f"Unknown steps: {', '.join(unknown)}; known: {step_names()}")
        images = Image.objects.select_related("client").order_by("pk")
        if options["client"]:
            images = images.filter(client__slug=options["client"])
        if options["status"]:
            images = images.filter(status=options["status"])
        total = images.count()
        width = len(str(total))
        for n, image in enumerate(images.iterator(), start=1):
            steps = services.image_reprocess(image=image, steps=options["steps"], bulk=True)
            self.stdout.write(f"[{n:>{width}}/{total}] image {image.pk}: {', '.join(steps)}")
        self.stdout.write(self.style.SUCCESS(f"Queued {total} image(s)."))
