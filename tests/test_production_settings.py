"""Production settings come from the environment: `check --deploy` passes with production values."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def production_env(tmp_path: Path) -> dict[str, str]:
    """What a deployment sets: the secret key from a file (Docker secrets), HTTPS behind a proxy."""
    secret = tmp_path / "secret_key"
    secret.write_text(secrets.token_urlsafe(50) + "\n")
    return {
        "PATH": os.environ["PATH"],
        "DEBUG": "false",
        "SECRET_KEY_FILE": str(secret),
        "ALLOWED_HOSTS": "imago.example.com",
        "SECURE_SSL_REDIRECT": "true",
        "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
        "SECURE_HSTS_PRELOAD": "true",
        "DATABASE_URL": "postgres://imago@postgres:5432/imago",
        "REDIS_URL": "redis://redis:6379/0",
    }


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_check_deploy_passes_with_production_values(production_env):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_check_deploy_fails_with_the_laptop_defaults(production_env):
    laptop = {"PATH": production_env["PATH"], "SECRET_KEY": "short"}
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=laptop)
    assert result.returncode != 0
    for check in ("security.W004", "security.W008", "security.W009", "security.W012"):
        assert check in result.stderr


def test_the_environment_drives_the_security_settings(production_env):
    names = [
        "DEBUG",
        "ALLOWED_HOSTS",
        "SECURE_SSL_REDIRECT",
        "SECURE_PROXY_SSL_HEADER",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_HSTS_SECONDS",
        "LOG_FORMAT",
    ]
    code = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}))"
        "; print(settings.SECRET_KEY)"
    )
    result = manage("shell", "-c", code, env=production_env)
    assert result.returncode == 0, result.stderr
    values_line, key_line = result.stdout.strip().splitlines()[-2:]
    assert json.loads(values_line) == {
        "DEBUG": False,
        "ALLOWED_HOSTS": ["imago.example.com"],
        "SECURE_SSL_REDIRECT": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "LOG_FORMAT": "json",
    }
    assert key_line == Path(production_env["SECRET_KEY_FILE"]).read_text().strip()


@pytest.mark.django_db
def test_probes_and_the_scraper_are_not_redirected_to_https(settings, client):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/api/v1/images/").status_code == 301
    assert client.get("/health").status_code == 200
    assert client.get("/metrics").status_code == 200
