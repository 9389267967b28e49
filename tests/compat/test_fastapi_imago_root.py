"""`GET /`: the FastAPI Imago's info JSON when a client prefers JSON, the docs for browsers."""

import pytest
from django.test import Client as HttpClient

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


def _root(accept: str | None, method: str = "get"):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    return getattr(HttpClient(), method)("/", **headers)


def _redirected(response) -> None:
    assert (response.status_code, response["Location"]) == (302, "/api/docs/")
    assert response["Vary"] == "Accept"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "accept",
    [
        "*/*",
        "",
        None,
        "text/html, application/json",  # a tie: the client's first
        "application/json;q=0.5, text/html;q=0.9",
        "x" * 4000,
        "\x00\x01",
        BROWSER,
    ],
)
def test_anything_but_a_preference_for_json_goes_to_the_docs(accept):
    _redirected(_root(accept))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "accept",
    [
        "application/json",
        "application/json, text/html;q=0.9",
        "application/json, text/html",
        "application/json;q=abc",  # a broken weight counts as none
        "application/*",
        "text/plain, application/json",
    ],
)
def test_a_client_that_prefers_json_gets_the_info(accept):
    response = _root(accept)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Vary"] == "Accept"
    body = response.json()
    assert body["name"] and body["version"]
    assert (body["docs"], body["api_docs"], body["health"]) == ("/docs", "/api/docs/", "/health")


@pytest.mark.django_db
def test_the_info_links_lead_somewhere():
    body = _root("application/json").json()
    for link in (body["docs"], body["api_docs"], body["health"]):
        assert HttpClient().get(link).status_code == 200, link


@pytest.mark.django_db
def test_head_answers_as_get():
    assert _root("application/json", "head").status_code == 200
    _redirected(_root(None, "head"))


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_other_methods_are_a_json_405(method):
    response = _root("text/html", method)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert response["Allow"] == "GET, HEAD"
