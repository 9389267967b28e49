"""Periodic jobs, run by `python manage.py rqcron imago_site.cron` (started by `make run`)."""

from rq import cron

from images.jobs import cleanup_tasks

# Expired anonymisation tasks are purged, and undelivered ones are delivered again.
cron.register(cleanup_tasks, queue_name="low", interval=600)
