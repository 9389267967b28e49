"""HTML pages carry a Content-Security-Policy: same origin only, and no inline script runs
without the response's nonce. The question page still works under it in a real Chromium."""

import re

import pytest
from django.test import Client as HttpClient
from selenium.webdriver.remote.webdriver import WebDriver

from tests.annotations import test_question_page as question_page
from tests.annotations.support import make_public

HEADER = "Content-Security-Policy"
browser = question_page.browser  # the headless Chromium fixture of the question page's tests


def directives(response) -> dict[str, list[str]]:
    policy = response[HEADER]
    return {
        name: values
        for name, *values in (part.split() for part in policy.split(";") if part.strip())
    }


def nonce_of(response) -> str:
    (nonce,) = [v for v in directives(response)["script-src"] if v.startswith("'nonce-")]
    return nonce.removeprefix("'nonce-").removesuffix("'")


@pytest.mark.django_db
def test_the_question_page_allows_only_its_own_nonced_scripts():
    page = HttpClient().get("/questions/")

    policy = directives(page)
    assert policy["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    nonce = nonce_of(page)
    html = page.content.decode()
    # Every script that runs (JSON data blocks do not) carries this response's nonce.
    runnable = re.findall(r"<script(?![^>]*application/json)([^>]*)>", html)
    assert runnable and all(f'nonce="{nonce}"' in attrs for attrs in runnable)
    assert nonce != nonce_of(HttpClient().get("/questions/"))


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/admin/login/", "/admin/", "/admin/rq/", "/api/docs/"])
def test_every_html_page_has_the_policy(operator, url):
    # The login page is for those not logged in yet (it sends staff on to the index).
    page = (HttpClient() if url == "/admin/login/" else operator).get(url)

    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    assert "'self'" in directives(page)["default-src"]


@pytest.mark.django_db
def test_the_api_docs_may_use_what_swagger_needs_from_the_same_origin(operator):
    policy = directives(operator.get("/api/docs/"))

    assert {"'self'", "data:"} <= set(policy["img-src"])
    assert {"'self'", "blob:"} <= set(policy["worker-src"])


def test_the_question_page_works_in_a_browser_without_a_policy_violation(
    browser: WebDriver, live_server, owner
):
    make_public(owner)
    question_page.label_on(question_page.photographed(owner), "Organic", "en:organic")

    browser.get(f"{live_server.url}/questions/")

    assert question_page.shown_insight(browser)
    violations = [
        entry["message"]
        for entry in browser.get_log("browser")
        if "Content Security Policy" in entry["message"]
    ]
    assert violations == []
