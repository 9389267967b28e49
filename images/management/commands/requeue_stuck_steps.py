from argparse import ArgumentParser
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from redis.exceptions import RedisError

from images.detection.services import detection_jobs_sweep
from images.library.pipeline import pipeline_requeue_stuck
from images.plates.tasks import plate_tasks_sweep


class Command(BaseCommand):
    help = (
        "Queue again the pipeline steps, detection batches and plate tasks that no RQ job will "
        "run (Redis was down or lost them), and fail the running ones RQ gave up on (rqcron "
        "runs it too)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            default=settings.PIPELINE_STUCK_AFTER,
            help="Leave images younger than this many seconds alone (PIPELINE_STUCK_AFTER).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            older_than = timedelta(seconds=options["older_than"])
            sweep = pipeline_requeue_stuck(older_than=older_than)
            jobs = {
                "detection batch": detection_jobs_sweep(older_than=older_than),
                "plate task": plate_tasks_sweep(older_than=older_than),
            }
        except RedisError as exc:
            raise CommandError(f"Redis is unreachable ({exc}); run this again once it is.") from exc
        for image_id, steps in sweep.requeued.items():
            self.stdout.write(f"image {image_id}: queued {', '.join(steps)} again")
        for image_id, steps in sweep.failed.items():
            self.stdout.write(f"image {image_id}: failed abandoned {', '.join(steps)}")
        for kind, swept in jobs.items():
            for uuid in swept.requeued:
                self.stdout.write(f"{kind} {uuid}: queued again")
            for uuid in swept.failed:
                self.stdout.write(f"{kind} {uuid}: its worker stopped; failed")
        self.stdout.write(
            self.style.SUCCESS(
                f"Queued steps of {len(sweep.requeued)} image(s) again; "
                f"failed steps of {len(sweep.failed)}."
            )
        )
