"""POST /api/v1/insights/annotate: answers of keyed callers and staff, and malformed requests."""

import uuid

import pytest

from annotations.models import AnnotationVote, Insight
from images.models import ImageTag
from tests.annotations.support import an_image, answers, make_public
from tests.helpers import make_tenant


def test_it_saves_a_keyed_answer_at_once_as_the_client(owner, make_insight):
    insight = make_insight(owner)

    response = answers(owner.api, insight, 0)

    assert response.status_code == 200
    assert response.json() == {
        "status_code": 1,
        "status": "saved",
        "description": "the annotation was saved",
    }
    insight.refresh_from_db()
    assert insight.annotation == 0
    assert insight.username == owner.client.slug
    assert insight.completed_at is not None


def test_it_saves_without_updating_when_update_is_0(owner, make_insight):
    insight = make_insight(owner, image=an_image(owner))

    response = answers(owner.api, insight, 1, update=0)

    assert response.json()["status"] == "saved"
    assert not ImageTag.objects.exists()
    insight.refresh_from_db()
    assert insight.annotation == 1


def test_it_tags_the_linked_image_when_an_insight_is_confirmed(owner, make_insight):
    image = an_image(owner)
    insight = make_insight(owner, image=image, type="brand", value="Ferrero", value_tag="ferrero")

    response = answers(owner.api, insight, 1)

    assert response.json()["status_code"] == 2
    assert response.json()["status"] == "updated"
    tag = ImageTag.objects.get(image=image)
    assert (tag.tag.name, tag.source) == ("ferrero", "insight")


def test_it_tags_the_image_with_the_users_value_for_annotation_2(owner, make_insight):
    image = an_image(owner)
    insight = make_insight(owner, image=image, type="label", value_tag="en:organic")

    response = answers(owner.api, insight, 2, data='{"value_tag": "en:eu-organic"}')

    assert response.json()["status"] == "user_input_updated"
    assert response.json()["status_code"] == 12
    assert [t.tag.name for t in ImageTag.objects.filter(image=image)] == ["en:eu-organic"]
    insight.refresh_from_db()
    assert insight.data["user_data"] == {"value_tag": "en:eu-organic"}


def test_it_keeps_a_rejected_pipeline_insight_so_it_never_comes_back(owner, make_insight):
    image = an_image(owner)
    insight = make_insight(owner, image=image, type="object", value="dog", predictor="coco")

    assert answers(owner.api, insight, 0).json()["status"] == "saved"

    insight.refresh_from_db()
    assert insight.annotation == 0
    assert not ImageTag.objects.exists()
    assert owner.api.get("/api/v1/questions").json()["status"] == "no_questions"


def test_it_saves_an_update_when_the_tenant_has_no_downstream_store(owner, make_insight):
    insight = make_insight(owner)

    response = answers(owner.api, insight, 1)

    # Nothing to send it to: kept, and `saved` says nothing left Imago.
    assert response.json()["status"] == "saved"
    insight.refresh_from_db()
    assert insight.annotation == 1


def test_it_applies_a_staff_answer_under_the_staff_username(operator, owner, make_insight):
    insight = make_insight(owner)

    response = answers(operator, insight, 0)

    assert response.json()["status"] == "saved"
    insight.refresh_from_db()
    assert insight.username == "op"


def test_it_answers_already_annotated_the_second_time(owner, make_insight):
    insight = make_insight(owner)
    answers(owner.api, insight, 1)

    response = answers(owner.api, insight, 0)

    assert response.status_code == 200
    assert response.json() == {
        "status_code": 5,
        "status": "error_already_annotated",
        "description": "the insight has already been annotated",
    }
    insight.refresh_from_db()
    assert insight.annotation == 1


def test_it_answers_unknown_insight_for_a_well_formed_unknown_id(owner):
    response = answers(owner.api, str(uuid.uuid4()), 1)

    assert response.status_code == 200
    assert response.json() == {
        "status_code": 6,
        "status": "error_unknown_insight",
        "description": "unknown insight ID",
    }


