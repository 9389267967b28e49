"""GET /api/v1/questions/{barcode}: open questions about one subject."""

import pytest

from tests.annotations.support import BARCODE, answers, make_public


@pytest.mark.parametrize("slash", ["", "/"])
def test_it_asks_the_best_question_about_a_subject(owner, make_insight, slash):
    make_insight(owner, value="weak", confidence=0.3)
    best = make_insight(owner, value="strong", confidence=0.9)
    make_insight(owner, barcode="other", confidence=1.0)

    response = owner.api.get(f"/api/v1/questions/{BARCODE}{slash}")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "found"
    assert [q["insight_id"] for q in body["questions"]] == [str(best.id)]
    assert body["questions"][0]["barcode"] == BARCODE
    assert body["questions"][0]["type"] == "add-binary"


def test_count_asks_for_more_and_types_filter(owner, make_insight):
    make_insight(owner, type="label")
    make_insight(owner, type="brand", value="Ferrero")
    make_insight(owner, type="category", value="Spreads")

    some = owner.api.get(f"/api/v1/questions/{BARCODE}", {"count": 5})
    brands = owner.api.get(
        f"/api/v1/questions/{BARCODE}", {"count": 5, "insight_types": "brand,category"}
    )

    assert len(some.json()["questions"]) == 3
    assert {q["insight_type"] for q in brands.json()["questions"]} == {"brand", "category"}


def test_it_answers_no_questions_for_an_unknown_subject(owner):
    assert owner.api.get("/api/v1/questions/0000").json() == {
        "status": "no_questions",
        "questions": [],
    }


def test_it_speaks_french(owner, make_insight):
    make_insight(owner, type="brand")

    response = owner.api.get(f"/api/v1/questions/{BARCODE}", {"lang": "fr"})

    assert (
        response.json()["questions"][0]["question"] == "Le produit appartient-il à cette marque ?"
    )


def test_it_leaves_out_what_this_device_voted_on(owner, anonymous, make_insight):
    make_public(owner)
    insight = make_insight(owner)
    answers(anonymous, insight, 1, device_id="phone")

    mine = anonymous.get(f"/api/v1/questions/{BARCODE}", {"device_id": "phone"})
    theirs = anonymous.get(f"/api/v1/questions/{BARCODE}", {"device_id": "tablet"})

    assert mine.json()["status"] == "no_questions"
    assert theirs.json()["status"] == "found"


def test_another_tenants_subject_has_no_questions_for_me(owner, other, make_insight):
    make_insight(other)

    assert owner.api.get(f"/api/v1/questions/{BARCODE}").json()["status"] == "no_questions"


def test_fixed_words_are_not_taken_for_barcodes(owner, make_insight):
    make_insight(owner, barcode="random")

    response = owner.api.get("/api/v1/questions/random")

    # /questions/random is the random list, which has a `count`; a barcode answer has none.
    assert "count" in response.json()
