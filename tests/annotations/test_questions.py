"""GET /api/v1/questions, /questions/random and /questions/popular."""

import pytest

from annotations.models import Insight
from tests.annotations.support import an_image, answers, make_public
from tests.helpers import make_tenant

ROUTES = ["/api/v1/questions", "/api/v1/questions/random", "/api/v1/questions/popular"]


def ids(response) -> list[str]:
    return [q["insight_id"] for q in response.json()["questions"]]


@pytest.mark.parametrize("route", ROUTES + [f"{r}/" for r in ROUTES])
def test_it_serves_open_questions_with_and_without_a_slash(owner, make_insight, route):
    insight = make_insight(owner)

    response = owner.api.get(route)

    assert response.status_code == 200
    assert response.json() == {
        "count": 1,
        "questions": [
            {
                "barcode": insight.barcode,
                "type": "add-binary",
                "value": "Organic",
                "question": "Does the product have this label?",
                "insight_id": str(insight.id),
                "insight_type": "label",
                "server_type": "off",
                "value_tag": "en:organic",
                "source_image_url": "https://images.openfoodfacts.org/images/products"
                "/301/762/042/2003/1.jpg",
            }
        ],
        "status": "found",
    }


def test_it_answers_no_questions_when_none_are_open(owner, make_insight):
    make_insight(owner, annotation=1)

    assert owner.api.get("/api/v1/questions").json() == {
        "count": 0,
        "questions": [],
        "status": "no_questions",
    }


@pytest.mark.parametrize(
    ("insight_type", "lang", "text"),
    [
        ("label", "fr", "Le produit a-t-il ce label ?"),
        ("brand", "fr", "Le produit appartient-il à cette marque ?"),
        ("category", "fr", "Le produit appartient-il à cette catégorie ?"),
        ("product_weight", "fr", "Ce poids correspond-il au poids affiché sur le produit ?"),
        ("packaging", "fr", "Le produit a-t-il cet élément d'emballage ?"),
        ("brand", "en", "Does the product belong to this brand?"),
        ("product_weight", "en", "Does this weight match the weight displayed on the product?"),
        ("packaging", "en", "Does the product have this packaging element?"),
        ("category", "de", "Does the product belong to this category?"),
        ("label", "../etc", "Does the product have this label?"),
    ],
)
def test_it_phrases_questions_in_the_asked_language(owner, make_insight, insight_type, lang, text):
    make_insight(owner, type=insight_type)

    response = owner.api.get("/api/v1/questions", {"lang": lang})

    assert response.json()["questions"][0]["question"] == text


def test_it_links_our_signed_thumbnail_for_an_image(owner, make_insight):
    make_insight(owner, image=an_image(owner), source_image=None)

    url = owner.api.get("/api/v1/questions").json()["questions"][0]["source_image_url"]

    assert url.startswith("http://testserver/files/signed/")


def test_it_leaves_out_unknown_image_urls(owner, make_insight):
    make_insight(owner, source_image=None, value_tag=None)

    question = owner.api.get("/api/v1/questions").json()["questions"][0]

    assert "source_image_url" not in question
    assert "value_tag" not in question


def test_it_shows_a_key_only_its_own_tenants_questions(owner, other, make_insight):
    mine = make_insight(owner)
    make_insight(other)

    assert ids(owner.api.get("/api/v1/questions")) == [str(mine.id)]


def test_anonymous_callers_see_only_public_tenants(owner, other, anonymous, make_insight):
    make_public(owner)
    public = make_insight(owner)
    make_insight(other)

    response = anonymous.get("/api/v1/questions/random")

    assert ids(response) == [str(public.id)]
    assert response.json()["count"] == 1


def test_anonymous_callers_see_several_public_tenants(owner, other, anonymous, make_insight):
    make_public(owner)
    make_public(other)
    both = {str(make_insight(owner).id), str(make_insight(other).id)}
    make_insight(make_tenant("Private Co"))

    assert set(ids(anonymous.get("/api/v1/questions"))) == both


def test_anonymous_callers_see_nothing_when_no_tenant_is_public(owner, anonymous, make_insight):
    make_insight(owner)

    assert anonymous.get("/api/v1/questions").json()["status"] == "no_questions"


def test_operators_see_every_tenant_or_the_one_they_name(operator, owner, other, make_insight):
    mine, theirs = make_insight(owner), make_insight(other)

    assert set(ids(operator.get("/api/v1/questions"))) == {str(mine.id), str(theirs.id)}
    assert ids(operator.get("/api/v1/questions", {"client": other.client.slug})) == [str(theirs.id)]


def test_it_leaves_out_what_this_device_voted_on(owner, anonymous, make_insight):
    make_public(owner)
    voted, fresh = make_insight(owner), make_insight(owner)
    answers(anonymous, voted, 1, device_id="phone")

    response = anonymous.get("/api/v1/questions", {"device_id": "phone"})

    assert ids(response) == [str(fresh.id)]
    assert response.json()["count"] == 1
    assert len(ids(anonymous.get("/api/v1/questions", {"device_id": "tablet"}))) == 2


def test_it_leaves_out_what_this_address_voted_on_without_device_id(owner, anonymous, make_insight):
    make_public(owner)
    voted, fresh = make_insight(owner), make_insight(owner)
    anonymous.post(
        "/api/v1/insights/annotate",
        {"insight_id": str(voted.id), "annotation": 0},
        REMOTE_ADDR="198.51.100.4",
    )

    response = anonymous.get("/api/v1/questions", REMOTE_ADDR="198.51.100.4")

    assert ids(response) == [str(fresh.id)]


