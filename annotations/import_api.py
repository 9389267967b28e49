"""Insight import over HTTP: upload a file, poll its run (an RQ job) until it is done."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from annotations import importer
from annotations.models import InsightImport
from images.models import Scope
from images.tenancy.selectors import for_tenant, tenant_of
from kit.errors import DomainError


class ImportRequestSerializer(serializers.Serializer):
    # Empty files are refused by the service, with its own code (empty_file).
    file = serializers.FileField(
        allow_empty_file=True,
        help_text="Robotoff predictions (JSON Lines, plain or gzip) or questions (JSON).",
    )
    format = serializers.ChoiceField(choices=importer.FORMATS, default="auto", required=False)
    keep_missing = serializers.BooleanField(
        default=False,
        required=False,
        help_text="Keep the open insights of the file's (barcode, type) pairs that it does not "
        "name; by default predictions replace them (questions files never delete).",
    )


class ImportAcceptedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=InsightImport.Status.choices)
    status_url = serializers.URLField()


class ImportErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField(required=False, help_text="JSON Lines: the line number.")
    question = serializers.IntegerField(required=False, help_text="Questions: the n-th question.")
    reason = serializers.CharField()


class ImportStatusSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField(
        help_text="The fraction of the file read, when known."
    )
    errors = ImportErrorSerializer(many=True, help_text="The first refused records (capped).")

    class Meta:
        model = InsightImport
        fields = [
            "id",
            "status",
            "format",
            "original_filename",
            "progress",
            "lines_read",
            "created",
            "updated",
            "unchanged",
            "bad",
            "deleted",
            "keep_missing",
            "errors",
            "error",
            "created_at",
            "finished_at",
        ]

    def get_progress(self, run: InsightImport) -> float | None:
        return importer.import_progress(run)


class InsightImportView(APIView):
    """Queue the import of a file of insights; the answer says where to follow it."""

    required_scopes = [Scope.INSIGHTS_WRITE]

    @extend_schema(
        request={"multipart/form-data": ImportRequestSerializer},
        responses={
            202: ImportAcceptedSerializer,
            400: OpenApiResponse(
                description="empty_file, not_json, unreadable_file, unknown_format, no_file"
            ),
            413: OpenApiResponse(description="file_too_large (INSIGHT_IMPORT_MAX_BYTES)"),
        },
    )
    def post(self, request: Request) -> Response:
        client = tenant_of(request)
        if not request.FILES.get("file"):
            raise DomainError("no_file", "Send the file as multipart field 'file'.", 400)
        form = ImportRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload = form.validated_data["file"]
        run = importer.insight_import_create(
            client=client,
            fp=upload,
            size=upload.size or 0,
            filename=upload.name or "",
            format=form.validated_data.get("format", "auto"),
            keep_missing=form.validated_data.get("keep_missing", False),
        )
        body = {
            "id": str(run.id),
            "status": run.status,
            "status_url": reverse("insight-import-status", args=[run.id], request=request),
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class InsightImportStatusView(APIView):
    required_scopes = [Scope.INSIGHTS_READ]

    @extend_schema(responses=ImportStatusSerializer)
    def get(self, request: Request, import_id: str) -> Response:
        run = for_tenant(request, InsightImport.objects.all()).filter(pk=import_id).first()
        if run is None:
            raise DomainError("not_found", "No such insight import.", 404)
        return Response(ImportStatusSerializer(run).data)
