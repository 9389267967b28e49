"""Hostile files cannot take a worker's memory: import lines and images are decoded within bounds.

Peak memory is measured in a child process (its VmHWM, less what it held before the work began),
so the test's own heap does not blur the number.
"""

import gzip
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from annotations.importer import insights_import
from annotations.models import Insight
from tests.annotations.import_support import jsonl, prediction, question, questions_json

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


def gzip_bomb_jsonl(inflated_line_bytes: int) -> bytes:
    """Three predictions, the second padded (in a JSON string) to inflate to this many bytes."""
    good_before = prediction(barcode="0000000000001")
    good_after = prediction(barcode="0000000000002")
    head = json.dumps(prediction(barcode="0000000000003"))[:-1] + ', "padding": "'
    tail = '"}\n'
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as gz:
        gz.write(jsonl([good_before]))
        gz.write(head.encode())
        chunk = b"x" * MIB
        for _ in range(inflated_line_bytes // MIB):
            gz.write(chunk)
        gz.write(tail.encode())
        gz.write(jsonl([good_after]))
    return out.getvalue()


def peak_of_child(script: str, *args: str) -> dict:
    """Run a script under Django's settings in a child; it prints a JSON line, which is returned
    with `grown_kib`: the child's peak resident memory beyond what it held before `work()`."""
    preamble = textwrap.dedent(
        """
        import json, sys, django
        django.setup()

        def vm(key):
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith(key + ":"):
                        return int(line.split()[1])
        """
    )
    epilogue = textwrap.dedent(
        """
        before = vm("VmHWM")
        answer = work()
        print(json.dumps({**answer, "grown_kib": vm("VmHWM") - before}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", preamble + textwrap.dedent(script) + epilogue, *args],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "imago_site.settings"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- Insight imports


def test_a_gzip_line_inflating_past_the_cap_is_a_bad_line_and_the_rest_is_imported(owner, settings):
    settings.INSIGHT_IMPORT_MAX_LINE_BYTES = MIB
    bad = []
    counts = insights_import(
        client=owner.client, fp=io.BytesIO(gzip_bomb_jsonl(8 * MIB)), on_bad=bad.append
    )
    assert (counts.created, counts.bad) == (2, 1)
    assert [str(b) for b in bad] == [f"line 2: longer than {MIB} bytes"]
    assert set(Insight.objects.values_list("barcode", flat=True)) == {
        "0000000000001",
        "0000000000002",
    }


def test_a_line_of_exactly_the_cap_is_read(owner, settings):
    line = json.dumps(prediction()).encode()
    settings.INSIGHT_IMPORT_MAX_LINE_BYTES = len(line)
    counts = insights_import(client=owner.client, fp=io.BytesIO(line + b"\n" + line))
    assert (counts.created, counts.unchanged, counts.bad) == (1, 1, 0)


def test_reading_a_300_mib_gzip_line_stays_within_a_few_mib(tmp_path):
    bomb = tmp_path / "bomb.jsonl.gz"
    bomb.write_bytes(gzip_bomb_jsonl(300 * MIB))
    assert bomb.stat().st_size < 400_000
    found = peak_of_child(
        """
        from annotations.importer import BadLine, open_source, read_records

        def work():
            with open(sys.argv[1], "rb") as fp:
                items = list(read_records(open_source(fp)))
            bad = [str(i) for i in items if isinstance(i, BadLine)]
            return {"good": len(items) - len(bad), "bad": bad}
        """,
        str(bomb),
    )
    assert found["good"] == 2
    assert found["bad"] == ["line 2: longer than 1048576 bytes"]
    # The default cap (1 MiB) bounds the line; buffers and parsing add a few MiB at most.
    assert found["grown_kib"] < 16 * 1024, found


def test_a_questions_file_with_a_huge_value_stops_there_within_bounds(tmp_path):
    huge = question(value="x" * (64 * MIB))
    data = questions_json([question(), huge, question()])
    path = tmp_path / "questions.json.gz"
    path.write_bytes(gzip.compress(data))
    found = peak_of_child(
        """
        from annotations.importer import BadLine, open_source, read_records

        def work():
            with open(sys.argv[1], "rb") as fp:
                items = list(read_records(open_source(fp)))
            bad = [str(i) for i in items if isinstance(i, BadLine)]
            return {"good": len(items) - len(bad), "bad": bad}
        """,
        str(path),
    )
    assert found["good"] == 1
    assert found["bad"] == ["file 2: question 2 is longer than 1048576 bytes"]
    assert found["grown_kib"] < 16 * 1024, found


def test_an_import_stops_once_the_file_inflates_past_its_cap(owner, settings):
    settings.INSIGHT_IMPORT_MAX_INFLATED_BYTES = 200_000
    lines = jsonl([prediction(barcode=f"{n:013d}") for n in range(1000)])
    bad = []
    counts = insights_import(
        client=owner.client, fp=io.BytesIO(gzip.compress(lines)), on_bad=bad.append
    )
    assert bad[-1].unit == "file"
    assert "inflates to more than 200000 bytes" in bad[-1].reason
    assert 0 < counts.created < 1000
    # A file not read to its end replaces nothing.
    assert counts.deleted == 0
