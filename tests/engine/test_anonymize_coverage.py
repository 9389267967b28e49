"""Plate covering on every shared plate photo: the marked plate is covered, the rest untouched."""

import io

import numpy as np
import PIL.Image
import PIL.ImageOps
import pytest
from django.conf import settings

from images.models import Client
from images.plates.covering import anonymize_picture
from tests.helpers import shared_data

pytestmark = pytest.mark.slow  # every shared plate photo, covered


def _decode(data: bytes) -> np.ndarray:
    with PIL.Image.open(io.BytesIO(data)) as picture:
        return np.asarray(picture.convert("RGB")).astype(np.int16)


def _reencoded(picture: PIL.Image.Image) -> np.ndarray:
    buffer = io.BytesIO()
    picture.save(
        buffer, "WEBP", quality=settings.ANONYMIZE_QUALITY, method=settings.ANONYMIZE_WEBP_METHOD
    )
    return _decode(buffer.getvalue())


@pytest.mark.django_db
@pytest.mark.parametrize("region", ["us", "eu"])
def test_the_marked_plate_is_covered_and_far_pixels_are_only_reencoded(region):
    client = Client.objects.create(name="Cover", slug=f"cover-{region}")
    photos = sorted(shared_data("plates", region).glob("*.jpg"))
    covered_count, far_differences = 0, []
    for path in photos:
        x, y, w, h = map(int, path.with_suffix(".txt").read_text().split()[1:5])
        with PIL.Image.open(path) as opened:
            picture = PIL.ImageOps.exif_transpose(opened).convert("RGB")
        result = anonymize_picture(picture, client=client, mode="stub")
        output, reencoded = _decode(result.data), _reencoded(picture)
        original = np.asarray(picture).astype(np.int16)
        # A pixel changed when it differs from a plain re-encode beyond WebP's noise: the stub is
        # dark, so a threshold on raw colour distance would miss covered dark plates.
        changed = np.abs(output - reencoded).max(axis=2)[y : y + h, x : x + w] > 12
        covered_count += changed.mean() >= 0.5
        # Far from every covered region, the photo is only re-encoded. WebP chooses quantisers
        # per image, so covering a plate shifts the noise a little everywhere: compare noise
        # levels against the photo, not pixels against a plain re-encode.
        far = np.ones(output.shape[:2], dtype=bool)
        for quad in result.regions:
            corners = np.asarray(quad)
            (x1, y1), (x2, y2) = corners.min(axis=0), corners.max(axis=0)
            pad = max(x2 - x1, y2 - y1)
            far[max(0, int(y1 - pad)) : int(y2 + pad), max(0, int(x1 - pad)) : int(x2 + pad)] = 0
        if far.any():
            ours = np.abs(output - original).mean(axis=2)[far].mean()
            plain = np.abs(reencoded - original).mean(axis=2)[far].mean()
            far_differences.append(float(ours - plain))
    assert covered_count / len(photos) >= 0.95, f"{covered_count}/{len(photos)} covered"
    worst = max(far_differences)
    assert worst < 1.0, f"far pixels are {worst:.2f} levels noisier than a plain re-encode"
