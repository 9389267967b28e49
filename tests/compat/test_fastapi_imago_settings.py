"""The FastAPI Imago's variables are read as aliases: Imago's own name wins when both are set."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READ = """
import json
from imago_site import settings as s
storage = s.STORAGES["default"]["OPTIONS"]
print(json.dumps({
    "ADMIN_API_KEY": s.ADMIN_API_KEY,
    "SECRET_KEY": s.SECRET_KEY,
    "SIGNED_URL_SECRET": s.SIGNED_URL_SECRET,
    "MAX_UPLOAD_BYTES": s.MAX_UPLOAD_BYTES,
    "DATA_UPLOAD_MAX_MEMORY_SIZE": s.DATA_UPLOAD_MAX_MEMORY_SIZE,
    "PIPELINE_STEPS": s.PIPELINE_STEPS,
    "PIPELINE_RETRY_MAX": s.PIPELINE_RETRY_MAX,
    "access_key": storage.get("access_key"),
    "secret_key": storage.get("secret_key"),
}))
"""
LEGACY = {
    "ADMIN_API_KEY": "master",
    "JWT_SECRET_KEY": "jwt-secret",
    "SIGNED_URL_SECRET": "link-secret",
    "MAX_UPLOAD_SIZE_MB": "5",
    "OCR_ENABLED": "false",
    "WORKER_MAX_TRIES": "5",
    "STORAGE_BACKEND": "s3",
    "S3_ACCESS_KEY": "legacy-access",
    "S3_SECRET_KEY": "legacy-secret",
}


def settings_with(**variables: str) -> dict:
    # Only what the test names: the runner's own variables must not leak into the settings.
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **variables}
    result = subprocess.run(
        [sys.executable, "-c", READ], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_legacy_names_alone_set_imagos_settings_in_its_units():
    values = settings_with(**LEGACY)
    assert values["ADMIN_API_KEY"] == "master"
    assert values["SECRET_KEY"] == "jwt-secret"
    assert values["SIGNED_URL_SECRET"] == "link-secret"
    assert values["MAX_UPLOAD_BYTES"] == values["DATA_UPLOAD_MAX_MEMORY_SIZE"] == 5 * 1024 * 1024
    assert "ocr" not in values["PIPELINE_STEPS"] and "exif" in values["PIPELINE_STEPS"]
    # Five tries: the first run and four retries.
    assert values["PIPELINE_RETRY_MAX"] == 4
    assert (values["access_key"], values["secret_key"]) == ("legacy-access", "legacy-secret")


def test_imagos_own_names_win_over_the_legacy_ones():
    values = settings_with(
        **LEGACY,
        SECRET_KEY="imago-secret",
        MAX_UPLOAD_BYTES="1000",
        PIPELINE_STEPS="exif,ocr",
        PIPELINE_RETRY_MAX="1",
        S3_ACCESS_KEY_ID="imago-access",
        S3_SECRET_ACCESS_KEY="imago-secret-key",
    )
    assert values["SECRET_KEY"] == "imago-secret"
    assert values["MAX_UPLOAD_BYTES"] == values["DATA_UPLOAD_MAX_MEMORY_SIZE"] == 1000
    assert values["PIPELINE_STEPS"] == ["exif", "ocr"]
    assert values["PIPELINE_RETRY_MAX"] == 1
    assert (values["access_key"], values["secret_key"]) == ("imago-access", "imago-secret-key")


def test_without_either_name_imagos_defaults_hold():
    values = settings_with(SECRET_KEY="imago-secret")
    assert values["ADMIN_API_KEY"] == ""
    assert values["SIGNED_URL_SECRET"] == "imago-secret"
    assert values["MAX_UPLOAD_BYTES"] == 50 * 1024 * 1024
    assert "ocr" in values["PIPELINE_STEPS"]
    assert values["PIPELINE_RETRY_MAX"] == 3
