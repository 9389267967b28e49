from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from images.library.pipeline import step_names
from images.library.signing import signed_url
from images.models import Exif, Image, ImageStep, Thumbnail


class StepSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImageStep
        fields = [
            "name",
            "status",
            "attempts",
            "error",
            "result",
            "started_at",
            "finished_at",
            "duration_ms",
        ]


class ThumbnailSerializer(serializers.ModelSerializer):
    class Meta:
        model = Thumbnail
        fields = ["size", "width", "height", "size_bytes"]


class ExifSerializer(serializers.ModelSerializer):
    has_gps = serializers.BooleanField(read_only=True)
    maps_url = serializers.CharField(read_only=True, allow_null=True)

    class Meta:
        model = Exif
        fields = [
            "make",
            "model",
            "lens",
            "iso",
            "aperture",
            "shutter",
            "exposure_seconds",
            "focal_length",
            "taken_at",
            "orientation",
            "latitude",
            "longitude",
            "altitude",
            "has_gps",
            "maps_url",
            "tags",
        ]


class ThumbnailLinkSerializer(ThumbnailSerializer):
    url = serializers.URLField(help_text="A signed link to the WebP thumbnail.")
    expires_at = serializers.DateTimeField()

    class Meta(ThumbnailSerializer.Meta):
        fields = [*ThumbnailSerializer.Meta.fields, "url", "expires_at"]


class ImageSerializer(serializers.ModelSerializer):
    client = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    tags = serializers.SerializerMethodField()
    thumbnails = serializers.SerializerMethodField()
    # Not read-only, so that the schema marks it optional: lists carry it only when asked.
    steps = StepSerializer(
        many=True, required=False, help_text="In lists only with `?expand=steps`."
    )

    class Meta:
        model = Image
        fields = [
            "id",
            "uuid",
            "client",
            "status",
            "original_filename",
            "content_type",
            "format",
            "width",
            "height",
            "size_bytes",
            "sha256",
            "tags",
            "thumbnails",
            "steps",
            "created_at",
            "updated_at",
        ]

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if not self.with_steps():
            del fields["steps"]
        return fields

    def with_steps(self) -> bool:
        request = self.context.get("request")
        return request is not None and "steps" in request.query_params.get("expand", "").split(",")

    def get_tags(self, image: Image) -> list[str]:
        return sorted(tag.name for tag in image.tags.all())

    @extend_schema_field(ThumbnailLinkSerializer(many=True))
    def get_thumbnails(self, image: Image) -> list[dict]:
        """Every size made, with a signed link each: a gallery needs no request per image."""
        request = self.context.get("request")
        links = []
        for thumbnail in sorted(image.thumbnails.all(), key=lambda t: t.size):
            url, expires_at = signed_url(
                request, client=image.client, name=thumbnail.file, content_type="image/webp"
            )
            links.append({**vars(thumbnail), "url": url, "expires_at": expires_at})
        return ThumbnailLinkSerializer(links, many=True).data


class ImageDetailSerializer(ImageSerializer):
    exif = serializers.SerializerMethodField()

    class Meta(ImageSerializer.Meta):
        fields = [*ImageSerializer.Meta.fields, "exif"]

    def with_steps(self) -> bool:
        return True

    @extend_schema_field(ExifSerializer(allow_null=True))
    def get_exif(self, image: Image) -> dict | None:
        exif = getattr(image, "exif", None)
        if exif is None:
            return None
        data = ExifSerializer(exif).data
        data.pop("tags")
        return data


class UploadedImageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    uuid = serializers.UUIDField()
    status = serializers.CharField()
    duplicate = serializers.BooleanField()
    original_filename = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    size_bytes = serializers.IntegerField()


class UploadResponseSerializer(serializers.Serializer):
    images = UploadedImageSerializer(many=True)


class UploadRequestSerializer(serializers.Serializer):
    file = serializers.FileField(required=False, help_text="One image.")
    files = serializers.ListField(
        child=serializers.FileField(),
        required=False,
        help_text=f"Up to {settings.MAX_UPLOAD_FILES} images.",
    )
    client = serializers.CharField(
        required=False, help_text="Staff only: the tenant (id or slug) to upload for."
    )


class ImageStatusSerializer(serializers.ModelSerializer):
    steps = StepSerializer(many=True, read_only=True)

    class Meta:
        model = Image
        fields = ["id", "uuid", "status", "steps", "updated_at"]


class ReprocessSerializer(serializers.Serializer):
    steps = serializers.ListField(
        child=serializers.ChoiceField(choices=[]),
        required=False,
        help_text="Step names; all steps when left out.",
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # Steps register when apps load, after this module is imported.
        self.fields["steps"].child.choices = step_names()


class SignedUrlSerializer(serializers.Serializer):
    url = serializers.URLField()
    expires_at = serializers.DateTimeField()


class TagCountSerializer(serializers.Serializer):
    name = serializers.CharField()
    count = serializers.IntegerField()
