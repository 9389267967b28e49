"""The ocr step and GET /api/v1/images/{id}/ocr/: real Tesseract on drawn text and a real photo."""

import json

import pytest
from django.core.management import call_command

from ai import ocr
from ai.models import OcrResult
from images.models import ImageStep
from tests.ai.support import ENGLISH, FRENCH, gemini_reply, text_image_bytes
from tests.helpers import image_bytes, shared_data, upload


def uploaded(tenant, name: str, data: bytes) -> int:
    response = upload(tenant.api, (name, data))
    assert response.status_code == 201, response.content
    return response.json()["images"][0]["id"]


def test_it_reads_english_text_through_the_pipeline(owner, run_jobs):
    image_id = uploaded(owner, "letter.png", text_image_bytes(ENGLISH))
    run_jobs()
    body = owner.api.get(f"/api/v1/images/{image_id}/ocr/").json()
    assert "quick brown fox jumps over the lazy dog" in body["text"]
    assert "Invoice number 4821" in body["text"]
    assert (body["language"], body["engine"], body["has_text"]) == ("en", "tesseract", True)
    assert body["confidence"] > 0.85
    assert body["ocr_languages"] == "eng+fra"
    quick = next(word for word in body["boxes"] if word["text"] == "quick")
    left, top, width, height = quick["box"]
    # Boxes are in the original image's pixels, though Tesseract read an enlarged copy.
    assert 60 < left < 200 and 20 < top < 70 and 40 < width < 120 and 10 < height < 45
    step = ImageStep.objects.get(image_id=image_id, name="ocr")
    assert step.status == "done"
    assert set(step.result) == {"text", "language", "confidence", "has_text", "engine", "words"}
    assert step.result["words"] == len(body["text"].split())


def test_it_reads_french_text_and_tells_its_language(owner, run_jobs):
    image_id = uploaded(owner, "facture.png", text_image_bytes(FRENCH))
    run_jobs()
    result = OcrResult.objects.get(image_id=image_id)
    assert "renard brun saute" in result.text
    assert "paiement" in result.text
    assert result.language == "fr"


def test_it_turns_upside_down_text_upright_before_reading(owner, run_jobs):
    image_id = uploaded(owner, "upside-down.png", text_image_bytes(ENGLISH, rotate=180))
    run_jobs()
    result = OcrResult.objects.get(image_id=image_id)
    assert result.rotation == 180
    assert "quick brown fox" in result.text
    assert result.confidence > 0.85


def test_it_reads_the_text_on_a_real_photo():
    photo = shared_data("plates", "us", "21d8c31d-3deb-494b-9c63-c0223306fd82.jpg")
    reading = ocr.read(str(photo), languages="eng+fra")
    # The van carries a phone number painted on its side.
    assert "314-845-5900" in reading.text
    assert reading.has_text


def test_a_photo_without_text_has_no_text(owner, run_jobs):
    image_id = uploaded(owner, "red.jpg", image_bytes(size=(640, 480)))
    run_jobs()
    body = owner.api.get(f"/api/v1/images/{image_id}/ocr/").json()
    assert (body["text"], body["has_text"], body["words"], body["boxes"]) == ("", False, 0, [])
    # Without a remote provider there is no fallback to ask.
    assert body["fallback"] is None


def test_an_unsure_reading_is_given_to_the_vision_provider(owner, run_jobs, gemini, settings):
    settings.OCR_FALLBACK_CONFIDENCE = 0.99
    answer = {"text": "The quick brown fox", "language": "en", "confidence": 0.97}
    gemini.route("/v1/models/gemini-test:generateContent", gemini_reply(answer))
    gemini.route("/v1beta/models/gemini-test:generateContent", gemini_reply(answer))
    image_id = uploaded(owner, "letter.png", text_image_bytes(ENGLISH[:1], size=14))
    run_jobs()
    result = OcrResult.objects.get(image_id=image_id)
    assert (result.engine, result.text, result.confidence) == (
        "gemini",
        "The quick brown fox",
        0.97,
    )
    assert "fox" in result.tesseract_text
    assert result.fallback["model"] == "gemini-test-001"
    step = ImageStep.objects.get(image_id=image_id, name="ocr")
    assert (step.status, step.result["engine"]) == ("done", "gemini")


def test_a_failing_fallback_keeps_tesseracts_reading(owner, run_jobs, gemini, settings):
    settings.OCR_FALLBACK_CONFIDENCE = 0.99
    image_id = uploaded(owner, "letter.png", text_image_bytes(ENGLISH))
    gemini.queue(*[gemini_reply({}, status=503)] * 3)
    # The vision step also asks Gemini; it fails too, separately.
    run_jobs()
    result = OcrResult.objects.get(image_id=image_id)
    assert result.engine == "tesseract"
    assert "quick brown fox" in result.text
    assert "503" in result.fallback["error"]
    assert ImageStep.objects.get(image_id=image_id, name="ocr").status == "done"


def test_another_tenants_image_is_not_found(owner, other, run_jobs):
    image_id = uploaded(owner, "letter.png", text_image_bytes(ENGLISH[:1]))
    response = other.api.get(f"/api/v1/images/{image_id}/ocr/")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_an_image_not_read_yet_says_so(owner, db):
    image_id = uploaded(owner, "letter.png", text_image_bytes(ENGLISH[:1]))
    response = owner.api.get(f"/api/v1/images/{image_id}/ocr/")
    assert (response.status_code, response.json()["code"]) == (404, "ocr_not_ready")


@pytest.mark.parametrize("text", ["", "12 34", "Zzzz qqq"])
def test_a_text_without_common_words_has_no_language(text):
    assert ocr.guess_language(text) is None


def test_the_ocr_command_prints_json(tmp_path, capsys):
    path = tmp_path / "letter.png"
    path.write_bytes(text_image_bytes(FRENCH))
    call_command("ocr", str(path), "--boxes")
    out = json.loads(capsys.readouterr().out)
    assert out["language"] == "fr" and "renard" in out["text"]
    assert out["boxes"][0]["text"] == "Le"
