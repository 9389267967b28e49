"""Legacy clients against a live Imago: the static files are collected once for the session."""

from pathlib import Path

import pytest

from tests.live import collect_static


@pytest.fixture(scope="session")
def collected(tmp_path_factory) -> Path:
    return collect_static(tmp_path_factory.mktemp("staticfiles"))
