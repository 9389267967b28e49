"""Settings for bench/upload.py's servers: Imago's own, with one more route (upload_urls)."""

from imago_site.settings import *  # noqa: F403 (all of Imago's settings, unchanged)

ROOT_URLCONF = "upload_urls"
