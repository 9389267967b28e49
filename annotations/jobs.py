"""RQ entry points of the annotations app: thin adapters that take ids and call one service."""

from datetime import timedelta

from django.conf import settings

from annotations import importer


def run_insight_import(import_id: str) -> None:
    importer.insight_import_run(import_id=import_id)


def sweep_stuck_imports() -> None:
    importer.insight_imports_sweep(older_than=timedelta(seconds=settings.PIPELINE_STUCK_AFTER))
