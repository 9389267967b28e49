"""The object-detection API (compatible in spirit with the ObjectVision seed)."""

from typing import Any

import django_filters
from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from images.detection import objectvision
from images.detection import services as detection
from images.library import selectors
from images.library.api import UtcDateTimeFilter, upload_images
from images.library.pipeline import queue_check
from images.library.signing import signed_url
from images.models import Detection, DetectionJob, DetectionRun, DetectorModel, Image, Scope
from images.tenancy.selectors import for_tenant, tenant_of
from kit.errors import DomainError
from kit.openapi import error_responses

INPUT_ERRORS = {
    404: "No such image (an `image_id` or `image_ids` entry).",
    413: "A file is too large, has too many pixels or is over the memory budget.",
}


class DetectionSerializer(serializers.ModelSerializer):
    box = serializers.SerializerMethodField()
    box_normalized = serializers.SerializerMethodField()

    class Meta:
        model = Detection
        fields = ["class_name", "class_id", "confidence", "box", "box_normalized", "polygon"]

    def get_box(self, item: Detection) -> dict[str, float]:
        return {"x1": item.x1, "y1": item.y1, "x2": item.x2, "y2": item.y2}

    def get_box_normalized(self, item: Detection) -> dict[str, float]:
        # Boxes are in the oriented image: a 90° EXIF rotation swaps the stored width and height.
        width, height = _oriented_size(item.image)
        return {
            "x1": round(item.x1 / width, 5),
            "y1": round(item.y1 / height, 5),
            "x2": round(item.x2 / width, 5),
            "y2": round(item.y2 / height, 5),
        }


def _oriented_size(image: Image) -> tuple[int, int]:
    exif = getattr(image, "exif", None)
    if exif is not None and exif.orientation in (5, 6, 7, 8):
        return image.height, image.width
    return image.width, image.height


class RunSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid")
    image_id = serializers.SerializerMethodField(help_text="null: a file sent without save=true.")
    model = serializers.CharField(source="model_name")
    detections = DetectionSerializer(many=True)
    annotated_url = serializers.SerializerMethodField()

    class Meta:
        model = DetectionRun
        fields = [
            "id",
            "image_id",
            "model",
            "confidence",
            "classes",
            "source",
            "count",
            "duration_ms",
            "created_at",
            "annotated_url",
            "detections",
        ]

    def get_image_id(self, run: DetectionRun) -> int | None:
        return run.image_id if run.image.in_library else None

    def get_annotated_url(self, run: DetectionRun) -> str | None:
        if not run.annotated_file:
            return None
        url, _ = signed_url(
            self.context.get("request"),
            client=run.image.client,
            name=run.annotated_file,
            content_type="image/webp",
        )
        return url


class DetectParamsSerializer(serializers.Serializer):
    image_id = serializers.CharField(required=False, help_text="An existing image (id or uuid).")
    image_ids = serializers.ListField(child=serializers.CharField(), required=False)
    file = serializers.FileField(required=False)
    files = serializers.ListField(child=serializers.FileField(), required=False)
    image = serializers.FileField(
        required=False,
        help_text="ObjectVision's field: detects on a worker, answers "
        '{"detection_id", "status": "processing"}; poll /detect/jobs/{detection_id}.',
    )
    save = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Also add a sent file to the library (and its quota) and run the pipeline on "
        "it; otherwise only its detection is kept (history, annotated image).",
    )
    confidence = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
    classes = serializers.CharField(
        required=False, help_text="Comma-separated class names or ids, e.g. car,truck"
    )
    model = serializers.CharField(required=False, help_text="A registered model's name.")
    annotated = serializers.BooleanField(required=False, default=False)


class DetectionModelSerializer(serializers.ModelSerializer):
    builtin = serializers.SerializerMethodField()

    class Meta:
        model = DetectorModel
        fields = [
            "name",
            "task",
            "backend",
            "input_size",
            "default_confidence",
            "class_names",
            "builtin",
        ]

    def get_builtin(self, model: DetectorModel) -> bool:
        return model.client_id is None


def _run_queryset() -> QuerySet[DetectionRun]:
    return DetectionRun.objects.select_related("image__client", "image__exif").prefetch_related(
        Prefetch("detections", Detection.objects.select_related("image__exif"))
    )


def _params(request: Request) -> tuple[dict[str, Any], DetectorModel]:
    serializer = DetectParamsSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    client = tenant_of(request)
    model = (
        detection.detector_model_get(name=data["model"], client=client)
        if data.get("model")
        else detection.model_for_tenant(client)
    )
    classes = [c for c in data.get("classes", "").split(",") if c.strip()]
    detection.class_ids(model, classes)
    params = {
        "model": model.name,
        "confidence": data.get("confidence", settings.DETECTION_CONFIDENCE),
        "classes": classes or None,
        "annotated": data.get("annotated", False),
    }
    return params, model


def _images_of(request: Request, ids: list[str], field: str) -> list[Image]:
    found = []
    for value in ids:
        image = selectors.image_find(request, value)
        if image is None:
            raise DomainError("not_found", f"No such image: {value}.", 404, field=field)
        found.append(image)
    return found


