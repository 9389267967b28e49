"""plate_detect-compatible task API, per-image anonymisation, and per-tenant settings."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from images.library import selectors
from images.library.api import _uploaded_files
from images.library.services import Upload
from images.library.signing import signed_url
from images.models import AnonymizeSettings, CoverMode, PlateTask, Scope
from images.plates import services
from images.plates.finding import REVIEW_REASONS
from images.plates.selectors import awaiting_review, settings_for, task_results
from images.plates.targets import operator_targets
from images.plates.tasks import TaskOptions, plate_task_create
from images.tenancy.selectors import for_tenant, tenant_of
from kit.errors import DomainError
from kit.openapi import error_responses
from kit.outbound import OutboundUrlField


def _column_limit(model: type[models.Model], field: str) -> int:
    """A column's length, so that a longer value is refused (PostgreSQL would raise DataError)."""
    return model._meta.get_field(field).max_length


class TaskOptionsSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=CoverMode.choices, required=False)
    cover_faces = serializers.BooleanField(required=False, allow_null=True, default=None)
    upload_url = OutboundUrlField(
        required=False, allow_blank=True, max_length=_column_limit(PlateTask, "upload_url")
    )
    callback_url = OutboundUrlField(
        required=False, allow_blank=True, max_length=_column_limit(PlateTask, "callback_url")
    )


class TaskRequestSerializer(TaskOptionsSerializer):
    """The options and the files, for the schema: the view reads the files on their own."""

    files = serializers.ListField(child=serializers.FileField(), help_text="1 to 50 images.")


class ReviewSerializer(serializers.Serializer):
    """Never silent: what was covered, and whether a person should look (and did)."""

    plate_confidences = serializers.ListField(child=serializers.FloatField())
    needs_review = serializers.BooleanField(
        help_text="True until an operator reviews or corrects the result."
    )
    review_reasons = serializers.ListField(
        child=serializers.ChoiceField(choices=REVIEW_REASONS),
        help_text="Why the result was flagged; kept after the review.",
    )
    reviewed_at = serializers.DateTimeField(allow_null=True)
    revision = serializers.IntegerField(help_text="Operators' corrections since the first result.")


class TaskResultSerializer(ReviewSerializer):
    filename = serializers.CharField(
        help_text="The covered WebP's name (the input's, if it failed)."
    )
    source_filename = serializers.CharField(help_text="The input's name.")
    url = serializers.CharField(
        allow_null=True, help_text="/tasks_storage/<task_id>/output/<filename>, until the TTL."
    )
    status = serializers.CharField()
    plates = serializers.IntegerField()
    faces = serializers.IntegerField()
    has_plate = serializers.BooleanField()
    error = serializers.DictField(allow_null=True)


class TaskCreatedSerializer(serializers.Serializer):
    task_id = serializers.UUIDField()


class ImageAnonymizeQueuedSerializer(serializers.Serializer):
    image_id = serializers.IntegerField()
    status = serializers.CharField()


class ImageAnonymizedSerializer(ReviewSerializer, ImageAnonymizeQueuedSerializer):
    plates = serializers.IntegerField(required=False, allow_null=True)
    faces = serializers.IntegerField(required=False, allow_null=True)
    mode = serializers.CharField(required=False, allow_null=True)
    url = serializers.CharField(required=False, allow_null=True)


class StubUploadSerializer(serializers.Serializer):
    file = serializers.FileField()


class StubSerializer(serializers.Serializer):
    stub = serializers.ChoiceField(choices=["custom", "default"])
    width = serializers.IntegerField(required=False)
    height = serializers.IntegerField(required=False)


class TaskStatusSerializer(serializers.Serializer):
    task_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=PlateTask.Status.choices)
    results = TaskResultSerializer(many=True)
    total = serializers.IntegerField()
    processed = serializers.IntegerField()
    progress = serializers.FloatField()
    needs_review = serializers.IntegerField(help_text="Results flagged and not reviewed yet.")
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(allow_null=True)


class ProcessTaskView(APIView):
    """POST files (1 to 50): answers 202 with a task id at once, like plate_detect."""

    required_scopes = [Scope.IMAGES_WRITE]
    plate_detect_route = True  # keyless when PLATE_DETECT_CLIENT is set (images.compat)

    @extend_schema(
        request={"multipart/form-data": TaskRequestSerializer},
        responses={
            202: TaskCreatedSerializer,
            **error_responses(
                {413: "The files are too large together, or one has too many pixels."}
            ),
        },
    )
    def post(self, request: Request) -> Response:
        client = tenant_of(request)
        files = _uploaded_files(request)
        total = sum(f.size or 0 for f in files)
        if total > settings.ANONYMIZE_MAX_REQUEST_BYTES:
            raise DomainError(
                "request_too_large",
                f"{total} bytes sent; at most {settings.ANONYMIZE_MAX_REQUEST_BYTES} per request.",
                413,
            )
        # The options stand alone: files may come as `file` too, and one unreadable file fails
        # by itself in the task's results (as plate_detect does), never taking the options along.
        form = TaskOptionsSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        defaults = settings_for(client)
        # The tenant's own targets first; the operator's (BACKEND_*_URL) when it has none.
        upload_target, callback_target = operator_targets(client)
        options = TaskOptions(
            mode=data.get("mode") or defaults.mode,
            cover_faces=defaults.cover_faces
            if data.get("cover_faces") is None
            else data["cover_faces"],
            upload_url=data.get("upload_url", defaults.upload_url or upload_target),
            callback_url=data.get("callback_url", defaults.callback_url or callback_target),
        )
        task = plate_task_create(
            client=client,
            uploads=[Upload(f.name or "", f, f.size or 0) for f in files],
            options=options,
        )
        return Response({"task_id": str(task.uuid)}, status=status.HTTP_202_ACCEPTED)


