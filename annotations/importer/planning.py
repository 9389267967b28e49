"""Planning a batch: which of its records create an insight, update one, or leave one as it is.

Re-importing follows Robotoff's rule (shared/docs/robotoff-compat.md, "Import formats"):

- a record whose id is an existing insight updates it, or leaves it unchanged when nothing differs;
- an annotated insight is never altered;
- a record with a new id but the same subject, type, value, value_tag and source image as an
  unannotated insight is mapped onto that insight (so its votes survive) instead of duplicating
  it, and one matching an annotated insight is not asked again.

Each new insight records the run that created it (Insight.import_run), which is how a run tells
its own rows from older ones. A tenant's first load looks nothing up (see Run).
"""

import operator
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import connection
from django.utils import timezone

from annotations.importer.records import IMPORT_FIELDS, JSON_FIELDS, Record
from annotations.models import Insight, new_random_key
from images.models import Client

# Ids of insights made from another tenant's copy of the same prediction: stable, so that the
# second tenant's re-imports find their own rows again.
TENANT_ID_NAMESPACE = uuid.UUID("6f1d9a52-5b0e-4c39-9a51-3f0f0c1f2d7e")
NATURAL_KEY = ("barcode", "type", "value", "value_tag", "source_image")
# A record's fields always hold the natural key (prediction_record and question_record set it).
_natural_key = operator.itemgetter(*NATURAL_KEY)


@dataclass
class ImportCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    bad: int = 0
    deleted: int = 0

    @property
    def good(self) -> int:
        return self.created + self.updated + self.unchanged

    @property
    def read(self) -> int:
        return self.good + self.bad

    def add(self, other: "ImportCounts") -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.bad += other.bad
        self.deleted += other.deleted

    def summary(self) -> str:
        return (
            f"created {self.created}, updated {self.updated}, "
            f"unchanged {self.unchanged}, bad {self.bad}, deleted {self.deleted}"
        )


@dataclass
class Run:
    """Who a run imports for, the id its new insights carry, and whether it replaces the rest.

    first_load: the run began on a tenant without insights and no other import of the tenant
    can run beside it, so no record has an insight from before the run to match or replace. Its
    batches are written without looking anything up; the first batch that meets an id already
    stored (written by an earlier batch of the run, or another tenant's) is planned again the
    usual way, and so are the batches after it.
    """

    client: Client
    id: uuid.UUID
    replace: bool
    first_load: bool = False


def tenant_insight_id(insight_id: uuid.UUID, client: Client) -> uuid.UUID:
    return uuid.uuid5(TENANT_ID_NAMESPACE, f"{insight_id}:{client.pk}")


_LOADED = ["id", "client_id", "annotation", "import_run", *IMPORT_FIELDS]
_SELECTED = ", ".join(f'"{name}"' for name in _LOADED)


def _rows_by_id(ids: list[uuid.UUID], client: Client | None = None) -> list[dict[str, Any]]:
    if connection.vendor != "postgresql":
        rows = Insight.objects.filter(id__in=ids)
        if client is not None:
            rows = rows.filter(client=client)
        return list(rows.order_by().values(*_LOADED))
    # One array parameter: a batch's thousands of `IN (%s, …)` placeholders cost more to build
    # and parse than the lookups themselves.
    sql = f"SELECT {_SELECTED} FROM {Insight._meta.db_table} WHERE id = ANY(%s::uuid[])"
    if client is not None:
        return _fetch(f"{sql} AND client_id = %s", [ids, client.pk])
    return _fetch(sql, [ids])


def _rows_by_barcode(client: Client, barcodes: list[str]) -> list[dict[str, Any]]:
    if connection.vendor != "postgresql":
        rows = Insight.objects.filter(client=client, barcode__in=barcodes)
        return list(rows.order_by().values(*_LOADED))
    # One probe of the (client, barcode) index per barcode. With `barcode = ANY(…)` or a plain
    # join, and the stale statistics of a table growing under an import, the planner reads the
    # whole tenant for every batch instead; OFFSET 0 keeps it from flattening the subquery
    # into such a join.
    sql = (
        f"SELECT found.* FROM unnest(%s::text[]) AS wanted(barcode) CROSS JOIN LATERAL "
        f"(SELECT {_SELECTED} FROM {Insight._meta.db_table} "
        f"WHERE client_id = %s AND barcode = wanted.barcode OFFSET 0) AS found"
    )
    return _fetch(sql, [barcodes, client.pk])


def _fetch(sql: str, params: list[Any]) -> list[dict[str, Any]]:
    """Rows as dicts, decoding JSON here: Django's converters cost more than the query.

    psycopg gives uuid, timestamptz and the rest as Python values already; Django has it give
    jsonb as text, most of which is an empty list.
    """
    json_at = [i for i, name in enumerate(_LOADED) if name in JSON_FIELDS]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    found = []
    for row in rows:
        values = list(row)
        for i in json_at:
            text = values[i]
            if isinstance(text, str):
                values[i] = [] if text == "[]" else orjson.loads(text)
        found.append(dict(zip(_LOADED, values, strict=True)))
    return found


