"""Rows in the state a test's story needs, built with factory_boy.

A test names only the fields its story is about; the rest are the plainest valid values. Images
themselves are uploaded through the API (tests.helpers.upload) or stored by `stored` helpers, as
their files and steps come with them.
"""

from datetime import timedelta

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from ai.models import OcrResult, VisionResult
from annotations.models import AnnotationVote, Insight
from images.models import Client, Detection, PlateTask, PlateTaskFile
from tests.annotations.support import BARCODE


class ClientFactory(DjangoModelFactory):
    class Meta:
        model = Client

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")


class InsightFactory(DjangoModelFactory):
    """An open label insight."""

    class Meta:
        model = Insight

    client = factory.SubFactory(ClientFactory)
    barcode = BARCODE
    type = "label"


class AnnotationVoteFactory(DjangoModelFactory):
    class Meta:
        model = AnnotationVote

    insight = factory.SubFactory(InsightFactory)
    value = 1
    device_id = factory.Sequence(lambda n: f"phone-{n}")


class PlateTaskFactory(DjangoModelFactory):
    """A plate task in stub mode whose results are kept for another hour."""

    class Meta:
        model = PlateTask

    client = factory.SubFactory(ClientFactory)
    mode = "stub"
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))


class PlateTaskFileFactory(DjangoModelFactory):
    class Meta:
        model = PlateTaskFile

    task = factory.SubFactory(PlateTaskFactory)
    position = factory.Sequence(int)
    filename = factory.LazyAttribute(lambda row: f"{row.position}.jpg")
    status = "done"


class DetectionFactory(DjangoModelFactory):
    """A car found by the built-in COCO model (give `image`)."""

    class Meta:
        model = Detection

    model_name = "coco"
    class_id = 2
    class_name = "car"
    confidence = 0.9
    x1, y1, x2, y2 = 0, 0, 10, 10


class OcrResultFactory(DjangoModelFactory):
    """Tesseract's reading of an image (give `image`)."""

    class Meta:
        model = OcrResult

    text = ""
    language = "en"
    confidence = 0.9
    has_text = factory.LazyAttribute(lambda row: bool(row.text))
    engine = "tesseract"
    ocr_languages = "eng"
    tesseract_confidence = factory.SelfAttribute("confidence")


class VisionResultFactory(DjangoModelFactory):
    """The local vision provider's answer for an image (give `image`)."""

    class Meta:
        model = VisionResult

    provider = "local"
    language = "en"
