"""Import Robotoff predictions (JSONL, plain or gzip) or questions (JSON) as a tenant's insights.

Predictions replace the tenant's open, unvoted insights of the (barcode, type) pairs they name
that the file does not hold (Robotoff's rule); --keep-missing keeps them.
Bad records are reported on stderr with their line (or question) number and skipped. The exit
status is non-zero only when nothing at all could be read: every file missing, empty, not JSON,
or every record bad.
"""

import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from annotations import importer
from images.models import Client


class Command(BaseCommand):
    help = "Import Robotoff predictions (JSONL, .gz too) or questions (JSON) as insights."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path, metavar="PATH")
        parser.add_argument("--client", required=True, help="The tenant's slug.")
        parser.add_argument("--format", choices=importer.FORMATS, default="auto")
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument(
            "--keep-missing",
            action="store_true",
            help="Keep the open insights of the file's (barcode, type) pairs that it does not "
            "name (predictions replace them by default).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        client = Client.objects.filter(slug=options["client"]).first()
        if client is None:
            raise CommandError(f"No client with the slug {options['client']!r}.")
        total = importer.ImportCounts()
        for path in options["paths"]:
            counts = self._import_one(path, client, options)
            if counts is not None:
                total.add(counts)
        if len(options["paths"]) > 1:
            self.stdout.write(f"total: {total.summary()}")
        if total.good == 0:
            raise CommandError("Nothing could be imported.")

    def _import_one(
        self, path: Path, client: Client, options: dict[str, Any]
    ) -> importer.ImportCounts | None:
        def on_bad(bad: importer.BadLine) -> None:
            self.stderr.write(f"{path}: {bad}")

        try:
            with path.open("rb") as fp, self._progress(path) as on_batch:
                counts = importer.insights_import(
                    client=client,
                    fp=fp,
                    format=options["format"],
                    batch_size=options["batch_size"],
                    on_bad=on_bad,
                    on_batch=on_batch,
                    keep_missing=options["keep_missing"],
                )
        except OSError as exc:
            self.stderr.write(f"{path}: cannot read: {exc.strerror or exc}")
            return None
        except importer.ImportRefused as exc:
            self.stderr.write(f"{path}: {exc.detail}")
            return None
        self.stdout.write(f"{path}: {counts.summary()}")
        return counts

    def _progress(self, path: Path) -> "_ProgressBar":
        # A bar only for a person at a terminal: logs and pipes get the summary line alone.
        return _ProgressBar(path, enabled=sys.stdout.isatty() and sys.stderr.isatty())


class _ProgressBar:
    """rich's progress bar over the file's bytes, fed by the importer's on_batch."""

    def __init__(self, path: Path, *, enabled: bool) -> None:
        self.path = path
        self.progress = (
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TextColumn("{task.fields[counts]}"),
                TimeRemainingColumn(),
                transient=True,
            )
            if enabled
            else None
        )

    def __enter__(self) -> Any:
        if self.progress is None:
            return None
        self.progress.start()
        size = self.path.stat().st_size
        self.task = self.progress.add_task(self.path.name, total=size, counts="")
        return self.update

    def update(self, counts: importer.ImportCounts, fraction: float | None) -> None:
        assert self.progress is not None
        total = self.progress.tasks[0].total or 0
        completed = fraction * total if fraction is not None else None
        self.progress.update(self.task, completed=completed, counts=counts.summary())

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
