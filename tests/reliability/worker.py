"""A real RQ worker for the reliability tests: `python -m tests.reliability.worker [--burst]`.

Our worker class, as `manage.py rqworker` runs it. It registers the test-only blocking step, and
shortens the grace after a missed heartbeat (RQ's is 60 s) so that a killed worker's job is seen
as abandoned within seconds.
"""

import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imago_site.settings")
django.setup()

import django_rq  # noqa: E402
from rq.job import Job  # noqa: E402

from images.library.pipeline import step  # noqa: E402
from kit.workers import Worker  # noqa: E402
from tests.reliability.gate import STEP_NAME, wait_for_gate  # noqa: E402

HEARTBEAT_GRACE = 2

step(STEP_NAME)(wait_for_gate)


class QuickHeartbeatWorker(Worker):
    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return self.job_monitoring_interval + HEARTBEAT_GRACE


if __name__ == "__main__":
    queues = [django_rq.get_queue(name) for name in ("high", "default", "low")]
    worker = QuickHeartbeatWorker(
        queues, connection=queues[0].connection, job_monitoring_interval=1
    )
    worker.work(burst="--burst" in sys.argv, logging_level="INFO")
