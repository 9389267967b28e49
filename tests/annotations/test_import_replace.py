"""Predictions replace the rest (Robotoff's rule): a re-import deletes the tenant's open, unvoted
insights of the (barcode, type) pairs it names that it no longer holds, and nothing else."""

import gzip
import threading
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotations.importer import importing
from annotations.models import AnnotationVote, Insight, InsightImport
from tests.annotations.import_support import (
    import_command,
    jsonl,
    post_import,
    prediction,
    question,
    questions_json,
    write,
)
from tests.annotations.support import an_image
from tests.factories import AnnotationVoteFactory
from tests.helpers import make_tenant

BARCODE = "3017620422003"
OTHER_BARCODE = "7622210449283"


def ids_of(tenant) -> set[str]:
    return {
        str(pk) for pk in Insight.objects.filter(client=tenant.client).values_list("pk", flat=True)
    }


def label(tag: str, **fields) -> dict:
    return prediction(barcode=BARCODE, type="label", value_tag=tag, **fields)


def import_file(tenant, tmp_path, records, **options) -> str:
    out, _ = import_command(
        write(tmp_path, "p.jsonl", jsonl(records)), client=tenant.client.slug, **options
    )
    return out


@pytest.mark.django_db
def test_a_re_import_deletes_an_open_insight_of_a_pair_it_no_longer_holds(owner, tmp_path):
    kept, dropped = label("en:organic"), label("en:fair-trade")
    import_file(owner, tmp_path, [kept, dropped])

    out = import_file(owner, tmp_path, [kept])

    assert out.strip().endswith("created 0, updated 0, unchanged 1, bad 0, deleted 1")
    assert ids_of(owner) == {kept["id"]}


@pytest.mark.django_db
def test_it_keeps_the_answered_the_voted_on_and_the_other_subjects_and_tenants(
    owner, other, tmp_path, make_insight
):
    kept, dropped = label("en:organic"), label("en:dropped")
    annotated, counted_votes, vote_row = label("en:a"), label("en:b"), label("en:c")
    other_type = prediction(barcode=BARCODE, type="brand", value_tag="ferrero")
    other_barcode = prediction(barcode=OTHER_BARCODE, type="label", value_tag="en:vegan")
    records = [kept, dropped, annotated, counted_votes, vote_row, other_type, other_barcode]
    import_file(owner, tmp_path, records)
    Insight.objects.filter(pk=annotated["id"]).update(annotation=1)
    Insight.objects.filter(pk=counted_votes["id"]).update(n_votes=1)
    AnnotationVoteFactory(insight=Insight.objects.get(pk=vote_row["id"]), device_id="phone-1")
    theirs = make_insight(other, barcode=BARCODE, type="label", value_tag="en:theirs")

    out = import_file(owner, tmp_path, [kept])

    assert "deleted 1" in out
    assert ids_of(owner) == {r["id"] for r in records} - {dropped["id"]}
    assert ids_of(other) == {str(theirs.pk)}
    assert AnnotationVote.objects.filter(insight_id=vote_row["id"]).count() == 1


@pytest.mark.django_db
def test_an_insight_made_elsewhere_is_replaced_too(owner, tmp_path, make_insight):
    stale = make_insight(owner, barcode=BARCODE, type="label", value_tag="en:stale")
    new = label("en:organic")

    out = import_file(owner, tmp_path, [new])

    assert "created 1, updated 0, unchanged 0, bad 0, deleted 1" in out
    assert ids_of(owner) == {new["id"]}
    assert not Insight.objects.filter(pk=stale.pk).exists()


@pytest.mark.django_db
def test_an_insight_of_imagos_own_pipeline_is_kept(owner, tmp_path, make_insight):
    """Linked to an image: no file of predictions holds it, whatever barcode the file uses."""
    image = an_image(owner, thumbnail=False)
    pipeline = make_insight(owner, image=image, barcode=BARCODE, value_tag="en:vegan")
    stale = make_insight(owner, barcode=BARCODE, value_tag="en:stale")
    new = label("en:organic")

    out = import_file(owner, tmp_path, [new])

    assert "created 1, updated 0, unchanged 0, bad 0, deleted 1" in out
    assert ids_of(owner) == {new["id"], str(pipeline.pk)}
    assert not Insight.objects.filter(pk=stale.pk).exists()


@pytest.mark.django_db
def test_a_prediction_mapped_onto_an_open_insight_keeps_it(owner, tmp_path):
    first, dropped = label("en:organic", confidence=0.5), label("en:fair-trade")
    import_file(owner, tmp_path, [first, dropped])

    again = {**first, "id": str(uuid.uuid4()), "confidence": 0.7}
    out = import_file(owner, tmp_path, [again])

    assert "created 0, updated 1, unchanged 0, bad 0, deleted 1" in out
    assert ids_of(owner) == {first["id"]}