class DetectImageView(APIView):
    """Detect objects in one image (a new file or a stored image) and answer at once."""

    required_scopes = [Scope.IMAGES_WRITE]

    @extend_schema(
        request={"multipart/form-data": DetectParamsSerializer},
        responses={200: RunSerializer, **error_responses(INPUT_ERRORS)},
    )
    def post(self, request: Request) -> Response:
        params, model = _params(request)
        if "image" in request.FILES:
            # ObjectVision's client: queued as a job of one image, answered in its shape.
            queue_check()
            image = _detect_input(request)
            job = detection.detection_job_create(
                client=image.client, images=[image], params={**params, "annotated": True}
            )
            return Response(objectvision.ack(job))
        image = _detect_input(request)
        try:
            run = detection.detection_run_create(
                image=image,
                model=model,
                confidence=params["confidence"],
                classes=params["classes"],
                # The only picture left of a file not saved: /detect/{id}/image shows it.
                annotated=params["annotated"] or not image.in_library,
            )
        finally:
            detection.detection_inputs_discard([image])
        run = _run_queryset().get(pk=run.pk)
        return Response(RunSerializer(run, context={"request": request}).data)


DETECT_FILE_FIELDS = ("files", "file", "image")


def _detect_input(request: Request) -> Image:
    """The stored image named by `image_id`, or the one file sent (saved to the library only
    when asked with save=true)."""
    if request.data.get("image_id"):
        return _images_of(request, [request.data["image_id"]], "image_id")[0]
    if sum(len(request.FILES.getlist(field)) for field in DETECT_FILE_FIELDS) > 1:
        raise DomainError("too_many_files", "Send one file; use /detect/batch for more.", 400)
    # `save` was validated with the other parameters (_params).
    library = serializers.BooleanField().to_internal_value(request.data.get("save", False))
    [stored] = upload_images(request, fields=DETECT_FILE_FIELDS, library=library)
    return stored.image


class JobSerializer(serializers.Serializer):
    job_id = serializers.UUIDField()
    detection_id = serializers.UUIDField(help_text="The same as job_id (ObjectVision's name).")
    status = serializers.ChoiceField(choices=DetectionJob.Status.choices)
    total = serializers.IntegerField()
    processed = serializers.IntegerField(required=False)
    progress = serializers.FloatField(required=False)
    error = serializers.CharField(required=False)
    object_count = serializers.IntegerField(required=False, help_text="Objects found in all.")
    params = serializers.JSONField(required=False)
    created_at = serializers.DateTimeField(required=False)
    finished_at = serializers.DateTimeField(required=False, allow_null=True)
    results = RunSerializer(many=True, required=False)


class DetectBatchView(APIView):
    """Queue detection over up to 50 images; poll /detect/jobs/{job_id}."""

    required_scopes = [Scope.IMAGES_WRITE]

    @extend_schema(
        request={"multipart/form-data": DetectParamsSerializer},
        responses={202: JobSerializer, **error_responses(INPUT_ERRORS)},
    )
    def post(self, request: Request) -> Response:
        params, _ = _params(request)
        ids = request.data.getlist("image_ids") if hasattr(request.data, "getlist") else []
        ids = ids or request.data.get("image_ids") or []
        if len(ids) > settings.DETECTION_MAX_BATCH:
            raise DomainError(
                "too_many_files", f"At most {settings.DETECTION_MAX_BATCH} images per batch.", 400
            )
        # A job whose enqueue failed would never run: answer 503 before storing the files.
        queue_check()
        images = (
            _images_of(request, ids, "image_ids")
            if ids
            else list({s.image.pk: s.image for s in upload_images(request)}.values())
        )
        job = detection.detection_job_create(
            client=tenant_of(request), images=images, params=params
        )
        body = {"job_id": str(job.uuid), "status": job.status, "total": job.total}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class DetectJobView(APIView):
    required_scopes = [Scope.IMAGES_READ]

    @extend_schema(responses=JobSerializer)
    def get(self, request: Request, job_id: str) -> Response:
        jobs = for_tenant(request, DetectionJob.objects.all())
        job = jobs.filter(uuid=job_id).first() if selectors.parse_uuid(job_id) else None
        if job is None:
            raise DomainError("not_found", "No such detection job.", 404)
        runs = list(_run_queryset().filter(job=job).order_by("image_id"))
        return Response(
            {
                "job_id": str(job.uuid),
                "detection_id": str(job.uuid),
                "status": job.status,
                "total": job.total,
                "processed": job.processed,
                "progress": round(job.processed / job.total, 3) if job.total else 1.0,
                "error": job.error,
                "object_count": sum(run.count for run in runs),
                "params": job.params,
                "created_at": job.created_at,
                "finished_at": job.finished_at,
                "results": RunSerializer(runs, many=True, context={"request": request}).data,
            }
        )


class HistoryFilter(django_filters.FilterSet):
    class_name = django_filters.CharFilter(field_name="detections__class_name", distinct=True)
    model = django_filters.CharFilter(field_name="model_name")
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = DetectionRun
        fields: list[str] = []


class RunPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = RunSerializer(many=True)


class DetectHistoryView(generics.ListAPIView):
    """The runs, newest first: Imago's page, or ObjectVision's (`items`, `total`, `limit`,
    `offset`) for its users (JWT) and for any caller that sends `limit` or `offset`."""

    required_scopes = [Scope.IMAGES_READ]
    serializer_class = RunSerializer
    filterset_class = HistoryFilter

    @extend_schema(
        parameters=[objectvision.HistoryQuerySerializer],
        responses=PolymorphicProxySerializer(
            component_name="DetectionHistory",
            serializers=[RunPageSerializer, objectvision.HistoryPageSerializer],
            resource_type_field_name=None,
            many=False,  # each of the two is a whole page already
        ),
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if objectvision.wants_page(request):
            runs = self.filter_queryset(self.get_queryset())
            return Response(objectvision.history_page(request, runs))
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[DetectionRun]:
        return _tenant_runs(self.request)


def _tenant_runs(request: Request) -> QuerySet[DetectionRun]:
    return for_tenant(request, _run_queryset())


class DetectionImageView(APIView):
    """A detection's picture with its boxes and labels drawn, as JPEG."""

    required_scopes = [Scope.IMAGES_READ]

    @extend_schema(
        summary="Download a detection's picture with its boxes drawn (JPEG)",
        responses={
            (200, "image/jpeg"): OpenApiTypes.BINARY,
            **error_responses({409: "The detection is still processing."}),
        },
    )
    def get(self, request: Request, detection_id: str) -> HttpResponse:
        runs = _tenant_runs(request)
        run = objectvision.run_of(runs, detection_id)
        if run is None:
            raise DomainError("not_found", "No such detection.", 404)
        response = HttpResponse(detection.annotated_jpeg(run), content_type="image/jpeg")
        response["Content-Disposition"] = f"inline; filename={detection_id}.jpg"
        return response


class ModelUploadSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=100)
    file = serializers.FileField(
        help_text="A YOLO model exported to ONNX (`yolo export model=best.pt format=onnx`); "
        ".pt files are refused."
    )
    confidence = serializers.FloatField(required=False, default=0.25, min_value=0, max_value=1)


class ModelSizeLimit(FileUploadHandler):
    """Refuses a model file once it passes DETECTION_MODEL_MAX_BYTES, while Django receives it:
    otherwise the whole body is spooled to a temporary file before the view reads a byte."""

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > settings.DETECTION_MODEL_MAX_BYTES:
            limit = settings.DETECTION_MODEL_MAX_BYTES
            raise DomainError(
                "model_too_large", f"A model file may have at most {limit} bytes.", 413
            )
        return raw_data  # on to Django's own handlers

    def file_complete(self, file_size: int) -> None:
        return None


class DetectModelsView(generics.ListAPIView):
    """The models a tenant can pick: built-in ones and its own (POST registers one)."""

    required_scopes = {"GET": [Scope.IMAGES_READ], "POST": [Scope.IMAGES_WRITE]}
    serializer_class = DetectionModelSerializer
    pagination_class = None

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        # Before authentication: a staff session's CSRF check already reads the body.
        request.upload_handlers.insert(0, ModelSizeLimit(request))
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": ModelUploadSerializer},
        responses={
            201: DetectionModelSerializer,
            **error_responses(
                {
                    413: "The model file is larger than DETECTION_MODEL_MAX_BYTES.",
                    415: "Not an ONNX file (a .pt, or any pickle or zip): export it to ONNX.",
                }
            ),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = ModelUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        client = tenant_of(request)
        data = serializer.validated_data
        if data["name"] in settings.DETECTION_MODELS:
            raise DomainError("name_taken", f"{data['name']!r} is a built-in model's name.", 400)
        model = detection.detector_model_register(
            client=client,
            name=data["name"],
            fp=data["file"],
            filename=data["file"].name,
            confidence=data["confidence"],
        )
        return Response(DetectionModelSerializer(model).data, status=status.HTTP_201_CREATED)

    def get_queryset(self) -> QuerySet[DetectorModel]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no database needed
            return DetectorModel.objects.none()
        builtin = DetectorModel.objects.filter(client__isnull=True)
        return (builtin | for_tenant(self.request, DetectorModel.objects.all())).order_by("name")


class DetectionsQuerySerializer(serializers.Serializer):
    # Blank is every model: a query string's empty optional field means absent (as in forms).
    model = serializers.CharField(
        required=False, allow_blank=True, help_text="Only this model's runs; blank: all."
    )


class ImageDetectionsView(APIView):
    required_scopes = [Scope.IMAGES_READ]

    @extend_schema(parameters=[DetectionsQuerySerializer], responses=RunSerializer(many=True))
    def get(self, request: Request, pk: str) -> Response:
        query = DetectionsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        [image] = _images_of(request, [pk], "id")
        runs = _run_queryset().filter(image=image)
        if query.validated_data.get("model"):
            runs = runs.filter(model_name=query.validated_data["model"])
        return Response(RunSerializer(runs, many=True, context={"request": request}).data)
