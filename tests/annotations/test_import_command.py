"""`manage.py import_insights`: Robotoff predictions and questions become a tenant's insights."""

import io
import json
import sys
import uuid

import pytest
from django.core.management import CommandError, call_command
from rich.progress import Progress

from annotations.models import Insight
from tests.annotations.import_support import (
    import_command as run,
)
from tests.annotations.import_support import (
    jsonl,
    prediction,
    predictions,
    question,
    questions_json,
    write,
)
from tests.factories import AnnotationVoteFactory
from tests.helpers import make_tenant, shared_data

pytestmark = pytest.mark.django_db


# --- The shared Robotoff files


def test_it_imports_the_300_shared_predictions(owner):
    out, err = run(shared_data("robotoff", "predictions.jsonl"), client=owner.client.slug)
    assert out.strip().endswith("created 300, updated 0, unchanged 0, bad 0, deleted 0")
    assert err == ""
    assert Insight.objects.filter(client=owner.client).count() == 300


def test_it_keeps_the_60_good_lines_and_reports_the_6_bad_ones_by_line(owner):
    path = shared_data("robotoff", "predictions_with_bad_lines.jsonl")
    out, err = run(path, client=owner.client.slug)
    assert "created 60, updated 0, unchanged 0, bad 6" in out
    reported = [line for line in err.splitlines() if line.strip()]
    assert [line.split(": ")[1] for line in reported] == [
        f"line {n}" for n in (11, 22, 33, 44, 55, 66)
    ]
    assert "line 66: barcode must be a string, not a number" in err
    assert Insight.objects.count() == 60


@pytest.mark.parametrize(
    ("name", "count"), [("questions.json", 25), ("questions_seed_examples.json", 3)]
)
def test_it_imports_the_shared_question_files(owner, name, count):
    out, _ = run(shared_data("robotoff", name), client=owner.client.slug)
    assert f"created {count}, updated 0, unchanged 0, bad 0" in out
    assert Insight.objects.filter(client=owner.client).count() == count


def test_a_second_import_of_the_shared_predictions_changes_nothing(owner):
    path = shared_data("robotoff", "predictions.jsonl")
    run(path, client=owner.client.slug)
    out, _ = run(path, client=owner.client.slug, batch_size=64)
    assert "created 0, updated 0, unchanged 300, bad 0, deleted 0" in out
    assert Insight.objects.count() == 300


# --- Small data of our own


def test_it_maps_prediction_fields_onto_the_insight(owner, tmp_path):
    record = prediction(confidence=0.5, data={"text": "bio"}, timestamp="2026-02-22T15:55:36")
    out, _ = run(write(tmp_path, "p.jsonl", jsonl([record])), client=owner.client.slug)
    assert "created 1," in out
    insight = Insight.objects.get(pk=record["id"])
    assert insight.client == owner.client
    assert (insight.barcode, insight.type, insight.value_tag) == (
        "3017620422003",
        "label",
        "en:organic",
    )
    assert insight.data == {"text": "bio"}
    assert insight.confidence == 0.5
    assert insight.timestamp.isoformat() == "2026-02-22T15:55:36+00:00"
    assert insight.with_image is True
    assert insight.annotation is None


def test_it_reports_each_bad_line_with_its_reason_and_goes_on(owner, tmp_path):
    good = predictions(3)
    lines = [
        good[0],
        b"{broken",
        prediction(id="not-a-uuid"),
        prediction(barcode="9" * 101),
        prediction(timestamp="yesterday"),
        prediction(confidence="high"),
        good[1],
        b"",
        prediction(id=None),
        "a string",
        good[2],
        b'{"id": "x", "confidence": NaN}',
        prediction(data={"text": "nul \u0000 inside"}),
        prediction(unique_scans_n=2**40),
    ]
    out, err = run(write(tmp_path, "p.jsonl", jsonl(lines)), client=owner.client.slug)
    assert "created 3, updated 0, unchanged 0, bad 10" in out
    assert "line 2: not valid JSON" in err
    assert "line 3: id is not a UUID: 'not-a-uuid'" in err
    assert "line 4: barcode is longer than 100 characters" in err
    assert "line 5: timestamp is not a date and time: 'yesterday'" in err
    assert "line 6: confidence must be a number or null, not a string" in err
    assert "line 9: id is missing" in err
    assert "line 10: expected a JSON object, got a string" in err
    assert "line 12: not valid JSON (NaN is not a JSON value" in err
    assert "line 13: contains a NUL character" in err
    assert "line 14: unique_scans_n must be a whole number" in err


def test_a_line_nested_too_deep_is_a_bad_record_not_a_failed_import(owner, tmp_path):
    # Past 1,024 levels orjson refuses the line and the standard parser ran out of stack
    # (RecursionError, not a ValueError); below that, orjson read it and storing it did. Either
    # way the whole run failed.
    def nested(levels: int) -> bytes:
        data = b"[" * levels + b"]" * levels
        return json.dumps(prediction(data="DEEP")).encode().replace(b'"DEEP"', data)

    lines = [prediction(), nested(3_000), b"[" * 3_000, nested(1_000), prediction(barcode="1")]
    out, err = run(write(tmp_path, "p.jsonl", jsonl(lines)), client=owner.client.slug)
    assert "created 2, updated 0, unchanged 0, bad 3" in out
    for number in (2, 3, 4):
        assert f"line {number}: not valid JSON (nested too deep" in err
    assert Insight.objects.count() == 2


