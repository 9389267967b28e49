"""The storage settings a deployment gets from its environment (settings.py run afresh)."""

import re
from pathlib import Path

import pytest
import yaml
from django.core.exceptions import ImproperlyConfigured

from tests.storage.conftest import settings_from_env

ROOT = Path(__file__).resolve().parents[2]


def _default_storage(**environ: str) -> dict:
    return settings_from_env(environ)["STORAGES"]["default"]


def test_the_local_disk_is_the_default():
    storage = _default_storage(MEDIA_ROOT="/srv/media")
    assert storage == {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": "/srv/media"},
    }


def test_compose_configures_minio_with_links_for_the_published_port():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    # compose's own substitution: ${NAME:-default} gives the default, ${NAME:?why} a value we set.
    environ = {
        name: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", re.sub(r"\$\{\w+:\?[^}]*\}", "set", value))
        for name, value in compose["x-app"]["environment"].items()
    }
    storage = _default_storage(**environ)
    assert storage["BACKEND"] == "images.library.s3.S3Storage"
    options = storage["OPTIONS"]
    assert options["endpoint_url"] == "http://minio:9000"
    assert options["public_endpoint_url"] == "http://localhost:9000"
    assert options["bucket_name"] == "imago"
    assert (options["access_key"], options["secret_key"]) == ("imago", "set")
    assert options["client_config"].s3 == {"addressing_style": "path"}
    assert options["client_config"].signature_version == "s3v4"
    assert options["client_config"].connect_timeout == 5
    assert options["default_acl"] is None
    assert options["file_overwrite"] is False
    assert "9000:9000" in compose["services"]["minio"]["ports"]


def test_it_reads_the_names_django_storages_documents(tmp_path):
    (tmp_path / "key").write_text("from-a-file\n")
    (tmp_path / "secret").write_text("secret-from-a-file\n")
    options = _default_storage(
        STORAGE_BACKEND="s3",
        AWS_STORAGE_BUCKET_NAME="photos",
        AWS_S3_ENDPOINT_URL="https://s3.example.net",
        AWS_S3_REGION_NAME="eu-west-3",
        AWS_ACCESS_KEY_ID_FILE=str(tmp_path / "key"),
        AWS_SECRET_ACCESS_KEY_FILE=str(tmp_path / "secret"),
        AWS_QUERYSTRING_EXPIRE="600",
    )["OPTIONS"]
    assert options["bucket_name"] == "photos"
    assert options["endpoint_url"] == "https://s3.example.net"
    assert options["region_name"] == "eu-west-3"
    assert (options["access_key"], options["secret_key"]) == ("from-a-file", "secret-from-a-file")
    assert options["querystring_expire"] == 600


def test_our_names_win_over_the_aws_ones():
    options = _default_storage(
        STORAGE_BACKEND="s3", S3_BUCKET="ours", AWS_STORAGE_BUCKET_NAME="theirs"
    )["OPTIONS"]
    assert options["bucket_name"] == "ours"


def test_on_aws_itself_boto3_finds_the_credentials_and_the_addressing():
    options = _default_storage(STORAGE_BACKEND="s3")["OPTIONS"]
    assert options["endpoint_url"] is None
    assert options["access_key"] is options["secret_key"] is None
    assert options["client_config"].s3 == {"addressing_style": None}
    assert options["region_name"] == "us-east-1"
    assert options["querystring_expire"] == 3600


def test_links_that_s3_would_refuse_are_refused_at_start():
    with pytest.raises(ImproperlyConfigured, match="SIGNED_URL_TTL"):
        _default_storage(STORAGE_BACKEND="s3", SIGNED_URL_TTL=str(8 * 24 * 3600))
    # Local links have no such limit.
    assert _default_storage(SIGNED_URL_TTL=str(8 * 24 * 3600))["BACKEND"].endswith("SystemStorage")


def test_the_content_security_policy_lets_pages_show_pictures_from_the_storage():
    def pictures_from(**environ: str) -> list[str]:
        policy = settings_from_env(environ)["CONTENT_SECURITY_POLICY"]
        return policy["DIRECTIVES"]["img-src"]

    local = pictures_from()
    assert pictures_from(
        STORAGE_BACKEND="s3",
        S3_ENDPOINT_URL="http://minio:9000",
        S3_PUBLIC_ENDPOINT_URL="https://files.example.com/base/",
    ) == [*local, "https://files.example.com"]
    assert pictures_from(STORAGE_BACKEND="s3", S3_ENDPOINT_URL="http://minio:9000")[-1] == (
        "http://minio:9000"
    )
    assert pictures_from(STORAGE_BACKEND="s3")[-1] == "https://*.amazonaws.com"
