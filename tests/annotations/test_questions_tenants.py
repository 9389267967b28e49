"""Question pages over several tenants (anonymous callers of public tenants, operators): the
same pages as one ordering of all their questions, read tenant by tenant on PostgreSQL."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotations.models import Insight
from annotations.selectors import (
    Order,
    QuestionFilters,
    Voter,
    insights_of,
    open_questions,
    question_page,
)
from tests.annotations.support import make_public
from tests.factories import AnnotationVoteFactory
from tests.helpers import Tenant, make_tenant


@pytest.fixture
def tenants(owner, other) -> list[Tenant]:
    third = make_tenant("Third Co")
    for tenant in (owner, other, third):
        make_public(tenant)
    return [owner, other, third]


def pages(api, route: str, count: int, **params: object) -> list[list[str]]:
    found, page = [], 1
    while True:
        body = api.get(route, {"count": count, "page": page, **params}).json()
        if not body["questions"]:
            return found
        found.append([q["value"] for q in body["questions"]])
        page += 1


def test_popular_pages_across_tenants_are_one_order(tenants, anonymous, make_insight):
    made = []
    for n, scans in enumerate([3, 7, 0, 7, 1, 3, 9, 0, 3]):
        insight = make_insight(tenants[n % 3], value=f"v{n}", unique_scans_n=scans)
        made.append((-scans, str(insight.id), insight.value))
    expected = [value for *_, value in sorted(made)]

    found = pages(anonymous, "/api/v1/questions/popular", 2)

    assert [value for page in found for value in page] == expected
    assert [len(page) for page in found] == [2, 2, 2, 2, 1]


def test_confidence_pages_across_tenants_put_unknown_last(tenants, operator, make_insight):
    made = []
    for n, confidence in enumerate([0.4, None, 0.9, 0.4, None, 0.1, 0.95]):
        insight = make_insight(tenants[n % 3], value=f"v{n}", confidence=confidence)
        made.append((confidence is None, -(confidence or 0), str(insight.id), insight.value))
    expected = [value for *_, value in sorted(made)]

    found = pages(operator, "/api/v1/questions", 3, order_by="confidence")

    assert [value for page in found for value in page] == expected


def test_random_pages_across_tenants_are_runs_of_the_key_order(tenants, operator, make_insight):
    """Each draw is `count` questions in a row of the keys' circular order over all tenants."""
    keys = [0.05, 0.1, 0.3, 0.35, 0.5, 0.62, 0.8, 0.9, 0.97]
    for n, key in enumerate(keys):
        make_insight(tenants[n % 3], value=str(key), random_key=key)

    for _ in range(30):
        body = operator.get("/api/v1/questions/random", {"count": 4}).json()
        drawn = [float(q["value"]) for q in body["questions"]]
        start = keys.index(drawn[0])
        assert drawn == [keys[(start + i) % len(keys)] for i in range(4)]


def test_insights_random_across_tenants(tenants, operator, make_insight):
    made = {str(make_insight(tenant).id) for tenant in tenants}

    body = operator.get("/api/v1/insights/random", {"count": 10}).json()

    assert {insight["id"] for insight in body["insights"]} == made


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the merge is PostgreSQL's")
def test_each_tenant_is_read_on_its_own_index(tenants, anonymous, make_insight):
    for tenant in tenants:
        make_insight(tenant)

    with CaptureQueriesContext(connection) as queries:
        anonymous.get("/api/v1/questions/popular", {"count": 5})

    merged = [q["sql"] for q in queries if "UNION ALL" in q["sql"]]
    assert len(merged) == 1
    for tenant in tenants:
        assert f'"annotations_insight"."client_id" = {tenant.client.pk}' in merged[0]


@pytest.mark.parametrize("order_by", [Order.POPULARITY, Order.CONFIDENCE])
def test_merged_pages_equal_one_ordering_with_filters_and_a_voter(tenants, make_insight, order_by):
    for n in range(30):
        make_insight(
            tenants[n % 3],
            type="label" if n % 4 else "brand",
            unique_scans_n=n % 5,
            confidence=None if n % 6 == 0 else (n % 7) / 10,
        )
    voted = Insight.objects.filter(type="label")[:4]
    for insight in voted:
        AnnotationVoteFactory(insight=insight, device_id="phone")
    questions = open_questions(
        insights_of([t.client.pk for t in tenants]),
        QuestionFilters(insight_types=["label"]),
        Voter(device_id="phone"),
    )
    tenant_ids = [t.client.pk for t in tenants]

    for page in range(1, 6):
        merged = question_page(questions, order_by=order_by, count=4, page=page, tenants=tenant_ids)
        plain = question_page(questions, order_by=order_by, count=4, page=page)
        assert [q.pk for q in merged] == [q.pk for q in plain]
    everything = question_page(questions, order_by=order_by, count=30, tenants=tenant_ids)
    assert len(everything) == questions.count() > 0
    assert not {q.pk for q in everything} & {v.pk for v in voted}


def test_question_tenants_leave_out_the_inactive_and_those_without_questions(
    tenants, anonymous, operator, make_insight
):
    asking, answered, inactive = tenants
    make_insight(asking)
    make_insight(answered, annotation=1)
    make_insight(inactive)
    inactive.client.is_active = False
    inactive.client.save()

    public = anonymous.get("/api/v1/questions").json()
    staff = operator.get("/api/v1/questions").json()

    assert public["count"] == 1
    assert staff["count"] == 2  # staff see inactive tenants' questions too
