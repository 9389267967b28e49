"""Detection speed and memory: Imago's ONNX engine vs ultralytics `predict`, same files, same run.

    .venv/bin/python bench/detect.py [--images 24 --rounds 3]

Both backends run the same ONNX exports (ultralytics loads them through its own ONNX Runtime
backend). Imago is timed one image at a time (the pipeline step, /detect/image), two images in
flight (`ordered_map`, as a /detect/batch job runs), and one at a time on the export as it is
(square input decoded by the export's own tail, `rect=False`: what the rectangular input
saves); ultralytics one at a time, and in two threads with a model each (its documented way to
predict from threads) to show that this does not help it.
Latency is per image in the one-at-a-time runs; images/s is the median over the rounds, each
round timing every variant once, in turn. RSS is measured in a fresh process that loads both
models and runs them like a worker serving the pipeline and batch jobs.
"""

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imago_site.settings")
os.environ.setdefault("YOLO_OFFLINE", "true")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402
import PIL.ImageOps  # noqa: E402
from django.conf import settings  # noqa: E402

from images.detection.engine import (  # noqa: E402
    ModelSpec,
    OnnxDetector,
    ordered_map,
    read_onnx_metadata,
    ultralytics_model,
)

PHOTOS = ROOT.parent / "shared" / "data" / "plates" / "us"
RSS_SCRIPT = """
import os, sys
sys.path.insert(0, {root!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imago_site.settings")
import django; django.setup()
import PIL.Image
from bench.detect import spec
from images.detection.engine import get_detector, ordered_map
picture = PIL.Image.new("RGB", (1280, 720), "gray")
for name in ("coco", "plates"):
    get_detector(spec(name), threads=2).predict(picture)
    # and the sessions of a /detect/batch job, two images in flight
    list(ordered_map(get_detector(spec(name), threads=1).predict, [picture] * 2, workers=2))
# VmHWM, not ru_maxrss: the latter survives execve and would report this parent's peak.
status = open("/proc/self/status").read()
print(int(status.split("VmHWM:")[1].split()[0]) // 1024)
"""


def spec(name: str) -> ModelSpec:
    path = Path(settings.MODELS_DIR) / settings.DETECTION_MODELS[name]["file"]
    meta = read_onnx_metadata(path)
    return ModelSpec(name, path, meta["task"], meta["input_size"], tuple(meta["class_names"]))


def pictures(count: int) -> list[PIL.Image.Image]:
    if PHOTOS.exists():
        paths = sorted(PHOTOS.glob("*.jpg"))[:count]
        return [PIL.ImageOps.exif_transpose(PIL.Image.open(p)).convert("RGB") for p in paths]
    rng = np.random.default_rng(0)
    return [
        PIL.Image.fromarray(rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8))
        for _ in range(count)
    ]


def one_at_a_time(predict, images: list) -> list[float]:
    """Milliseconds per image."""
    times = []
    for image in images:
        started = time.perf_counter()
        predict(image)
        times.append((time.perf_counter() - started) * 1000)
    return times


def two_threads(predicts: list, images: list) -> None:
    """Half the images each in two threads, one model each."""
    second = threading.Thread(target=lambda: [predicts[1](im) for im in images[1::2]])
    second.start()
    for image in images[::2]:
        predicts[0](image)
    second.join()


def rate(run, images: list) -> float:
    started = time.perf_counter()
    run(images)
    return len(images) / (time.perf_counter() - started)


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def rss_mb() -> int:
    result = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT.format(root=str(ROOT))],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stdout.strip().splitlines()[-1])


def bgr(image: PIL.Image.Image) -> np.ndarray:
    return np.asarray(image)[:, :, ::-1]  # ultralytics takes OpenCV's channel order


def compare(name: str, images: list, rounds: int) -> None:
    model_spec = spec(name)
    ours = OnnxDetector(model_spec, threads=2)
    # The export as it is: square 640x640 input, decoded by its own tail.
    square = OnnxDetector(model_spec, threads=2, rect=False)
    # A /detect/batch job's way: two images in flight, one ONNX Runtime thread each.
    batch = OnnxDetector(model_spec, threads=1)
    references = [ultralytics_model(model_spec.path, task=model_spec.task) for _ in range(2)]
    predicts = [lambda im, m=m: m.predict(bgr(im), verbose=False) for m in references]
    runs = {
        "imago, one at a time": lambda ims: [ours.predict(im) for im in ims],
        "imago, 2 in flight (batch)": lambda ims: list(ordered_map(batch.predict, ims, workers=2)),
        "imago, square input": lambda ims: [square.predict(im) for im in ims],
        "ultralytics predict": lambda ims: [predicts[0](im) for im in ims],
        "ultralytics, 2 threads": lambda ims: two_threads(predicts, ims),
    }
    for run in runs.values():
        run(images[:2])  # warm-up: session start, first allocations
    rates: dict[str, list[float]] = {backend: [] for backend in runs}
    for _ in range(rounds):
        for backend, run in runs.items():
            rates[backend].append(rate(run, images))
    latency = {
        "imago, one at a time": one_at_a_time(ours.predict, images),
        "imago, square input": one_at_a_time(square.predict, images),
        "ultralytics predict": one_at_a_time(predicts[0], images),
    }
    reference = statistics.median(rates["ultralytics predict"])
    for backend, measured in rates.items():
        median = statistics.median(measured)
        times = latency.get(backend)
        columns = f"{statistics.median(times):9.1f} {p90(times):7.1f}" if times else " " * 17
        print(f"{name:7} {backend:28} {columns} {median:8.2f} {median / reference:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    images = pictures(args.images)
    print(
        f"{len(images)} images, {os.cpu_count()} CPUs, ONNX Runtime with 2 threads, "
        f"{args.rounds} rounds\n"
    )
    print(f"{'model':7} {'backend':28} {'median ms':>9} {'p90 ms':>7} {'images/s':>8} {'ratio':>6}")
    for name in ("coco", "plates"):
        compare(name, images, args.rounds)
    print("\ngoal: ONNX engine >= 1.2x ultralytics throughput")
    print(f"worker RSS with both models loaded: {rss_mb()} MB (goal <= 700 MB)")


if __name__ == "__main__":
    main()
