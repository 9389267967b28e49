"""Predictions replace the rest: once the whole file is read, the tenant's insights of each
(barcode, type) the file names that the run did not create, update or match are deleted, unless
they were annotated or voted on (keep_missing turns this off). A questions file lists answers,
not a full set of predictions: it never deletes, nor does a run that fails or a file that
cannot be read to its end."""

import uuid

from django.db import connection, transaction

from annotations.importer.planning import Run
from annotations.models import AnnotationVote, Insight


class Seen:
    """What a predictions run saw, in temporary tables of the connection that writes its batches:
    the (barcode, type) pairs that may hold insights from before the run, and the existing
    insights its records matched.

    Insights matched by the natural key of an annotated one are not recorded: an annotated
    insight is never deleted. The tables have no key while the run fills them (a duplicate does
    no harm): matched ids are indexed once, for the delete, instead of row by row.
    """

    matched_table = "insight_import_matched"
    pairs_table = "insight_import_pairs"

    def __init__(self) -> None:
        self.postgresql = connection.vendor == "postgresql"
        self.any_pairs = False
        id_type = "uuid" if self.postgresql else "char(32)"
        with connection.cursor() as cursor:
            # Made again for each run: the last one's index goes with its table.
            cursor.execute(f"DROP TABLE IF EXISTS {self.matched_table}")
            cursor.execute(f"DROP TABLE IF EXISTS {self.pairs_table}")
            cursor.execute(f"CREATE TEMP TABLE {self.matched_table} (id {id_type})")
            cursor.execute(
                f"CREATE TEMP TABLE {self.pairs_table} (barcode varchar(100), type varchar(64))"
            )

    def add(self, matched: list[uuid.UUID], pairs: set[tuple[str, str]]) -> None:
        self.any_pairs = self.any_pairs or bool(pairs)
        with connection.cursor() as cursor:
            if self.postgresql:
                if matched:
                    cursor.execute(
                        f"INSERT INTO {self.matched_table} SELECT unnest(%s::uuid[])", [matched]
                    )
                if pairs:
                    barcodes, types = zip(*pairs, strict=True)
                    cursor.execute(
                        f"INSERT INTO {self.pairs_table} "
                        "SELECT * FROM unnest(%s::text[], %s::text[])",
                        [list(barcodes), list(types)],
                    )
            else:
                cursor.executemany(
                    f"INSERT INTO {self.matched_table} (id) VALUES (%s)",
                    [(i.hex,) for i in matched],
                )
                cursor.executemany(
                    f"INSERT INTO {self.pairs_table} (barcode, type) VALUES (%s, %s)", list(pairs)
                )

    def index(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE INDEX {self.matched_table}_id ON {self.matched_table} (id)")


def delete_missing(run: Run, seen: Seen) -> int:
    """Delete the tenant's insights of the pairs the run saw that it neither created nor matched,
    unless annotated or voted on (AnnotationVote cascades: its rows are checked, not only n_votes)
    or linked to an image (Imago's own pipeline made those; no file of predictions holds them).
    """
    if not seen.any_pairs:
        return 0  # no pair the run named held insights from before it
    insight = Insight._meta.db_table
    of_pair = "found.client_id = %s AND found.barcode = pair.barcode AND found.type = pair.type"
    if connection.vendor == "postgresql":
        # One probe of the (client, barcode) index per pair: as a plain join, with the stale
        # statistics of a table grown under the import, the planner reads the whole tenant
        # (OFFSET 0 keeps it from flattening the subquery, as in planning._rows_by_barcode).
        # Inside, `annotation IS NULL` would make it pick a partial index on client_id alone
        # instead.
        found = (
            f"{seen.pairs_table} AS pair CROSS JOIN LATERAL (SELECT found.id, found.annotation, "
            f"found.n_votes, found.image_id, found.import_run FROM {insight} AS found "
            f"WHERE {of_pair} OFFSET 0) AS found"
        )
        run_id: uuid.UUID | str = run.id
    else:
        found = f"{seen.pairs_table} AS pair JOIN {insight} AS found ON {of_pair}"
        run_id = run.id.hex  # how Django stores a UUIDField in SQLite
    seen.index()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # No other import of the tenant runs: a replacing run holds it alone
            # (importing._tenant_runs). The temporary tables' sizes, for the anti-join below;
            # scans of the insight table are ruled out as in importing._import_batch.
            cursor.execute(f"ANALYZE {seen.pairs_table}, {seen.matched_table}")
            cursor.execute("SET LOCAL enable_seqscan = off")
            # The seqscan's penalty in the plan's cost (the pairs are read whole) would make
            # PostgreSQL compile it (JIT), which takes longer than running it.
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            f"DELETE FROM {insight} WHERE id IN (SELECT found.id FROM {found} WHERE "
            "found.annotation IS NULL AND found.n_votes = 0 AND found.image_id IS NULL "
            "AND (found.import_run IS NULL OR found.import_run <> %s) "
            f"AND NOT EXISTS (SELECT 1 FROM {seen.matched_table} AS m WHERE m.id = found.id) "
            f"AND NOT EXISTS (SELECT 1 FROM {AnnotationVote._meta.db_table} AS v "
            "WHERE v.insight_id = found.id))",
            [run.client.pk, run_id],
        )
        return cursor.rowcount
