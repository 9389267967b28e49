"""Writes: annotating insights, counting votes, applying answers to their subject."""

import hashlib
import hmac
import json
import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from annotations.models import Annotation, AnnotationVote, Insight, InsightSettings
from images.library.services import image_add_tags, tag_name
from images.models import ImageTag
from kit import outbound
from kit.addresses import address_key

logger = logging.getLogger(__name__)

VOTES_TO_APPLY = 3
# Tags that the pipeline gave an image (ai.services, images.detection.services), as opposed
# to people.
MACHINE_TAG_SOURCES = ("ai", "detection")


@dataclass(frozen=True)
class AnnotationResult:
    """The contract's answer to an annotation: {status_code, status, description}."""

    status_code: int
    status: str
    description: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "status_code": self.status_code,
            "status": self.status,
            "description": self.description,
        }

    def with_description(self, description: str) -> "AnnotationResult":
        return AnnotationResult(self.status_code, self.status, description)


SAVED = AnnotationResult(1, "saved", "the annotation was saved")
UPDATED = AnnotationResult(2, "updated", "the annotation was saved and sent to the product store")
MISSING_PRODUCT = AnnotationResult(3, "error_missing_product", "the product could not be found")
ALREADY_ANNOTATED = AnnotationResult(
    5, "error_already_annotated", "the insight has already been annotated"
)
UNKNOWN_INSIGHT = AnnotationResult(6, "error_unknown_insight", "unknown insight ID")
MISSING_DATA = AnnotationResult(
    7, "error_missing_data", "annotation data is required as JSON in `data` field"
)
VOTE_SAVED = AnnotationResult(9, "vote_saved", "the annotation vote was saved")
FAILED_UPDATE = AnnotationResult(10, "error_failed_update", "the product store update failed")
INVALID_DATA = AnnotationResult(11, "error_invalid_data", "the request is invalid")
USER_INPUT_UPDATED = AnnotationResult(
    12,
    "user_input_updated",
    "the data provided by the user was saved and sent to the product store",
)
ALL_RESULTS = [
    SAVED,
    UPDATED,
    MISSING_PRODUCT,
    ALREADY_ANNOTATED,
    UNKNOWN_INSIGHT,
    MISSING_DATA,
    VOTE_SAVED,
    FAILED_UPDATE,
    INVALID_DATA,
    USER_INPUT_UPDATED,
]

# Answers to a malformed request, sent with HTTP 400.
MALFORMED_CODES = {MISSING_DATA.status_code, INVALID_DATA.status_code}


