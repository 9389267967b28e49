"""The FastAPI Imago's routes: each validates, calls Imago's own service, answers in its shapes."""

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from images.compat.fastapi_imago import serializers as shapes
from images.compat.fastapi_imago.auth import AdminKeyAuthentication, AdminKeyConfigured
from images.library import api as images_api
from images.library import selectors, services
from images.library.serializers import ReprocessSerializer
from images.models import Image, Scope
from images.tenancy import api as tenancy_api
from images.tenancy.auth import HasScopes
from kit.errors import DomainError


class ImageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """/images, /images/upload, /images/{id} and its sub-routes, /images/tags/all."""

    required_scopes = {
        "GET": [Scope.IMAGES_READ],
        "POST": [Scope.IMAGES_WRITE],
        "DELETE": [Scope.IMAGES_DELETE],
    }
    filterset_class = images_api.ImageFilter
    pagination_class = images_api.UsagePagination
    # Its ids are integers; more digits than a 64-bit id has match no route (a JSON 404).
    lookup_value_regex = r"[0-9]{1,19}"

    def get_queryset(self) -> QuerySet[Image]:
        return selectors.image_queryset(self.request, with_steps=self.action != "list")

    def get_object(self) -> Image:
        image = selectors.image_get(self.request, self.kwargs["pk"])
        return Image.objects.select_related("exif", "ocr", "vision").get(pk=image.pk)

    def get_serializer_class(self) -> type:
        if self.action == "retrieve":
            return shapes.ImageDetailSerializer
        return shapes.ImageSerializer

    @extend_schema(
        request={"multipart/form-data": shapes.UploadRequestSerializer},
        responses={201: shapes.UploadAckSerializer},
    )
    @action(detail=False, methods=["post"])
    def upload(self, request: Request) -> Response:
        if set(request.FILES) - {"file"} or len(request.FILES.getlist("file")) > 1:
            raise DomainError("one_file", "Send one image, in the multipart field 'file'.", 400)
        stored = images_api.upload_images(request)[0]
        ack = {
            "id": stored.image.pk,
            "uuid": stored.image.uuid,
            "original_name": stored.image.original_filename,
            "status": stored.image.status,
            "message": shapes.upload_message(duplicate=stored.duplicate),
        }
        return Response(shapes.UploadAckSerializer(ack).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: shapes.StatusSerializer})
    @action(detail=True)
    def status(self, request: Request, pk: str) -> Response:
        return Response(shapes.status_of(self.get_object()))

    @extend_schema(responses={200: shapes.ExifSerializer})
    @action(detail=True)
    def exif(self, request: Request, pk: str) -> Response:
        return Response(shapes.exif_of(self.get_object()))

    @extend_schema(responses={200: shapes.OcrSerializer})
    @action(detail=True)
    def ocr(self, request: Request, pk: str) -> Response:
        return Response(shapes.ocr_of(self.get_object()))

    @extend_schema(responses={200: shapes.AiSerializer})
    @action(detail=True)
    def ai(self, request: Request, pk: str) -> Response:
        return Response(shapes.ai_of(self.get_object()))

    @extend_schema(responses={200: shapes.DownloadLinkSerializer})
    @action(detail=True, url_path="download-url")
    def download_url(self, request: Request, pk: str) -> Response:
        url, expires_at = images_api.original_link(request, self.get_object())
        return Response({**_link(url, expires_at), "download_url": url})

    @extend_schema(responses={200: shapes.ThumbnailLinkSerializer})
    @action(detail=True, url_path="thumbnail-url")
    def thumbnail_url(self, request: Request, pk: str) -> Response:
        url, expires_at = images_api.thumbnail_link(request, self.get_object())
        return Response({**_link(url, expires_at), "thumbnail_url": url})

    @extend_schema(responses={200: shapes.TagsSerializer})
    @action(detail=False, url_path="tags/all", pagination_class=None, filterset_class=None)
    def tags_all(self, request: Request) -> Response:
        names = [tag.name for tag in selectors.tag_counts(self.get_queryset())]
        return Response({"tags": names, "total": len(names)})

    @extend_schema(request=ReprocessSerializer, responses={202: shapes.StatusSerializer})
    @action(detail=True, methods=["post"])
    def reprocess(self, request: Request, pk: str) -> Response:
        images_api.reprocess_image(request, self.get_object())
        body = {**shapes.status_of(self.get_object()), "message": "Traitement relancé."}
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: None})
    def destroy(self, request: Request, pk: str) -> Response:
        image = self.get_object()
        services.image_delete(image=image)
        return Response({"id": int(pk), "deleted": True, "message": "Image supprimée."})


def _link(url: str, expires_at: datetime) -> dict[str, Any]:
    return {
        "url": url,
        "expires_in": settings.SIGNED_URL_TTL,
        "expires_at": shapes.naive_iso(expires_at.astimezone(UTC)),
    }


class ClientViewSet(tenancy_api.ClientViewSet):
    """/auth/clients: Imago's tenants, for ADMIN_API_KEY (or a key with the admin scope)."""

    authentication_classes = [AdminKeyAuthentication, *api_settings.DEFAULT_AUTHENTICATION_CLASSES]
    permission_classes = [AdminKeyConfigured, HasScopes]
    lookup_value_regex = r"[0-9]{1,19}"

    def create(self, request: Request) -> Response:
        return _with_api_key(super().create(request))

    @extend_schema(request=None)
    @action(detail=True, methods=["post"], url_path="rotate-key")
    def rotate_key(self, request: Request, pk: str) -> Response:
        return _with_api_key(super().rotate_key(request, pk))


def _with_api_key(response: Response) -> Response:
    """`key` is Imago's name for the new key; `api_key` is the likelier legacy one: both."""
    response.data["api_key"] = response.data["key"]
    return response
