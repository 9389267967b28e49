"""Insights at scale on PostgreSQL: import rate and /questions/random latency, each against the
naive way, in one run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/imago_bench .venv/bin/python bench/insights.py
        [--count 1000000] [--update-count 200000] [--naive-sample 5000] [--requests 400]
        [--naive-queries 15] [--keep]

A throwaway database (the URL's name plus the process id) is created, migrated, and dropped at the
end (--keep leaves it). DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/imago_bench;
REDIS_URL is used as by the site (the rate limiter counts in it; the bench tenant's limit is
raised so that it never throttles).

(a) Import: --count Robotoff predictions are written to a JSONL file and imported by
    annotations.importer into a new tenant (its first load: batches of INSIGHT_IMPORT_BATCH_SIZE
    COPYed without lookups), timed from opening the file to the last commit. Then, into the same
    tenant: a re-import of the same file (every row found, nothing to write or delete), and an
    update of --update-count new predictions (every record looked up by id and barcode, as any
    import into a tenant that holds insights; then the DELETE of what the file replaces). The
    naive way is a per-row ORM
    loop (json.loads, Insight(...).save(), autocommit) over the first --naive-sample lines into
    another tenant; its rate is extrapolated to --count (said so in the output). Goal ≥ 20,000/s.
(b) Questions: with the --count insights in the table (10% of them then marked annotated), GET
    /api/v1/questions/random?count=25 through Django's test Client with an API key, --requests
    times after a warm-up, against `SELECT ... WHERE annotation IS NULL ORDER BY random() LIMIT 25`
    on the same tenant, --naive-queries times. p50 and p99 of each, and the ratio of medians.
    Goals: ≥ 20x faster (p50) and p99 ≤ 20 ms. The same route for an operator (every tenant:
    per-tenant pages merged) is timed too.
"""

import argparse
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import dj_database_url
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/imago_bench"
TYPES = ["label", "brand", "category", "product_weight", "packaging"]
IMPORT_GOAL = 20_000
SPEED_GOAL = 20
P99_GOAL_MS = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--update-count", type=int, default=200_000)
    parser.add_argument("--naive-sample", type=int, default=5_000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--naive-queries", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="Leave the throwaway database.")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # figures as they come, also into a file
    # A stopped run still drops its database (SystemExit runs the finally clause below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    config = dj_database_url.parse(url)
    if not config["ENGINE"].endswith("postgresql"):
        sys.exit("bench/insights.py measures PostgreSQL: set DATABASE_URL=postgres://...")
    name = f"{config['NAME']}_{os.getpid()}"
    admin = _admin_connection(config)
    admin.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = url.rsplit("/", 1)[0] + f"/{name}"
    print(f"throwaway database {name}; {os.cpu_count()} CPUs; {args.count:,} insights")
    try:
        _run(args)
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep:
            print(f"kept database {name}")
        else:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


def _admin_connection(config: dict) -> psycopg.Connection:
    return psycopg.connect(
        dbname="postgres",
        user=config["USER"] or "postgres",
        password=config["PASSWORD"] or None,
        host=config["HOST"] or None,
        port=config["PORT"] or None,
        autocommit=True,
    )


def _run(args: argparse.Namespace) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imago_site.settings")
    import django

    django.setup()
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"migrated in {time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "predictions.jsonl"
        started = time.perf_counter()
        _write_predictions(path, args.count)
        size = path.stat().st_size
        print(
            f"wrote {args.count:,} predictions ({size / 1e6:.0f} MB) "
            f"in {time.perf_counter() - started:.1f} s\n"
        )
        update = Path(folder) / "update.jsonl"
        _write_predictions(update, args.update_count, seed=7)
        client, key = _tenants()
        _bench_import(path, update, client, args)
    _bench_questions(client, key, args)


def _write_predictions(path: Path, count: int, *, seed: int = 6) -> None:
    rng = random.Random(seed)
    with path.open("w") as fp:
        for n in range(count):
            kind = rng.choice(TYPES)
            barcode = f"{rng.randrange(10**12, 10**13):013d}"
            record = {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "type": kind,
                "barcode": barcode,
                "value": None,
                "value_tag": f"en:{kind}-{n % 5000}",
                "data": {"text": f"{kind} {n % 5000}", "notify": False},
                "automatic_processing": False,
                "predictor": "flashtext",
                "predictor_version": "1",
                "timestamp": f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}T12:{n % 60:02d}:00",
                "source_image": f"/{barcode[:3]}/{barcode[3:6]}/{barcode[6:9]}/{barcode[9:]}/1.jpg",
                "confidence": round(rng.random(), 3) if n % 3 else None,
                "server_type": "off",
            }
            fp.write(json.dumps(record) + "\n")


def _tenants() -> tuple:
    from images.tenancy import services

    client, key = services.client_create(name="Bench", rate_limit=10**9)
    return client, key


def _bench_import(path: Path, update: Path, client, args: argparse.Namespace) -> None:
    from annotations.importer.records import prediction_record
    from annotations.models import Insight
    from images.library import services

    print("(a) import")
    ours = _timed_import("importer (first load)", client, path)
    _timed_import("re-import of the same file", client, path)
    _timed_import(f"update of {args.update_count:,} new predictions (looked up)", client, update)

    other, _ = services.client_create(name="Bench naive")
    sample = args.naive_sample
    started = time.perf_counter()
    with path.open("rb") as fp:
        for _, line in zip(range(sample), fp, strict=False):
            record = prediction_record(json.loads(line))
            # New ids: the ids of the file belong to the first tenant now.
            Insight(id=uuid.uuid4(), client=other, **record.fields).save()
    naive_took = time.perf_counter() - started
    naive = sample / naive_took
    print(
        f"  per-row ORM save loop: {sample:,} rows in {naive_took:.1f} s = {naive:,.0f} insights/s "
        f"(extrapolated: {args.count / naive / 60:.1f} min for {args.count:,})"
    )
    verdict = "met" if ours >= IMPORT_GOAL else "NOT met"
    print(f"  ratio {ours / naive:.1f}x; goal ≥ {IMPORT_GOAL:,}/s: {verdict}\n")