def address_hash(address: str) -> str:
    """Keyed with SECRET_KEY, so that the address cannot be read back from a stored vote.

    Of the address's key: an IPv6 address counts as its /64, which one subscriber holds whole
    (otherwise one home connection is as many voters as it likes).
    """
    key = address_key(address)
    digest = hmac.new(settings.SECRET_KEY.encode(), key.encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def device_id_for_address(address: str) -> str:
    """Stands for an anonymous device that sent no device id."""
    return f"addr-{address_hash(address)}"


class _Refused(Exception):
    """Rolls the annotation back: the subject could not be updated, so the answer can be retried."""

    def __init__(self, result: AnnotationResult) -> None:
        super().__init__(result.description)
        self.result = result


def insight_annotate(
    *,
    insight_id: uuid.UUID | str,
    annotation: int,
    update: bool = True,
    data: dict[str, Any] | None = None,
    device_id: str,
    address: str = "",
    username: str | None,
    authenticated: bool,
    insights: QuerySet[Insight] | None = None,
) -> AnnotationResult:
    """Annotate an insight as the contract says; `insights` limits which ones the caller may see.

    An authenticated answer other than -1 is applied at once; anything else is a vote, applied
    when one value has 3 voters and closed as -1 when the top two values have 2 each. A voter is
    the username of a keyed or staff caller, else the client `address`: the device ids one
    caller makes up are votes, but count once. The insight row stays locked until the answer is
    stored, so two concurrent answers cannot both apply.
    """
    visible = Insight.objects.all() if insights is None else insights
    try:
        with transaction.atomic():
            # of=self: the visibility filter may join other tables, whose rows need no lock.
            insight = visible.select_for_update(of=("self",)).filter(pk=insight_id).first()
            if insight is None:
                return UNKNOWN_INSIGHT
            if insight.annotation is not None:
                return ALREADY_ANNOTATED
            if authenticated and annotation != Annotation.SKIP:
                return _apply(insight, annotation, update=update, data=data, username=username)
            return _vote(
                insight, annotation, device_id=device_id, address=address, username=username
            )
    except _Refused as refused:
        return refused.result


def _vote(
    insight: Insight, value: int, *, device_id: str, address: str, username: str | None
) -> AnnotationResult:
    if value == Annotation.CORRECT_WITH_DATA:
        return INVALID_DATA.with_description(
            "annotation 2 (with user data) needs an API key; "
            "anonymous answers are votes of -1, 0 or 1"
        )
    try:
        # A savepoint: a second vote from this device (the unique constraint refuses it) must
        # leave the outer transaction usable.
        with transaction.atomic():
            AnnotationVote.objects.create(
                insight=insight,
                value=value,
                device_id=device_id,
                address_hash=address_hash(address) if address else "",
                username=username,
            )
    except IntegrityError:
        return ALREADY_ANNOTATED.with_description("this device has already voted on this insight")
    Insight.objects.filter(pk=insight.pk).update(n_votes=F("n_votes") + 1)
    insight.n_votes += 1

    tally = _tally(insight)
    (top_value, top_votes), *rest = tally
    if top_votes >= VOTES_TO_APPLY:
        return _apply(insight, top_value, update=True, data=None, username=None)
    if rest and top_votes == rest[0][1] == 2:
        return _apply(insight, Annotation.SKIP, update=False, data=None, username=None)
    return VOTE_SAVED


def _tally(insight: Insight) -> list[tuple[int, int]]:
    """(value, voters) from most to fewest: each voter's first vote counts, later ones do not."""
    first: dict[str, int] = {}
    votes = insight.votes.order_by("timestamp", "id")
    for username, hashed, device_id, value in votes.values_list(
        "username", "address_hash", "device_id", "value"
    ):
        # Votes stored before addresses were kept have no hash: their device stands alone.
        voter = f"user:{username}" if username else f"addr:{hashed or 'device:' + device_id}"
        first.setdefault(voter, value)
    return Counter(first.values()).most_common()


def _apply(
    insight: Insight,
    annotation: int,
    *,
    update: bool,
    data: dict[str, Any] | None,
    username: str | None,
) -> AnnotationResult:
    """Store the annotation; for 1 or 2 with `update`, change the subject too (or roll back)."""
    insight.annotation = annotation
    insight.username = username
    insight.completed_at = timezone.now()
    if annotation == Annotation.CORRECT_WITH_DATA and data is not None:
        insight.data = {**insight.data, "user_data": data}
    result = SAVED
    if update and annotation in (Annotation.CORRECT, Annotation.CORRECT_WITH_DATA):
        result = _apply_to_subject(insight, data)
    elif update and annotation == Annotation.INCORRECT and insight.image_id is not None:
        _untag_machine_guess(insight)
    insight.save(update_fields=["annotation", "username", "completed_at", "data", "n_votes"])
    return result


def _apply_to_subject(insight: Insight, data: dict[str, Any] | None) -> AnnotationResult:
    done = USER_INPUT_UPDATED if insight.annotation == Annotation.CORRECT_WITH_DATA else UPDATED
    if insight.image_id is not None:
        names = image_add_tags(
            image=insight.image, names=[_tag_of(insight, data)], source="insight"
        )
        # A machine's tag that a person confirmed is theirs now: a later untagging of machine
        # guesses must not take it away.
        ImageTag.objects.filter(image_id=insight.image_id, tag__name__in=names).update(
            source="insight"
        )
        return done
    store = InsightSettings.objects.filter(client_id=insight.client_id).first()
    if store is None or not store.downstream_url:
        # Nowhere to send it: the answer is kept (the tenant may read it back with its key),
        # and `saved` says that nothing left Imago.
        return SAVED
    _send_downstream(insight, data, store)
    return done


def _untag_machine_guess(insight: Insight) -> None:
    """A rejected guess about an image takes back the tag the vision or detection step gave it."""
    name = tag_name(_tag_of(insight, None))
    ImageTag.objects.filter(
        image_id=insight.image_id, tag__name=name, source__in=MACHINE_TAG_SOURCES
    ).delete()


def _tag_of(insight: Insight, data: dict[str, Any] | None) -> str:
    """The image tag an accepted insight becomes: the user's value, else the insight's."""
    given = (data or {}).get("value_tag") or (data or {}).get("value")
    return str(given or insight.value_tag or insight.value or insight.type)


def downstream_payload(insight: Insight, data: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "event": "insight.annotated",
        "client": insight.client.slug,
        "insight_id": str(insight.id),
        "barcode": insight.barcode,
        "type": insight.type,
        "value": insight.value,
        "value_tag": insight.value_tag,
        "annotation": insight.annotation,
        "data": data,
        "username": insight.username,
        "server_type": insight.server_type,
        "source_image": insight.source_image,
        "completed_at": insight.completed_at.isoformat() if insight.completed_at else None,
    }


def _send_downstream(insight: Insight, data: dict[str, Any] | None, store: InsightSettings) -> None:
    """POST the applied insight, signed like Imago's other webhooks; raise _Refused on failure.

    The row lock is held meanwhile, so the call is bounded by WEBHOOK_TIMEOUT.
    """
    body = json.dumps(downstream_payload(insight, data)).encode()
    try:
        response = outbound.webhook_post(
            store.downstream_url,
            secret=store.downstream_secret,
            content=body,
            headers={"Content-Type": "application/json"},
        )
    except outbound.OutboundError as exc:
        logger.warning(
            "Downstream %s refused for insight %s: %s", store.downstream_url, insight.id, exc
        )
        # Only the code for the caller: the detail names the store's URL and the internal
        # address it resolves to, and the caller may be any anonymous voter. The log has it.
        raise _Refused(
            FAILED_UPDATE.with_description(
                f"the product store update failed ({exc.code}); the annotation was not saved"
            )
        ) from exc
    except httpx.HTTPError as exc:
        logger.warning(
            "Downstream %s unreachable for insight %s: %s", store.downstream_url, insight.id, exc
        )
        raise _Refused(
            FAILED_UPDATE.with_description(
                # Not the URL (the tenant's, logged above) nor the exception's text.
                "the product store update failed: the store could not be reached; "
                "the annotation was not saved, retry later"
            )
        ) from exc
    if response.status_code == 404:
        raise _Refused(MISSING_PRODUCT)
    if not response.is_success:
        logger.warning(
            "Downstream %s answered %s for insight %s",
            store.downstream_url,
            response.status_code,
            insight.id,
        )
        raise _Refused(
            FAILED_UPDATE.with_description(
                f"the product store update failed: it answered HTTP {response.status_code}; "
                "the annotation was not saved, retry later"
            )
        )
