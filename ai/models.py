from django.db import models

from images.models import Client, Image


class Provider(models.TextChoices):
    GEMINI = "gemini"
    OPENROUTER = "openrouter"
    LOCAL = "local"


class AiProfile(models.Model):
    """A tenant's AI preferences; a tenant without one gets the settings' defaults."""

    client = models.OneToOneField(Client, on_delete=models.CASCADE, related_name="ai_profile")
    language = models.CharField(
        max_length=10, blank=True, help_text="ISO 639-1 code of tags and descriptions, e.g. fr."
    )
    provider = models.CharField(
        max_length=20, choices=Provider.choices, blank=True, help_text="Empty: AI_PROVIDER."
    )
    ocr_languages = models.CharField(
        max_length=100, blank=True, help_text="Tesseract languages, e.g. eng+fra; empty: default."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"AI profile of {self.client}"


class OcrResult(models.Model):
    """The text read in an image, with the words' boxes and which engine's text was kept."""

    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="ocr")
    text = models.TextField(blank=True)
    language = models.CharField(max_length=10, blank=True)
    confidence = models.FloatField(help_text="Mean word confidence, 0 to 1.")
    has_text = models.BooleanField(default=False)
    engine = models.CharField(max_length=20, help_text="tesseract, or the AI provider's name.")
    words = models.PositiveIntegerField(default=0)
    boxes = models.JSONField(default=list, blank=True, help_text="Words with boxes and confidence.")
    rotation = models.PositiveSmallIntegerField(default=0, help_text="Degrees turned before OCR.")
    ocr_languages = models.CharField(max_length=100)
    tesseract_text = models.TextField(blank=True)
    tesseract_confidence = models.FloatField()
    fallback = models.JSONField(
        null=True, blank=True, help_text="The AI fallback's answer or error, when it was asked."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"OCR of {self.image_id} ({self.engine})"


class VisionResult(models.Model):
    """A vision provider's description and tags of an image (its last answer or failure)."""

    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="vision")
    provider = models.CharField(max_length=20, choices=Provider.choices)
    model = models.CharField(max_length=100, blank=True)
    language = models.CharField(max_length=10)
    description = models.TextField(null=True, blank=True)
    tags = models.JSONField(default=list, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    usage = models.JSONField(null=True, blank=True, help_text="Tokens, when the provider says.")
    error = models.TextField(blank=True, help_text="Why the last call failed, if it did.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Vision of {self.image_id} ({self.provider})"