def test_a_lone_surrogate_is_a_bad_record_not_a_failed_import(owner, tmp_path):
    # Escaped in JSON text, a lone surrogate is valid JSON that no UTF-8 string can hold.
    lines = [prediction(), b'{"id": "x", "value": "\\ud800"}', prediction(barcode="1")]
    out, err = run(write(tmp_path, "p.jsonl", jsonl(lines)), client=owner.client.slug)
    assert "created 2, updated 0, unchanged 0, bad 1" in out
    assert "line 2: not valid JSON (a string holds a lone surrogate" in err

    # ijson stops there: the questions before it are kept, the rest of the file is reported.
    data = questions_json([question(), question(value="SURROGATE"), question()])
    data = data.replace(b'"SURROGATE"', b'"\\udfff"')
    out, err = run(write(tmp_path, "q.json", data), client=owner.client.slug)
    assert "created 1, updated 0, unchanged 0, bad 1" in out
    assert "file 2: invalid JSON after question 1" in err


def test_it_reads_gzip_by_its_bytes_not_its_name(owner, tmp_path):
    path = write(tmp_path, "export.json", jsonl(predictions(4)), gz=True)
    out, _ = run(path, client=owner.client.slug)
    assert "created 4, updated 0, unchanged 0, bad 0" in out


def test_it_recognises_questions_json_and_maps_its_fields(owner, tmp_path):
    asked = question(value_tag="en:organic", server_type="obf")
    path = write(tmp_path, "export.jsonl", questions_json([asked, question()]))
    out, _ = run(path, client=owner.client.slug)
    assert "created 2, updated 0, unchanged 0, bad 0" in out
    insight = Insight.objects.get(pk=asked["insight_id"])
    assert (insight.type, insight.value, insight.value_tag) == ("label", "PE-BIO-141", "en:organic")
    assert insight.source_image == asked["source_image_url"]
    assert insight.server_type == "obf"
    assert insight.with_image is True


def test_it_reports_bad_questions_by_position(owner, tmp_path):
    path = write(tmp_path, "q.json", questions_json([question(), {"barcode": "1"}, question()]))
    out, err = run(path, client=owner.client.slug)
    assert "created 2, updated 0, unchanged 0, bad 1" in out
    assert "question 2: insight_type is missing" in err


def test_a_forced_format_overrides_detection(owner, tmp_path):
    path = write(tmp_path, "p.jsonl", jsonl(predictions(2)))
    with pytest.raises(CommandError):
        run(path, client=owner.client.slug, format="questions")
    assert Insight.objects.count() == 0


def test_a_changed_prediction_updates_its_insight_and_votes_survive(owner, tmp_path):
    record = prediction(confidence=0.5)
    run(write(tmp_path, "a.jsonl", jsonl([record])), client=owner.client.slug)
    AnnotationVoteFactory(insight=Insight.objects.get(pk=record["id"]), device_id="phone-1")

    changed = {**record, "confidence": 0.9, "predictor_version": "2"}
    out, _ = run(write(tmp_path, "b.jsonl", jsonl([changed])), client=owner.client.slug)

    assert "created 0, updated 1, unchanged 0, bad 0" in out
    insight = Insight.objects.get(pk=record["id"])
    assert (insight.confidence, insight.predictor_version) == (0.9, "2")
    assert insight.votes.count() == 1


def test_a_new_prediction_of_the_same_thing_maps_onto_the_open_insight(owner, tmp_path):
    record = prediction(confidence=0.5)
    run(write(tmp_path, "a.jsonl", jsonl([record])), client=owner.client.slug)
    AnnotationVoteFactory(
        insight=Insight.objects.get(pk=record["id"]), value=0, device_id="phone-1"
    )

    again = {**record, "id": str(uuid.uuid4()), "confidence": 0.7}
    out, _ = run(write(tmp_path, "b.jsonl", jsonl([again])), client=owner.client.slug)

    assert "created 0, updated 1, unchanged 0, bad 0" in out
    [insight] = Insight.objects.all()
    assert str(insight.pk) == record["id"]
    assert insight.confidence == 0.7
    assert insight.votes.count() == 1


def test_an_annotated_insight_is_kept_as_it_is(owner, tmp_path):
    record = prediction(confidence=0.5)
    run(write(tmp_path, "a.jsonl", jsonl([record])), client=owner.client.slug)
    Insight.objects.filter(pk=record["id"]).update(annotation=1, username="alice")

    same_id = {**record, "confidence": 0.9}
    same_thing = {**record, "id": str(uuid.uuid4()), "confidence": 0.9}
    out, _ = run(write(tmp_path, "b.jsonl", jsonl([same_id, same_thing])), client=owner.client.slug)

    assert "created 0, updated 0, unchanged 2, bad 0" in out
    [insight] = Insight.objects.all()
    assert (insight.annotation, insight.username, insight.confidence) == (1, "alice", 0.5)


