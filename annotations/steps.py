"""The `insights` pipeline step: what the machines guessed about an image, asked of people.

Vision tags, detected objects and OCR keyword matches become open insights on the image, so that
people confirm or reject them (the question page, the admin, any Robotoff client). A re-run
refreshes the open ones; an answered one is never touched again, so a rejected guess never comes
back and a confirmed one stays what it became.
"""

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count

from ai.models import OcrResult, VisionResult
from ai.providers.vocabulary import class_name_in
from annotations.models import Insight, InsightKeyword, InsightType
from images.library.pipeline import step
from images.models import Detection, Image

PREDICTOR_PREFIX = "imago-"
OCR_PREDICTOR = "imago-ocr-keywords"
PIPELINE_TYPES = (InsightType.IMAGE_TAG, InsightType.OBJECT, InsightType.LABEL, InsightType.BRAND)
# The fields a re-run may refresh on an open insight.
REFRESHED = ("value", "value_tag", "predictor", "predictor_version", "confidence", "bounding_box",
             "data", "lc", "barcode", "source_image", "with_image")  # fmt: skip


@dataclass
class Guess:
    type: str
    value: str
    predictor: str
    value_tag: str | None = None
    predictor_version: str | None = None
    confidence: float | None = None
    bounding_box: list[float] | None = None
    data: dict = field(default_factory=dict)
    lc: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return insight_key(self.type, self.value_tag or self.value)


def insight_key(type_: str, value: str | None) -> tuple[str, str]:
    """What makes two guesses the same question about one image (the predictor does not)."""
    return type_, fold(value or "")


@step("insights", after=("ocr", "vision", "detection"))
def insights_step(image: Image) -> dict:
    return image_insights_sync(image=image)


def image_insights_sync(*, image: Image) -> dict:
    """Make the image's insights match what the pipeline found; answered insights stay as they are.

    Returns counts: created, updated, unchanged, removed (open guesses no longer made) and
    answered (guesses already answered by people, left alone), plus the open ones per type.
    """
    guesses = {g.key: g for g in image_guesses(image=image)}
    counts = dict.fromkeys(("created", "updated", "unchanged", "removed", "answered"), 0)
    with transaction.atomic():
        # Serialises two runs on one image, which would otherwise both create the same insight.
        Image.objects.select_for_update().filter(pk=image.pk).first()
        existing = Insight.objects.filter(
            image=image, type__in=PIPELINE_TYPES, predictor__startswith=PREDICTOR_PREFIX
        )
        stale = []
        # Locked like the annotate service locks them: an answer given meanwhile is not
        # overwritten by a refresh read before it.
        for insight in existing.select_for_update():
            guess = guesses.pop(insight_key(insight.type, insight.value_tag or insight.value), None)
            if not insight.is_open:
                counts["answered"] += guess is not None
            elif guess is None:
                stale.append(insight.pk)
            else:
                counts["updated" if _refresh(insight, guess, image) else "unchanged"] += 1
        # An open guess the machines no longer make goes, unless people already voted on it.
        _, deleted = Insight.objects.filter(pk__in=stale, n_votes=0).delete()
        counts["removed"] = deleted.get(Insight._meta.label, 0)
        Insight.objects.bulk_create(_new_insight(image, guess) for guess in guesses.values())
        counts["created"] = len(guesses)
    open_by_type = (
        existing.filter(annotation__isnull=True)
        .values_list("type")
        .annotate(n=Count("pk"))
        .order_by("type")
    )
    return {**counts, "open": dict(open_by_type)}


def image_guesses(*, image: Image) -> list[Guess]:
    objects = _object_guesses(image)
    vision = VisionResult.objects.filter(image=image).first()
    language = vision.language if vision else ""
    # The local provider's tags are the detected classes in the tenant's language: one question
    # about "car" is enough.
    asked = {fold(class_name_in(language, g.value)) for g in objects} | {
        fold(g.value) for g in objects
    }
    tags = [g for g in _vision_guesses(vision) if fold(g.value) not in asked]
    return [*objects, *tags, *_keyword_guesses(image)]


