"""Writes: OCR and vision results of images, page summaries and task drafts."""

import io
import logging
from typing import IO

import PIL.Image
from django.conf import settings

from ai import ocr
from ai.fetch import page_fetch
from ai.models import OcrResult, VisionResult
from ai.providers import Completion, ProviderError, TaskDraft, provider_named
from ai.providers.local import ocr_keywords
from ai.providers.vocabulary import class_name_in
from ai.selectors import ai_settings_for
from images.library import budget, storage
from images.library.services import image_add_tags
from images.models import Client, Image
from kit.errors import DomainError

logger = logging.getLogger(__name__)

# Long side of the copy sent to a vision provider: enough to read text, far fewer tokens.
AI_IMAGE_LONG_SIDE = 2048
# Detections below this confidence are not worth a tag.
MIN_DETECTION_CONFIDENCE = 0.4
# Pages are cut to this many characters before summarising (model context and cost).
MAX_SUMMARY_INPUT_CHARS = 30_000


class ProviderFailed(DomainError):
    """A provider's failure, for a caller waiting on its answer. The pipeline's steps meet the
    ProviderError itself, which their retries are for."""

    def __init__(self, error: ProviderError) -> None:
        super().__init__("provider_error", f"The AI provider failed: {error}", 502)


def image_ocr(*, image: Image) -> OcrResult:
    """Read the image's text with Tesseract; ask the AI provider when Tesseract is unsure."""
    prefs = ai_settings_for(client=image.client)
    with storage.open_original(image) as fp:
        reading = ocr.read(fp, languages=prefs.ocr_languages)
    kept_text, kept_language = reading.text, reading.language
    kept_confidence, engine = reading.confidence, "tesseract"
    fallback = None
    provider = provider_named(prefs.provider)
    if reading.confidence < settings.OCR_FALLBACK_CONFIDENCE and provider.reads_images:
        try:
            completion = provider.read_text(**_image_for_ai(image))
        except ProviderError as exc:
            # Tesseract's reading still stands: the fallback's failure is recorded, not raised.
            logger.warning("OCR fallback of image %s failed: %s", image.pk, exc)
            fallback = {"provider": provider.name, "error": str(exc)}
        else:
            answer = completion.answer
            fallback = {"provider": provider.name, **_completion_facts(completion)}
            if answer.text.strip():
                kept_text, kept_language = answer.text.strip(), answer.language or kept_language
                kept_confidence, engine = answer.confidence, provider.name
    result, _ = OcrResult.objects.update_or_create(
        image=image,
        defaults={
            "text": kept_text,
            "language": kept_language or "",
            "confidence": round(kept_confidence, 4),
            "has_text": bool(kept_text.strip()) and (engine != "tesseract" or reading.has_text),
            "engine": engine,
            "words": len(kept_text.split()),
            "boxes": [word.as_dict() for word in reading.words],
            "rotation": reading.rotation,
            "ocr_languages": prefs.ocr_languages,
            "tesseract_text": reading.text,
            "tesseract_confidence": round(reading.confidence, 4),
            "fallback": fallback,
        },
    )
    return result


def image_describe(*, image: Image) -> VisionResult:
    """Describe and tag the image with the tenant's provider; tags are added to the image.

    A provider failure is recorded on the result and raised again, so that the step is retried.
    """
    prefs = ai_settings_for(client=image.client)
    provider = provider_named(prefs.provider)
    base = {"provider": provider.name, "model": provider.model or "", "language": prefs.language}
    try:
        picture = _image_for_ai(image) if provider.reads_images else {"data": b"", "mime_type": ""}
        completion = provider.describe_image(
            **picture, language=prefs.language, hints=_hints(image, prefs.language)
        )
    except ProviderError as exc:
        VisionResult.objects.update_or_create(image=image, defaults={**base, "error": str(exc)})
        raise
    answer = completion.answer
    tags = image_add_tags(image=image, names=answer.tags, source="ai")
    result, _ = VisionResult.objects.update_or_create(
        image=image,
        defaults={
            **base,
            "model": completion.model or "",
            "description": (answer.description or "").strip() or None,
            "tags": tags,
            "confidence": answer.confidence,
            "usage": completion.usage,
            "error": "",
        },
    )
    return result


def _hints(image: Image, language: str) -> list[str]:
    """What other steps found: detected classes (most confident first, in the tenant's
    language), then OCR keywords (in the language of the text)."""
    classes = [
        class_name_in(language, name)
        for name in image.detections.filter(confidence__gte=MIN_DETECTION_CONFIDENCE).values_list(
            "class_name", flat=True
        )
    ]
    ocr_result = OcrResult.objects.filter(image=image).first()
    keywords = ocr_keywords(ocr_result.text) if ocr_result and ocr_result.has_text else []
    return list(dict.fromkeys([*classes, *keywords]))


def _image_for_ai(image: Image) -> dict:
    with storage.open_original(image) as fp:
        return picture_for_ai(fp)


def picture_for_ai(fp: IO[bytes]) -> dict:
    """An upright JPEG copy, reduced: providers bill by pixels and some refuse large files."""
    picture = budget.decode(PIL.Image.open(fp), mode="RGB", long_side=AI_IMAGE_LONG_SIDE)
    picture.thumbnail((AI_IMAGE_LONG_SIDE, AI_IMAGE_LONG_SIDE))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=85)
    return {"data": buffer.getvalue(), "mime_type": "image/jpeg"}


def _completion_facts(completion: Completion) -> dict:
    return {
        **completion.answer.model_dump(),
        "model": completion.model,
        "usage": completion.usage,
    }


def page_summarize(*, client: Client | None, url: str, language: str = "") -> dict:
    """Fetch a page (SSRF-guarded), extract its main text, summarise it. Raises FetchError or
    ProviderFailed."""
    prefs = ai_settings_for(client=client)
    language = language or prefs.language
    page = page_fetch(url)
    provider = provider_named(prefs.provider)
    try:
        completion = provider.summarize(
            text=page.text[:MAX_SUMMARY_INPUT_CHARS], title=page.title, language=language
        )
    except ProviderError as exc:
        raise ProviderFailed(exc) from exc
    return {
        "url": page.url,
        "title": page.title,
        "language": language,
        "summary": completion.answer.summary,
        "characters": len(page.text),
        "provider": provider.name,
        "model": completion.model,
        "usage": completion.usage,
    }


def task_draft(*, client: Client | None, description: str, context: str = "") -> dict:
    """A structured task drafted from a description. Raises ProviderFailed."""
    prefs = ai_settings_for(client=client)
    provider = provider_named(prefs.provider)
    try:
        completion: Completion[TaskDraft] = provider.draft_task(
            description=description, context=context, language=prefs.language
        )
    except ProviderError as exc:
        raise ProviderFailed(exc) from exc
    return {
        "task": completion.answer.model_dump(),
        "provider": provider.name,
        "model": completion.model,
        "usage": completion.usage,
    }
