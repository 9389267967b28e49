import os
import subprocess
import sys
import tempfile
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import slug_re
from django.utils.text import slugify

from images.detection import pt_export
from images.detection import services as detection
from images.detection.model_files import ModelRefused
from images.models import Client


class Command(BaseCommand):
    help = (
        "Register a YOLO model: an .onnx as it is, or a .pt exported to ONNX in a child process "
        "(loading a .pt runs the code it holds: only files you trust; needs make install-yolo)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--name", default="", help="Defaults to the file's name.")
        parser.add_argument(
            "--client", default="", help="Tenant id or slug; without one, every tenant can use it."
        )
        parser.add_argument("--confidence", type=float, default=0.25)
        parser.add_argument(
            "--timeout", type=int, default=600, help="Seconds the .pt export may take."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        name = options["name"] or slugify(path.stem)
        if not slug_re.fullmatch(name) or len(name) > 100:
            raise CommandError(f"{name!r} is not a valid model name (letters, digits, - and _).")
        if name in settings.DETECTION_MODELS:
            raise CommandError(f"{name!r} is a built-in model's name.")
        if not 0 <= options["confidence"] <= 1:
            raise CommandError("--confidence is between 0 and 1.")
        client = _client(options["client"]) if options["client"] else None
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        with tempfile.TemporaryDirectory(prefix="register_model_") as work:
            onnx_path = path
            if path.suffix.lower() in (".pt", ".pth"):
                onnx_path = _export(path, Path(work), timeout=options["timeout"])
            try:
                with onnx_path.open("rb") as fp:
                    model = detection.detector_model_register(
                        client=client,
                        name=name,
                        fp=fp,
                        filename=onnx_path.name,
                        confidence=options["confidence"],
                    )
            except ModelRefused as exc:
                raise CommandError(exc.detail) from exc
        owner = f"tenant {client.slug}" if client else "every tenant"
        self.stdout.write(
            f"Registered {model.name} ({model.task}, {len(model.class_names)} classes, "
            f"input {model.input_size}) for {owner}."
        )


def _client(value: str) -> Client:
    lookup = {"pk": int(value)} if value.isdigit() else {"slug": value}
    client = Client.objects.filter(**lookup).first()
    if client is None:
        raise CommandError(f"No client {value!r}.")
    return client


def _export(path: Path, work: Path, *, timeout: int) -> Path:
    """The .pt's ONNX export, made by a child process that is the only one to unpickle it.

    The child gets a copy of the file in a scratch folder (ultralytics writes the export beside
    it) and a bare environment: none of the server's secrets are within its reach.
    """
    source = work / "model.pt"
    source.write_bytes(path.read_bytes())
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "YOLO_CONFIG_DIR": str(work),
        "LANG": "C.UTF-8",
    }
    try:
        result = subprocess.run(
            [sys.executable, "-I", pt_export.__file__, str(source)],
            cwd=work,
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandError(f"The export took more than {timeout} s.") from exc
    exported = source.with_suffix(".onnx")
    if result.returncode != 0 or not exported.is_file():
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise CommandError("The .pt could not be exported to ONNX:\n" + "\n".join(tail))
    return exported
