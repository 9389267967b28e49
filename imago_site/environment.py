"""How settings.py reads the environment: typed helpers, secrets from files, and the checks that
stop a start whose value would fail later."""

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured


def env(name: str, default: str = "") -> str:
    """A setting from the environment, or from the file named by NAME_FILE (Docker secrets)."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        return Path(file_path).read_text().strip()
    # An empty variable counts as unset, so `VAR= command` restores the default.
    return os.environ.get(name) or default


def envbool(name: str, default: bool) -> bool:
    value = env(name, "")
    if not value:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def envint(name: str, default: int) -> int:
    value = env(name, "")
    return int(value) if value.strip() else default


def env_any(*names: str, default: str = "") -> str:
    """The first of several spellings that is set (ours, then the one other tools document)."""
    return next((value for name in names if (value := env(name))), default)


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def envurl(name: str) -> str:
    """An operator's webhook target: http(s), and short enough for a task's column."""
    url = env(name, "")
    if url and (urlsplit(url).scheme not in ("http", "https") or len(url) > 200):
        raise ImproperlyConfigured(f"{name} must be an http(s) URL of at most 200 characters.")
    return url


def origin(url: str) -> str:
    """scheme://host[:port] of a URL, as a Content-Security-Policy source."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def local_secret_key(path: Path) -> str:
    """A random key kept beside the code, so that every process of a checkout signs alike."""
    try:
        with path.open("x") as fp:
            fp.write(secrets.token_urlsafe(50))
    except FileExistsError:
        pass
    return path.read_text().strip()