@pytest.mark.django_db
def test_a_pair_spread_over_batches_deletes_nothing_it_holds(owner, tmp_path):
    # Each record its own batch: what batch 1 created or matched survives batch 3's pair.
    records = [label("en:a"), prediction(barcode=OTHER_BARCODE), label("en:b"), label("en:a")]
    out = import_file(owner, tmp_path, records, batch_size=1)
    assert "created 4, updated 0, unchanged 0, bad 0, deleted 0" in out

    out = import_file(owner, tmp_path, records, batch_size=1)
    assert "created 0, updated 0, unchanged 4, bad 0, deleted 0" in out
    assert ids_of(owner) == {r["id"] for r in records}


@pytest.mark.django_db
def test_keep_missing_keeps_what_the_file_no_longer_holds(owner, tmp_path):
    kept, missing = label("en:organic"), label("en:fair-trade")
    import_file(owner, tmp_path, [kept, missing])

    out = import_file(owner, tmp_path, [kept], keep_missing=True)

    assert "unchanged 1, bad 0, deleted 0" in out
    assert ids_of(owner) == {kept["id"], missing["id"]}


@pytest.mark.django_db
def test_a_questions_file_never_deletes(owner, tmp_path):
    kept, missing = label("en:organic"), label("en:fair-trade")
    import_file(owner, tmp_path, [kept])
    import_file(owner, tmp_path, [missing], keep_missing=True)
    asked = question(barcode=BARCODE, insight_type="label", insight_id=kept["id"])

    out, _ = import_command(
        write(tmp_path, "q.json", questions_json([asked])), client=owner.client.slug
    )

    assert "deleted 0" in out
    assert ids_of(owner) == {kept["id"], missing["id"]}


