"""Reads: a tenant's AI preferences."""

from dataclasses import dataclass

from django.conf import settings

from ai.models import AiProfile
from images.models import Client


@dataclass(frozen=True)
class AiSettings:
    language: str
    provider: str
    ocr_languages: str


def ai_settings_for(*, client: Client | None) -> AiSettings:
    """The tenant's AI profile over the settings' defaults (staff without a tenant: defaults)."""
    profile = AiProfile.objects.filter(client=client).first() if client else None
    return AiSettings(
        language=(profile and profile.language) or settings.AI_LANGUAGE,
        provider=(profile and profile.provider) or "",
        ocr_languages=(profile and profile.ocr_languages) or settings.OCR_LANGUAGES,
    )
