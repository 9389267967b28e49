"""HTTP API for tenants (images) and operators (clients). Views validate, call a service, answer."""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db.models import QuerySet
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from images.library import selectors, services
from images.library.serializers import (
    ExifSerializer,
    ImageDetailSerializer,
    ImageSerializer,
    ImageStatusSerializer,
    ReprocessSerializer,
    SignedUrlSerializer,
    TagCountSerializer,
    UploadRequestSerializer,
    UploadResponseSerializer,
)
from images.library.signing import signed_url
from images.models import Image, ImageStatus, Scope
from images.tenancy.selectors import request_client, tenant_of
from kit import pagination
from kit.errors import DomainError
from kit.openapi import error_responses


class UtcIsoDateTimeField(IsoDateTimeField):
    def to_python(self, value: str | None) -> datetime | None:
        if value == "":
            # `created_before=` is no date: refused, as the schema's format says, not ignored.
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except OverflowError as exc:
            raise ValidationError("This date is out of range.", code="invalid") from exc


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """ISO 8601 allows offsets up to ±23:59, PostgreSQL only to ±15:59: compare in UTC."""

    field_class = UtcIsoDateTimeField


class StrictBooleanField(forms.NullBooleanField):
    """true/false (or 1/0) only: Django's field reads anything else as "not given", so a typo
    would list every image instead of being refused."""

    widget = forms.TextInput  # NullBooleanField's select widget reads the query value first

    def to_python(self, value: object) -> bool | None:
        if value is None:
            return None
        if str(value).lower() in {"true", "1"}:
            return True
        if str(value).lower() in {"false", "0"}:
            return False
        raise ValidationError("Must be true or false.", code="invalid")

    def validate(self, value: bool | None) -> None:
        """None is "not given" (the filter is left out), not a value to refuse."""


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class ImageFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ImageStatus.choices)
    tag = django_filters.CharFilter(field_name="tags__name")
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")
    taken_after = UtcDateTimeFilter(field_name="exif__taken_at", lookup_expr="gte")
    taken_before = UtcDateTimeFilter(field_name="exif__taken_at", lookup_expr="lt")
    has_gps = StrictBooleanFilter(method="filter_has_gps")
    q = django_filters.CharFilter(
        method="filter_q", label="Words in the OCR text, the AI description or the tags."
    )
    ordering = django_filters.OrderingFilter(
        fields=(
            ("created_at", "created_at"),
            ("size_bytes", "size_bytes"),
            ("exif__taken_at", "taken_at"),
            ("original_filename", "filename"),
        )
    )

    class Meta:
        model = Image
        fields: list[str] = []

    def filter_has_gps(self, queryset: QuerySet[Image], name: str, value: bool) -> QuerySet:
        if value:
            return queryset.filter(exif__latitude__isnull=False, exif__longitude__isnull=False)
        return queryset.exclude(exif__latitude__isnull=False, exif__longitude__isnull=False)

    def filter_q(self, queryset: QuerySet[Image], name: str, value: str) -> QuerySet:
        return selectors.image_search(queryset, value)


class UsagePagination(pagination.PageNumberPagination):
    """Pages of images, with the tenant's usage against its quotas."""

    page_size_query_param = "page_size"
    max_page_size = 500

    def get_paginated_response(self, data: Any) -> Response:
        response = super().get_paginated_response(data)
        client = request_client(self.request)
        response.data["usage"] = services.client_usage(client=client) if client else None
        return response

    def get_paginated_response_schema(self, schema: dict) -> dict:
        schema = super().get_paginated_response_schema(schema)
        count = {"type": "integer"}
        quota = {"type": "integer", "nullable": True, "description": "Empty: unlimited."}
        schema["properties"]["usage"] = {
            "type": "object",
            "nullable": True,
            "description": "The tenant's use of its quotas; null for staff across tenants.",
            "properties": {
                "images": count,
                "bytes": count,
                "image_quota": quota,
                "storage_quota_bytes": quota,
            },
            "required": ["images", "bytes", "image_quota", "storage_quota_bytes"],
        }
        return schema


class ImageViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    required_scopes = {
        "GET": [Scope.IMAGES_READ],
        "POST": [Scope.IMAGES_WRITE],
        "DELETE": [Scope.IMAGES_DELETE],
    }
    filterset_class = ImageFilter
    pagination_class = UsagePagination
    # A group: the schema anchors it as ^...$, which must hold for both alternatives.
    lookup_value_regex = r"(?:[0-9]+|[0-9a-fA-F-]{36})"

    def get_queryset(self) -> QuerySet[Image]:
        # Lists carry the steps only with ?expand=steps (the detail always, via get_object).
        with_steps = self.action != "list" or "steps" in self.request.query_params.get(
            "expand", ""
        ).split(",")
        return selectors.image_queryset(self.request, with_steps=with_steps)

    def get_object(self) -> Image:
        return selectors.image_get(self.request, self.kwargs["pk"])

    def get_serializer_class(self) -> type:
        return ImageDetailSerializer if self.action == "retrieve" else ImageSerializer

    @extend_schema(
        request={"multipart/form-data": UploadRequestSerializer},
        responses={
            201: UploadResponseSerializer,
            **error_responses(
                {413: "A file is too large, has too many pixels or is over the memory budget."}
            ),
        },
    )
    def create(self, request: Request) -> Response:
        stored = upload_images(request)
        body = {"images": [_uploaded(s) for s in stored]}
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: Image) -> None:
        services.image_delete(image=instance)

    @extend_schema(responses=ImageStatusSerializer)
    @action(detail=True)
    def status(self, request: Request, pk: str) -> Response:
        return Response(ImageStatusSerializer(self.get_object()).data)

    @extend_schema(responses=ExifSerializer)
    @action(detail=True)
    def exif(self, request: Request, pk: str) -> Response:
        image = self.get_object()
        exif = getattr(image, "exif", None)
        if exif is None:
            raise DomainError("exif_not_ready", "EXIF has not been read yet; see /status/.", 404)
        return Response(ExifSerializer(exif).data)

    @extend_schema(responses=SignedUrlSerializer)
    @action(detail=True, url_path="download-url")
    def download_url(self, request: Request, pk: str) -> Response:
        url, expires = original_link(request, self.get_object())
        return Response({"url": url, "expires_at": expires})

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "size",
                int,
                enum=settings.THUMBNAIL_SIZES,
                description="Long side; default the smallest.",
            )
        ],
        responses={
            200: SignedUrlSerializer,
            **error_responses({409: "The thumbnails are not made yet."}),
        },
    )
    @action(detail=True, url_path="thumbnail-url")
    def thumbnail_url(self, request: Request, pk: str) -> Response:
        url, expires = thumbnail_link(request, self.get_object())
        return Response({"url": url, "expires_at": expires})

    @extend_schema(responses=TagCountSerializer(many=True))
    @action(detail=False, pagination_class=None, filterset_class=None)
    def tags(self, request: Request) -> Response:
        """The tenant's tags, each with the number of its images that carry it."""
        tags = selectors.tag_counts(self.get_queryset())
        return Response(TagCountSerializer(tags, many=True).data)

    @extend_schema(request=ReprocessSerializer, responses={202: ImageStatusSerializer})
    @action(detail=True, methods=["post"])
    def reprocess(self, request: Request, pk: str) -> Response:
        image = self.get_object()
        reprocess_image(request, image)
        image = self.get_queryset().get(pk=image.pk)
        return Response(ImageStatusSerializer(image).data, status=status.HTTP_202_ACCEPTED)


def reprocess_image(request: Request, image: Image) -> None:
    """Queue again the steps the body names (`steps`), or every step."""
    serializer = ReprocessSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    services.image_reprocess(image=image, steps=serializer.validated_data.get("steps"))


def original_link(request: Request, image: Image) -> tuple[str, datetime]:
    """A signed link to the image's original file, and when it expires."""
    return signed_url(
        request, client=image.client, name=image.file, content_type=image.content_type
    )


def thumbnail_link(request: Request, image: Image) -> tuple[str, datetime]:
    """A signed link to the thumbnail of `?size=` (default the smallest), and when it expires."""
    default = str(min(settings.THUMBNAIL_SIZES))
    size = selectors.parse_number(request.query_params.get("size", default))
    if size not in settings.THUMBNAIL_SIZES:
        raise DomainError("invalid_size", f"size must be one of {settings.THUMBNAIL_SIZES}.", 400)
    thumbnail = next((t for t in image.thumbnails.all() if t.size == size), None)
    if thumbnail is None:
        raise DomainError(
            "thumbnail_not_ready", "The thumbnails are not made yet; see /status/.", 409
        )
    return signed_url(request, client=image.client, name=thumbnail.file, content_type="image/webp")


def upload_images(
    request: Request, *, fields: Sequence[str] = ("files", "file"), library: bool = True
) -> list[services.Stored]:
    """Store the request's files (in `fields`) for its tenant, or raise the matching DomainError;
    `library=False`: as detection inputs, outside the library (services.image_create_many)."""
    client = tenant_of(request)
    files = _uploaded_files(request, fields)
    return services.image_create_many(
        client=client,
        uploads=[services.Upload(f.name or "", f, f.size or 0) for f in files],
        library=library,
    )


def _uploaded_files(
    request: Request, fields: Sequence[str] = ("files", "file")
) -> list[UploadedFile]:
    files = [file for field in fields for file in request.FILES.getlist(field)]
    if not files:
        names = " or ".join(f"'{field}'" for field in fields)
        raise DomainError("no_file", f"Send the image as multipart field {names}.", 400)
    if len(files) > settings.MAX_UPLOAD_FILES:
        raise DomainError(
            "too_many_files",
            f"{len(files)} files sent; at most {settings.MAX_UPLOAD_FILES} per request.",
            400,
        )
    return files


def _uploaded(stored: services.Stored) -> dict[str, Any]:
    image = stored.image
    return {
        "id": image.pk,
        "uuid": str(image.uuid),
        "status": image.status,
        "duplicate": stored.duplicate,
        "original_filename": image.original_filename,
        "width": image.width,
        "height": image.height,
        "size_bytes": image.size_bytes,
    }