@pytest.mark.django_db
def test_a_file_that_cannot_be_read_to_its_end_deletes_nothing(owner, tmp_path):
    kept, missing = label("en:organic"), label("en:fair-trade")
    import_file(owner, tmp_path, [kept, missing])
    filler = [label("en:organic", data={"n": n}, id=kept["id"]) for n in range(2000)]
    data = gzip.compress(jsonl([kept, *filler]))
    path = write(tmp_path, "cut.jsonl.gz", data[: len(data) // 2])

    out, err = import_command(path, client=owner.client.slug)

    assert "the file could not be read on" in err
    assert "bad 1, deleted 0" in out
    assert ids_of(owner) == {kept["id"], missing["id"]}


@pytest.mark.django_db
def test_an_import_that_fails_in_a_batch_deletes_nothing(owner, tmp_path, monkeypatch):
    kept, missing = label("en:organic"), label("en:fair-trade")
    import_file(owner, tmp_path, [kept, missing])
    fail_on_second_batch(monkeypatch)

    with pytest.raises(RuntimeError, match="disk full"):
        import_file(owner, tmp_path, [kept, label("en:vegan")], batch_size=1)

    assert missing["id"] in ids_of(owner)


def fail_on_second_batch(monkeypatch) -> None:
    write_batch = importing.write
    calls: list[int] = []

    def failing(plan) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        write_batch(plan)

    monkeypatch.setattr(importing, "write", failing)


# Outside a transaction, PostgreSQL writes the batches, and deletes, on a background thread's
# connection: the run's temporary tables must be there.


@pytest.mark.django_db(transaction=True)
def test_it_replaces_outside_a_transaction_too(tmp_path):
    owner = make_tenant("Owner Co")
    kept, dropped = label("en:organic"), label("en:fair-trade")
    import_file(owner, tmp_path, [kept, dropped, prediction(barcode=OTHER_BARCODE)], batch_size=1)

    out = import_file(owner, tmp_path, [kept], batch_size=1)

    assert "created 0, updated 0, unchanged 1, bad 0, deleted 1" in out
    assert dropped["id"] not in ids_of(owner)
    assert len(ids_of(owner)) == 2


@pytest.mark.django_db(transaction=True)
def test_a_failing_batch_outside_a_transaction_deletes_nothing(tmp_path, monkeypatch):
    owner = make_tenant("Owner Co")
    kept, missing = label("en:organic"), label("en:fair-trade")
    import_file(owner, tmp_path, [kept, missing])
    fail_on_second_batch(monkeypatch)

    with pytest.raises(RuntimeError, match="disk full"):
        import_file(
            owner, tmp_path, [kept, label("en:vegan"), label("en:gluten-free")], batch_size=1
        )

    assert missing["id"] in ids_of(owner)


# --- Concurrent runs of one tenant


def hold_run_lock(tenant, held: threading.Event, release: threading.Event) -> None:
    """What another import of the tenant that deletes nothing holds, in this thread."""
    key = [importing.RUN_LOCK_CLASS, tenant.client.pk]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock_shared(%s, %s)", key)
            held.set()
            release.wait(30)
            cursor.execute("SELECT pg_advisory_unlock_shared(%s, %s)", key)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_replacing_run_waits_for_the_tenants_other_runs(tmp_path):
    """Its delete would otherwise take the rows another run created meanwhile."""
    if connection.vendor != "postgresql":
        pytest.skip("run locks are PostgreSQL's; the PostgreSQL pass of make test runs this")
    owner, other = make_tenant("Owner Co"), make_tenant("Other Co")
    kept, dropped = label("en:organic"), label("en:fair-trade")
    import_file(owner, tmp_path, [kept, dropped])
    held, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=hold_run_lock, args=(owner, held, release))
    holder.start()
    assert held.wait(10)
    outputs: list[str] = []

    def replace() -> None:
        try:
            outputs.append(import_file(owner, tmp_path / "again", [kept]))
        finally:
            connection.close()

    try:
        # Runs that delete nothing go on beside it, as do other tenants' runs.
        assert "deleted 0" in import_file(owner, tmp_path, [kept], keep_missing=True)
        assert "created 1" in import_file(other, tmp_path, [label("en:vegan")])
        (tmp_path / "again").mkdir()
        replacing = threading.Thread(target=replace)
        replacing.start()
        replacing.join(1.5)
        assert replacing.is_alive() and not outputs  # waiting for the other run
        assert dropped["id"] in ids_of(owner)
    finally:
        release.set()
        holder.join(10)
    replacing.join(30)
    assert outputs and "deleted 1" in outputs[0]
    assert ids_of(owner) == {kept["id"]}


# --- Over HTTP


def test_an_import_run_records_what_it_deleted(owner, run_jobs):
    kept, dropped = label("en:organic"), label("en:fair-trade")
    post_import(owner, "a.jsonl", jsonl([kept, dropped]))
    run_jobs()

    body = post_import(owner, "b.jsonl", jsonl([kept])).json()
    run_jobs()

    status = owner.api.get(body["status_url"]).json()
    assert (status["status"], status["unchanged"], status["deleted"]) == ("done", 1, 1)
    assert status["keep_missing"] is False
    assert ids_of(owner) == {kept["id"]}


def test_an_import_run_honours_keep_missing(owner, run_jobs):
    kept, missing = label("en:organic"), label("en:fair-trade")
    post_import(owner, "a.jsonl", jsonl([kept, missing]))
    run_jobs()

    body = post_import(owner, "b.jsonl", jsonl([kept]), keep_missing="true").json()
    run_jobs()

    status = owner.api.get(body["status_url"]).json()
    assert (status["status"], status["deleted"], status["keep_missing"]) == ("done", 0, True)
    assert InsightImport.objects.get(pk=body["id"]).keep_missing is True
    assert ids_of(owner) == {kept["id"], missing["id"]}


@pytest.mark.django_db
def test_the_schema_describes_keep_missing_and_deleted(operator):
    schemas = operator.get("/api/schema/", {"format": "json"}).json()["components"]["schemas"]
    assert schemas["ImportRequestRequest"]["properties"]["keep_missing"]["type"] == "boolean"
    assert schemas["ImportStatus"]["properties"]["deleted"]["type"] == "integer"
    assert schemas["ImportStatus"]["properties"]["keep_missing"]["type"] == "boolean"


def test_only_pairs_with_older_insights_are_searched_for_what_to_replace(owner, tmp_path):
    """A looked-up barcode tells which of its pairs held insights before the run: only those
    are kept for the final delete, and a run that keeps none deletes without searching."""
    old_label, old_brand = label("en:organic"), prediction(barcode=BARCODE, type="brand")
    elsewhere = prediction(barcode=OTHER_BARCODE)
    import_file(owner, tmp_path, [old_label, old_brand, elsewhere])
    new_label, new_category = label("en:vegan"), prediction(barcode=BARCODE, type="category")

    with CaptureQueriesContext(connection) as queries:
        out = import_file(owner, tmp_path, [new_label, new_category])

    assert out.strip().endswith("created 2, updated 0, unchanged 0, bad 0, deleted 1")
    kept = {old_brand["id"], elsewhere["id"], new_label["id"], new_category["id"]}
    assert ids_of(owner) == kept
    assert any(q["sql"].startswith("DELETE FROM annotations_insight") for q in queries)

    with CaptureQueriesContext(connection) as queries:
        out = import_file(owner, tmp_path, [prediction(barcode="4006381333931")])

    assert out.strip().endswith("created 1, updated 0, unchanged 0, bad 0, deleted 0")
    assert not any(q["sql"].startswith("DELETE FROM annotations_insight") for q in queries)
