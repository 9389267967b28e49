"""Thumbnail speed: Imago's render_thumbnails against the naive Pillow way, in one run.

    .venv/bin/python bench/thumbnails.py [--images N] [--rounds R] [--real N]

Headline: 12-megapixel JPEGs (4000x3000, quality 90) made here with gradients, shapes, texture
and grain, so they compress like photos (about 3 MB each) rather than like flat colour.
When ../shared/data/plates/us is present, real car photos (720p and 1080p) are measured too.

Both paths make 256 and 1024 px WebP thumbnails at quality 80:
- imago: render_thumbnails(open(path, "rb"), (256, 1024)): one open and decode (JPEG draft to
  the smallest DCT scale covering 1024), a cascade 1024 -> 256, WebP method 2.
- naive: per size, Image.open(path), thumbnail((s, s)), save as WebP (Pillow's default
  method 4). No draft of its own, no cascade, the file is reopened for each size. Note that
  Pillow's thumbnail() already drafts JPEGs internally (to twice the size asked for).

Each round times every image through both paths, interleaved so that drift hits both alike;
the figures are medians over rounds of the mean time per image, after one warm-up round.
"""

import argparse
import io
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from images.library.thumbnails import render_thumbnails  # noqa: E402 (needs the path above)

SIZES = (256, 1024)
QUALITY = 80
GOAL = 0.5
PHOTO_SIZE = (4000, 3000)
REAL_PHOTOS = ROOT.parent / "shared" / "data" / "plates" / "us"


def make_photo(seed: int, size: tuple[int, int] = PHOTO_SIZE) -> Image.Image:
    """A synthetic photo: smooth gradients, sharp-edged shapes, mid-scale texture and grain."""
    rng = random.Random(seed)
    width, height = size
    # Shapes are drawn at 1/8 scale and enlarged, giving soft but clear edges like a real lens.
    sketch_size = (width // 8, height // 8)
    bands = []
    for _ in range(3):
        linear = Image.linear_gradient("L").rotate(
            rng.uniform(0, 360), resample=Image.Resampling.BILINEAR
        )
        radial = Image.radial_gradient("L")
        band = Image.blend(linear, radial, rng.uniform(0.2, 0.8))
        bands.append(band.resize(sketch_size, Image.Resampling.BILINEAR))
    sketch = Image.merge("RGB", bands)
    draw = ImageDraw.Draw(sketch)
    for _ in range(80):
        x0, y0 = rng.randrange(sketch_size[0]), rng.randrange(sketch_size[1])
        x1 = x0 + rng.randrange(5, sketch_size[0] // 3)
        y1 = y0 + rng.randrange(5, sketch_size[1] // 3)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        shape = rng.choice(("ellipse", "rectangle", "line"))
        if shape == "line":
            draw.line((x0, y0, x1, y1), fill=colour, width=rng.randrange(1, 6))
        elif shape == "ellipse":
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
    base = sketch.filter(ImageFilter.GaussianBlur(0.7)).resize(size, Image.Resampling.BICUBIC)
    texture = Image.merge(
        "RGB", [Image.effect_noise((width // 4, height // 4), 60) for _ in range(3)]
    ).resize(size, Image.Resampling.BICUBIC)
    grain = Image.effect_noise(size, 40).convert("RGB")
    return Image.blend(base, Image.blend(texture, grain, 0.4), 0.22)


def imago(path: Path) -> None:
    with path.open("rb") as source:
        render_thumbnails(source, SIZES, quality=QUALITY)


def naive(path: Path) -> None:
    for size in SIZES:
        with Image.open(path) as image:
            image.thumbnail((size, size))
            image.save(io.BytesIO(), "WEBP", quality=QUALITY)


def measure(paths: list[Path], rounds: int) -> tuple[float, float]:
    """Median over rounds of the mean ms per image, for imago and for naive."""
    runs: dict[Callable[[Path], None], list[float]] = {imago: [], naive: []}
    for round_number in range(rounds + 1):  # round 0 warms caches and lazy imports up
        totals = dict.fromkeys(runs, 0.0)
        for path in paths:
            for render in runs:
                start = time.perf_counter()
                render(path)
                totals[render] += time.perf_counter() - start
        if round_number:
            for render, total in totals.items():
                runs[render].append(total / len(paths) * 1000)
    return statistics.median(runs[imago]), statistics.median(runs[naive])


def make_photos(directory: Path, count: int) -> list[Path]:
    paths = []
    for seed in range(count):
        path = directory / f"photo_{seed}.jpg"
        make_photo(seed).save(path, quality=90)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4, help="12 MP JPEGs to make (default 4)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument(
        "--real", type=int, default=20, help="real photos from shared data, 0 for none"
    )
    args = parser.parse_args()
    if args.images < 1 or args.rounds < 1:
        parser.error("--images and --rounds must be at least 1")

    with tempfile.TemporaryDirectory() as directory:
        print(f"making {args.images} JPEGs of {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} at quality 90...")
        photo_sets = {"12 MP JPEG": make_photos(Path(directory), args.images)}
        real = sorted(REAL_PHOTOS.glob("*.jpg"))[: args.real]
        if real:
            photo_sets["plates/us (real)"] = real
        elif args.real:
            print(f"(no real photos at {REAL_PHOTOS}; skipping them)")

        print(f"thumbnails {SIZES} WebP q{QUALITY}; median of {args.rounds} rounds after warm-up\n")
        print(f"{'set':<18}{'images':>7}{'imago ms/img':>14}{'naive ms/img':>14}{'ratio':>9}")
        notes = {
            "12 MP JPEG": f"(goal <= {GOAL}x)",
            # Under 2x the largest size, libjpeg cannot scale the decode down for 1024.
            "plates/us (real)": "(720p/1080p: decoded at full size)",
        }
        for name, paths in photo_sets.items():
            imago_ms, naive_ms = measure(paths, args.rounds)
            print(
                f"{name:<18}{len(paths):>7}{imago_ms:>14.1f}{naive_ms:>14.1f}"
                f"{imago_ms / naive_ms:>8.2f}x  {notes[name]}"
            )


if __name__ == "__main__":
    main()
