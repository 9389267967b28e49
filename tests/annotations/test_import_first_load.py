"""A tenant's first load (a replacing run on a tenant without insights) writes its batches
without lookups, and falls back to them, batch after batch, once an id is already stored. Each
insight records the run that created it."""

import gc
import sys
import threading
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotations.importer import importing, planning
from annotations.importer.planning import Run
from annotations.importer.records import prediction_record
from annotations.importer.tuning import IMPORT_SWITCH_INTERVAL, ImportRuntime
from annotations.models import Insight, InsightImport
from tests.annotations.import_support import (
    import_command,
    jsonl,
    post_import,
    prediction,
    predictions,
    write,
)
from tests.factories import InsightFactory
from tests.helpers import make_tenant

LOOKUPS = ("WHERE id = ANY", "CROSS JOIN LATERAL", '"annotations_insight"."barcode" IN')


def lookups(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries if any(mark in q["sql"] for mark in LOOKUPS)]


def import_file(tenant, tmp_path, records, **options) -> str:
    path = write(tmp_path, "p.jsonl", jsonl(records))
    out, _ = import_command(path, client=tenant.client.slug, **options)
    return out


def test_a_first_load_looks_nothing_up(owner, tmp_path):
    with CaptureQueriesContext(connection) as queries:
        out = import_file(owner, tmp_path, predictions(6), batch_size=2)

    assert "created 6, updated 0, unchanged 0, bad 0, deleted 0" in out
    assert lookups(queries) == []


def test_a_tenant_with_insights_is_looked_up(owner, tmp_path):
    import_file(owner, tmp_path, predictions(2))

    with CaptureQueriesContext(connection) as queries:
        out = import_file(owner, tmp_path, predictions(4), batch_size=2)

    assert "created 2, updated 0, unchanged 2, bad 0, deleted 0" in out
    assert lookups(queries)


def test_an_id_met_again_in_a_later_batch_updates_it(owner, tmp_path):
    first = prediction(barcode="1", confidence=0.2)
    records = [first, prediction(barcode="2"), {**first, "confidence": 0.9}, prediction()]

    with CaptureQueriesContext(connection) as queries:
        out = import_file(owner, tmp_path, records, batch_size=2)

    assert "created 3, updated 1, unchanged 0, bad 0, deleted 0" in out
    assert Insight.objects.get(pk=first["id"]).confidence == 0.9
    # The second batch met the first one's id: it, and any after it, were looked up.
    assert lookups(queries)


def test_an_id_repeated_within_a_batch_is_one_insight(owner, tmp_path):
    first = prediction(confidence=0.2)

    out = import_file(owner, tmp_path, [first, {**first, "confidence": 0.7}], batch_size=5)

    assert "created 1, updated 1, unchanged 0" in out
    assert Insight.objects.get(pk=first["id"]).confidence == 0.7


def test_a_first_load_of_ids_another_tenant_holds_gets_its_own(owner, other, tmp_path):
    records = predictions(4)
    import_file(other, tmp_path, records)

    out = import_file(owner, tmp_path, records, batch_size=2)

    assert "created 4, updated 0, unchanged 0, bad 0" in out
    mine = set(Insight.objects.filter(client=owner.client).values_list("pk", flat=True))
    assert len(mine) == 4
    assert not mine & {uuid.UUID(r["id"]) for r in records}


def test_keep_missing_is_no_first_load(owner, tmp_path):
    # Runs that keep the rest share the tenant with its other imports: always looked up.
    with CaptureQueriesContext(connection) as queries:
        out = import_file(owner, tmp_path, predictions(2), keep_missing=True)

    assert "created 2" in out
    assert lookups(queries)


def test_insights_record_the_run_that_created_them(owner, tmp_path):
    import_file(owner, tmp_path, predictions(3))
    runs = set(Insight.objects.filter(client=owner.client).values_list("import_run", flat=True))
    assert len(runs) == 1 and None not in runs

    records = predictions(3)
    import_file(owner, tmp_path, [*records, prediction(barcode="9")])

    again = set(Insight.objects.filter(client=owner.client).values_list("import_run", flat=True))
    assert runs < again and len(again) == 2


def test_an_upload_s_insights_carry_its_import_id(owner, run_jobs):
    response = post_import(owner, "p.jsonl", jsonl(predictions(2)))
    run_jobs()

    run = InsightImport.objects.get(pk=response.json()["id"])
    assert run.status == InsightImport.Status.DONE
    assert set(Insight.objects.values_list("import_run", flat=True)) == {run.id}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the COPY path is PostgreSQL's")
def test_an_id_created_by_another_import_meanwhile_is_left_to_it(owner, other, monkeypatch):
    """Between a batch's lookups and its COPY, another tenant's import stored one of its ids."""
    records = [prediction_record(r) for r in predictions(3)]
    taken = records[1].id
    looked_up = planning._rows_by_id

    def rows_by_id(ids, client=None):
        found = looked_up(ids, client)
        InsightFactory(id=taken, client=other.client, barcode="x")
        return found

    monkeypatch.setattr(planning, "_rows_by_id", rows_by_id)
    InsightFactory(client=owner.client, barcode="y")  # not a first load
    run = Run(owner.client, uuid.uuid4(), replace=False)

    counts = importing._import_batch(run, importing._Batch(records), None)

    assert (counts.created, counts.unchanged) == (2, 1)
    assert Insight.objects.get(pk=taken).client == other.client


def test_a_run_puts_the_interpreters_settings_back(owner, tmp_path):
    interval, frozen = sys.getswitchinterval(), gc.get_freeze_count()

    seen = []
    real = importing._import_records

    def import_records(*args):
        seen.append((sys.getswitchinterval(), gc.get_freeze_count()))
        return real(*args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(importing, "_import_records", import_records)
        import_file(owner, tmp_path, predictions(2))

    assert seen[0][0] == IMPORT_SWITCH_INTERVAL and seen[0][1] > frozen
    assert (sys.getswitchinterval(), gc.get_freeze_count()) == (interval, frozen)


@pytest.mark.django_db(transaction=True)
def test_a_first_load_outside_a_transaction_falls_back_in_the_writing_thread(tmp_path):
    # Outside a transaction, PostgreSQL gets batches the reader planned without lookups, which
    # the writing thread plans again once an id is taken.
    owner, other = make_tenant("Owner Co"), make_tenant("Other Co")
    theirs = prediction(barcode="5")
    import_file(other, tmp_path, [theirs])
    first = prediction(barcode="1", confidence=0.1)
    records = [first, prediction(barcode="2"), theirs, {**first, "confidence": 0.5}]
    records += [prediction(barcode="3"), {**first, "confidence": 0.9}, prediction(barcode="4")]

    out = import_file(owner, tmp_path, records, batch_size=2)

    assert "created 5, updated 2, unchanged 0, bad 0, deleted 0" in out
    assert Insight.objects.get(pk=first["id"]).confidence == 0.9
    assert Insight.objects.filter(client=owner.client).count() == 5
    assert Insight.objects.get(pk=theirs["id"]).client == other.client


def test_overlapping_runs_put_the_settings_back_when_the_last_ends():
    interval, frozen = sys.getswitchinterval(), gc.get_freeze_count()
    runtime = ImportRuntime()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[float] = []

    def first() -> None:
        with runtime():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with runtime():
            second_in.set()
            first_out.wait(5)
            seen.append(sys.getswitchinterval())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    # The first run ended while the second still ran: the settings stayed until it ended too.
    assert seen == [IMPORT_SWITCH_INTERVAL]
    assert (sys.getswitchinterval(), gc.get_freeze_count()) == (interval, frozen)
