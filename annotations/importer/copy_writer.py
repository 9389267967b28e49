"""Writing a batch's plan: on PostgreSQL new rows are COPYed into the table and changed ones
through a temporary table and one UPDATE; other databases use bulk_create / bulk_update."""

import io
import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
import psycopg
from django.db import IntegrityError, connection, transaction
from psycopg.copy import FileWriter

from annotations.importer.planning import Plan
from annotations.importer.records import IMPORT_FIELDS, JSON_FIELDS
from annotations.models import Insight

logger = logging.getLogger(__name__)


class IdTaken(Exception):
    """A batch written without lookups met an id that is already stored."""


def with_copy_data(plan: Plan) -> Plan:
    """Format the rows to create as COPY data now, in the caller's thread (PostgreSQL)."""
    if connection.vendor == "postgresql":
        plan.create_data = _copy_data(_copy_rows(plan.creates.values(), _ALL_COLUMNS))
    return plan


def write(plan: Plan) -> None:
    if connection.vendor == "postgresql":
        _write_postgresql(plan)
    else:
        _write_portable(plan)


def _write_portable(plan: Plan) -> None:
    if plan.creates:
        try:
            with transaction.atomic():
                Insight.objects.bulk_create([Insight(**row) for row in plan.creates.values()])
        except IntegrityError as exc:
            if plan.look_up:
                raise
            raise IdTaken from exc
    if plan.updates:
        rows = [Insight(id=insight_id, **values) for insight_id, values in plan.updates.items()]
        # Filtered so that an insight annotated since we read it is left alone.
        Insight.objects.filter(annotation__isnull=True).bulk_update(rows, IMPORT_FIELDS)


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    # Most lists are empty: skip the encoder for them.
    if value == []:
        return "[]"
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        # An integer beyond 64 bits, which only the standard parser reads (see reading._parse).
        return json.dumps(value)


def _copy_rows(rows: Iterable[dict[str, Any]], names: list[str]) -> Iterator[list[Any]]:
    json_at = [i for i, name in enumerate(names) if name in JSON_FIELDS]
    for row in rows:
        values = [row[name] for name in names]
        for i in json_at:
            values[i] = _json_text(values[i])
        yield values


def _write_postgresql(plan: Plan) -> None:
    table = Insight._meta.db_table
    with connection.cursor() as cursor:
        if plan.creates:
            try:
                # Straight into the table: the batch's ids were looked up under the tenant's lock
                # (or, in a first load, taken to be new).
                with transaction.atomic():
                    _copy(cursor, table, _create_values(plan), _ALL_COLUMNS)
            except IntegrityError as exc:
                if not plan.look_up:
                    raise IdTaken from exc
                # Another tenant's import created one of these ids meanwhile: skip those rows.
                _temp_table(cursor, "insight_import_new", table)
                _copy(cursor, "insight_import_new", _create_values(plan), _ALL_COLUMNS)
                names = ", ".join(_ALL_COLUMNS)
                cursor.execute(
                    f"INSERT INTO {table} ({names}) SELECT {names} FROM insight_import_new "
                    "ON CONFLICT (id) DO NOTHING"
                )
                lost = len(plan.creates) - cursor.rowcount
                logger.warning("%s insights were created concurrently by another import", lost)
                plan.counts.created -= lost
                plan.counts.unchanged += lost
        if plan.updates:
            columns = [Insight._meta.get_field(name).column for name in IMPORT_FIELDS]
            _temp_table(cursor, "insight_import_changed", table)
            rows = ({"id": i, **values} for i, values in plan.updates.items())
            names = ["id", *IMPORT_FIELDS]
            _copy(cursor, "insight_import_changed", _copy_rows(rows, names), names)
            # Its size, for the planner: a join by the primary key, not a scan of the table.
            cursor.execute("ANALYZE insight_import_changed")
            assignments = ", ".join(f"{column} = new.{column}" for column in columns)
            # annotation IS NULL: an insight annotated since we read it is left alone.
            cursor.execute(
                f"UPDATE {table} AS insight SET {assignments} FROM insight_import_changed AS new "
                "WHERE insight.id = new.id AND insight.annotation IS NULL"
            )


# Attribute names equal column names on Insight except for foreign keys, whose attname is the
# column (client_id, image_id).
_ALL_COLUMNS = [f.column for f in Insight._meta.concrete_fields]


def _create_values(plan: Plan) -> bytes | Iterable[list[Any]]:
    if plan.create_data is not None:
        return plan.create_data
    return _copy_rows(plan.creates.values(), _ALL_COLUMNS)


def _copy_data(values: Iterable[list[Any]]) -> bytes:
    """Rows as the data of a COPY FROM STDIN, formatted by psycopg on this thread's connection
    (a Copy with a FileWriter performs no operation on it), to be sent from another thread."""
    buffer = io.BytesIO()
    with (
        connection.cursor() as cursor,
        psycopg.Copy(cursor.cursor, writer=FileWriter(buffer)) as copy,
    ):
        for row in values:
            copy.write_row(row)
    return buffer.getvalue()


def _copy(cursor: Any, table: str, values: bytes | Iterable[list[Any]], names: list[str]) -> None:
    columns = ", ".join(names)
    # psycopg 3's COPY, on the driver's cursor under Django's wrapper; its errors made Django's
    # (IntegrityError, …) as the wrapper's own calls do.
    with (
        connection.wrap_database_errors,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        if isinstance(values, bytes):
            copy.write(values)
        else:
            for row in values:
                copy.write_row(row)


def _temp_table(cursor: Any, name: str, like: str) -> None:
    # Made once per connection, without the table's NOT NULLs (CREATE ... AS); emptied before
    # each use rather than at commit, since a caller's outer transaction may span many batches.
    cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} AS SELECT * FROM {like} WITH NO DATA")
    cursor.execute(f"TRUNCATE {name}")
