"""Periodic jobs, run by `python manage.py rqcron imago_site.cron` (started by `make run`)."""

from rq import cron

from annotations.jobs import sweep_stuck_imports
from images.compat.objectvision.jobs import flush_expired_tokens
from images.jobs import cleanup_tasks, requeue_stuck_jobs, requeue_stuck_steps

# Expired anonymisation tasks are purged, and undelivered ones are delivered again.
cron.register(cleanup_tasks, queue_name="low", interval=600)
# Steps whose jobs never reached Redis (it was down) or were lost with it are queued again.
cron.register(requeue_stuck_steps, queue_name="high", interval=300)
# Insight imports whose job never reached Redis are queued again; those whose worker died fail.
cron.register(sweep_stuck_imports, queue_name="high", interval=300)
# Detection batches and plate tasks whose job never reached Redis are queued again; those whose
# worker stopped are failed (detection) or finished with their remaining files failed (plates).
cron.register(requeue_stuck_jobs, queue_name="high", interval=300)
# Expired refresh tokens (issued or logged out) of ObjectVision's users are forgotten.
cron.register(flush_expired_tokens, queue_name="low", interval=3600)
