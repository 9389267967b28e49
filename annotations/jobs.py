"""RQ entry points of the annotations app: thin adapters that take ids and call one service."""

from annotations import importer


def run_insight_import(import_id: str) -> None:
    importer.insight_import_run(import_id=import_id)
