"""A worker killed with SIGKILL mid-job: the job runs again and the image ends `done`."""

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import django_rq
import pytest
from django.core.management import call_command
from rq.registry import StartedJobRegistry

from images.library import pipeline
from images.models import Image, ImageStep
from tests.helpers import image_bytes, upload
from tests.reliability import gate
from tests.reliability.conftest import WorkerProcess, subprocess_env

# slow: worker processes killed and started again
pytestmark = [pytest.mark.slow, pytest.mark.timeout(90), pytest.mark.django_db(transaction=True)]


@pytest.fixture
def gated_pipeline(monkeypatch, settings, tmp_path: Path) -> Path:
    """The pipeline is one step that blocks until the test opens the gate."""
    settings.PIPELINE_STEPS = [gate.STEP_NAME]  # the workers' too (subprocess_env)
    directory = tmp_path / "gate"
    directory.mkdir()
    monkeypatch.setenv(gate.GATE_DIR_ENV, str(directory))
    monkeypatch.setattr(
        pipeline, "STEPS", {gate.STEP_NAME: pipeline.Step(gate.STEP_NAME, gate.wait_for_gate)}
    )
    return directory


def _wait_for(condition: Callable[[], object], what: str, worker: WorkerProcess) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; worker log:\n{worker.output()}")
        time.sleep(0.05)


def _upload_one(owner) -> Image:
    response = upload(owner.api, ("slow.jpg", image_bytes()))
    assert response.status_code == 201, response.content
    return Image.objects.get(pk=response.json()["images"][0]["id"])


def test_it_reruns_the_job_of_a_worker_killed_with_its_work_horse(
    owner, settings, gated_pipeline, workers, tmp_path
):
    image = _upload_one(owner)
    env = subprocess_env(settings)
    first = WorkerProcess(env, tmp_path / "worker-1.log")
    workers.append(first)
    _wait_for(gate.running_pids, "the step to start", first)
    assert ImageStep.objects.get(image=image).status == "running"

    first.kill_all(horses=gate.running_pids())
    gate.open_gate()
    # RQ sees the job as abandoned once the dead worker's heartbeat has expired.
    registry = StartedJobRegistry(queue=django_rq.get_queue("default"))
    _wait_for(registry.get_expired_job_ids, "the heartbeat to expire", first)

    second = WorkerProcess(env, tmp_path / "worker-2.log", burst=True)
    workers.append(second)
    assert second.wait(timeout=60) == 0, second.output()

    image.refresh_from_db()
    row = ImageStep.objects.get(image=image)
    assert (image.status, row.status, row.attempts) == ("done", "done", 2), second.output()
    assert len(gate.running_pids()) == 2
    assert "enqueued for retry" in second.output()


def test_it_retries_a_job_whose_work_horse_alone_was_killed(
    owner, settings, gated_pipeline, workers, tmp_path
):
    image = _upload_one(owner)
    worker = WorkerProcess(subprocess_env(settings), tmp_path / "worker.log")
    workers.append(worker)
    _wait_for(gate.running_pids, "the step to start", worker)
    [horse] = gate.running_pids()

    os.kill(horse, signal.SIGKILL)
    gate.open_gate()
    _wait_for(
        lambda: Image.objects.filter(pk=image.pk, status="done").exists(), "the rerun", worker
    )
    assert "Work-horse terminated unexpectedly" in worker.output()
    assert ImageStep.objects.get(image=image).attempts == 2


def test_a_step_that_keeps_killing_its_worker_ends_failed_not_running(
    owner, settings, gated_pipeline, workers, tmp_path
):
    settings.PIPELINE_RETRY_MAX = 1
    image = _upload_one(owner)
    env = subprocess_env(settings)
    registry = StartedJobRegistry(queue=django_rq.get_queue("default"))
    for run in (1, 2):
        worker = WorkerProcess(env, tmp_path / f"worker-{run}.log")
        workers.append(worker)
        _wait_for(lambda run=run: len(gate.running_pids()) == run, f"run {run}", worker)
        worker.kill_all(horses=gate.running_pids())
        _wait_for(registry.get_expired_job_ids, "the heartbeat to expire", worker)

    last = WorkerProcess(env, tmp_path / "worker-3.log", burst=True)
    workers.append(last)
    assert last.wait(timeout=60) == 0, last.output()
    assert ImageStep.objects.get(image=image).status == "running"

    call_command("requeue_stuck_steps", older_than=0)

    image.refresh_from_db()
    row = ImageStep.objects.get(image=image)
    assert (image.status, row.status, row.attempts) == ("failed", "failed", 2)
    assert "retries ran out" in row.error
    assert len(gate.running_pids()) == 2
