"""Imago's routes plus the floor bench/upload.py compares uploads with: a view that stores the
file and writes one row, with no key check, inspection, quota, pipeline or queue."""

import hashlib
import os

from django.core.files.storage import default_storage
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from images.models import Image


@csrf_exempt
def minimal_upload(request: HttpRequest) -> JsonResponse:
    upload = request.FILES["file"]
    data = upload.read()
    digest = hashlib.sha256(data).hexdigest()
    upload.seek(0)
    name = default_storage.save(f"bench/{digest}.jpg", upload)
    image = Image.objects.create(
        client_id=int(os.environ["BENCH_CLIENT_ID"]),
        file=name,
        original_filename=upload.name,
        content_type="image/jpeg",
        format="JPEG",
        width=0,  # not decoded: the floor does no inspection
        height=0,
        size_bytes=len(data),
        sha256=digest,
    )
    return JsonResponse({"id": image.pk}, status=201)


urlpatterns = [
    path("bench/minimal-upload", minimal_upload),
    path("", include("imago_site.urls")),
]
