"""OCR throughput: Imago's ocr step against pytesseract with its defaults, in one run.

    .venv/bin/python bench/ocr.py [--photos N] [--documents N] [--rounds R] [--workers W]

Images: real car photos from ../shared/data/plates/us (720p and 1080p, some with painted or
overlaid text) when present, and documents drawn here (English and French lines in Pillow's
font, some upside down). The same images go through both paths:
- default: pytesseract.image_to_string(PIL.Image.open(path)), one process, Tesseract's default
  threads (OMP_THREAD_LIMIT unset), language eng (pytesseract's default).
- imago: ai.ocr.read(path, languages="eng+fra"), the ocr step's path (grayscale, enlarging of
  small images, no Tesseract for flat images, orientation detection on a reduced copy only for
  unsure reads, word boxes) in W worker processes (2 by default, like two RQ workers on this
  2-core machine), each with OMP_THREAD_LIMIT=1. It reads two languages where default reads one.

Each round times both paths over all images, in alternating order; the figures are medians over
the rounds of images per second (wall clock), after one warm-up round. CPU seconds per image
(the Python process and its Tesseract processes) are shown too: on a machine shared with other
work they tell the cost of each path when the wall clock cannot. Reading quality is shown beside the
speed: the share of the drawn documents' words found in the text.
"""

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont
import pytesseract

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REAL_PHOTOS = ROOT.parent / "shared" / "data" / "plates" / "us"
GOAL = 2.0
LANGUAGES = "eng+fra"
LINES = [
    "The quick brown fox jumps over the lazy dog.",
    "Invoice number 4821 is due on the first of May.",
    "Le renard brun saute par-dessus le chien paresseux.",
    "Merci d'envoyer le paiement sur le compte ci-dessous.",
    "Please send the payment to the bank account below.",
    "La réunion aura lieu mardi prochain à dix heures.",
]


def make_document(n: int, folder: Path) -> tuple[Path, list[str]]:
    """A page of text, 1000 to 1600 px wide; every fourth is upside down."""
    size = 22 + 4 * (n % 4)
    lines = [LINES[(n + i) % len(LINES)] for i in range(8)]
    font = PIL.ImageFont.load_default(size=size)
    page = PIL.Image.new("RGB", (40 * size, 60 + 2 * size * len(lines)), "white")
    draw = PIL.ImageDraw.Draw(page)
    for i, line in enumerate(lines):
        draw.text((40, 30 + 2 * size * i), line, fill="black", font=font)
    if n % 4 == 3:
        page = page.rotate(180)
    path = folder / f"document-{n}.png"
    page.save(path)
    return path, " ".join(lines).split()


def cpu_seconds() -> float:
    """CPU time of this process and of the Tesseract processes it waited for."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def default_read(path: str) -> tuple[str, float]:
    started = cpu_seconds()
    with PIL.Image.open(path) as image:
        text = pytesseract.image_to_string(image)
    return text, cpu_seconds() - started


def imago_read(path: str) -> tuple[str, float]:
    from ai import ocr

    started = cpu_seconds()
    text = ocr.read(path, languages=LANGUAGES).text
    return text, cpu_seconds() - started


def worker_start() -> None:
    os.environ["OMP_THREAD_LIMIT"] = "1"


def found_share(texts: list[str], expected: list[list[str]]) -> float:
    found = total = 0
    for text, words in zip(texts, expected, strict=True):
        seen = set(text.split())
        found += sum(word in seen for word in words)
        total += len(words)
    return found / total if total else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=12)
    parser.add_argument("--documents", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    # The default path runs in this process: Tesseract's own thread default.
    os.environ.pop("OMP_THREAD_LIMIT", None)
    with tempfile.TemporaryDirectory() as tmp:
        documents = [make_document(n, Path(tmp)) for n in range(args.documents)]
        photos = sorted(REAL_PHOTOS.glob("*.jpg"))[: args.photos] if REAL_PHOTOS.exists() else []
        paths = [str(p) for p in photos] + [str(p) for p, _ in documents]
        print(f"{len(photos)} real photos, {len(documents)} drawn documents, {args.rounds} rounds")
        rates: dict[str, list[float]] = {"default": [], "imago": []}
        cpu: dict[str, list[float]] = {"default": [], "imago": []}
        texts: dict[str, list[str]] = {}
        with ProcessPoolExecutor(args.workers, initializer=worker_start) as pool:
            runs = {
                "default": lambda: [default_read(p) for p in paths],
                "imago": lambda: list(pool.map(imago_read, paths)),
            }
            for round_ in range(args.rounds + 1):
                order = ["default", "imago"] if round_ % 2 else ["imago", "default"]
                for name in order:
                    started = time.perf_counter()
                    results = runs[name]()
                    texts[name] = [text for text, _ in results]
                    if round_:  # round 0 warms up caches and the pool
                        rates[name].append(len(paths) / (time.perf_counter() - started))
                        cpu[name].append(sum(seconds for _, seconds in results) / len(paths))
    expected = [words for _, words in documents]
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (2 cores)")
    print("| path | images/s (median) | CPU s per image (median) | words of the documents found |")
    print("| --- | --- | --- | --- |")
    for name in ("imago", "default"):
        share = found_share(texts[name][len(photos) :], expected)
        rate, seconds = statistics.median(rates[name]), statistics.median(cpu[name])
        print(f"| {name} | {rate:.2f} | {seconds:.2f} | {share:.0%} |")
    ratio = statistics.median(rates["imago"]) / statistics.median(rates["default"])
    verdict = "met" if ratio >= GOAL else "NOT met"
    print(f"ratio imago/default: {ratio:.2f}x (goal >= {GOAL}x): {verdict}")


if __name__ == "__main__":
    main()
