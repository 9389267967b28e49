"""Plate anonymisation end to end (decode, detect, cover, encode WebP): images/s on this machine,
and with --recall the marked plates covered in each shared set.

    .venv/bin/python bench/anonymize.py [--images 24] [--recall] [--variants today,crops]

Imago's path is `images.plates.covering.anonymize_picture` (ONNX engine, covering inside each
plate's bounding box only), measured in one process and as two single-threaded worker processes
(how RQ workers share a 2-core machine). The naive loop is what plate_detect-style scripts do:
ultralytics `predict` per image, then per plate a full-frame perspective warp of the stub and a
full-frame alpha blend, then WebP. Same photos (1-3 megapixels), same model file, same run.

Variants are settings of the plate search (`images.plates.finding.find_plates`), each measured in
the same run: `today` is the full-frame pass alone, the baseline of the throughput ratio. With
--recall, each variant covers every photo of the shared us and eu sets; a marked plate is covered
when a cover's box overlaps it by IoU >= 0.3 or covers >= 90% of it. The misses are listed by
file, with the share of pixels outside the marked plate left uncovered and each pass's time.
"""

import argparse
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imago_site.settings")
os.environ.setdefault("YOLO_OFFLINE", "true")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")

import django  # noqa: E402

django.setup()

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import override_settings  # noqa: E402

from images.detection.engine import ultralytics_model  # noqa: E402
from images.models import Client  # noqa: E402
from images.plates.covering import DEFAULT_STUB, anonymize_picture, open_oriented  # noqa: E402

PLATES = ROOT.parent / "shared" / "data" / "plates"
PHOTOS = [PLATES / region for region in ("us", "eu")]
VARIANTS = {
    "today": {"ANONYMIZE_VEHICLE_CROPS": 0},
    # Vehicle crops at 320, threshold 0.02, without the zoom.
    "crops": {"ANONYMIZE_ZOOM_WINDOWS": 0},
    "crops4": {"ANONYMIZE_ZOOM_WINDOWS": 0, "ANONYMIZE_VEHICLE_CROPS": 4},
    "crops640": {"ANONYMIZE_ZOOM_WINDOWS": 0, "ANONYMIZE_CROP_SIZE": 640,
                 "ANONYMIZE_CROP_CONFIDENCE": 0.05},
    # The settings' defaults: crops, then with no sure plate the vehicles' quarters at 640.
    "zoom": {},
    "zoom480": {"ANONYMIZE_ZOOM_SIZE": 480},
}  # fmt: skip


def photos(count: int) -> list[Path]:
    chosen = []
    for folder in PHOTOS:
        for path in sorted(folder.glob("*.jpg")):
            with PIL.Image.open(path) as picture:  # the header only: no decode
                if 0.9e6 <= picture.width * picture.height <= 3.2e6:
                    chosen.append(path)
    if not chosen:
        sys.exit("No photos: ../shared/data/plates is missing.")
    return chosen[:count]


BENCH_CLIENT = Client(pk=0, name="bench", slug="bench")


def imago_one(path: Path) -> int:
    with path.open("rb") as fp:
        picture = open_oriented(fp)
    return len(anonymize_picture(picture, client=BENCH_CLIENT, mode="stub").data)


def _worker_init() -> None:
    settings.DETECTION_THREADS = 1


def naive_loop(paths: list[Path]) -> float:
    model = ultralytics_model(Path(settings.MODELS_DIR) / "platedet.onnx", task="segment")
    stub = cv2.imread(str(DEFAULT_STUB), cv2.IMREAD_UNCHANGED)
    h, w = stub.shape[:2]
    source = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    model.predict(str(paths[0]), verbose=False)  # warm-up
    started = time.perf_counter()
    for path in paths:
        result = model.predict(str(path), conf=settings.ANONYMIZE_CONFIDENCE, verbose=False)[0]
        image = cv2.imread(str(path))
        for outline in result.masks.xy if result.masks is not None else []:
            corners = cv2.boxPoints(cv2.minAreaRect(outline.astype(np.float32)))
            matrix = cv2.getPerspectiveTransform(source, corners.astype(np.float32))
            warped = cv2.warpPerspective(stub, matrix, (image.shape[1], image.shape[0]))
            alpha = warped[:, :, 3:4] / 255.0
            image = (warped[:, :, :3] * alpha + image * (1 - alpha)).astype(np.uint8)
        cv2.imencode(".webp", image, [cv2.IMWRITE_WEBP_QUALITY, settings.ANONYMIZE_QUALITY])
    return time.perf_counter() - started


