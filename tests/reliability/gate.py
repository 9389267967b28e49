"""A pipeline step that blocks until the test opens its gate: a job to kill mid-run."""

import os
import time
from pathlib import Path

from images.models import Image

GATE_DIR_ENV = "IMAGO_TEST_GATE_DIR"
STEP_NAME = "wait_for_gate"


def gate_dir() -> Path:
    return Path(os.environ[GATE_DIR_ENV])


def wait_for_gate(image: Image) -> dict:
    # The file's name is the work-horse's pid: the test kills that process.
    (gate_dir() / f"running-{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while not (gate_dir() / "open").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never opened the gate")
        time.sleep(0.05)
    return {"pid": os.getpid()}


def running_pids() -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in gate_dir().glob("running-*"))


def open_gate() -> None:
    (gate_dir() / "open").touch()
