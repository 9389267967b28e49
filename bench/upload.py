"""Upload acceptance under load: Imago's POST /api/v1/images/ against a minimal Django view.

    .venv/bin/python bench/upload.py [--clients 20] [--seconds 15] [--rounds 3] [--workers 3]

Both run in one gunicorn (sync workers, PostgreSQL, Redis), started here with Imago's settings
plus one route (bench/upload_site.py, bench/upload_urls.py):
- imago: the API upload, as a tenant's key would send it: key check, inspection, quota, the
  files stored, the image row, its step rows and the pipeline's jobs queued in Redis (no worker
  runs them, so the figures are those of accepting uploads);
- minimal: a view that stores the file and writes one row, nothing else: the floor.
N client threads each post one ~390 KB JPEG after another (each made unique by a comment segment,
so that no upload is a duplicate). Rounds alternate the two; the figures are medians over rounds
of uploads/s and of each round's p50 and p99 latency.
"""

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import redis
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from thumbnails import make_photo  # noqa: E402 (the bench folder is on the path above)

PYTHON = sys.executable
GOAL_RATIO, GOAL_P99_MS = 2.0, 250.0
BASELINE = "today's 40 uploads/s, p99 592 ms (20 clients, 3 workers, before the bulk enqueue)"


def photo_bytes() -> bytes:
    buffer = io.BytesIO()
    make_photo(1, (1280, 960)).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def unique(jpeg: bytes, n: int) -> bytes:
    # A JPEG comment segment (FF FE, length) right after SOI: another file, the same picture.
    comment = f"upload {n} {time.time_ns()}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + jpeg[2:]


def django(env: dict[str, str], code: str) -> str:
    done = subprocess.run(
        [PYTHON, "-c", f"import django; django.setup(); {code}"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def recreate_database(url: str) -> None:
    parts = urlsplit(url)
    server = {"host": parts.hostname, "port": parts.port or 5432, "user": parts.username}
    name = sql.Identifier(parts.path.lstrip("/"))
    with psycopg.connect(**server, password=parts.password, dbname="postgres") as connection:
        connection.autocommit = True
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(name))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(name))


def serve(env: dict[str, str], port: int, workers: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            *(PYTHON, "-m", "gunicorn", "imago_site.wsgi", "--config", "gunicorn.conf.py"),
            *("--bind", f"127.0.0.1:{port}", "--workers", str(workers)),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return server
        except httpx.HTTPError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit("gunicorn did not start")


def load(url: str, headers: dict[str, str], jpeg: bytes, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    failures: list[int | str] = []
    lock = threading.Lock()
    counter = iter(range(10**9))
    stop = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(headers=headers, timeout=30) as http:
            while time.monotonic() < stop:
                body = unique(jpeg, next(counter))
                started = time.perf_counter()
                try:
                    response = http.post(url, files={"file": ("photo.jpg", body, "image/jpeg")})
                    failure = None if response.status_code == 201 else response.status_code
                except httpx.HTTPError as exc:
                    failure = repr(exc)
                elapsed = time.perf_counter() - started
                with lock:
                    if failure is None:
                        latencies.append(elapsed)
                    else:
                        failures.append(failure)

    began = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - began
    if failures:
        raise SystemExit(f"{len(failures)} uploads failed on {url}, e.g. {failures[0]}")
    ordered = sorted(latencies)
    return {
        "rate": len(ordered) / wall,
        "p50": ordered[len(ordered) // 2] * 1000,
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/imago_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7")
    args = parser.parse_args()

    media = tempfile.mkdtemp(prefix="imago-bench-media-")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "upload_site",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'bench'}",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "MEDIA_ROOT": media,
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    recreate_database(args.database_url)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], env=env, cwd=ROOT, check=True)
    made = django(
        env,
        "from images.tenancy.services import client_create; "
        "c, k = client_create(name='Bench', scopes=['images:write'], rate_limit=10**9); "
        "print(c.pk, k)",
    )
    client_id, key = made.split()
    env["BENCH_CLIENT_ID"] = client_id
    queues = redis.Redis.from_url(args.redis_url)
    queues.flushdb()

    jpeg = photo_bytes()
    print(
        f"{args.clients} clients, {args.seconds:.0f} s a round, {args.rounds} rounds each, "
        f"gunicorn {args.workers} sync workers, JPEG {len(jpeg) / 1000:.0f} KB"
    )
    server = serve(env, args.port, args.workers)
    base = f"http://127.0.0.1:{args.port}"
    results: dict[str, list[dict]] = {"imago": [], "minimal": []}
    try:
        load(f"{base}/api/v1/images/", {"X-API-Key": key}, jpeg, args.clients, 2)  # warm-up
        for _ in range(args.rounds):
            results["imago"].append(
                load(f"{base}/api/v1/images/", {"X-API-Key": key}, jpeg, args.clients, args.seconds)
            )
            results["minimal"].append(
                load(f"{base}/bench/minimal-upload", {}, jpeg, args.clients, args.seconds)
            )
    finally:
        server.terminate()
        server.wait()
        queues.flushdb()
    medians = {
        path: {k: statistics.median(r[k] for r in rounds) for k in ("rate", "p50", "p99")}
        for path, rounds in results.items()
    }
    print(f"{'path':<8} {'uploads/s':>10} {'p50 ms':>8} {'p99 ms':>8}   (medians over rounds)")
    for path, m in medians.items():
        print(f"{path:<8} {m['rate']:>10.1f} {m['p50']:>8.0f} {m['p99']:>8.0f}")
    ratio = medians["imago"]["rate"] / medians["minimal"]["rate"]
    print(f"imago / minimal: {ratio:.2f}x the floor's uploads/s")
    print(f"goal: >= {GOAL_RATIO:.0f}x {BASELINE}, and p99 <= {GOAL_P99_MS:.0f} ms")


if __name__ == "__main__":
    main()
