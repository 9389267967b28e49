"""HTTP API of the ai app: an image's OCR and vision results, page summaries, task drafts."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ai import services
from ai.models import OcrResult, VisionResult
from ai.serializers import (
    DraftTaskRequestSerializer,
    DraftTaskResponseSerializer,
    OcrResultSerializer,
    SummarizeRequestSerializer,
    SummaryResponseSerializer,
    VisionResultSerializer,
)
from images.library import selectors
from images.models import Scope
from images.tenancy.selectors import request_client
from kit.errors import DomainError
from kit.openapi import error_responses


class ImageResultView(APIView):
    """One of an image's results, or a 404 with the `not_ready` code while its step has not run."""

    required_scopes = [Scope.IMAGES_READ]
    model: type[OcrResult | VisionResult]
    serializer_class: type[serializers.ModelSerializer]
    not_ready: tuple[str, str]

    def get(self, request: Request, pk: str) -> Response:
        result = self.model.objects.filter(image=selectors.image_get(request, pk)).first()
        if result is None:
            raise DomainError(*self.not_ready, 404)
        return Response(self.serializer_class(result).data)


class ImageOcrView(ImageResultView):
    model = OcrResult
    serializer_class = OcrResultSerializer
    not_ready = ("ocr_not_ready", "The text has not been read yet; see /status/.")


class ImageAiView(ImageResultView):
    model = VisionResult
    serializer_class = VisionResultSerializer
    not_ready = ("ai_not_ready", "The image has not been described yet; see /status/.")


class SummarizeView(APIView):
    required_scopes = [Scope.AI_USE]
    # The FastAPI Imago's route reads `language` as a name too (ai/fastapi_imago.py).
    request_serializer: type[SummarizeRequestSerializer] = SummarizeRequestSerializer

    @extend_schema(
        request=SummarizeRequestSerializer,
        responses={
            200: SummaryResponseSerializer,
            **error_responses(
                {
                    413: "The page is too large.",
                    422: "The address does not serve HTML.",
                    502: "The page is unreachable, or the AI provider failed.",
                }
            ),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.request_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        summary = services.page_summarize(
            client=request_client(request), **serializer.validated_data
        )
        return Response(summary)


class DraftTaskView(APIView):
    required_scopes = [Scope.AI_USE]

    @extend_schema(
        request=DraftTaskRequestSerializer,
        responses={
            200: DraftTaskResponseSerializer,
            **error_responses({502: "The AI provider failed."}),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = DraftTaskRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        draft = services.task_draft(client=request_client(request), **serializer.validated_data)
        return Response(draft)
