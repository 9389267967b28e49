"""The insights step: vision tags, detected objects and OCR keywords become questions for people."""

import pytest

from ai.models import OcrResult, VisionResult
from annotations.models import Insight, InsightKeyword
from annotations.steps import image_insights_sync, keyword_matches
from images.models import Detection, Exif, Image
from tests.ai.support import text_image_bytes
from tests.annotations.support import answers
from tests.factories import AnnotationVoteFactory, DetectionFactory, InsightFactory
from tests.helpers import upload


@pytest.fixture(autouse=True)
def _local_ai(settings) -> None:
    """No remote provider, whatever the environment holds."""
    settings.AI_PROVIDER = ""
    settings.GEMINI_API_KEY = ""
    settings.OPENROUTER_API_KEY = ""


def stored_image(tenant, *, width: int = 1000, height: int = 500) -> Image:
    """An image row without a file: the step reads other steps' rows, never the pixels."""
    image = Image(
        client=tenant.client,
        content_type="image/jpeg",
        format="JPEG",
        width=width,
        height=height,
        size_bytes=1000,
        sha256=f"{tenant.client.pk}-{Image.objects.count()}",
    )
    image.file = f"{image.storage_dir}/original.jpg"
    image.save()
    return image


def detected(image: Image, class_name: str, confidence: float, box=(100, 50, 300, 250)) -> None:
    x1, y1, x2, y2 = box
    DetectionFactory(
        image=image,
        class_id=2,
        class_name=class_name,
        confidence=confidence,
        x1=x1,
        y1=y1,
        x2=x2,
        y2=y2,
        source="pipeline",
    )


def described(image: Image, *tags: str, provider: str = "gemini") -> None:
    VisionResult.objects.update_or_create(
        image=image,
        defaults={
            "provider": provider,
            "model": "gemini-test",
            "language": "en",
            "tags": list(tags),
            "confidence": 0.8,
        },
    )


def read(image: Image, text: str) -> None:
    OcrResult.objects.update_or_create(
        image=image,
        defaults={
            "text": text,
            "language": "fr",
            "confidence": 0.91,
            "has_text": True,
            "engine": "tesseract",
            "ocr_languages": "eng+fra",
            "tesseract_confidence": 0.91,
        },
    )


def keyword(tenant, kind: str, word: str, value_tag: str, **fields) -> InsightKeyword:
    return InsightKeyword.objects.create(
        client=tenant.client, kind=kind, keyword=word, value_tag=value_tag, **fields
    )


def insights_of(image: Image) -> dict[tuple[str, str], Insight]:
    return {(i.type, i.value_tag or i.value): i for i in Insight.objects.filter(image=image)}


def test_it_turns_tags_detections_and_ocr_keywords_into_insights(owner):
    image = stored_image(owner)
    detected(image, "car", 0.62, box=(100, 50, 300, 250))
    detected(image, "car", 0.91, box=(500, 100, 900, 400))
    detected(image, "person", 0.4)
    described(image, "street", "red")
    read(image, "Lait BIO demi-écrémé\nCrémerie Évian")
    keyword(owner, "label", "bio", "en:organic")
    keyword(owner, "brand", "evian", "evian")

    counts = image_insights_sync(image=image)

    assert counts["created"] == 6
    assert counts["open"] == {"brand": 1, "image_tag": 2, "label": 1, "object": 2}
    found = insights_of(image)
    assert set(found) == {
        ("object", "car"),
        ("object", "person"),
        ("image_tag", "street"),
        ("image_tag", "red"),
        ("label", "en:organic"),
        ("brand", "evian"),
    }
    car = found["object", "car"]
    assert car.confidence == 0.91  # the most confident box of the class
    assert car.bounding_box == [0.2, 0.5, 0.8, 0.9]  # y_min, x_min, y_max, x_max
    assert car.predictor == "imago-detection-coco"
    assert car.data["box"] == {"x1": 500, "y1": 100, "x2": 900, "y2": 400}
    street = found["image_tag", "street"]
    assert (street.predictor, street.predictor_version, street.confidence, street.lc) == (
        "imago-vision-gemini",
        "gemini-test",
        0.8,
        ["en"],
    )
    organic = found["label", "en:organic"]
    assert (organic.value, organic.predictor, organic.lc) == ("bio", "imago-ocr-keywords", ["fr"])
    for insight in found.values():
        assert insight.client == owner.client
        assert insight.barcode == str(image.uuid)
        assert insight.source_image == image.file
        assert insight.with_image is True
        assert insight.annotation is None


def test_boxes_are_scaled_to_the_upright_image(owner):
    image = stored_image(owner, width=1000, height=500)
    Exif.objects.create(image=image, orientation=6)  # turned a quarter: upright it is 500 x 1000
    detected(image, "dog", 0.9, box=(100, 200, 250, 600))
    image_insights_sync(image=Image.objects.get(pk=image.pk))
    assert insights_of(image)["object", "dog"].bounding_box == [0.2, 0.2, 0.6, 0.5]


def test_keywords_match_whole_words_ignoring_case_and_accents(owner):
    def matches(text: str, *words: str) -> list[str]:
        candidates = [InsightKeyword(kind="label", keyword=w, value_tag="x") for w in words]
        return [k.keyword for k in keyword_matches(text, candidates)]

    assert matches("Produit ÉVIAN, eau minérale", "evian", "Eau Minerale") == [
        "evian",
        "Eau Minerale",
    ]
    assert matches("Biologique et biology", "bio") == []  # not inside a longer word
    assert matches("bio-logique", "bio") == ["bio"]  # a hyphen ends a word
    assert matches("Agriculture\nbiologique", "agriculture biologique") == [
        "agriculture biologique"
    ]
    assert matches("ﬁne café", "fine", "CAFE") == ["fine", "CAFE"]  # a ligature, an accent
    assert matches("100% (bio)", "(bio)", "100%") == ["(bio)", "100%"]  # no regex injection
    assert matches("anything", "") == []


