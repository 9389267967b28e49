"""Reads: a tenant's AI preferences, image search over OCR text, descriptions and tags."""

from dataclasses import dataclass

from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection
from django.db.models import Count, Q, QuerySet

from ai.models import AiProfile, OcrResult, VisionResult
from images.models import Client, Image, ImageTag, Tag


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


def image_search(images: QuerySet[Image], query: str) -> QuerySet[Image]:
    """Images whose OCR text, AI description or tags match every word of the query.

    PostgreSQL ranks nothing but matches words with its full-text search ('simple' dictionary:
    no stemming, so that English and French text are searched alike); SQLite matches substrings.
    """
    query = query.strip()
    if not query:
        return images
    if connection.vendor == "postgresql":
        return images.filter(_full_text_match(query))
    condition = Q()
    for word in query.split():
        condition &= (
            Q(pk__in=OcrResult.objects.filter(text__icontains=word).values("image_id"))
            | Q(pk__in=VisionResult.objects.filter(description__icontains=word).values("image_id"))
            | Q(pk__in=ImageTag.objects.filter(tag__name__icontains=word).values("image_id"))
        )
    return images.filter(condition)


def _full_text_match(query: str) -> Q:
    search = SearchQuery(query, config="simple", search_type="websearch")
    # One row per tag of each image, each with the OCR text and the description.
    documents = Image.objects.annotate(
        document=SearchVector("ocr__text", "vision__description", "tags__name", config="simple")
    ).filter(document=search)
    return Q(pk__in=documents.values("pk"))


def tag_counts(images: QuerySet[Image]) -> QuerySet[Tag]:
    """The tags on these images, each with how many of them carry it, most used first."""
    return (
        Tag.objects.filter(imagetag__image__in=images)
        .annotate(count=Count("imagetag__image", distinct=True))
        .order_by("-count", "name")
    )