class Plan:
    """What a batch does: rows to create, rows to update, and the counts.

    matched: the existing insights its records found, by id or natural key (updated or not).
    """

    def __init__(self, run: Run, records: list[Record], *, look_up: bool = True) -> None:
        self.run = run
        # Without lookups (a first load), every id is taken to be new, and a write that meets
        # one stored already raises copy_writer.IdTaken.
        self.look_up = look_up
        self.counts = ImportCounts()
        self.creates: dict[uuid.UUID, dict[str, Any]] = {}
        self.updates: dict[uuid.UUID, dict[str, Any]] = {}
        self.matched: list[uuid.UUID] = []
        # Barcodes whose insights are all known, and the pairs among them with insights from
        # before the run: read by the lookups, or, in a first load, none (nothing was there).
        self.read_barcodes: set[str] = set()
        self.older_pairs: set[tuple[str, str]] = set()
        # The rows to create as COPY data, when formatted ahead (see copy_writer.with_copy_data).
        self.create_data: bytes | None = None
        self.by_id: dict[uuid.UUID, dict[str, Any]] = {}
        if look_up:
            records = self._own_ids(run.client, records)
        self._plan(run.client, records)

    def _own_ids(self, client: Client, records: list[Record]) -> list[Record]:
        """Load the rows these ids name; ids that another tenant holds get this tenant's id."""
        ids = [r.id for r in records]
        self.by_id = {row["id"]: row for row in _rows_by_id(ids)}
        foreign = {i for i, row in self.by_id.items() if row["client_id"] != client.pk}
        if not foreign:
            return records
        records = [
            Record(tenant_insight_id(r.id, client), r.fields) if r.id in foreign else r
            for r in records
        ]
        own_ids = [tenant_insight_id(i, client) for i in foreign]
        self.by_id.update({row["id"]: row for row in _rows_by_id(own_ids, client)})
        return records

    def _plan(self, client: Client, records: list[Record]) -> None:
        self.read_barcodes = {r.fields["barcode"] for r in records if r.id not in self.by_id}
        candidates = []
        if self.read_barcodes and self.look_up:
            candidates = _rows_by_barcode(client, list(self.read_barcodes))
        annotated_keys: set[tuple] = set()
        open_by_key: dict[tuple, dict[str, Any]] = {}
        for row in candidates:
            # Natural keys match insights from before the run: two records of one file with
            # different ids stay two insights, whichever batches they fall in.
            if row["import_run"] != self.run.id:
                self.older_pairs.add((row["barcode"], row["type"]))
                key = _natural_key(row)
                if row["annotation"] is not None:
                    annotated_keys.add(key)
                else:
                    open_by_key.setdefault(key, row)
        for record in records:
            row = self.by_id.get(record.id)
            if row is not None:
                self._update(row, record.fields)
            elif record.id in self.creates:
                self._merge(record.id, record.fields)
            else:
                key = _natural_key(record.fields)
                if key in annotated_keys:
                    # Already answered by someone: not asked again.
                    self.counts.unchanged += 1
                elif key in open_by_key:
                    self._update(open_by_key[key], record.fields)
                else:
                    self.creates[record.id] = _new_row(self.run, record)
                    self.counts.created += 1

    def replaced_pairs(self, records: list[Record]) -> set[tuple[str, str]]:
        """The records' (barcode, type) pairs that may hold insights the run replaces.

        Of a barcode whose insights this batch read, only the pairs that had some from before
        the run: nothing else adds insights without an image to a tenant while its replacing run
        holds the run lock. A fresh import so leaves the final delete nothing to look at.
        """
        pairs = set()
        for record in records:
            pair = (record.fields["barcode"], record.fields["type"])
            if pair[0] not in self.read_barcodes or pair in self.older_pairs:
                pairs.add(pair)
        return pairs

    def _update(self, row: dict[str, Any], fields: dict[str, Any]) -> None:
        self.matched.append(row["id"])
        if row["annotation"] is not None:
            self.counts.unchanged += 1
            return
        current = self.updates.get(row["id"]) or {name: row[name] for name in IMPORT_FIELDS}
        new = {**current, **fields}
        if new == current:
            self.counts.unchanged += 1
        else:
            self.updates[row["id"]] = new
            self.counts.updated += 1

    def _merge(self, insight_id: uuid.UUID, fields: dict[str, Any]) -> None:
        """A second record with the id of a row this batch creates: the later one wins."""
        current = self.creates[insight_id]
        if all(current[name] == value for name, value in fields.items()):
            self.counts.unchanged += 1
        else:
            self.creates[insight_id] = {**current, **fields}
            self.counts.updated += 1


# A new insight's columns that records may leave out, with the model's defaults.
_NEW_ROW = {
    "image_id": None,
    "completed_at": None,
    "annotation": None,
    "n_votes": 0,
    "username": None,
    "value": None,
    "value_tag": None,
    "source_image": None,
    "automatic_processing": None,
    "predictor": None,
    "predictor_version": None,
    "confidence": None,
    "server_type": "off",
    "bounding_box": None,
    "unique_scans_n": 0,
    "reserved_barcode": False,
    "with_image": False,
}


def _new_row(run: Run, record: Record) -> dict[str, Any]:
    row = {
        **_NEW_ROW,
        "id": record.id,
        "client_id": run.client.pk,
        "import_run": run.id,
        "random_key": new_random_key(),
        # Fresh containers for each row: the bulk_create path makes models of them.
        "data": {},
        "countries": [],
        "brands": [],
        "campaign": [],
        "lc": [],
        **record.fields,
    }
    if "timestamp" not in row:
        row["timestamp"] = timezone.now()
    return row
