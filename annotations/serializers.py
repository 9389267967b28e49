"""Shapes of the Robotoff-compatible routes: query parameters, questions, insights, answers."""

import json
import re
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request

from annotations.models import Insight
from annotations.selectors import Order, QuestionFilters
from annotations.services import ALL_RESULTS
from images.signing import signed_url

# Question texts by insight type; `lang` picks the translation (annotations/locale/*/django.po).
QUESTION_TEXTS = {
    "label": _("Does the product have this label?"),
    "brand": _("Does the product belong to this brand?"),
    "category": _("Does the product belong to this category?"),
    "product_weight": _("Does this weight match the weight displayed on the product?"),
    "packaging": _("Does the product have this packaging element?"),
    "image_tag": _("Does the image show this?"),
    "object": _("Is this object in the image?"),
}
DEFAULT_QUESTION = _("Is this correct?")
QUESTION_STATUSES = ["found", "no_questions"]
INSIGHT_STATUSES = ["found", "no_insights"]
ANNOTATION_STATUSES = [result.status for result in ALL_RESULTS]
LANG_PATTERN = re.compile(r"^[a-zA-Z]{2,3}([-_][a-zA-Z0-9]{2,8})?$")


def question_text(insight_type: str, lang: str) -> str:
    with translation.override(lang):
        return str(QUESTION_TEXTS.get(insight_type, DEFAULT_QUESTION))


def _comma_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class QuestionQuerySerializer(serializers.Serializer):
    count = serializers.IntegerField(
        min_value=1, max_value=100, default=25, help_text="Questions per page (at most 100)."
    )
    page = serializers.IntegerField(
        min_value=1, max_value=10_000, default=1, help_text="Ignored by the random order."
    )
    lang = serializers.CharField(default="en", max_length=20, help_text="Language of the texts.")
    insight_types = serializers.CharField(
        required=False, max_length=1000, help_text="Comma-separated insight types."
    )
    value_tag = serializers.CharField(required=False, max_length=255)
    brands = serializers.CharField(required=False, max_length=1000, help_text="Comma-separated.")
    countries = serializers.CharField(
        required=False, max_length=1000, help_text="Comma-separated, e.g. en:france."
    )
    predictor = serializers.CharField(required=False, max_length=100)
    with_image = serializers.BooleanField(required=False, allow_null=True, default=None)
    device_id = serializers.CharField(
        required=False, max_length=255, help_text="Leaves out questions this device voted on."
    )
    order_by = serializers.ChoiceField(choices=Order.CHOICES, default=Order.RANDOM)

    def validate_lang(self, value: str) -> str:
        # An unknown or odd language falls back to English rather than failing the request.
        return value if LANG_PATTERN.match(value) else "en"

    def filters(self, **extra: Any) -> QuestionFilters:
        data = self.validated_data
        return QuestionFilters(
            insight_types=_comma_list(data.get("insight_types", "")),
            value_tag=data.get("value_tag") or None,
            brands=_comma_list(data.get("brands", "")),
            countries=_comma_list(data.get("countries", "")),
            predictor=data.get("predictor") or None,
            with_image=data.get("with_image"),
            **extra,
        )


class BarcodeQuestionQuerySerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=1, max_value=100, default=1)
    lang = serializers.CharField(default="en", max_length=20)
    insight_types = serializers.CharField(
        required=False, max_length=1000, help_text="Comma-separated insight types."
    )
    device_id = serializers.CharField(required=False, max_length=255)

    validate_lang = QuestionQuerySerializer.validate_lang


class RandomInsightQuerySerializer(QuestionQuerySerializer):
    lang = None
    device_id = None
    order_by = None
    page = None


class QuestionSerializer(serializers.Serializer):
    """An open insight phrased for a person (context: request, lang)."""

    barcode = serializers.CharField()
    type = serializers.CharField(help_text='Always "add-binary".')
    value = serializers.CharField(allow_null=True)
    question = serializers.CharField()
    insight_id = serializers.UUIDField()
    insight_type = serializers.CharField()
    server_type = serializers.CharField()
    value_tag = serializers.CharField(required=False)
    source_image_url = serializers.URLField(required=False)
    ref_image_url = serializers.URLField(required=False)

    def to_representation(self, insight: Insight) -> dict[str, Any]:
        question: dict[str, Any] = {
            "barcode": insight.barcode,
            "type": "add-binary",
            "value": insight.value if insight.value is not None else insight.value_tag,
            "question": question_text(insight.type, self.context.get("lang", "en")),
            "insight_id": str(insight.id),
            "insight_type": insight.type,
            "server_type": insight.server_type,
        }
        if insight.value_tag:
            question["value_tag"] = insight.value_tag
        image_url = source_image_url(insight, self.context.get("request"))
        if image_url:
            question["source_image_url"] = image_url
        return question


