"""The `anonymize` pipeline step: a stored image's plates covered, on every upload when the tenant
asks for it, or on request."""

import time

from images.library import storage
from images.library.pipeline import SkipStep, step
from images.models import Image
from images.plates.covering import anonymize_picture, open_oriented
from images.plates.selectors import settings_for


@step("anonymize")
def anonymize_step(image: Image) -> dict:
    options = settings_for(image.client)
    requested = image.steps.filter(name="anonymize", result__requested=True).exists()
    if not (options.on_upload or requested):
        raise SkipStep("anonymisation is off for this tenant (POST /images/{id}/anonymize/)")
    mode = image.steps.get(name="anonymize").result.get("mode") or options.mode
    with storage.open_original(image) as fp:
        picture = open_oriented(fp)
    covered = anonymize_picture(
        picture, client=image.client, mode=mode, cover_faces=options.cover_faces
    )
    old = storage.files_under(f"{image.storage_dir}/anonymized")
    name = storage.save_bytes(
        f"{image.storage_dir}/anonymized/{int(time.time() * 1000)}.webp", covered.data
    )
    storage.delete_quietly(old)
    return {
        "requested": requested,
        "mode": mode,
        "file": name,
        "plates": covered.plates,
        "faces": covered.faces,
        "regions": covered.regions,
        "plate_confidences": covered.confidences,
        "needs_review": bool(covered.reasons),
        "review_reasons": covered.reasons,
        "reviewed_at": None,
        "revision": 0,
    }
