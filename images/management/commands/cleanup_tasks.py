from typing import Any

from django.core.management.base import BaseCommand

from images.plates.tasks import tasks_cleanup


class Command(BaseCommand):
    help = "Purge expired anonymisation tasks and retry undelivered ones (rqcron runs it too)."

    def handle(self, *args: Any, **options: Any) -> None:
        purged, redelivered = tasks_cleanup()
        self.stdout.write(f"Purged {purged} expired task(s); queued {redelivered} delivery(ies).")
