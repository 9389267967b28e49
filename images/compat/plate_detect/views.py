"""plate_detect's result links: `/tasks_storage/<task id>/output/<filename>`, until the TTL."""

from django.core.files.storage import default_storage
from django.http import FileResponse
from drf_spectacular.utils import extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from images.models import Scope
from images.plates.api import task_get
from kit.errors import DomainError


class FirstRenderer(BaseContentNegotiation):
    """The answer is a WebP whatever `Accept` says (`image/webp` alone would be a 406); errors
    are JSON."""

    def select_parser(self, request: Request, parsers: list) -> object:
        return parsers[0]

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type


@extend_schema(exclude=True)  # a file, not JSON; task-status documents the links
class TaskResultFileView(APIView):
    """A covered WebP of the caller's task (404 for another tenant's, 410 once expired)."""

    required_scopes = [Scope.IMAGES_READ]
    plate_detect_route = True
    content_negotiation_class = FirstRenderer

    def get(self, request: Request, task_id: str, filename: str) -> FileResponse:
        task = task_get(request, task_id)
        row = task.files.filter(result_file=f"{task.storage_dir}/output/{filename}").first()
        if row is None or not default_storage.exists(row.result_file):
            raise DomainError("not_found", "This task has no such result.", 404)
        response = FileResponse(
            default_storage.open(row.result_file, "rb"), content_type="image/webp"
        )
        response["Cache-Control"] = "private, max-age=300"
        return response
