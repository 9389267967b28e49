"""DETECTION_DEVICE: CUDA when this onnxruntime has it, else the CPU, said once and shown on the
health page. The machines here have the CPU build of onnxruntime, as CI has."""

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import onnxruntime
import PIL.Image
import pytest
from django.test import Client as HttpClient

from images.detection.engine import OnnxDetector, backends, execution_providers
from tests.engine.test_models import spec
from tests.helpers import image_bytes

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_choice():
    execution_providers.cache_clear()
    yield
    execution_providers.cache_clear()


def test_the_cpu_is_the_default():
    assert execution_providers("cpu") == ("CPUExecutionProvider",)


def test_cuda_falls_back_to_the_cpu_with_a_warning_when_onnxruntime_lacks_it(caplog):
    assert "CUDAExecutionProvider" not in onnxruntime.get_available_providers()
    with caplog.at_level(logging.WARNING, logger=backends.__name__):
        assert execution_providers("cuda") == ("CPUExecutionProvider",)
        execution_providers("cuda")
    warnings = [r.getMessage() for r in caplog.records if "DETECTION_DEVICE" in r.getMessage()]
    assert len(warnings) == 1  # once per process, not once per model load
    assert "onnxruntime-gpu" in warnings[0]


def test_cuda_comes_first_when_onnxruntime_offers_it(monkeypatch):
    offered = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: offered)
    assert execution_providers("cuda") == ("CUDAExecutionProvider", "CPUExecutionProvider")


def test_a_model_loaded_for_cuda_here_detects_on_the_cpu():
    detector = OnnxDetector(spec("coco"), threads=1, device="cuda")
    assert detector.session.get_providers() == ["CPUExecutionProvider"]
    picture = PIL.Image.open(io.BytesIO(image_bytes(size=(320, 240)))).convert("RGB")
    assert detector.predict(picture) == []  # a flat red picture: nothing, but it ran


def test_the_health_page_says_which_provider_runs(db, settings):
    settings.DETECTION_DEVICE = "cuda"
    detection = HttpClient().get("/health/detailed").json()["checks"]["detection"]
    assert detection["ok"] is True
    assert (detection["device"], detection["provider"]) == ("cuda", "CPUExecutionProvider")
    assert "CPUExecutionProvider" in detection["available_providers"]


def _settings_with(**env: str) -> subprocess.CompletedProcess:
    code = "from django.conf import settings; print(settings.DETECTION_DEVICE)"
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "imago_site.settings", **env},
        capture_output=True,
        text=True,
    )


def test_plate_detects_processing_device_is_read_and_a_typo_is_refused():
    assert _settings_with(PROCESSING_DEVICE="cuda").stdout.strip() == "cuda"
    assert _settings_with(DETECTION_DEVICE="CPU", PROCESSING_DEVICE="cuda").stdout.strip() == "cpu"
    refused = _settings_with(DETECTION_DEVICE="gpu")
    assert refused.returncode != 0
    assert "DETECTION_DEVICE must be cpu or cuda" in refused.stderr
