"""GET /api/v1/insights (the insight list), /questions/unanswered and /users/statistics/{user}."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.annotations.support import make_public
from tests.helpers import make_tenant

HOSTILE_LIST_QUERIES = [
    "count=0",
    "count=101",
    "count=",
    "count=abc",
    "page=0",
    "page=-1",
    "page=10001",
    "annotation=5",
    "annotation=x",
    "annotated=perhaps",
    "order_by=confidence",
    "order_by=id;drop",
    "value_tag=%00",
    "barcode=%00",
    f"barcode={'1' * 101}",
    f"brands={'b,' * 600}",
]


@pytest.mark.parametrize("query", HOSTILE_LIST_QUERIES)
def test_the_list_refuses_hostile_parameters_with_a_json_error(owner, make_insight, query):
    make_insight(owner)

    response = owner.api.get(f"/api/v1/insights?{query}")

    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["code"]


def test_the_list_answers_count_insights_and_status_by_subject(owner, make_insight):
    second = make_insight(owner, barcode="2", timestamp=timezone.now() - timedelta(days=1))
    first = make_insight(owner, barcode="1", annotation=1)

    body = owner.api.get("/api/v1/insights").json()

    assert body["count"] == 2
    assert body["status"] == "found"
    assert [i["id"] for i in body["insights"]] == [str(first.id), str(second.id)]


def test_the_list_pages_without_repeating(owner, make_insight):
    made = {str(make_insight(owner, barcode=str(n)).id) for n in range(5)}

    pages = [owner.api.get(f"/api/v1/insights?count=2&page={page}").json() for page in (1, 2, 3, 4)]

    seen = [i["id"] for page in pages for i in page["insights"]]
    assert sorted(seen) == sorted(made)
    assert pages[3] == {"count": 5, "insights": [], "status": "no_insights"}


def test_the_list_filters_as_robotoff_does(owner, make_insight):
    wanted = make_insight(
        owner,
        type="brand",
        value_tag="ferrero",
        brands=["ferrero"],
        countries=["en:france"],
        campaign=["spread"],
        lc=["fr"],
        predictor="ocr",
        server_type="off",
        annotation=1,
        barcode="42",
    )
    make_insight(owner, type="label", annotation=1, barcode="42")
    make_insight(owner, type="brand", value_tag="ferrero", barcode="42")  # open
    make_insight(owner, type="brand", value_tag="nutella", annotation=1, barcode="42")
    query = (
        "insight_types=category,brand&barcode=42&annotated=1&annotation=1&value_tag=ferrero"
        "&brands=ferrero,milka&countries=en:france&campaigns=spread&lc=fr&predictor=ocr"
        "&server_type=off"
    )

    body = owner.api.get(f"/api/v1/insights?{query}").json()

    assert [i["id"] for i in body["insights"]] == [str(wanted.id)]


def test_the_list_filters_open_insights(owner, make_insight):
    open_one = make_insight(owner)
    make_insight(owner, annotation=0)

    body = owner.api.get("/api/v1/insights?annotated=false").json()

    assert [i["id"] for i in body["insights"]] == [str(open_one.id)]


@pytest.mark.parametrize("order_by", ["random", "popularity"])
def test_the_list_orders_at_random_or_by_popularity(owner, make_insight, order_by):
    made = [make_insight(owner, barcode=str(n), unique_scans_n=n) for n in range(3)]

    body = owner.api.get(f"/api/v1/insights?order_by={order_by}").json()

    ids = [i["id"] for i in body["insights"]]
    assert sorted(ids) == sorted(str(i.id) for i in made)
    if order_by == "popularity":
        assert ids == [str(i.id) for i in reversed(made)]


def test_the_list_shows_only_my_tenant_and_anonymous_callers_only_public_ones(
    owner, other, anonymous, make_insight
):
    mine = make_insight(owner)
    theirs = make_insight(other)
    private = make_tenant("Private Co")
    make_insight(private)
    make_public(owner)
    make_public(other)

    owned = owner.api.get("/api/v1/insights").json()
    public = anonymous.get("/api/v1/insights").json()

    assert [i["id"] for i in owned["insights"]] == [str(mine.id)]
    assert {i["id"] for i in public["insights"]} == {str(mine.id), str(theirs.id)}
    assert public["count"] == 2


def test_the_list_answers_no_insights_to_an_anonymous_caller_when_none_is_public(
    owner, anonymous, make_insight
):
    make_insight(owner)

    assert anonymous.get("/api/v1/insights/").json() == {
        "count": 0,
        "insights": [],
        "status": "no_insights",
    }


def test_the_count_stops_at_the_cap(owner, make_insight, settings):
    settings.INSIGHT_QUESTION_COUNT_CAP = 2
    for n in range(3):
        make_insight(owner, barcode=str(n))

    assert owner.api.get("/api/v1/insights").json()["count"] == 2


# /questions/unanswered


@pytest.mark.parametrize("slash", ["", "/"])
def test_unanswered_counts_open_questions_per_value_tag_most_first(owner, make_insight, slash):
    for tag, n in [("en:organic", 1), ("en:fair-trade", 3), ("en:vegan", 2)]:
        for i in range(n):
            make_insight(owner, value_tag=tag, barcode=f"{tag}-{i}")
    make_insight(owner, value_tag="en:organic", annotation=1)  # answered
    make_insight(owner, value_tag="en:organic", automatic_processing=True)  # no person needed
    make_insight(owner, value_tag=None)

    response = owner.api.get(f"/api/v1/questions/unanswered{slash}")

    assert response.status_code == 200
    assert response.json() == {
        "count": 3,
        "questions": [["en:fair-trade", 3], ["en:vegan", 2], ["en:organic", 1]],
        "status": "found",
    }


def test_unanswered_is_never_taken_for_a_barcode(owner, make_insight):
    make_insight(owner, barcode="unanswered")

    body = owner.api.get("/api/v1/questions/unanswered").json()

    assert body["questions"] == [["en:organic", 1]]
    assert "count" in body


def test_unanswered_pages_and_filters(owner, make_insight):
    for tag in ("a", "b", "c"):
        make_insight(
            owner, type="brand", value_tag=tag, countries=["en:france"], campaign=["spread"]
        )
    make_insight(owner, type="label", value_tag="z")
    make_insight(owner, type="brand", value_tag="r", reserved_barcode=True)
    query = "type=brand&countries=en:france&campaign=spread&predictor=ocr&server_type=off"

    first = owner.api.get(f"/api/v1/questions/unanswered?{query}&count=2&page=1").json()
    second = owner.api.get(f"/api/v1/questions/unanswered?{query}&count=2&page=2").json()
    reserved = owner.api.get("/api/v1/questions/unanswered?reserved_barcode=true").json()

    assert first == {"count": 3, "questions": [["a", 1], ["b", 1]], "status": "found"}
    assert second["questions"] == [["c", 1]]
    assert reserved["questions"] == [["r", 1]]


def test_unanswered_answers_no_questions(owner):
    assert owner.api.get("/api/v1/questions/unanswered?campaigns=none").json() == {
        "count": 0,
        "questions": [],
        "status": "no_questions",
    }


@pytest.mark.parametrize(
    "query",
    ["page=0", "count=0", "count=101", "reserved_barcode=perhaps", "type=%00", "campaign=%00"],
)
def test_unanswered_refuses_hostile_parameters(owner, query):
    response = owner.api.get(f"/api/v1/questions/unanswered?{query}")

    assert response.status_code == 400
    assert response.json()["code"]


def test_unanswered_counts_only_what_the_caller_sees(owner, other, anonymous, make_insight):
    make_insight(owner, value_tag="mine")
    make_insight(other, value_tag="theirs")
    make_public(other)

    assert owner.api.get("/api/v1/questions/unanswered").json()["questions"] == [["mine", 1]]
    assert anonymous.get("/api/v1/questions/unanswered").json()["questions"] == [["theirs", 1]]


# /users/statistics/{username}


def test_statistics_count_the_insights_a_user_annotated(owner, make_insight):
    for n in range(2):
        make_insight(owner, annotation=1, username="alice", barcode=str(n))
    make_insight(owner, annotation=-1, username="alice")
    make_insight(owner, annotation=1, username="bob")

    response = owner.api.get("/api/v1/users/statistics/alice")

    assert response.status_code == 200
    assert response.json() == {"count": {"annotations": 3}}


@pytest.mark.parametrize("username", ["nobody", "%00", "a%00b", "x" * 3000, "%27%20OR%201=1"])
def test_statistics_of_unknown_or_hostile_names_are_zero(owner, make_insight, username):
    make_insight(owner, annotation=1, username="alice")

    response = owner.api.get(f"/api/v1/users/statistics/{username}/")

    assert response.status_code == 200
    assert response.json() == {"count": {"annotations": 0}}


def test_statistics_count_only_what_the_caller_sees(owner, other, anonymous, make_insight):
    make_insight(other, annotation=1, username="alice")
    make_insight(owner, annotation=1, username="alice")
    private = make_tenant("Private Co")
    make_insight(private, annotation=1, username="alice")
    make_public(other)

    assert owner.api.get("/api/v1/users/statistics/alice").json()["count"]["annotations"] == 1
    assert anonymous.get("/api/v1/users/statistics/alice").json()["count"]["annotations"] == 1
