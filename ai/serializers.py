from rest_framework import serializers

from ai.models import OcrResult, VisionResult


class OcrResultSerializer(serializers.ModelSerializer):
    image_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = OcrResult
        fields = [
            "image_id",
            "text",
            "language",
            "confidence",
            "has_text",
            "engine",
            "words",
            "boxes",
            "rotation",
            "ocr_languages",
            "tesseract_text",
            "tesseract_confidence",
            "fallback",
            "updated_at",
        ]


class VisionResultSerializer(serializers.ModelSerializer):
    image_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = VisionResult
        fields = [
            "image_id",
            "description",
            "tags",
            "confidence",
            "provider",
            "model",
            "language",
            "usage",
            "error",
            "updated_at",
        ]


class SummarizeRequestSerializer(serializers.Serializer):
    # A plain string: the scheme is checked by the fetcher, which answers blocked_address.
    url = serializers.CharField(max_length=2000)
    language = serializers.CharField(max_length=10, required=False, allow_blank=True)


class SummaryResponseSerializer(serializers.Serializer):
    url = serializers.CharField()
    title = serializers.CharField(allow_null=True)
    language = serializers.CharField()
    summary = serializers.CharField()
    characters = serializers.IntegerField(help_text="Length of the extracted main text.")
    provider = serializers.CharField()
    model = serializers.CharField(allow_null=True)
    usage = serializers.DictField(allow_null=True)


class DraftTaskRequestSerializer(serializers.Serializer):
    description = serializers.CharField(max_length=10_000)
    context = serializers.CharField(max_length=10_000, required=False, allow_blank=True)


class TaskSerializer(serializers.Serializer):
    title = serializers.CharField()
    summary = serializers.CharField()
    steps = serializers.ListField(child=serializers.CharField())
    acceptance_criteria = serializers.ListField(child=serializers.CharField())
    priority = serializers.ChoiceField(choices=["low", "medium", "high", "urgent"])
    estimate = serializers.ChoiceField(choices=["xs", "s", "m", "l", "xl"])


class DraftTaskResponseSerializer(serializers.Serializer):
    task = TaskSerializer()
    provider = serializers.CharField()
    model = serializers.CharField(allow_null=True)
    usage = serializers.DictField(allow_null=True)
