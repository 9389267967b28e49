"""POST /api/v1/insights/annotate: anonymous answers are votes under the 3-vote rule."""

import threading

import pytest
from django.db import connection

from annotations import services
from annotations.models import AnnotationVote
from images.models import ImageTag
from tests.annotations.support import an_image, answers, make_public


@pytest.fixture
def public_insight(owner, make_insight):
    make_public(owner)
    return make_insight(owner, image=an_image(owner))


def vote(anonymous, insight, value, device):
    """An anonymous vote from a device with an address of its own (one address counts once)."""
    address = f"198.51.100.{ord(device[0])}"
    return answers(anonymous, insight, value, address=address, device_id=device).json()


def test_an_anonymous_answer_is_a_vote(anonymous, public_insight):
    response = answers(anonymous, public_insight, 1, device_id="phone-1")

    assert response.status_code == 200
    assert response.json() == {
        "status_code": 9,
        "status": "vote_saved",
        "description": "the annotation vote was saved",
    }
    public_insight.refresh_from_db()
    assert public_insight.annotation is None
    assert public_insight.n_votes == 1
    saved = AnnotationVote.objects.get()
    assert (saved.value, saved.device_id, saved.username) == (1, "phone-1", None)


def test_three_votes_of_a_value_apply_it(anonymous, public_insight):
    assert vote(anonymous, public_insight, 1, "a")["status"] == "vote_saved"
    assert vote(anonymous, public_insight, 0, "b")["status"] == "vote_saved"
    assert vote(anonymous, public_insight, 1, "c")["status"] == "vote_saved"

    third = vote(anonymous, public_insight, 1, "d")

    assert third["status"] == "updated"
    public_insight.refresh_from_db()
    assert public_insight.annotation == 1
    assert public_insight.completed_at is not None
    assert public_insight.n_votes == 4
    assert ImageTag.objects.filter(image=public_insight.image, source="insight").count() == 1


def test_three_no_votes_close_it_as_incorrect(anonymous, public_insight):
    for device in "abc":
        last = vote(anonymous, public_insight, 0, device)

    assert last["status"] == "saved"
    public_insight.refresh_from_db()
    assert public_insight.annotation == 0
    assert not ImageTag.objects.exists()


def test_two_against_two_close_it_as_ambiguous(anonymous, public_insight):
    vote(anonymous, public_insight, 1, "a")
    vote(anonymous, public_insight, 0, "b")
    vote(anonymous, public_insight, 1, "c")

    fourth = vote(anonymous, public_insight, 0, "d")

    assert fourth["status"] == "saved"
    public_insight.refresh_from_db()
    assert public_insight.annotation == -1
    assert not ImageTag.objects.exists()
    assert answers(anonymous, public_insight, 1, device_id="e").json()["status"] == (
        "error_already_annotated"
    )


def test_a_second_vote_from_the_same_device_is_refused_and_not_counted(anonymous, public_insight):
    vote(anonymous, public_insight, 1, "a")

    again = vote(anonymous, public_insight, 1, "a")

    assert again["status_code"] == 5
    assert again["status"] == "error_already_annotated"
    assert "device" in again["description"]
    public_insight.refresh_from_db()
    assert public_insight.n_votes == 1


def test_without_device_id_the_client_address_identifies_the_device(anonymous, public_insight):
    first = anonymous.post(
        "/api/v1/insights/annotate",
        {"insight_id": str(public_insight.id), "annotation": 1},
        REMOTE_ADDR="203.0.113.7",
    )
    same_address = anonymous.post(
        "/api/v1/insights/annotate",
        {"insight_id": str(public_insight.id), "annotation": 1},
        REMOTE_ADDR="203.0.113.7",
    )
    other_address = anonymous.post(
        "/api/v1/insights/annotate",
        {"insight_id": str(public_insight.id), "annotation": 1},
        REMOTE_ADDR="203.0.113.8",
    )

    assert first.json()["status"] == "vote_saved"
    assert same_address.json()["status"] == "error_already_annotated"
    assert other_address.json()["status"] == "vote_saved"
    devices = set(AnnotationVote.objects.values_list("device_id", flat=True))
    assert len(devices) == 2
    assert not any("203.0.113" in device for device in devices)


def test_a_skip_from_a_keyed_caller_is_a_vote_under_its_name(owner, make_insight):
    insight = make_insight(owner)

    response = answers(owner.api, insight, -1, device_id="tablet")

    assert response.json()["status"] == "vote_saved"
    insight.refresh_from_db()
    assert insight.annotation is None
    assert AnnotationVote.objects.get().username == owner.client.slug


def test_a_vote_that_was_refused_by_the_store_can_be_cast_again(
    anonymous, owner, make_insight, closed_port_url
):
    make_public(owner, downstream_url=closed_port_url)
    insight = make_insight(owner)
    vote(anonymous, insight, 1, "a")
    vote(anonymous, insight, 1, "b")

    third = vote(anonymous, insight, 1, "c")

    assert third["status"] == "error_failed_update"
    insight.refresh_from_db()
    assert (insight.annotation, insight.n_votes) == (None, 2)
    assert AnnotationVote.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_answers_apply_only_once(owner, make_insight):
    insight = make_insight(owner)
    results: list[str] = []
    start = threading.Barrier(4)

    def annotate(value: int) -> None:
        start.wait()
        try:
            result = services.insight_annotate(
                insight_id=insight.id,
                annotation=value,
                device_id=f"d{value}",
                username="someone",
                authenticated=True,
            )
            results.append(result.status)
        finally:
            connection.close()

    threads = [threading.Thread(target=annotate, args=(v % 2,)) for v in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results).count("error_already_annotated") == 3
    assert len(results) == 4