def test_predictions_of_one_file_with_different_ids_stay_apart_across_batches(owner, tmp_path):
    first = prediction()
    lines = [first, *predictions(3), {**first, "id": str(uuid.uuid4()), "confidence": 0.3}]
    out, _ = run(write(tmp_path, "p.jsonl", jsonl(lines)), client=owner.client.slug, batch_size=2)
    assert "created 5, updated 0, unchanged 0, bad 0" in out
    out, _ = run(write(tmp_path, "p.jsonl", jsonl(lines)), client=owner.client.slug, batch_size=2)
    assert "created 0, updated 0, unchanged 5, bad 0, deleted 0" in out


@pytest.mark.django_db(transaction=True)
def test_it_imports_outside_a_transaction_too(tmp_path):
    # Outside a transaction, PostgreSQL gets the batches written by a background thread.
    owner = make_tenant("Owner Co")
    path = write(tmp_path, "p.jsonl", jsonl([*predictions(5), b"{oops"]))
    out, err = run(path, client=owner.client.slug, batch_size=2)
    assert "created 5, updated 0, unchanged 0, bad 1" in out
    assert "line 6: not valid JSON" in err
    out, _ = run(path, client=owner.client.slug, batch_size=2)
    assert "created 0, updated 0, unchanged 5, bad 1, deleted 0" in out


def test_two_tenants_importing_one_file_get_their_own_insights(owner, other, tmp_path):
    path = write(tmp_path, "p.jsonl", jsonl(predictions(3)))
    run(path, client=owner.client.slug)
    out, _ = run(path, client=other.client.slug)
    assert "created 3, updated 0, unchanged 0, bad 0" in out
    out, _ = run(path, client=other.client.slug)
    assert "created 0, updated 0, unchanged 3, bad 0" in out
    assert Insight.objects.filter(client=owner.client).count() == 3
    assert Insight.objects.filter(client=other.client).count() == 3


def test_it_imports_several_files_and_prints_a_total(owner, tmp_path):
    a = write(tmp_path, "a.jsonl", jsonl(predictions(2)))
    b = write(tmp_path, "b.json", questions_json([question()]))
    out, _ = run(a, b, client=owner.client.slug)
    assert out.splitlines()[-1] == "total: created 3, updated 0, unchanged 0, bad 0, deleted 0"


def test_it_prints_no_progress_bar_when_not_at_a_terminal(owner, tmp_path, monkeypatch):
    started = bars_started(monkeypatch)
    out, err = run(write(tmp_path, "p.jsonl", jsonl(predictions(2))), client=owner.client.slug)
    assert out.count("\n") == 1
    assert err == ""
    assert started == []


def test_it_shows_a_progress_bar_at_a_terminal(owner, tmp_path, monkeypatch):
    started = bars_started(monkeypatch)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    run(write(tmp_path, "p.jsonl", jsonl(predictions(2))), client=owner.client.slug)
    assert len(started) == 1


def bars_started(monkeypatch) -> list[Progress]:
    started: list[Progress] = []
    start = Progress.start

    def recording(progress: Progress) -> None:
        started.append(progress)
        start(progress)

    monkeypatch.setattr(Progress, "start", recording)
    return started


# --- Refusals


def test_it_requires_a_client(tmp_path, db):
    with pytest.raises(CommandError, match="--client"):
        call_command("import_insights", str(write(tmp_path, "p.jsonl", b"{}")))


def test_it_refuses_an_unknown_client(tmp_path, db):
    with pytest.raises(CommandError, match="No client with the slug 'nobody'"):
        run(write(tmp_path, "p.jsonl", jsonl(predictions(1))), client="nobody")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"\x89PNG\r\n\x1a\n....", "neither Robotoff predictions"),
        (jsonl([b"{bad", {"barcode": "1", "type": "label"}]), "line 2: id is missing"),
    ],
)
def test_it_fails_when_nothing_can_be_read(owner, tmp_path, data, message):
    err = io.StringIO()
    with pytest.raises(CommandError, match="Nothing could be imported"):
        call_command(
            "import_insights",
            str(write(tmp_path, "p.jsonl", data)),
            client=owner.client.slug,
            stdout=io.StringIO(),
            stderr=err,
        )
    assert message in err.getvalue()
    assert Insight.objects.count() == 0


def test_a_missing_file_is_reported_and_the_others_are_imported(owner, tmp_path):
    good = write(tmp_path, "p.jsonl", jsonl(predictions(1)))
    out, err = run(tmp_path / "missing.jsonl", good, client=owner.client.slug)
    assert "missing.jsonl: cannot read: No such file or directory" in err
    assert "created 1," in out


def test_a_truncated_questions_file_keeps_what_came_before(owner, tmp_path):
    data = questions_json([question(), question(), question()])
    cut = data[: data.rindex(b'"insight_id"')]
    out, err = run(write(tmp_path, "q.json", cut), client=owner.client.slug)
    assert "created 2, updated 0, unchanged 0, bad 1" in out
    assert "invalid JSON after question 2" in err
    assert json.loads(data)["count"] == 3
