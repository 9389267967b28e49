"""Plate anonymisation end to end (decode, detect, cover, encode WebP): images/s on this machine.

    .venv/bin/python bench/anonymize.py [--images 24]

Imago's path is `images.anonymize.anonymize_picture` (ONNX engine, covering inside each plate's
bounding box only), measured in one process and as two single-threaded worker processes (how RQ
workers share a 2-core machine). The naive loop is what plate_detect-style scripts do: ultralytics
`predict` per image, then per plate a full-frame perspective warp of the stub and a full-frame
alpha blend, then WebP. Same photos (1-3 megapixels), same model file, same run.
"""

import argparse
import os
import statistics
import sys
import time
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

from images.anonymize import DEFAULT_STUB, anonymize_picture, open_oriented  # noqa: E402
from images.engine import ultralytics_model  # noqa: E402
from images.models import Client  # noqa: E402

PHOTOS = [ROOT.parent / "shared" / "data" / "plates" / region for region in ("us", "eu")]


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


def imago_one(path: Path) -> int:
    client = Client(pk=0, name="bench", slug="bench")
    with path.open("rb") as fp:
        picture = open_oriented(fp)
    return len(anonymize_picture(picture, client=client, mode="stub").data)


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)  # the model registry lives in the database
    paths = photos(args.images)
    print(f"{len(paths)} photos of 1-3 MP, {os.cpu_count()} CPUs, median of {args.rounds} rounds\n")
    runs = {"naive ultralytics loop": naive_loop, "imago, 1 worker x 2 threads": imago_sequential,
            "imago, 2 workers x 1 thread": imago_two_workers}  # fmt: skip
    rates = {
        name: statistics.median(len(paths) / run(paths) for _ in range(args.rounds))
        for name, run in runs.items()
    }
    naive = rates["naive ultralytics loop"]
    for name, rate in rates.items():
        print(f"{name:30} {rate:6.2f} images/s  {rate / naive:5.2f}x")
    print("\ngoal: >= 1.5x the naive loop")


if __name__ == "__main__":
    main()
