"""The core pipeline steps: EXIF and thumbnails."""

import secrets

import PIL.Image
from django.conf import settings
from django.db import transaction

from images.library import storage
from images.library.exif import read_exif
from images.library.pipeline import step
from images.library.thumbnails import render_thumbnails
from images.models import Exif, Image, Thumbnail


@step("exif")
def exif_step(image: Image) -> dict:
    with storage.open_original(image) as fp, PIL.Image.open(fp) as opened:
        data = read_exif(opened)
    Exif.objects.update_or_create(
        image=image,
        defaults={
            "make": data.make or "",
            "model": data.model or "",
            "lens": data.lens or "",
            "iso": data.iso,
            "aperture": data.aperture,
            "shutter": data.shutter or "",
            "exposure_seconds": data.exposure_seconds,
            "focal_length": data.focal_length,
            "taken_at": data.taken_at,
            "orientation": data.orientation,
            "latitude": data.latitude,
            "longitude": data.longitude,
            "altitude": data.altitude,
            "tags": data.tags,
        },
    )
    return {
        "camera": " ".join(filter(None, [data.make, data.model])) or None,
        "taken_at": data.taken_at.isoformat() if data.taken_at else None,
        "has_gps": data.has_gps,
        "tag_count": sum(len(group) for group in data.tags.values()),
    }


@step("thumbnails")
def thumbnails_step(image: Image) -> dict:
    with storage.open_original(image) as fp:
        rendered = render_thumbnails(
            fp, settings.THUMBNAIL_SIZES, quality=settings.THUMBNAIL_QUALITY
        )
    # New names for each run: the old files stay valid until the rows point at the new ones.
    token = secrets.token_hex(4)
    saved = []
    try:
        for thumb in rendered:
            name = storage.save_bytes(
                f"{image.storage_dir}/thumb_{thumb.size}_{token}.webp", thumb.data
            )
            saved.append((thumb, name))
        old_files = list(image.thumbnails.values_list("file", flat=True))
        with transaction.atomic():
            image.thumbnails.all().delete()
            Thumbnail.objects.bulk_create(
                Thumbnail(
                    image=image,
                    size=thumb.size,
                    file=name,
                    width=thumb.width,
                    height=thumb.height,
                    size_bytes=len(thumb.data),
                )
                for thumb, name in saved
            )
    except BaseException:
        storage.delete_quietly(name for _, name in saved)
        raise
    storage.delete_quietly(old_files)
    return {str(thumb.size): [thumb.width, thumb.height] for thumb in rendered}
