"""The AI pipeline steps: OCR, then vision (which reads the OCR text and the detections)."""

from ai import services
from images.library.pipeline import step
from images.models import Image


@step("ocr")
def ocr_step(image: Image) -> dict:
    result = services.image_ocr(image=image)
    return {
        "text": result.text,
        "language": result.language or None,
        "confidence": result.confidence,
        "has_text": result.has_text,
        "engine": result.engine,
        "words": result.words,
    }


@step("vision", after=("ocr", "detection"))
def vision_step(image: Image) -> dict:
    result = services.image_describe(image=image)
    return {
        "description": result.description,
        "tags": result.tags,
        "provider": result.provider,
        "model": result.model or None,
        "confidence": result.confidence,
    }
