"""Detection speed and memory: Imago's ONNX engine vs ultralytics `predict`, same files, same run.

    .venv/bin/python bench/detect.py [--images 24]

Both backends run the same ONNX exports (ultralytics loads them through its own ONNX Runtime
backend), so the comparison is of everything around the network: letterbox, decoding, NMS,
masks. RSS is measured in fresh processes that load both models and run one image, like a worker.
"""

import argparse
import os
import statistics
import subprocess
import sys
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

from images.engine import ModelSpec, OnnxDetector, read_onnx_metadata, ultralytics_model  # noqa: E402

PHOTOS = ROOT.parent / "shared" / "data" / "plates" / "us"
RSS_SCRIPT = """
import os, sys
sys.path.insert(0, {root!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imago_site.settings")
import django; django.setup()
import PIL.Image
from bench.detect import spec
from images.engine import get_detector
picture = PIL.Image.new("RGB", (1280, 720), "gray")
for name in ("coco", "plates"):
    get_detector(spec(name), threads=2).predict(picture)
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


def timed(run, images: list) -> list[float]:
    run(images[0])  # warm-up: session start, first allocations
    times = []
    for image in images:
        started = time.perf_counter()
        run(image)
        times.append((time.perf_counter() - started) * 1000)
    return times


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=24)
    args = parser.parse_args()
    images = pictures(args.images)
    print(f"{len(images)} images, {os.cpu_count()} CPUs, ONNX Runtime with 2 threads\n")
    print(
        f"{'model':8} {'backend':12} {'median ms':>10} {'p90 ms':>8} {'images/s':>9} {'ratio':>9}"
    )
    for name in ("coco", "plates"):
        model_spec = spec(name)
        ours = OnnxDetector(model_spec, threads=2)
        spinning = OnnxDetector(model_spec, threads=2, spin=True)
        reference = ultralytics_model(model_spec.path, task=model_spec.task)
        results = {
            "imago-onnx": timed(lambda im, d=ours: d.predict(im), images),
            # DETECTION_SPIN=true: faster on idle cores, slower when other workers need them.
            "imago-spin": timed(lambda im, d=spinning: d.predict(im), images),
            "ultralytics": timed(
                lambda im, m=reference: m.predict(np.asarray(im)[:, :, ::-1], verbose=False),
                images,
            ),
        }
        rates = {k: 1000 * len(v) / sum(v) for k, v in results.items()}
        for backend, times in results.items():
            ratio = rates[backend] / rates["ultralytics"]
            print(
                f"{name:8} {backend:12} {statistics.median(times):10.1f} {p90(times):8.1f} "
                f"{rates[backend]:9.2f} {ratio:8.2f}x"
            )
    print("\ngoal: ONNX engine >= 1.2x ultralytics throughput")
    print(f"worker RSS with both models loaded: {rss_mb()} MB (goal <= 700 MB)")


if __name__ == "__main__":
    main()
