"""The vision step and GET /api/v1/images/{id}/ai/: local tags, remote providers, failures."""

from ai.models import AiProfile, VisionResult
from images.models import Image, ImageStep
from tests.ai.support import ENGLISH, gemini_reply, openrouter_reply, text_image_bytes
from tests.factories import DetectionFactory
from tests.helpers import image_bytes, upload


def uploaded(tenant, name: str, data: bytes) -> Image:
    response = upload(tenant.api, (name, data))
    assert response.status_code == 201, response.content
    return Image.objects.get(pk=response.json()["images"][0]["id"])


def detect(image: Image, *found: tuple[str, float]) -> None:
    for class_name, confidence in found:
        DetectionFactory(
            image=image,
            model_name="test",
            class_id=0,
            class_name=class_name,
            confidence=confidence,
            x1=0,
            y1=0,
            x2=10,
            y2=10,
        )


def test_without_a_key_the_local_provider_tags_from_detections_and_ocr(owner, run_jobs):
    image = uploaded(owner, "letter.png", text_image_bytes(ENGLISH))
    detect(image, ("Car", 0.9), ("person", 0.8), ("dog", 0.1))
    run_jobs()
    body = owner.api.get(f"/api/v1/images/{image.pk}/ai/").json()
    assert body["provider"] == "local"
    assert body["description"] is None
    assert {"car", "person", "invoice", "quick"} <= set(body["tags"])
    assert "dog" not in body["tags"]  # too unsure a detection
    assert "the" not in body["tags"] and "4821" not in body["tags"]
    assert {"car", "invoice"} <= set(image.tags.values_list("name", flat=True))
    step = ImageStep.objects.get(image=image, name="vision")
    assert step.status == "done"
    assert set(step.result) == {"description", "tags", "provider", "model", "confidence"}
    assert step.result["provider"] == "local" and step.result["model"] is None


def test_a_missing_key_falls_back_to_local_and_never_fails(owner, run_jobs, settings):
    settings.AI_PROVIDER = "gemini"
    image = uploaded(owner, "red.jpg", image_bytes())
    run_jobs()
    assert Image.objects.get(pk=image.pk).status == "done"
    assert VisionResult.objects.get(image=image).provider == "local"


def test_gemini_describes_in_the_tenants_language(owner, run_jobs, gemini, settings):
    settings.OCR_FALLBACK_CONFIDENCE = 0  # only the vision step asks Gemini
    AiProfile.objects.create(client=owner.client, language="fr")
    answer = {
        "description": "Une voiture rouge.",
        "tags": ["Voiture", "rouge", "voiture"],
        "confidence": 0.9,
    }
    gemini.queue(gemini_reply(answer))
    image = uploaded(owner, "red.jpg", image_bytes(size=(640, 480)))
    run_jobs()
    body = owner.api.get(f"/api/v1/images/{image.pk}/ai/").json()
    assert body["description"] == "Une voiture rouge."
    assert body["tags"] == ["rouge", "voiture"]  # lower-case, deduplicated
    assert (body["provider"], body["model"], body["language"]) == (
        "gemini",
        "gemini-test-001",
        "fr",
    )
    assert body["usage"]["total_tokens"] == 150
    prompt = gemini.received[-1].json()["contents"][0]["parts"][1]["text"]
    assert "French" in prompt


def test_the_tenants_profile_chooses_its_provider(owner, run_jobs, openrouter, settings):
    settings.OCR_FALLBACK_CONFIDENCE = 0
    settings.AI_PROVIDER = "gemini"  # no Gemini key: the profile's openrouter answers
    AiProfile.objects.create(client=owner.client, provider="openrouter")
    openrouter.queue(
        openrouter_reply({"description": "A square.", "tags": ["red"], "confidence": 0.5})
    )
    image = uploaded(owner, "red.jpg", image_bytes())
    run_jobs()
    assert VisionResult.objects.get(image=image).provider == "openrouter"


def test_a_malformed_answer_is_a_recorded_failure(owner, run_jobs, gemini, settings):
    settings.OCR_FALLBACK_CONFIDENCE = 0
    gemini.queue(*[gemini_reply("not json at all")] * 4)
    image = uploaded(owner, "red.jpg", image_bytes())
    run_jobs()
    step = ImageStep.objects.get(image=image, name="vision")
    assert step.status == "failed"
    assert "Malformed answer" in step.error
    assert step.attempts == 4  # the pipeline retried it
    result = VisionResult.objects.get(image=image)
    assert "Malformed answer" in result.error and result.description is None
    assert ImageStep.objects.get(image=image, name="thumbnails").status == "done"
    body = owner.api.get(f"/api/v1/images/{image.pk}/ai/").json()
    assert "Malformed answer" in body["error"]


def test_another_tenants_image_is_not_found(owner, other, db):
    image = uploaded(owner, "red.jpg", image_bytes())
    response = other.api.get(f"/api/v1/images/{image.pk}/ai/")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    response = owner.api.get(f"/api/v1/images/{image.uuid}/ai/")
    assert (response.status_code, response.json()["code"]) == (404, "ai_not_ready")


def test_local_tags_are_in_the_tenants_language(owner, run_jobs):
    AiProfile.objects.create(client=owner.client, language="fr")
    image = uploaded(owner, "street.jpg", image_bytes())
    detect(image, ("car", 0.9), ("traffic light", 0.7), ("unicorn", 0.8))
    run_jobs()
    result = VisionResult.objects.get(image=image)
    assert (result.language, result.tags) == ("fr", ["feu de circulation", "unicorn", "voiture"])