@pytest.mark.parametrize("insight_id", ["not-a-uuid", "1", "x" * 5000, "a\x00b", "' OR 1=1 --"])
def test_an_id_that_is_no_uuid_is_an_unknown_insight_as_robotoff_answers(
    owner, make_insight, insight_id
):
    make_insight(owner)

    response = answers(owner.api, insight_id, 1)

    assert response.status_code == 200
    assert response.json()["status"] == "error_unknown_insight"
    assert not Insight.objects.filter(annotation__isnull=False).exists()


def test_another_tenants_insight_is_unknown_to_me(owner, other, make_insight):
    theirs = make_insight(other)

    response = answers(owner.api, theirs, 1)

    assert response.json()["status"] == "error_unknown_insight"
    theirs.refresh_from_db()
    assert theirs.annotation is None


def test_a_private_tenants_insight_is_unknown_to_anonymous_callers(owner, anonymous, make_insight):
    insight = make_insight(owner)

    assert answers(anonymous, insight, 1).json()["status"] == "error_unknown_insight"
    assert not AnnotationVote.objects.exists()


def test_it_accepts_json_bodies_and_the_trailing_slash(owner, make_insight):
    insight = make_insight(owner, image=an_image(owner))

    response = owner.api.post(
        "/api/v1/insights/annotate/",
        {"insight_id": str(insight.id), "annotation": 2, "data": {"value": "Bio"}},
        format="json",
    )

    assert response.json()["status"] == "user_input_updated"


def test_it_refuses_a_key_without_the_annotate_scope(make_insight):
    reader = make_tenant("Reader", scopes=["insights:read"])
    insight = make_insight(reader)

    response = answers(reader.api, insight, 1)

    assert response.status_code == 403
    assert response.json()["code"] == "missing_scope"


@pytest.mark.parametrize(
    ("payload", "status_code", "status", "mentions"),
    [
        ({"annotation": 1}, 11, "error_invalid_data", "insight_id"),
        ({"insight_id": "", "annotation": 1}, 11, "error_invalid_data", "insight_id"),
        ({"insight_id": "{id}"}, 11, "error_invalid_data", "annotation"),
        ({"insight_id": "{id}", "annotation": 3}, 11, "error_invalid_data", "annotation"),
        ({"insight_id": "{id}", "annotation": "yes"}, 11, "error_invalid_data", "annotation"),
        ({"insight_id": "{id}", "annotation": 2}, 7, "error_missing_data", "data"),
        (
            {"insight_id": "{id}", "annotation": 2, "data": "{oops"},
            11,
            "error_invalid_data",
            "data",
        ),
        ({"insight_id": "{id}", "annotation": 2, "data": "[1]"}, 11, "error_invalid_data", "data"),
        ({"insight_id": "{id}", "annotation": 1, "data": "{}"}, 11, "error_invalid_data", "data"),
    ],
)
def test_it_answers_400_to_a_malformed_request(
    owner, make_insight, payload, status_code, status, mentions
):
    insight = make_insight(owner)
    payload = {k: str(v).replace("{id}", str(insight.id)) for k, v in payload.items()}

    response = owner.api.post("/api/v1/insights/annotate", payload, format="multipart")

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"status_code", "status", "description"}
    assert (body["status_code"], body["status"]) == (status_code, status)
    assert mentions in body["description"]
    insight.refresh_from_db()
    assert insight.annotation is None


def test_an_anonymous_answer_with_user_data_is_refused(owner, anonymous, make_insight):
    make_public(owner)
    insight = make_insight(owner)

    response = answers(anonymous, insight, 2, data='{"value": "Bio"}')

    assert response.status_code == 400
    assert response.json()["status"] == "error_invalid_data"
    assert not AnnotationVote.objects.exists()


def test_every_answer_is_json_even_for_a_bad_method(owner):
    response = owner.api.get("/api/v1/insights/annotate")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_an_unreadable_or_mistyped_json_body_gets_the_contract_shape(owner, make_insight):
    insight = make_insight(owner)

    unreadable = owner.api.post(
        "/api/v1/insights/annotate", "{oops", content_type="application/json"
    )
    mistyped = owner.api.post(
        "/api/v1/insights/annotate",
        {"insight_id": str(insight.id), "annotation": 0, "device_id": 7},
        format="json",
    )

    for response in (unreadable, mistyped):
        assert response.status_code == 400
        assert response.json()["status"] == "error_invalid_data"
    assert "device_id" in mistyped.json()["description"]