def _timed_import(label: str, client, path: Path) -> float:
    """Import the file for the tenant; print its counts, rate and CPU; return the rate."""
    from annotations import importer

    with _CpuMeter() as cpu, path.open("rb") as fp:
        counts = importer.insights_import(client=client, fp=fp)
    rate = counts.read / cpu.wall
    print(f"  {label}: {counts.summary()} in {cpu.wall:.1f} s = {rate:,.0f} insights/s")
    print(f"    {cpu.describe(counts.read)}")
    return rate


class _CpuMeter:
    """Wall time, this process's CPU time, and the CPU time of the database's server processes.

    The machine is shared and often busy: CPU seconds per insight say what the code costs when
    wall time mostly says how loaded the machine was. Server processes are sampled every 0.2 s
    (PostgreSQL on this machine only), so that a connection that closes is still counted.
    """

    def __enter__(self) -> "_CpuMeter":
        from django.db import connection

        self.database = connection.settings_dict["NAME"]
        self.server: dict[int, float] = {}
        self.start_server = self._server_cpu()
        self.stop = threading.Event()
        self.sampler = threading.Thread(target=self._sample, daemon=True)
        self.sampler.start()
        self.started = time.perf_counter()
        self.cpu_started = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.started
        self.cpu = time.process_time() - self.cpu_started
        self.stop.set()
        self.sampler.join()
        self._server_cpu()
        self.server_cpu = sum(self.server.values()) - sum(self.start_server.values())

    def _sample(self) -> None:
        while not self.stop.wait(0.2):
            self._server_cpu()

    def _server_cpu(self) -> dict[int, float]:
        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as raw:
            pids = [
                row[0]
                for row in raw.execute(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    [self.database],
                )
            ]
        seen = {}
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            seen[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        self.server.update(seen)
        return dict(seen)

    def describe(self, rows: int) -> str:
        total = self.cpu + self.server_cpu
        return (
            f"CPU: Python {self.cpu:.1f} s + PostgreSQL {self.server_cpu:.1f} s "
            f"= {total / rows * 1e6:.0f} µs per insight ({rows / total:,.0f} per CPU-second); "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )


def _bench_questions(client, key: str, args: argparse.Namespace) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client as HttpClient

    with connection.cursor() as cursor:
        # Some questions answered, as in a live store; then fresh statistics, as autovacuum would.
        cursor.execute(
            "UPDATE annotations_insight SET annotation = 1, username = 'bench' "
            "WHERE client_id = %s AND random_key < 0.1",
            [client.pk],
        )
        print(f"(b) questions: {cursor.rowcount:,} insights marked annotated")
    connection.close()
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as raw:
        raw.execute("VACUUM ANALYZE annotations_insight")

    http = HttpClient(HTTP_AUTHORIZATION=f"Token {key}")
    operator = HttpClient()
    operator.force_login(
        get_user_model().objects.create_user("bench-operator", password=None, is_staff=True)
    )

    def route() -> None:
        response = http.get("/api/v1/questions/random", {"count": 25})
        assert response.status_code == 200, response.content[:300]
        assert len(response.json()["questions"]) == 25

    def every_tenant() -> None:
        response = operator.get("/api/v1/questions/random", {"count": 25})
        assert response.status_code == 200, response.content[:300]
        assert len(response.json()["questions"]) == 25

    def naive() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT * FROM annotations_insight WHERE client_id = %s AND annotation IS NULL "
                "ORDER BY random() LIMIT 25",
                [client.pk],
            )
            assert len(cursor.fetchall()) == 25

    ours = _latencies(route, args.requests, warmup=20)
    theirs = _latencies(naive, args.naive_queries, warmup=1)
    merged = _latencies(every_tenant, args.requests, warmup=20)
    _print_latency("/api/v1/questions/random (test Client)", ours)
    _print_latency("ORDER BY random() LIMIT 25 (SQL only)", theirs)
    _print_latency("/api/v1/questions/random, operator: every tenant merged", merged)
    ratio = statistics.median(theirs) / statistics.median(ours)
    p99 = _percentile(ours, 99)
    print(
        f"  ratio of medians {ratio:.1f}x (goal ≥ {SPEED_GOAL}x: "
        f"{'met' if ratio >= SPEED_GOAL else 'NOT met'}); route p99 {p99:.1f} ms "
        f"(goal ≤ {P99_GOAL_MS} ms: {'met' if p99 <= P99_GOAL_MS else 'NOT met'})"
    )


def _latencies(call: Callable[[], None], times: int, *, warmup: int) -> list[float]:
    for _ in range(warmup):
        call()
    found = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        found.append((time.perf_counter() - started) * 1000)
    return found


def _percentile(values: list[float], pct: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def _print_latency(label: str, values: list[float]) -> None:
    print(
        f"  {label}: n={len(values)}, p50 {statistics.median(values):.1f} ms, "
        f"p99 {_percentile(values, 99):.1f} ms"
    )


if __name__ == "__main__":
    main()