def test_only_the_tenants_active_keywords_count_and_synonyms_make_one_question(owner, other):
    image = stored_image(owner)
    read(image, "Organic and bio, made by Acme")
    keyword(owner, "label", "organic", "en:organic")
    keyword(owner, "label", "bio", "en:organic")
    keyword(owner, "brand", "made", "made", is_active=False)
    keyword(other, "brand", "acme", "acme")  # another tenant's list

    image_insights_sync(image=image)

    [insight] = Insight.objects.filter(image=image)
    assert (insight.type, insight.value_tag) == ("label", "en:organic")
    assert sorted(insight.data["keywords"]) == ["bio", "organic"]


def test_the_local_providers_tags_do_not_repeat_detected_objects(owner):
    image = stored_image(owner)
    detected(image, "car", 0.9)
    described(image, "car", "invoice", provider="local")
    image_insights_sync(image=image)
    assert set(insights_of(image)) == {("object", "car"), ("image_tag", "invoice")}


def test_a_rerun_changes_nothing_then_refreshes_open_insights(owner):
    image = stored_image(owner)
    detected(image, "car", 0.7)
    described(image, "street")
    first = image_insights_sync(image=image)
    ids = set(Insight.objects.values_list("pk", flat=True))

    again = image_insights_sync(image=image)
    assert (first["created"], again["created"], again["unchanged"]) == (2, 0, 2)

    Detection.objects.filter(image=image).update(confidence=0.95)
    described(image, "street", "night")
    third = image_insights_sync(image=image)
    assert (third["created"], third["updated"], third["unchanged"]) == (1, 1, 1)
    assert ids < set(Insight.objects.values_list("pk", flat=True))
    assert insights_of(image)["object", "car"].confidence == 0.95


def test_an_answered_insight_is_never_made_again(owner):
    image = stored_image(owner)
    detected(image, "car", 0.7)
    detected(image, "dog", 0.6)
    described(image, "street")
    image_insights_sync(image=image)
    found = insights_of(image)
    Insight.objects.filter(pk=found["object", "car"].pk).update(annotation=0, username="op")
    Insight.objects.filter(pk=found["image_tag", "street"].pk).update(annotation=1, username="op")

    Detection.objects.filter(image=image).update(confidence=0.99)
    counts = image_insights_sync(image=image)

    assert (counts["created"], counts["answered"], counts["updated"]) == (0, 2, 1)
    assert Insight.objects.filter(image=image).count() == 3
    rejected = Insight.objects.get(pk=found["object", "car"].pk)
    assert (rejected.annotation, rejected.confidence) == (0, 0.7)  # left exactly as answered
    assert Insight.objects.filter(image=image, annotation__isnull=True).count() == 1


def test_a_guess_no_longer_made_goes_unless_people_voted_on_it(owner):
    image = stored_image(owner)
    read(image, "organic bio")
    keyword(owner, "label", "organic", "en:organic")
    keyword(owner, "brand", "bio", "biobrand")
    image_insights_sync(image=image)
    voted = insights_of(image)["brand", "biobrand"]
    AnnotationVoteFactory(insight=voted, device_id="d1")
    Insight.objects.filter(pk=voted.pk).update(n_votes=1)

    InsightKeyword.objects.filter(client=owner.client).update(is_active=False)
    counts = image_insights_sync(image=image)

    assert counts["removed"] == 1
    assert list(Insight.objects.filter(image=image)) == [voted]


def test_insights_of_imported_subjects_are_left_alone(owner):
    image = stored_image(owner)
    imported = InsightFactory(
        client=owner.client,
        image=image,
        barcode=str(image.uuid),
        value_tag="en:vegan",
        predictor="universal-logo-detector",
    )
    image_insights_sync(image=image)
    assert list(Insight.objects.filter(image=image)) == [imported]


def test_the_step_runs_in_the_real_pipeline_and_answers_stick(owner, run_jobs):
    keyword(owner, "label", "invoice", "en:invoice")
    response = upload(owner.api, ("letter.png", text_image_bytes(["Invoice number 4821"])))
    image = Image.objects.get(pk=response.json()["images"][0]["id"])
    run_jobs()

    step = image.steps.get(name="insights")
    assert step.status == "done", step.error
    label = Insight.objects.get(image=image, type="label")
    assert (label.value_tag, label.predictor) == ("en:invoice", "imago-ocr-keywords")
    # The local provider's tags (OCR words) are asked about too.
    guess = Insight.objects.get(image=image, type="image_tag", value="invoice")

    # Confirmed through the API with the tenant's key: the insight becomes an image tag.
    assert answers(owner.api, label, 1).json()["status"] == "updated"
    assert image.tags.filter(name="en:invoice", imagetag__source="insight").exists()
    assert image.tags.filter(name="invoice", imagetag__source="ai").exists()
    assert answers(owner.api, guess, 0).json()["status"] == "saved"
    # Rejected: the tag the vision step had given the image is taken back.
    assert not image.tags.filter(name="invoice").exists()

    owner.api.post(f"/api/v1/images/{image.pk}/reprocess/", {"steps": ["insights"]}, format="json")
    run_jobs()
    again = image.steps.get(name="insights")
    assert again.status == "done" and again.result["created"] == 0
    assert again.result["answered"] == 2
    # The rejected guess did not come back, and the confirmed one is still what it became.
    assert Insight.objects.filter(image=image, type="image_tag", value="invoice").count() == 1
    assert Insight.objects.get(pk=guess.pk).annotation == 0
    assert Insight.objects.get(pk=label.pk).annotation == 1
