"""Shapes of the Robotoff-compatible routes: query parameters, questions, insights, answers."""

import json
import re
import uuid
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.request import Request

from annotations.models import Insight
from annotations.selectors import Order, QuestionFilters, evidence_box
from annotations.services import ALL_RESULTS
from images.library.signing import signed_url
from kit import parsers

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


def comma_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


# `+`, not `*`: a blank value never reaches validators, and a pattern that also matched "" would
# make drf-spectacular's oneOf [pattern, blank] ambiguous.
NO_NUL = RegexValidator(r"^[^\x00]+$", message="Null characters are not allowed.")


class QueryText(serializers.CharField):
    """An optional text parameter: blank means absent, and NUL (which PostgreSQL refuses in
    text) is refused with a pattern that the OpenAPI schema shows."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        super().__init__(**kwargs)
        self.validators.append(NO_NUL)

    def to_internal_value(self, data: Any) -> str:
        # A JSON body's 0 or true is not the text the schema asks for.
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class QueryInt(serializers.IntegerField):
    """An integer parameter where a blank value is refused rather than taken for the default."""

    def get_value(self, dictionary: Any) -> Any:
        return dictionary.get(self.field_name, empty)


class QueryBool(serializers.BooleanField):
    """A yes/no filter: absent means no filter (DRF reads an absent form checkbox as false)."""

    def get_value(self, dictionary: Any) -> Any:
        return dictionary.get(self.field_name, empty)


class InsightId(serializers.CharField):
    """An insight id as text; text that is no UUID names no insight (None), which Robotoff
    answers with error_unknown_insight rather than refusing the request. A JSON integer (or
    false) is not text: refused."""

    def to_internal_value(self, data: Any) -> uuid.UUID | None:
        if not isinstance(data, str):
            self.fail("invalid")
        text = super().to_internal_value(data)
        try:
            return uuid.UUID(text)
        except ValueError:
            return None


class QuestionQuerySerializer(serializers.Serializer):
    count = QueryInt(
        min_value=1, max_value=100, default=25, help_text="Questions per page (at most 100)."
    )
    page = QueryInt(
        min_value=1, max_value=10_000, default=1, help_text="Ignored by the random order."
    )
    lang = QueryText(max_length=20, help_text="Language of the texts (default en).")
    insight_types = QueryText(max_length=1000, help_text="Comma-separated insight types.")
    value_tag = QueryText(max_length=255)
    brands = QueryText(max_length=1000, help_text="Comma-separated.")
    countries = QueryText(max_length=1000, help_text="Comma-separated, e.g. en:france.")
    predictor = QueryText(max_length=100)
    with_image = QueryBool(required=False)
    device_id = QueryText(max_length=255, help_text="Leaves out questions this device voted on.")
    order_by = serializers.ChoiceField(
        choices=Order.CHOICES, default=Order.RANDOM, allow_blank=True, help_text="Blank: random."
    )

    def filters(self, **extra: Any) -> QuestionFilters:
        data = self.validated_data
        return QuestionFilters(
            insight_types=comma_list(data.get("insight_types", "")),
            value_tag=data.get("value_tag") or None,
            brands=comma_list(data.get("brands", "")),
            countries=comma_list(data.get("countries", "")),
            predictor=data.get("predictor") or None,
            with_image=data.get("with_image"),
            **extra,
        )


class BarcodeQuestionQuerySerializer(serializers.Serializer):
    count = QueryInt(min_value=1, max_value=100, default=1)
    lang = QueryText(max_length=20, help_text="Language of the texts (default en).")
    insight_types = QueryText(max_length=1000, help_text="Comma-separated insight types.")
    device_id = QueryText(max_length=255, help_text="Leaves out questions this device voted on.")


class InsightListQuerySerializer(serializers.Serializer):
    """GET /insights. Lists are cut to their first 10 items, as Robotoff does."""

    count = QueryInt(min_value=1, max_value=100, default=25, help_text="At most 100.")
    page = QueryInt(min_value=1, max_value=10_000, default=1, help_text="Ignored by random.")
    insight_types = QueryText(max_length=1000, help_text="Comma-separated, at most 10 used.")
    barcode = QueryText(max_length=100)
    annotated = QueryBool(required=False, help_text="Whether `annotation` is set.")
    annotation = QueryInt(required=False, min_value=-1, max_value=2)
    value_tag = QueryText(max_length=255)
    brands = QueryText(max_length=1000, help_text="Comma-separated, at most 10 used.")
    predictor = QueryText(max_length=100)
    server_type = QueryText(max_length=20)
    countries = QueryText(max_length=1000, help_text="Comma-separated, e.g. en:france.")
    campaigns = QueryText(max_length=1000, help_text="Comma-separated, at most 10 used.")
    lc = QueryText(max_length=1000, help_text="Comma-separated language codes.")
    order_by = serializers.ChoiceField(
        choices=[Order.RANDOM, Order.POPULARITY],
        required=False,
        allow_blank=True,
        help_text="Absent or blank: by subject (barcode).",
    )

    def filters(self) -> QuestionFilters:
        data = self.validated_data
        return QuestionFilters(
            insight_types=first_ten(data.get("insight_types")),
            barcode=data.get("barcode") or None,
            annotated=data.get("annotated"),
            annotation=data.get("annotation"),
            value_tag=data.get("value_tag") or None,
            brands=first_ten(data.get("brands")),
            predictor=data.get("predictor") or None,
            server_type=data.get("server_type") or None,
            countries=first_ten(data.get("countries")),
            campaigns=first_ten(data.get("campaigns")),
            lc=first_ten(data.get("lc")),
        )


class UnansweredQuerySerializer(serializers.Serializer):
    """GET /questions/unanswered."""

    type = QueryText(max_length=64, help_text="One insight type.")
    count = QueryInt(min_value=1, max_value=100, default=25, help_text="At most 100.")
    page = QueryInt(min_value=1, max_value=10_000, default=1)
    countries = QueryText(max_length=1000, help_text="Comma-separated, at most 10 used.")
    campaigns = QueryText(max_length=1000, help_text="Comma-separated, at most 10 used.")
    campaign = QueryText(max_length=255, help_text="One campaign (older name of `campaigns`).")
    predictor = QueryText(max_length=100)
    reserved_barcode = serializers.BooleanField(default=False)
    server_type = QueryText(max_length=20)

    def filters(self) -> QuestionFilters:
        data = self.validated_data
        campaigns = first_ten(data.get("campaigns")) or first_ten(data.get("campaign"))
        return QuestionFilters(
            insight_types=[data["type"]] if data.get("type") else [],
            countries=first_ten(data.get("countries")),
            campaigns=campaigns,
            predictor=data.get("predictor") or None,
            reserved_barcode=data["reserved_barcode"],
            server_type=data.get("server_type") or None,
        )


def first_ten(value: str | None) -> list[str]:
    """A comma list, cut to 10 items: longer lists make slow queries (Robotoff cuts them too)."""
    return comma_list(value or "")[:10]


class RandomInsightQuerySerializer(QuestionQuerySerializer):
    lang = None
    device_id = None
    order_by = None
    page = None


def language(value: str | None) -> str:
    """The `lang` asked for; an absent, unknown or odd one means English, never a failure."""
    return value if value and LANG_PATTERN.match(value) else "en"


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
    bounding_box = serializers.ListField(
        child=serializers.FloatField(min_value=0, max_value=1),
        min_length=4,
        max_length=4,
        required=False,
        help_text="Imago's addition: the part of the picture the question is about, as "
        "y_min, x_min, y_max, x_max from 0 to 1 (object insights).",
    )

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
        box = evidence_box(insight)
        if box:
            question["bounding_box"] = box
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
        # Its source_image is a storage key, not a link: no thumbnail yet means no picture.
        return None
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


class InsightListSerializer(InsightsSerializer):
    count = serializers.IntegerField(
        help_text="Matching insights, counted up to INSIGHT_QUESTION_COUNT_CAP "
        "(1,000 by default): a count at the cap means at least that many."
    )


class UnansweredSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="How many value tags have open questions.")
    questions = serializers.ListField(
        child=serializers.ListField(min_length=2, max_length=2),
        help_text="[value_tag, open questions] pairs, most questions first.",
    )
    status = serializers.ChoiceField(choices=QUESTION_STATUSES)


class AnnotationCountSerializer(serializers.Serializer):
    annotations = serializers.IntegerField()


class UserStatisticsSerializer(serializers.Serializer):
    count = AnnotationCountSerializer()


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
                data = parsers.loads(data)
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
    insight_id = InsightId(
        help_text="The insight's UUID; any other text answers error_unknown_insight."
    )
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
    device_id = QueryText(
        max_length=255,
        help_text="Identifies a voter's device; a hash of the client address when absent.",
    )


class AnnotateJsonSerializer(AnnotateSerializer):
    """The same fields in a JSON body, where `data` may also be an object (for the schema)."""


# `data` as JSON object text: a fuzzer or client reading the schema knows it starts with "{".
DATA_TEXT = {
    "type": "string",
    "pattern": r"^\s*\{[\s\S]*\}\s*$",
    "description": "A JSON object as text; required with annotation 2, refused otherwise.",
}


class AnnotateSchema(OpenApiSerializerExtension):
    """The contract's cross-field rules in the schema, for schema-driven clients and fuzzers:
    annotation 2 requires `data`, the other annotations refuse it."""

    target_class = AnnotateSerializer
    data_schema: dict[str, Any] = DATA_TEXT

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        fields = auto_schema._map_basic_serializer(self.target, direction)["properties"]
        common = {name: fields[name] for name in ("insight_id", "device_id")}
        # Robotoff documents `update` as 0 or 1; true and false are read too.
        common["update"] = {
            "oneOf": [{"type": "boolean"}, {"type": "integer", "minimum": 0, "maximum": 1}],
            "default": 1,
            "description": fields["update"].get("description", ""),
        }

        # Bounds rather than enums: drf-spectacular would hoist two enums of one field into one
        # shared component.
        def annotation(low: int, high: int) -> dict[str, Any]:
            return {**fields["annotation"], "minimum": low, "maximum": high}

        return {
            # Also at the top, where drf-spectacular looks to mark the body as required.
            "required": ["insight_id", "annotation"],
            "oneOf": [
                {
                    "type": "object",
                    "properties": {**common, "annotation": annotation(-1, 1)},
                    "required": ["insight_id", "annotation"],
                    # Other fields are ignored, as Robotoff does; `data` is refused.
                    "not": {"required": ["data"]},
                },
                {
                    "type": "object",
                    "properties": {
                        **common,
                        "annotation": annotation(2, 2),
                        "data": self.data_schema,
                    },
                    "required": ["insight_id", "annotation", "data"],
                },
            ],
        }


class AnnotateJsonSchema(AnnotateSchema):
    target_class = AnnotateJsonSerializer
    data_schema = {"oneOf": [DATA_TEXT, {"type": "object", "additionalProperties": True}]}


class AnnotationAnswerSerializer(serializers.Serializer):
    status_code = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ANNOTATION_STATUSES)
    description = serializers.CharField()