def test_a_keyed_caller_does_not_see_again_what_it_skipped(owner, make_insight):
    skipped, fresh = make_insight(owner), make_insight(owner)
    answers(owner.api, skipped, -1)

    assert ids(owner.api.get("/api/v1/questions")) == [str(fresh.id)]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"insight_types": "brand"}, {"brand"}),
        ({"insight_types": "brand,category"}, {"brand", "category"}),
        ({"value_tag": "en:fair-trade"}, {"fair"}),
        ({"brands": "ferrero"}, {"brand"}),
        ({"brands": "nope,lindt"}, {"category"}),
        ({"countries": "en:france"}, {"label", "brand"}),
        ({"predictor": "universal-logo-detector"}, {"brand"}),
        ({"with_image": "true"}, {"category"}),
        ({"with_image": "false"}, {"label", "brand", "fair"}),
        ({"insight_types": "label", "countries": "en:italy"}, set()),
    ],
)
def test_it_filters_questions(owner, make_insight, params, expected):
    make_insight(owner, value="label", countries=["en:france"])
    make_insight(
        owner,
        type="brand",
        value="brand",
        value_tag="ferrero",
        brands=["ferrero"],
        countries=["en:france", "en:italy"],
        predictor="universal-logo-detector",
    )
    make_insight(owner, type="category", value="category", brands=["lindt"], with_image=True)
    make_insight(owner, value="fair", value_tag="en:fair-trade")

    response = owner.api.get("/api/v1/questions", params)

    assert {q["value"] for q in response.json()["questions"]} == expected
    assert response.json()["count"] == len(expected)


def test_popular_orders_by_scans_and_pages(owner, make_insight):
    for scans in [5, 50, 1, 20]:
        make_insight(owner, value=str(scans), unique_scans_n=scans)

    first = owner.api.get("/api/v1/questions/popular", {"count": 2})
    second = owner.api.get("/api/v1/questions/popular", {"count": 2, "page": 2})
    third = owner.api.get("/api/v1/questions/popular", {"count": 2, "page": 3})

    assert [q["value"] for q in first.json()["questions"]] == ["50", "20"]
    assert [q["value"] for q in second.json()["questions"]] == ["5", "1"]
    assert third.json()["status"] == "no_questions"
    assert first.json()["count"] == 4


def test_it_orders_by_confidence_with_unknown_confidence_last(owner, make_insight):
    for confidence in [0.2, None, 0.9, 0.5]:
        make_insight(owner, value=str(confidence), confidence=confidence)

    response = owner.api.get("/api/v1/questions", {"order_by": "confidence"})

    assert [q["value"] for q in response.json()["questions"]] == ["0.9", "0.5", "0.2", "None"]


def test_order_by_popularity_on_the_list_route(owner, make_insight):
    make_insight(owner, value="low", unique_scans_n=1)
    make_insight(owner, value="high", unique_scans_n=9)

    response = owner.api.get("/api/v1/questions", {"order_by": "popularity"})

    assert [q["value"] for q in response.json()["questions"]] == ["high", "low"]


def test_random_draws_wrap_round_the_key_space(owner, make_insight):
    """Whatever point is drawn, a random page holds `count` questions when there are enough."""
    for key in [0.01, 0.02, 0.98, 0.99]:
        make_insight(owner, random_key=key)

    for _ in range(20):
        response = owner.api.get("/api/v1/questions/random", {"count": 3})
        assert len(response.json()["questions"]) == 3
        assert len(set(ids(response))) == 3


def test_random_draws_reach_every_question(owner, make_insight):
    # A question is drawn when the point falls in the gap before its key: even gaps here, so
    # each has a 1 in 5 chance a draw (missing one in 60 draws: about 1 in 100,000).
    made = {str(make_insight(owner, random_key=key).id) for key in [0.1, 0.3, 0.5, 0.7, 0.9]}

    seen: set[str] = set()
    for _ in range(60):
        seen.update(ids(owner.api.get("/api/v1/questions/random", {"count": 1})))

    assert seen == made


def test_count_is_capped(owner, make_insight, settings):
    settings.INSIGHT_QUESTION_COUNT_CAP = 3
    Insight.objects.bulk_create(
        Insight(client=owner.client, barcode=str(n), type="label") for n in range(5)
    )

    response = owner.api.get("/api/v1/questions", {"count": 5})

    assert response.json()["count"] == 3
    assert len(response.json()["questions"]) == 5


@pytest.mark.parametrize(
    "params",
    [{"count": 0}, {"count": 101}, {"count": "many"}, {"page": 0}, {"order_by": "newest"}],
)
def test_it_refuses_bad_parameters(owner, params):
    response = owner.api.get("/api/v1/questions", params)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_it_refuses_a_key_without_the_read_scope(make_insight):
    writer = make_tenant("Writer", scopes=["insights:annotate"])

    response = writer.api.get("/api/v1/questions")

    assert response.status_code == 403
    assert response.json()["code"] == "missing_scope"


def test_anonymous_callers_are_rate_limited_by_address(anonymous, settings):
    settings.INSIGHT_ANONYMOUS_RATE = "2/min"

    statuses = [anonymous.get("/api/v1/questions").status_code for _ in range(3)]
    elsewhere = anonymous.get("/api/v1/questions", REMOTE_ADDR="192.0.2.1")

    assert statuses == [200, 200, 429]
    assert elsewhere.status_code == 200


def test_blank_text_parameters_mean_absent_but_blank_numbers_are_refused(owner, make_insight):
    make_insight(owner)

    blank_text = owner.api.get("/api/v1/questions?value_tag=&lang=&order_by=&device_id=")
    blank_count = owner.api.get("/api/v1/questions?count=")

    assert blank_text.json()["status"] == "found"
    assert blank_text.json()["questions"][0]["question"] == "Does the product have this label?"
    assert blank_count.status_code == 400