def imago_sequential(paths: list[Path]) -> float:
    imago_one(paths[0])  # warm-up: model load
    started = time.perf_counter()
    for path in paths:
        imago_one(path)
    return time.perf_counter() - started


def imago_two_workers(paths: list[Path]) -> float:
    with ProcessPoolExecutor(max_workers=2, initializer=_worker_init) as pool:
        list(pool.map(imago_one, paths[:2]))  # warm-up: each worker loads the model
        started = time.perf_counter()
        list(pool.map(imago_one, paths))
        return time.perf_counter() - started


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def judged(path: Path) -> tuple[bool, float, dict[str, float], list[str]]:
    """(marked plate covered, share of the other pixels left uncovered, seconds per pass,
    the reasons the result would wait for a person)."""
    x, y, w, h = map(int, path.with_suffix(".txt").read_text().split()[1:5])
    truth = (x, y, x + w, y + h)
    with path.open("rb") as fp:
        result = anonymize_picture(open_oriented(fp), client=BENCH_CLIENT, mode="solid")
    mask = np.zeros((result.height, result.width), dtype=np.uint8)
    boxes = []
    for quad in result.regions:
        corners = np.asarray(quad, dtype=np.float32)
        cv2.fillPoly(mask, [np.round(corners).astype(np.int32)], 1)
        boxes.append((*corners.min(axis=0), *corners.max(axis=0)))
    inside = mask[y : y + h, x : x + w]
    covered = inside.mean() >= 0.9 or any(box_iou(box, truth) >= 0.3 for box in boxes)
    outside = 1 - (mask.sum() - inside.sum()) / max(1, mask.size - inside.size)
    passes = result.findings.seconds if result.findings else {}
    return covered, float(outside), passes, result.reasons


def recall(region: str) -> None:
    paths = sorted((PLATES / region).glob("*.jpg"))
    misses, untouched, seconds, flagged = [], [], defaultdict(float), Counter()
    for path in paths:
        covered, outside, passes, reasons = judged(path)
        flagged.update([*reasons, "any"] if reasons else [])
        if not covered:
            misses.append(path.name)
        untouched.append(outside)
        for name, value in passes.items():
            seconds[name] += value
    hits = len(paths) - len(misses)
    times = ", ".join(f"{name} {value / len(paths) * 1000:.0f}" for name, value in seconds.items())
    print(f"  {region}: {hits}/{len(paths)} = {hits / len(paths):.3f} covered; pixels outside the "
          f"plate untouched {statistics.mean(untouched):.2%} (worst {min(untouched):.2%}, "
          f"{sum(u < 0.95 for u in untouched)} photos < 95%); ms per image: {times}")  # fmt: skip
    reasons = ", ".join(f"{name} {n}" for name, n in flagged.most_common() if name != "any")
    print(f"    needs_review: {flagged['any']}/{len(paths)} photos ({reasons or 'none'})")
    for name in misses:
        print(f"    missed {region}/{name}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--recall", action="store_true", help="cover the us and eu sets")
    parser.add_argument("--variants", default="today,zoom", help=", ".join(VARIANTS))
    parser.add_argument("--no-naive", action="store_true", help="skip the naive loop, 2 workers")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)  # the model registry lives in the database
    paths = photos(args.images)
    print(f"{len(paths)} photos of 1-3 MP, {os.cpu_count()} CPUs, median of {args.rounds} rounds\n")
    runs = {"naive ultralytics loop": naive_loop, "imago, 2 workers x 1 thread": imago_two_workers}
    runs = {} if args.no_naive else runs
    rates = {
        name: statistics.median(len(paths) / run(paths) for _ in range(args.rounds))
        for name, run in runs.items()
    }
    for variant in args.variants.split(","):
        with override_settings(**VARIANTS[variant]):
            rates[f"{variant}, 1 worker x 2 threads"] = statistics.median(
                len(paths) / imago_sequential(paths) for _ in range(args.rounds)
            )
    naive, today = rates.get("naive ultralytics loop"), rates.get("today, 1 worker x 2 threads")
    for name, rate in rates.items():
        versus = f"  {rate / naive:5.2f}x naive" if naive else ""
        versus += f"  {rate / today:5.2f}x today" if today else ""
        print(f"{name:36} {rate:6.2f} images/s{versus}")
    print("\ngoals: >= 1.5x the naive loop; each variant >= 0.5x today")
    for variant in args.variants.split(",") if args.recall else []:
        print(f"\n{variant}: {VARIANTS[variant] or 'the settings as they are'}")
        with override_settings(**VARIANTS[variant]):
            for region in ("us", "eu"):
                recall(region)
    print("goal: >= 0.99 covered in us and in eu, >= 95% of the other pixels untouched")


if __name__ == "__main__":
    main()