def source_image_url(insight: Insight, request: Request | None) -> str | None:
    """A signed link to our smallest thumbnail for an Image, else the imported source image."""
    if insight.image_id is not None:
        image = insight.image
        thumbnails = sorted(image.thumbnails.all(), key=lambda t: t.size)
        if thumbnails:
            url, _expires = signed_url(
                request, client=insight.client, name=thumbnails[0].file, content_type="image/webp"
            )
            return url
    source = insight.source_image
    if not source:
        return None
    if source.startswith(("http://", "https://")):
        return source
    base = settings.INSIGHT_SOURCE_IMAGE_BASE_URL
    return f"{base.rstrip('/')}/{source.lstrip('/')}" if base else source


class QuestionsSerializer(serializers.Serializer):
    count = serializers.IntegerField(
        help_text="Matching questions, counted up to INSIGHT_QUESTION_COUNT_CAP "
        "(1,000 by default): a count at the cap means at least that many."
    )
    questions = QuestionSerializer(many=True)
    status = serializers.ChoiceField(choices=QUESTION_STATUSES)


class BarcodeQuestionsSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=QUESTION_STATUSES)
    questions = QuestionSerializer(many=True)


class InsightSerializer(serializers.ModelSerializer):
    class Meta:
        model = Insight
        fields = [
            "id",
            "barcode",
            "type",
            "value",
            "value_tag",
            "data",
            "timestamp",
            "completed_at",
            "annotation",
            "n_votes",
            "username",
            "source_image",
            "automatic_processing",
            "predictor",
            "predictor_version",
            "confidence",
            "server_type",
            "countries",
            "brands",
            "campaign",
            "bounding_box",
            "lc",
            "unique_scans_n",
            "reserved_barcode",
            "with_image",
        ]
        read_only_fields = fields


class InsightsSerializer(serializers.Serializer):
    insights = InsightSerializer(many=True)
    status = serializers.ChoiceField(choices=INSIGHT_STATUSES)


@extend_schema_field(OpenApiTypes.STR)
class JsonObjectField(serializers.Field):
    """A JSON object given as JSON text (form-encoded requests) or as an object (JSON bodies)."""

    default_error_messages = {
        "invalid": 'Enter a JSON object, such as {{"value": "en:organic"}}.',
        "null_character": "The JSON object may not contain NUL characters.",
    }

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                self.fail("invalid")
        if not isinstance(data, dict):
            self.fail("invalid")
        # PostgreSQL's jsonb refuses \u0000 anywhere in a document.
        if "\\u0000" in json.dumps(data):
            self.fail("null_character")
        return data

    def to_representation(self, value: dict[str, Any]) -> dict[str, Any]:
        return value


class AnnotateSerializer(serializers.Serializer):
    insight_id = serializers.UUIDField()
    annotation = serializers.IntegerField(
        min_value=-1,
        max_value=2,
        help_text="1 correct, 0 incorrect, -1 skip / ambiguous, 2 correct with user data.",
    )
    update = serializers.BooleanField(
        default=True, help_text="Apply an accepted insight to its subject (1) or not (0)."
    )
    data = JsonObjectField(
        required=False, help_text="JSON object text; required with annotation 2, refused otherwise."
    )
    device_id = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="Identifies a voter's device; a hash of the client address when absent.",
    )


class AnnotationAnswerSerializer(serializers.Serializer):
    status_code = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ANNOTATION_STATUSES)
    description = serializers.CharField()


class ApiErrorSerializer(serializers.Serializer):
    """Imago's error shape for everything outside the contract's annotation answers."""

    code = serializers.CharField()
    detail = serializers.CharField()
    errors = serializers.DictField(required=False)
