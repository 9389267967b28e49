"""The insight routes in /api/schema/: listed once each, open to anonymous callers, and robust."""

import pytest

from tests.annotations.support import make_public

ROUTES = [
    "/api/v1/questions",
    "/api/v1/questions/random",
    "/api/v1/questions/popular",
    "/api/v1/questions/{barcode}",
    "/api/v1/insights/annotate",
    "/api/v1/insights/{barcode}",
    "/api/v1/insights/detail/{insight_id}",
    "/api/v1/insights/random",
    "/api/v1/insights",
    "/api/v1/questions/unanswered",
    "/api/v1/users/statistics/{username}",
]


def test_each_route_is_described_once_and_allows_anonymous_callers(anonymous):
    paths = anonymous.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]

    for route in ROUTES:
        assert route in paths
        assert f"{route}/" not in paths
        (operation,) = paths[route].values()
        assert {} in operation["security"]
    annotate = paths["/api/v1/insights/annotate"]["post"]
    assert set(annotate["responses"]) >= {"200", "400"}


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/questions/%00",
        "/api/v1/insights/%00",
        "/api/v1/questions/a%00b/",
        "/api/v1/questions?value_tag=%00",
        "/api/v1/insights?lc=%00",
        "/api/v1/questions/unanswered?countries=%00",
        "/api/v1/users/statistics/%00",
    ],
)
def test_nul_characters_never_reach_the_database(owner, anonymous, make_insight, url):
    make_public(owner)
    make_insight(owner)

    response = anonymous.get(url)

    assert response.status_code in (200, 400)
    assert response.headers["Content-Type"] == "application/json"


def test_nul_characters_in_annotation_data_are_refused(owner, make_insight):
    insight = make_insight(owner)

    response = owner.api.post(
        "/api/v1/insights/annotate",
        {"insight_id": str(insight.id), "annotation": 2, "data": '{"value": "a\\u0000b"}'},
    )

    assert response.status_code == 400
    assert response.json()["status"] == "error_invalid_data"
