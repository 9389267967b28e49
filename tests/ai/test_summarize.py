"""POST /api/v1/ai/summarize/: fetch a page safely, extract its main text, summarise it."""

import pytest

from tests.ai.support import FakeServer, Reply, gemini_reply

ARTICLE = """<!doctype html><html><head><title>Bridge approved</title>
<meta charset="utf-8"></head><body>
<nav><a href="/">Home</a> | <a href="/news">News</a> | <a href="/about">About us</a></nav>
<article><h1>Council approves the new river bridge</h1>
<p>The town council approved the new river bridge on Monday after two years of debate.
Construction will start in the spring and should last about eighteen months.</p>
<p>The bridge will carry pedestrians, cyclists and buses, but no private cars.
Residents of the east bank welcomed the decision at a public meeting.</p>
<p>The project costs 24 million euros, two thirds of it paid by the region.</p>
</article>
<footer>Copyright 2026 The Town Gazette. All rights reserved. Cookie settings.</footer>
</body></html>"""
HTML = {"Content-Type": "text/html; charset=utf-8"}


@pytest.fixture
def site(fake_server, settings) -> FakeServer:
    """A web site on 127.0.0.1, which the allow-list lets the fetcher reach."""
    settings.AI_FETCH_ALLOWED_HOSTS = ["127.0.0.1"]
    fake_server.route("/article", Reply(200, ARTICLE, HTML))
    return fake_server


def summarize(tenant, url: str, **extra):
    return tenant.api.post("/api/v1/ai/summarize/", {"url": url, **extra}, format="json")


def test_the_local_provider_returns_the_lead_sentences(owner, site):
    response = summarize(owner, f"{site.url}/article")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["summary"].startswith("The town council approved the new river bridge on Monday")
    assert "eighteen months" in body["summary"]
    assert "Copyright" not in body["summary"] and "About us" not in body["summary"]
    assert body["title"] == "Council approves the new river bridge"
    assert (body["provider"], body["language"]) == ("local", "en")
    assert site.received[0].headers["user-agent"].startswith("Imago")


def test_the_provider_summarises_the_extracted_text(owner, site, gemini, settings):
    gemini.queue(gemini_reply({"summary": "Le conseil a approuvé le pont."}))
    response = summarize(owner, f"{site.url}/article", language="fr")
    assert response.status_code == 200, response.content
    assert response.json()["summary"] == "Le conseil a approuvé le pont."
    prompt = gemini.received[-1].json()["contents"][0]["parts"][0]["text"]
    assert "in French" in prompt and "eighteen months" in prompt and "Cookie" not in prompt


def test_a_failing_provider_answers_provider_error(owner, site, gemini):
    gemini.queue(gemini_reply('{"summary": '))
    response = summarize(owner, f"{site.url}/article")
    assert (response.status_code, response.json()["code"]) == (502, "provider_error")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/",
        "http://10.0.0.1/admin",
        "http://[::1]:8000/",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost/",
        "http://0.0.0.0/",
    ],
)
def test_internal_addresses_are_refused(owner, url):
    response = summarize(owner, url)
    assert (response.status_code, response.json()["code"]) == (400, "blocked_address")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/", "gopher://x/"])
def test_only_http_and_https_are_fetched(owner, url):
    response = summarize(owner, url)
    assert (response.status_code, response.json()["code"]) == (400, "blocked_address")


def test_a_redirect_to_loopback_is_refused(owner, fake_server, settings):
    # The site is allowed by its name; the address it redirects to is not.
    settings.AI_FETCH_ALLOWED_HOSTS = ["localhost"]
    fake_server.route("/go", Reply(302, "", {"Location": f"{fake_server.url}/article"}))
    fake_server.route("/article", Reply(200, ARTICLE, HTML))
    response = summarize(owner, f"http://localhost:{fake_server.port}/go")
    assert (response.status_code, response.json()["code"]) == (400, "blocked_address")
    assert [r.path for r in fake_server.received] == ["/go"]


def test_a_page_over_the_size_cap_is_refused(owner, site, settings):
    settings.AI_FETCH_MAX_BYTES = 300
    response = summarize(owner, f"{site.url}/article")
    assert (response.status_code, response.json()["code"]) == (413, "too_large")


def test_a_page_without_a_length_is_cut_at_the_size_cap(owner, site, settings):
    settings.AI_FETCH_MAX_BYTES = 300
    site.route("/unsized", Reply(200, ARTICLE, {**HTML, "Content-Length": None}))
    response = summarize(owner, f"{site.url}/unsized")
    assert (response.status_code, response.json()["code"]) == (413, "too_large")


def test_a_page_that_is_not_html_is_refused(owner, site):
    site.route("/data.json", Reply(200, {"a": 1}))
    response = summarize(owner, f"{site.url}/data.json")
    assert (response.status_code, response.json()["code"]) == (422, "not_html")


def test_an_unreachable_page_says_so(owner, site, settings):
    settings.AI_FETCH_TIMEOUT = 0.3
    site.route("/slow", Reply(200, ARTICLE, HTML, delay=2))
    for url in [f"{site.url}/missing", f"{site.url}/slow", "http://127.0.0.1:9/"]:
        response = summarize(owner, url)
        assert (response.status_code, response.json()["code"]) == (502, "unreachable"), url


def test_it_needs_the_ai_use_scope(db):
    from tests.helpers import make_tenant

    reader = make_tenant("Reader", scopes=["images:read"])
    response = summarize(reader, "http://example.com/")
    assert (response.status_code, response.json()["code"]) == (403, "missing_scope")
