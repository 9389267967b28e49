"""Every admin display function, given a row that has its data, shows it (never the empty "-").

The admin swallows a display function's ValueError and shows its empty value instead: a broken
function looks exactly like a row without data. So each one is called here on a full row.
"""

import datetime

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client as BrowserClient
from django.test import RequestFactory
from django.utils import timezone
from django.utils.html import escape

from ai.models import OcrResult, VisionResult
from annotations.models import Insight, InsightImport
from images.library.services import image_add_tags
from images.models import (
    DetectorModel,
    Exif,
    Image,
    ImageStep,
    PlateTask,
    PlateTaskFile,
    Thumbnail,
)
from tests.factories import (
    DetectionFactory,
    InsightFactory,
    OcrResultFactory,
    PlateTaskFactory,
    PlateTaskFileFactory,
    VisionResultFactory,
)

EMPTY = {"", "-", "—"}
OUR_APPS = {"images", "annotations", "ai"}


def photo_with_everything(tenant) -> Image:
    """A stored photo with thumbnails, EXIF with GPS, two detections, OCR, a description, tags."""
    image = Image(
        client=tenant.client,
        content_type="image/jpeg",
        format="JPEG",
        width=800,
        height=600,
        size_bytes=123_456,
        sha256="sha-full",
        original_filename="street.jpg",
        status="done",
    )
    image.file = f"{image.storage_dir}/original.jpg"
    image.save()
    for size in (256, 1024):
        Thumbnail.objects.create(
            image=image,
            size=size,
            file=f"{image.storage_dir}/t{size}.webp",
            width=min(size, 800),
            height=min(size, 800) * 3 // 4,
            size_bytes=100,
        )
    Exif.objects.create(
        image=image,
        make="NIKON",
        model="COOLPIX P6000",
        iso=64,
        aperture=4.5,
        shutter="1/76",
        focal_length=6.0,
        latitude=43.467081,
        longitude=11.885402,
        taken_at=timezone.now(),
    )
    for name, box in (("car", (10.5, 20.25, 300.0, 250.0)), ("person", (400, 100, 480, 380))):
        DetectionFactory(
            image=image,
            class_id=2,
            class_name=name,
            confidence=0.8734,
            x1=box[0],
            y1=box[1],
            x2=box[2],
            y2=box[3],
        )
    OcrResultFactory(
        image=image, language="eng", text="STOP", confidence=0.9, has_text=True, words=1
    )
    VisionResultFactory(image=image, model="m", description="A red car on a street", confidence=0.7)
    image_add_tags(image=image, names=["car", "street"], source="ai")
    ImageStep.objects.create(
        image=image,
        name="anonymize",
        status="done",
        result={
            "file": f"{image.storage_dir}/anonymized/1.webp",
            "plates": 1,
            "needs_review": True,
            "review_reasons": ["low_confidence"],
        },
    )
    return image


@pytest.fixture
def rows(owner) -> dict[type, object]:
    """One row per model the admin shows, each with the data its display functions read."""
    image = photo_with_everything(owner)
    expires = timezone.now() + datetime.timedelta(days=1)
    task = PlateTaskFactory(
        client=owner.client, mode="blur", total=1, processed=1, status="done", expires_at=expires
    )
    task_file = PlateTaskFileFactory(
        task=task,
        position=0,
        filename="car.jpg",
        source_file=f"{task.pk}/in.jpg",
        result_file=f"{task.pk}/out.webp",
        plates=2,
        plate_confidences=[0.91, 0.42],
    )
    run = InsightImport.objects.create(
        client=owner.client,
        file="imports/x.jsonl",
        bad=1,
        errors=[{"line": 3, "reason": "not JSON"}],
    )
    insight = InsightFactory(
        client=owner.client,
        image=image,
        barcode=str(image.uuid),
        type="object",
        value="car",
        value_tag="en:car",
        predictor="imago-detection-coco",
        import_run=run.pk,
        bounding_box=[0.1, 0.1, 0.5, 0.5],
    )
    model = DetectorModel.objects.create(
        name="cars", task="detect", file="cars.onnx", class_names=["car", "truck"]
    )
    return {
        Image: image,
        PlateTask: task,
        PlateTaskFile: task_file,
        InsightImport: run,
        Insight: insight,
        DetectorModel: model,
        type(owner.client): owner.client,
        OcrResult: OcrResult.objects.get(),
        VisionResult: VisionResult.objects.get(),
    }


def display_functions(model_admin) -> list[str]:
    """The admin's own methods named in its columns and fields (model fields are not)."""
    names = [
        *getattr(model_admin, "list_display", ()),
        *model_admin.readonly_fields,
        *(model_admin.fields or []),
    ]
    return sorted(
        {
            name
            for name in names
            if isinstance(name, str)
            and not name.startswith("_")  # __str__, the default column, is the model's
            and callable(getattr(model_admin, name, None))
        }
    )


def every_admin(request) -> list:
    admins = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in OUR_APPS:
            continue
        admins.append(model_admin)
        admins.extend(model_admin.get_inline_instances(request))
    return admins


def test_every_display_function_shows_the_data_of_a_full_row(rows, django_user_model):
    request = RequestFactory().get("/admin/")
    request.user = django_user_model.objects.create_superuser("root", "r@localhost", "pw")
    checked = []
    for model_admin in every_admin(request):
        names = display_functions(model_admin)
        if not names:
            continue
        model = model_admin.model
        assert model in rows, f"no full {model.__name__} row to try {names} on"
        row = model_admin.get_queryset(request).get(pk=rows[model].pk)
        for name in names:
            shown = str(getattr(model_admin, name)(row)).strip()
            assert shown not in EMPTY, f"{type(model_admin).__name__}.{name} shows nothing"
            checked.append(f"{type(model_admin).__name__}.{name}")
    # The ones this issue was about, so that a rename cannot leave them out silently.
    assert {
        "ImageAdmin.exif_summary",
        "ImageAdmin.detection_overlay",
        "InsightAdmin.large_preview",
        "InsightImportAdmin.bad_lines",
        "PlateTaskFileInline.before",
        "ClientAdmin.storage_used",
        "ImageAdmin.tag_list",
        "ImageAdmin.ocr_text",
        "ImageAdmin.ai_description",
        "ImageAdmin.original",
        "ClientAdmin.usage",
        "ClientAdmin.related",
    } <= set(checked)


def test_the_image_page_shows_gps_and_draws_every_detection(rows):
    image = rows[Image]
    browser = BrowserClient()
    browser.force_login(User.objects.create_superuser("root", "r@localhost", "pw"))
    page = browser.get(f"/admin/images/image/{image.pk}/change/").content.decode()
    assert "43.467081, 11.885402 (map)" in page
    assert escape(image.exif.maps_url) in page
    assert page.count('<rect class="box"') == 2
    assert "car 0.87" in page and "person 0.87" in page
    # The readonly rows of EXIF and detections hold their tables, not the empty value.
    assert '<div class="readonly">-</div>' not in page
