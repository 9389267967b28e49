"""GET /questions/unanswered keeps its answer per tenants and query for a short time: its cost
grows with the tenant's rows, and one anonymous address must not keep a core busy with it."""

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from redis.exceptions import RedisError

from tests.annotations.support import make_public

URL = "/api/v1/questions/unanswered"


def _aggregates(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]


def _asked(api, query: str = "") -> tuple[dict, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(f"{URL}?{query}")
    assert response.status_code == 200, response.content
    return response.json(), _aggregates(queries)


def test_a_second_anonymous_call_within_the_ttl_runs_no_aggregate(other, anonymous, make_insight):
    make_insight(other, value_tag="theirs")
    make_public(other)
    first, counted = _asked(anonymous)
    assert counted  # the first call does count
    again, counted_again = _asked(anonymous)
    assert again == first and counted_again == []


def test_the_kept_answer_is_as_old_as_the_ttl(owner, make_insight):
    make_insight(owner, value_tag="a")
    assert _asked(owner.api)[0]["questions"] == [["a", 1]]
    make_insight(owner, value_tag="b")
    assert _asked(owner.api)[0]["questions"] == [["a", 1]]


def test_each_tenant_has_its_own_answer(owner, other, make_insight):
    make_insight(owner, value_tag="mine")
    make_insight(other, value_tag="theirs")
    assert _asked(owner.api)[0]["questions"] == [["mine", 1]]
    body, counted = _asked(other.api)
    assert body["questions"] == [["theirs", 1]] and counted


def test_anonymous_callers_never_get_a_tenants_private_answer(owner, anonymous, make_insight):
    make_insight(owner, value_tag="private")
    assert _asked(owner.api)[0]["questions"] == [["private", 1]]
    assert _asked(anonymous)[0]["status"] == "no_questions"


@pytest.mark.parametrize(
    "query", ["page=2", "count=1", "type=label", "countries=en:fr", "reserved_barcode=true"]
)
def test_each_query_has_its_own_answer(owner, make_insight, query):
    make_insight(owner, value_tag="a")
    _asked(owner.api)
    assert _asked(owner.api, query)[1]


def test_a_query_only_spelled_differently_shares_the_answer(owner, make_insight):
    make_insight(owner, value_tag="a", campaign=["c"])
    _asked(owner.api, "campaign=c&count=25")
    assert _asked(owner.api, "campaigns=c")[1] == []


def test_a_ttl_of_zero_keeps_nothing(settings, owner, make_insight):
    settings.INSIGHT_UNANSWERED_CACHE_SECONDS = 0
    make_insight(owner, value_tag="a")
    _asked(owner.api)
    assert _asked(owner.api)[1]


def test_without_redis_it_answers_at_full_cost(settings, owner, make_insight):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens: a real refusal
        }
    }
    with pytest.raises(RedisError):
        cache.get("anything")
    make_insight(owner, value_tag="a")
    assert _asked(owner.api)[0]["questions"] == [["a", 1]]
