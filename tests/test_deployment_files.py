"""No Docker engine runs here: the deployment files are checked by reading them."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SERVICES = {"web", "worker", "scheduler", "redis", "postgres", "minio"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_compose_has_every_service_with_a_healthcheck(compose):
    services = compose["services"]
    assert set(services) >= SERVICES
    for name in SERVICES:
        assert services[name]["healthcheck"]["test"], name


def test_stateful_services_keep_their_data_in_volumes(compose):
    for name in ("redis", "postgres", "minio"):
        [mount] = compose["services"][name]["volumes"]
        assert mount.split(":")[0] in compose["volumes"]


def test_the_app_services_share_one_configuration(compose):
    app = {name: compose["services"][name] for name in ("web", "worker", "scheduler")}
    assert {s["environment"]["DATABASE_URL"] for s in app.values()} == {
        "postgres://imago:${POSTGRES_PASSWORD:-imago}@postgres:5432/imago"
    }
    assert all(s["environment"]["STORAGE_BACKEND"] == "s3" for s in app.values())
    assert "rqworker" in app["worker"]["command"]
    assert "rqcron imago_site.cron" in app["scheduler"]["command"]
    assert "gunicorn" in app["web"]["command"]


def test_compose_config_validates_when_the_client_is_present():
    docker = shutil.which("docker")
    if (
        docker is None
        or subprocess.run([docker, "compose", "version"], capture_output=True).returncode
    ):
        pytest.skip("no docker compose client on this machine; the YAML checks above stand in")
    result = subprocess.run(
        [docker, "compose", "-f", str(ROOT / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={"SECRET_KEY": "x", "S3_SECRET_ACCESS_KEY": "y", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr


def test_the_dockerfile_is_multi_stage_non_root_with_models_and_a_healthcheck():
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    assert "manage.py fetch_models" in text
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert "HEALTHCHECK" in text
    assert "COPY --from=build /models /models" in text
    for name in (".venv", ".git", "media"):
        assert name in (ROOT / ".dockerignore").read_text().split()
