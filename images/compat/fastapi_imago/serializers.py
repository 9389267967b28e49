"""The FastAPI Imago's response shapes, read from Imago's rows."""

from datetime import UTC, datetime
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from images.models import Exif, Image, ImageStatus

FINISHED = {ImageStatus.DONE, ImageStatus.FAILED}


def naive_iso(moment: datetime | None) -> str | None:
    """`2024-01-15T10:30:08`: UTC, to the second, without an offset, as its clients read it."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def upload_message(*, duplicate: bool) -> str:
    if duplicate:
        return "Image déjà reçue : la même image est renvoyée."
    return "Image reçue : son traitement est en cours."


class UploadRequestSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="One image.")


class UploadAckSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    uuid = serializers.UUIDField()
    original_name = serializers.CharField()
    status = serializers.CharField()
    message = serializers.CharField(help_text="A sentence in French, as the FastAPI Imago said.")


class StatusSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField(help_text="pending, processing, done or failed.")
    started_at = serializers.CharField(allow_null=True, help_text="UTC, without an offset.")
    done_at = serializers.CharField(allow_null=True, help_text="UTC, without an offset.")


class CameraSerializer(serializers.Serializer):
    make = serializers.CharField(allow_null=True)
    model = serializers.CharField(allow_null=True)
    iso = serializers.IntegerField(allow_null=True)
    aperture = serializers.CharField(allow_null=True, help_text="e.g. f/2.8")
    shutter_speed = serializers.CharField(allow_null=True, help_text="e.g. 1/250")
    focal_length = serializers.CharField(allow_null=True, help_text="e.g. 50mm")
    taken_at = serializers.CharField(allow_null=True, help_text="Camera time, without an offset.")


class GpsSerializer(serializers.Serializer):
    latitude = serializers.FloatField(allow_null=True)
    longitude = serializers.FloatField(allow_null=True)
    has_gps = serializers.BooleanField()
    maps_url = serializers.CharField(allow_null=True, help_text="Google Maps, ?q=lat,lon")


class ExifSerializer(serializers.Serializer):
    camera = CameraSerializer()
    gps = GpsSerializer()


class OcrSerializer(serializers.Serializer):
    has_text = serializers.BooleanField()
    text = serializers.CharField(allow_blank=True)
    language = serializers.CharField(allow_null=True, help_text="ISO 639-1, e.g. fr")
    confidence = serializers.FloatField(allow_null=True)


class AiSerializer(serializers.Serializer):
    description = serializers.CharField(allow_null=True)
    tags = serializers.ListField(child=serializers.CharField())
    confidence = serializers.FloatField(allow_null=True)
    model_used = serializers.CharField(allow_null=True)


def _text(value: str) -> str | None:
    return value or None


def exif_of(image: Image) -> dict[str, Any]:
    """Camera and GPS; every value null (has_gps false) before the EXIF step or without EXIF."""
    exif = getattr(image, "exif", None) or Exif()
    camera = {
        "make": _text(exif.make),
        "model": _text(exif.model),
        "iso": exif.iso,
        "aperture": None if exif.aperture is None else f"f/{exif.aperture:g}",
        "shutter_speed": _text(exif.shutter),
        "focal_length": None if exif.focal_length is None else f"{exif.focal_length:g}mm",
        "taken_at": naive_iso(exif.taken_at),
    }
    maps_url = f"https://www.google.com/maps?q={exif.latitude},{exif.longitude}"
    gps = {
        "latitude": exif.latitude,
        "longitude": exif.longitude,
        "has_gps": exif.has_gps,
        "maps_url": maps_url if exif.has_gps else None,
    }
    return {"camera": camera, "gps": gps}


def ocr_of(image: Image) -> dict[str, Any]:
    """The text read; has_text false and empty text before the OCR step or when it failed."""
    ocr = getattr(image, "ocr", None)
    if ocr is None:
        return {"has_text": False, "text": "", "language": None, "confidence": None}
    return {
        "has_text": ocr.has_text,
        "text": ocr.text,
        "language": _text(ocr.language),
        "confidence": round(ocr.confidence, 2),
    }


def ai_of(image: Image) -> dict[str, Any]:
    """The vision step's answer; null with no tags before it or when it failed. The local
    provider describes nothing: its tags come with a null description."""
    vision = getattr(image, "vision", None)
    if vision is None or vision.error:
        return {"description": None, "tags": [], "confidence": None, "model_used": None}
    return {
        "description": vision.description,
        "tags": list(vision.tags),
        "confidence": vision.confidence,
        "model_used": vision.model or vision.provider,
    }


def status_of(image: Image) -> dict[str, Any]:
    """started_at: the first step's start; done_at: the last step's end once all have ended."""
    starts = [step.started_at for step in image.steps.all() if step.started_at]
    ends = [step.finished_at for step in image.steps.all() if step.finished_at]
    finished = image.status in FINISHED and ends
    return {
        "id": image.pk,
        "status": image.status,
        "started_at": naive_iso(min(starts)) if starts else None,
        "done_at": naive_iso(max(ends)) if finished else None,
    }


class ImageSerializer(serializers.Serializer):
    """An image in lists: what the detail has, less the results."""

    id = serializers.IntegerField()
    uuid = serializers.UUIDField()
    original_name = serializers.CharField(source="original_filename")
    processing_status = serializers.CharField(source="status")
    content_type = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    size_bytes = serializers.IntegerField()
    tags = serializers.SerializerMethodField()
    created_at = serializers.SerializerMethodField()

    def get_tags(self, image: Image) -> list[str]:
        return sorted(tag.name for tag in image.tags.all())

    def get_created_at(self, image: Image) -> str | None:
        return naive_iso(image.created_at)


class ImageDetailSerializer(ImageSerializer):
    exif = serializers.SerializerMethodField()
    ocr = serializers.SerializerMethodField()
    ai = serializers.SerializerMethodField()

    @extend_schema_field(ExifSerializer)
    def get_exif(self, image: Image) -> dict[str, Any]:
        return exif_of(image)

    @extend_schema_field(OcrSerializer)
    def get_ocr(self, image: Image) -> dict[str, Any]:
        return ocr_of(image)

    @extend_schema_field(AiSerializer)
    def get_ai(self, image: Image) -> dict[str, Any]:
        return ai_of(image)


class LinkSerializer(serializers.Serializer):
    url = serializers.URLField()
    expires_in = serializers.IntegerField(help_text="Seconds.")
    expires_at = serializers.CharField(help_text="UTC, without an offset.")


class DownloadLinkSerializer(LinkSerializer):
    download_url = serializers.URLField(help_text="The same link as `url`.")


class ThumbnailLinkSerializer(LinkSerializer):
    thumbnail_url = serializers.URLField(help_text="The same link as `url`.")


class TagsSerializer(serializers.Serializer):
    tags = serializers.ListField(child=serializers.CharField())
    total = serializers.IntegerField()
