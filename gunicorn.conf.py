"""gunicorn's settings, read from the working directory: the web service of compose and the image.

Command-line flags (bind, workers, timeout in the Dockerfile and compose.yaml) override these.
"""

import os
import shutil
from typing import Any

# Several worker processes answer requests, each counting its own: prometheus-client's
# multiprocess mode writes every worker's figures under this folder and /metrics adds them up.
# prometheus-client reads the variable when first imported, so it is set here, in the master,
# before any worker is forked; files of a previous run would be counted again, so they go.
metrics_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "/tmp/imago-prometheus")
shutil.rmtree(metrics_dir, ignore_errors=True)
os.makedirs(metrics_dir, exist_ok=True)

# gunicorn's own lines (workers booting, timeouts) in the application's format; the application
# writes one access line per request itself (logger imago.request), with route and request id.
from imago_site.settings import LOG_FORMAT, LOG_LEVEL, TRUSTED_PROXIES  # noqa: E402
from kit.logs import logging_config  # noqa: E402

logconfig_dict = logging_config(LOG_FORMAT, LOG_LEVEL)
accesslog = None

# The proxies whose forwarding headers the application believes are the ones whose
# X-Forwarded-Proto gunicorn believes too; unset, gunicorn keeps its default (127.0.0.1, ::1).
if TRUSTED_PROXIES:
    forwarded_allow_ips = ",".join(TRUSTED_PROXIES)


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's live gauges must not be added to the others' (counters stay)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