def _vision_guesses(vision: VisionResult | None) -> list[Guess]:
    if vision is None:
        return []
    return [
        Guess(
            type=InsightType.IMAGE_TAG,
            value=tag,
            predictor=f"{PREDICTOR_PREFIX}vision-{vision.provider}",
            predictor_version=vision.model or None,
            confidence=vision.confidence,
            lc=[vision.language] if vision.language else [],
        )
        for tag in dict.fromkeys(vision.tags)
        if tag
    ]


def _object_guesses(image: Image) -> list[Guess]:
    """One guess per detected class, from its most confident box."""
    best: dict[str, Detection] = {}
    for detection in image.detections.filter(source="pipeline").order_by("-confidence"):
        best.setdefault(detection.class_name, detection)
    width, height = _oriented_size(image)
    return [
        Guess(
            type=InsightType.OBJECT,
            value=name,
            predictor=f"{PREDICTOR_PREFIX}detection-{d.model_name}",
            confidence=round(d.confidence, 4),
            # Robotoff's order and scale: y_min, x_min, y_max, x_max, each from 0 to 1.
            bounding_box=[
                round(d.y1 / height, 5),
                round(d.x1 / width, 5),
                round(d.y2 / height, 5),
                round(d.x2 / width, 5),
            ],
            data={
                "model": d.model_name,
                "class_id": d.class_id,
                "box": {"x1": d.x1, "y1": d.y1, "x2": d.x2, "y2": d.y2},
            },
        )
        for name, d in best.items()
    ]


def _oriented_size(image: Image) -> tuple[int, int]:
    # Detection boxes are in the upright image: a 90° EXIF rotation swaps width and height.
    orientation = image.exif.orientation if hasattr(image, "exif") else None
    if orientation in (5, 6, 7, 8):
        return image.height, image.width
    return image.width, image.height


def _keyword_guesses(image: Image) -> list[Guess]:
    ocr = OcrResult.objects.filter(image=image, has_text=True).first()
    if ocr is None:
        return []
    keywords = InsightKeyword.objects.filter(client_id=image.client_id, is_active=True)
    guesses: dict[tuple[str, str], Guess] = {}
    for keyword in keyword_matches(ocr.text, keywords):
        guess = Guess(
            type=keyword.kind,
            value=keyword.keyword,
            value_tag=keyword.value_tag,
            predictor=OCR_PREDICTOR,
            confidence=round(ocr.confidence, 4),
            data={"keywords": [keyword.keyword]},
            lc=[ocr.language] if ocr.language else [],
        )
        # Several keywords may name one tag ("bio", "organic"): one question, every keyword kept.
        if guess.key in guesses:
            guesses[guess.key].data["keywords"].append(keyword.keyword)
        else:
            guesses[guess.key] = guess
    return list(guesses.values())


def fold(text: str) -> str:
    """Lower case without accents (and ligatures spelled out): 'Évian' and 'EVIAN' are one."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


def keyword_matches(text: str, keywords: Iterable[InsightKeyword]) -> list[InsightKeyword]:
    """The keywords found in the text as whole words, ignoring case and accents.

    The words of a phrase may be split by any whitespace, a line break included.
    """
    folded = fold(text)
    found = []
    for keyword in keywords:
        words = fold(keyword.keyword).split()
        # A substring test first: most keywords are absent, and it is far cheaper than a regex.
        if not words or words[0] not in folded:
            continue
        pattern = r"(?<!\w)" + r"\s+".join(map(re.escape, words)) + r"(?!\w)"
        if re.search(pattern, folded):
            found.append(keyword)
    return found


def _new_insight(image: Image, guess: Guess) -> Insight:
    insight = Insight(client_id=image.client_id, image=image, type=guess.type)
    _apply(insight, guess, image)
    return insight


def _refresh(insight: Insight, guess: Guess, image: Image) -> bool:
    before = [getattr(insight, name) for name in REFRESHED]
    _apply(insight, guess, image)
    if before == [getattr(insight, name) for name in REFRESHED]:
        return False
    insight.save(update_fields=REFRESHED)
    return True


def _apply(insight: Insight, guess: Guess, image: Image) -> None:
    insight.value = guess.value
    insight.value_tag = guess.value_tag
    insight.predictor = guess.predictor
    insight.predictor_version = guess.predictor_version
    insight.confidence = guess.confidence
    insight.bounding_box = guess.bounding_box
    insight.data = guess.data
    insight.lc = guess.lc
    insight.barcode = str(image.uuid)
    insight.source_image = image.file
    insight.with_image = True
