"""ObjectVision's detection shapes over Imago's detection runs and jobs: its clients (its users,
logged in with a JWT: images/compat/objectvision) call the detection routes too.

An ObjectVision "detection" is one image sent to POST /detect/image in the field `image`: Imago
queues it as a detection job of one image, and its `detection_id` is that job's id (also the
`job_id` of /detect/jobs/{job_id}). Runs made otherwise keep their own id.
"""

from typing import Any

from django.db.models import Q, QuerySet
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication

from images.library import selectors
from images.models import Detection, DetectionJob, DetectionRun
from kit.errors import DomainError

HISTORY_DEFAULT_LIMIT = 10
HISTORY_MAX_LIMIT = 100


def ack(job: DetectionJob) -> dict[str, str]:
    """POST /detect/image's answer to ObjectVision's clients: they poll for the rest."""
    return {"detection_id": str(job.uuid), "status": "processing"}


def detection_id(run: DetectionRun) -> str:
    job = run.job
    return str(job.uuid if job is not None and job.total == 1 else run.uuid)


def run_of(runs: QuerySet[DetectionRun], value: str) -> DetectionRun | None:
    """A run by its own id, or by the id of a one-image job (an ObjectVision detection_id)."""
    key = selectors.parse_uuid(value)
    if key is None:
        return None
    return runs.filter(Q(uuid=key) | Q(job__uuid=key, job__total=1)).first()


class ResultSerializer(serializers.ModelSerializer):
    """One object in both spellings the contract leaves open: `class` with `bbox{}`, and the
    stored columns `object_class` with `bbox_*` (pixels of the oriented image)."""

    object_class = serializers.CharField(source="class_name")
    bbox = serializers.SerializerMethodField()
    bbox_x = serializers.FloatField(source="x1")
    bbox_y = serializers.FloatField(source="y1")
    bbox_width = serializers.SerializerMethodField()
    bbox_height = serializers.SerializerMethodField()

    class Meta:
        model = Detection
        fields = [
            "object_class",
            "confidence",
            "bbox",
            "bbox_x",
            "bbox_y",
            "bbox_width",
            "bbox_height",
        ]

    def get_fields(self) -> dict[str, serializers.Field]:
        # `class` is a Python keyword: no class attribute can declare the field.
        return {"class": serializers.CharField(source="class_name"), **super().get_fields()}

    def get_bbox(self, item: Detection) -> dict[str, float]:
        return {
            "x1": item.x1,
            "y1": item.y1,
            "x2": item.x2,
            "y2": item.y2,
            "width": item.x2 - item.x1,
            "height": item.y2 - item.y1,
        }

    def get_bbox_width(self, item: Detection) -> float:
        return item.x2 - item.x1

    def get_bbox_height(self, item: Detection) -> float:
        return item.y2 - item.y1


class HistoryItemSerializer(serializers.ModelSerializer):
    id = serializers.SerializerMethodField()
    detection_id = serializers.SerializerMethodField()
    run_id = serializers.UUIDField(source="uuid")
    name = serializers.CharField(source="image.original_filename")
    status = serializers.SerializerMethodField()
    model = serializers.CharField(source="model_name")
    object_count = serializers.IntegerField(source="count")
    updated_at = serializers.DateTimeField(source="created_at")
    results = ResultSerializer(many=True, source="detections")

    class Meta:
        model = DetectionRun
        fields = [
            "id",
            "detection_id",
            "run_id",
            "name",
            "status",
            "model",
            "object_count",
            "created_at",
            "updated_at",
            "results",
        ]

    def get_id(self, run: DetectionRun) -> str:
        return detection_id(run)

    def get_detection_id(self, run: DetectionRun) -> str:
        return detection_id(run)

    def get_status(self, run: DetectionRun) -> str:
        return "completed"  # a run is stored once its detection is done


class HistoryQuerySerializer(serializers.Serializer):
    """The schema's words for the page parameters (_bounded reads them)."""

    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=HISTORY_MAX_LIMIT,
        help_text=f"ObjectVision's page: how many items ({HISTORY_DEFAULT_LIMIT}).",
    )
    offset = serializers.IntegerField(
        required=False, min_value=0, help_text="ObjectVision's page: items skipped."
    )


class HistoryPageSerializer(serializers.Serializer):
    items = HistoryItemSerializer(many=True)
    total = serializers.IntegerField()
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()


def wants_page(request: Request) -> bool:
    """ObjectVision's history page: for its users (JWT), or any caller paging by limit/offset."""
    asked = {"limit", "offset"} & set(request.query_params)
    return isinstance(request.successful_authenticator, JWTAuthentication) or bool(asked)


def history_page(request: Request, runs: QuerySet[DetectionRun]) -> dict[str, Any]:
    # limit/offset choose this page; Imago's page parameters beside them are still checked as
    # Imago's own pages check them (kit.pagination), not ignored whatever they say.
    page = request.query_params.get("page")
    if page is not None and page != "last" and not _whole_from_one(page):
        raise NotFound("Invalid page.")
    size = request.query_params.get("page_size")
    if size is not None and not _whole_from_one(size):
        raise DomainError("invalid_page_size", "page_size must be a whole number from 1.", 400)
    limit = _bounded(request, "limit", HISTORY_DEFAULT_LIMIT, 1, HISTORY_MAX_LIMIT)
    offset = _bounded(request, "offset", 0, 0, selectors.MAX_ID)
    items = runs.select_related("job", "image")[offset : offset + limit]
    return {
        "items": HistoryItemSerializer(items, many=True).data,
        "total": runs.count(),
        "limit": limit,
        "offset": offset,
    }


def _whole_from_one(value: str) -> bool:
    return value.isascii() and value.isdigit() and bool(value.strip("0"))


def _bounded(request: Request, name: str, default: int, low: int, high: int) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    number = selectors.parse_number(value.strip())
    if number is None or not low <= number <= high:
        raise DomainError(
            f"invalid_{name}", f"{name} must be a whole number from {low} to {high}.", 400
        )
    return number
