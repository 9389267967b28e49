"""GET /api/v1/insights/{barcode}, /insights/detail/{id} and /insights/random."""

import uuid

import pytest

from tests.annotations.support import BARCODE, make_public

FIELDS = {
    "id", "barcode", "type", "value", "value_tag", "data", "timestamp", "completed_at",
    "annotation", "n_votes", "username", "source_image", "automatic_processing", "predictor",
    "predictor_version", "confidence", "server_type", "countries", "brands", "campaign",
    "bounding_box", "lc", "unique_scans_n", "reserved_barcode", "with_image",
}  # fmt: skip


@pytest.mark.parametrize("slash", ["", "/"])
def test_it_lists_a_subjects_insights_open_or_not(owner, make_insight, slash):
    open_one = make_insight(owner)
    done = make_insight(owner, annotation=1, type="brand")
    make_insight(owner, barcode="elsewhere")

    response = owner.api.get(f"/api/v1/insights/{BARCODE}{slash}")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "found"
    assert {i["id"] for i in body["insights"]} == {str(open_one.id), str(done.id)}
    assert set(body["insights"][0]) == FIELDS


def test_it_answers_no_insights_for_an_unknown_subject(owner):
    assert owner.api.get("/api/v1/insights/0000").json() == {
        "insights": [],
        "status": "no_insights",
    }


def test_another_tenants_insights_are_not_listed(owner, other, make_insight):
    make_insight(other)

    assert owner.api.get(f"/api/v1/insights/{BARCODE}").json()["status"] == "no_insights"


@pytest.mark.parametrize("slash", ["", "/"])
def test_it_shows_one_insight(owner, make_insight, slash):
    insight = make_insight(owner, data={"text": "bio"}, brands=["ferrero"], confidence=0.75)

    response = owner.api.get(f"/api/v1/insights/detail/{insight.id}{slash}")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == FIELDS
    assert (body["id"], body["data"], body["brands"], body["confidence"]) == (
        str(insight.id),
        {"text": "bio"},
        ["ferrero"],
        0.75,
    )


def test_an_unknown_or_foreign_insight_is_404(owner, other, make_insight):
    theirs = make_insight(other)

    for insight_id in [uuid.uuid4(), theirs.id]:
        response = owner.api.get(f"/api/v1/insights/detail/{insight_id}")
        assert response.status_code == 404
        assert response.json()["code"] == "insight_not_found"
    assert owner.api.get("/api/v1/insights/detail/not-a-uuid").status_code == 404


def test_anonymous_callers_read_public_insights_only(owner, other, anonymous, make_insight):
    make_public(owner)
    public, private = make_insight(owner), make_insight(other)

    assert anonymous.get(f"/api/v1/insights/detail/{public.id}").status_code == 200
    assert anonymous.get(f"/api/v1/insights/detail/{private.id}").status_code == 404


@pytest.mark.parametrize("slash", ["", "/"])
def test_it_draws_random_open_insights(owner, make_insight, slash):
    open_ids = {str(make_insight(owner).id) for _ in range(3)}
    make_insight(owner, annotation=0)

    response = owner.api.get(f"/api/v1/insights/random{slash}", {"count": 10})

    assert response.json()["status"] == "found"
    assert {i["id"] for i in response.json()["insights"]} == open_ids


def test_random_insights_take_the_question_filters(owner, make_insight):
    brand = make_insight(owner, type="brand")
    make_insight(owner, type="label")

    response = owner.api.get("/api/v1/insights/random", {"insight_types": "brand"})

    assert [i["id"] for i in response.json()["insights"]] == [str(brand.id)]
    assert owner.api.get("/api/v1/insights/random", {"count": 101}).status_code == 400


def test_random_insights_answer_no_insights_when_none_are_open(owner):
    assert owner.api.get("/api/v1/insights/random").json() == {
        "insights": [],
        "status": "no_insights",
    }