@extend_schema(exclude=True)  # plate_detect's clients omit the slash; one schema entry is enough
class ProcessTaskNoSlashView(ProcessTaskView):
    pass


def task_get(request: Request, task_id: str) -> PlateTask:
    """The caller's task (staff: any tenant's), 404 when unknown, 410 once expired."""
    tasks = for_tenant(request, PlateTask.objects.select_related("client"))
    task = tasks.filter(uuid=task_id).first() if selectors.parse_uuid(task_id) else None
    if task is None:
        raise DomainError("not_found", "No such task.", 404)
    if task.purged_at or task.expires_at <= timezone.now():
        raise DomainError("task_expired", f"The task expired at {task.expires_at}.", 410)
    return task


class TaskStatusView(APIView):
    required_scopes = [Scope.IMAGES_READ]
    plate_detect_route = True

    @extend_schema(
        responses={
            200: TaskStatusSerializer,
            **error_responses({410: "The task expired; its files are deleted."}),
        }
    )
    def get(self, request: Request, task_id: str) -> Response:
        task = task_get(request, task_id)
        body = {
            "task_id": str(task.uuid),
            "status": task.status,
            "results": task_results(task),
            "total": task.total,
            "processed": task.processed,
            "progress": round(task.processed / task.total, 3) if task.total else 1.0,
            "needs_review": awaiting_review(task),
            "created_at": task.created_at,
            "expires_at": task.expires_at,
            "delivered_at": task.delivered_at,
        }
        return Response(body)


class AnonymizeRequestSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=CoverMode.choices, required=False)


class ImageAnonymizeView(APIView):
    """Cover the plates of a stored image (the `anonymize` step, on request)."""

    required_scopes = {"POST": [Scope.IMAGES_WRITE], "GET": [Scope.IMAGES_READ]}

    @extend_schema(
        request=AnonymizeRequestSerializer, responses={202: ImageAnonymizeQueuedSerializer}
    )
    def post(self, request: Request, pk: str) -> Response:
        image = selectors.image_get(request, pk)
        form = AnonymizeRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.image_anonymize_request(image=image, mode=form.validated_data.get("mode"))
        return Response({"image_id": image.pk, "status": "pending"}, status=202)

    @extend_schema(responses=ImageAnonymizedSerializer)
    def get(self, request: Request, pk: str) -> Response:
        image = selectors.image_get(request, pk)
        step = image.steps.filter(name="anonymize").first()
        result = step.result if step else {}
        url = None
        if step and step.status == "done" and result.get("file"):
            url, _ = signed_url(
                request, client=image.client, name=result["file"], content_type="image/webp"
            )
        return Response(
            {
                "image_id": image.pk,
                "status": step.status if step else "not_requested",
                "plates": result.get("plates"),
                "faces": result.get("faces"),
                "mode": result.get("mode"),
                "url": url,
                "plate_confidences": result.get("plate_confidences", []),
                "needs_review": result.get("needs_review", False),
                "review_reasons": result.get("review_reasons", []),
                "reviewed_at": result.get("reviewed_at"),
                "revision": result.get("revision", 0),
            }
        )


class AnonymizeSettingsSerializer(serializers.ModelSerializer):
    # Webhook addresses are checked when saved (and again when sent).
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.URLField: OutboundUrlField,
    }
    webhook_secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=_column_limit(AnonymizeSettings, "webhook_secret"),
    )

    class Meta:
        model = AnonymizeSettings
        fields = [
            "mode",
            "cover_faces",
            "on_upload",
            "upload_url",
            "callback_url",
            "webhook_secret",
        ]


class AnonymizeSettingsView(APIView):
    """The tenant's defaults: covering mode, faces, webhooks (and the HMAC secret, write-only)."""

    required_scopes = {"GET": [Scope.IMAGES_READ], "PATCH": [Scope.IMAGES_WRITE]}

    @extend_schema(responses=AnonymizeSettingsSerializer)
    def get(self, request: Request) -> Response:
        return Response(AnonymizeSettingsSerializer(settings_for(tenant_of(request))).data)

    @extend_schema(request=AnonymizeSettingsSerializer, responses=AnonymizeSettingsSerializer)
    def patch(self, request: Request) -> Response:
        client = tenant_of(request)
        form = AnonymizeSettingsSerializer(data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        row = services.anonymize_settings_update(client=client, changes=form.validated_data)
        return Response(AnonymizeSettingsSerializer(row).data)


class StubView(APIView):
    """PUT the tenant's own stub image (PNG with alpha works best); DELETE restores ours."""

    required_scopes = [Scope.IMAGES_WRITE]

    @extend_schema(
        request={"multipart/form-data": StubUploadSerializer},
        responses={
            200: StubSerializer,
            **error_responses(
                {413: "A file is too large, has too many pixels or is over the memory budget."}
            ),
        },
    )
    def put(self, request: Request) -> Response:
        client = tenant_of(request)
        upload = request.FILES.get("file")
        if upload is None:
            raise DomainError("no_file", "Send the stub as multipart field 'file'.", 400)
        info = services.stub_replace(client=client, fp=upload, size=upload.size or 0)
        return Response({"stub": "custom", "width": info.width, "height": info.height})

    @extend_schema(responses={200: StubSerializer})
    def delete(self, request: Request) -> Response:
        services.stub_reset(client=tenant_of(request))
        return Response({"stub": "default"})
