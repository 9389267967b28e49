"""POST /api/v1/insights/annotate: accepted insights without an image go to the tenant's store."""

import hashlib
import hmac

from annotations.models import AnnotationVote
from tests.ai.support import Reply
from tests.annotations.support import answers, make_public

SECRET = "s3cret"


def test_it_sends_a_signed_update_to_the_downstream_store(owner, make_insight, downstream):
    make_public(owner, downstream_url=f"{downstream.url}/updates", downstream_secret=SECRET)
    insight = make_insight(owner, type="brand", value="Ferrero", value_tag="ferrero")

    response = answers(owner.api, insight, 1)

    assert response.json() == {
        "status_code": 2,
        "status": "updated",
        "description": "the annotation was saved and sent to the product store",
    }
    (received,) = downstream.received
    assert received.method == "POST"
    body = received.json()
    assert body["insight_id"] == str(insight.id)
    assert (body["barcode"], body["type"], body["value_tag"]) == (
        insight.barcode,
        "brand",
        "ferrero",
    )
    assert (body["annotation"], body["username"], body["client"]) == (
        1,
        owner.client.slug,
        owner.client.slug,
    )
    timestamp = received.headers["x-imago-timestamp"]
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + received.body, hashlib.sha256)
    assert received.headers["x-imago-signature"] == f"sha256={expected.hexdigest()}"


def test_it_sends_the_users_data_with_annotation_2(owner, make_insight, downstream):
    make_public(owner, downstream_url=f"{downstream.url}/updates")
    insight = make_insight(owner, type="product_weight", value="500 g", value_tag=None)

    response = answers(owner.api, insight, 2, data='{"value": "450 g"}')

    assert response.json()["status"] == "user_input_updated"
    assert downstream.received[0].json()["data"] == {"value": "450 g"}


def test_a_store_that_is_down_fails_the_update_and_keeps_the_question(
    owner, make_insight, closed_port_url
):
    make_public(owner, downstream_url=closed_port_url)
    insight = make_insight(owner)

    response = answers(owner.api, insight, 1)

    assert response.status_code == 200
    body = response.json()
    assert (body["status_code"], body["status"]) == (10, "error_failed_update")
    assert "could not be reached" in body["description"]
    # The store's URL is the tenant's business, not the caller's (an anonymous voter may be it).
    assert closed_port_url.split("/")[2] not in body["description"]
    insight.refresh_from_db()
    assert (insight.annotation, insight.username, insight.completed_at) == (None, None, None)


def test_a_store_error_fails_the_update_and_a_retry_succeeds(owner, make_insight, downstream):
    make_public(owner, downstream_url=f"{downstream.url}/flaky")
    downstream.queue(Reply(503, "busy"), Reply(204, b""))
    insight = make_insight(owner)

    failed = answers(owner.api, insight, 1).json()
    retried = answers(owner.api, insight, 1).json()

    assert failed["status"] == "error_failed_update"
    assert "HTTP 503" in failed["description"]
    assert retried["status"] == "updated"
    insight.refresh_from_db()
    assert insight.annotation == 1


def test_a_store_that_does_not_know_the_product_answers_missing_product(
    owner, make_insight, downstream
):
    make_public(owner, downstream_url=f"{downstream.url}/gone")
    downstream.route("/gone", Reply(404, {"error": "no such product"}))
    insight = make_insight(owner)

    response = answers(owner.api, insight, 1)

    assert response.json() == {
        "status_code": 3,
        "status": "error_missing_product",
        "description": "the product could not be found",
    }
    insight.refresh_from_db()
    assert insight.annotation is None


def test_a_rejection_is_not_sent_downstream(owner, make_insight, downstream):
    make_public(owner, downstream_url=f"{downstream.url}/updates")
    insight = make_insight(owner)

    assert answers(owner.api, insight, 0).json()["status"] == "saved"
    assert downstream.received == []


def test_votes_that_reach_three_send_the_update(anonymous, owner, make_insight, downstream):
    make_public(owner, downstream_url=f"{downstream.url}/updates")
    insight = make_insight(owner)

    # Three devices at three addresses: votes from one address would count once.
    replies = [answers(anonymous, insight, 1, address=f"198.51.100.{n}") for n in range(3)]
    statuses = [reply.json()["status"] for reply in replies]

    assert statuses == ["vote_saved", "vote_saved", "updated"]
    (received,) = downstream.received
    assert received.json()["annotation"] == 1
    assert received.json()["username"] is None
    assert AnnotationVote.objects.filter(insight=insight).count() == 3
