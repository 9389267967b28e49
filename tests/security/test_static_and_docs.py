"""Stylesheets, API docs and the favicon come from this server, with DEBUG off, in every mode."""

import re
from pathlib import Path

import pytest
import yaml
from django.test import Client as HttpClient

import imago_site.settings as configured

ROOT = Path(__file__).resolve().parents[2]
# The areas the API docs group operations under, in the order they are listed.
TAGS = {"images", "detection", "plates", "ai", "insights", "questions", "clients", "users"}


@pytest.fixture
def web(db) -> HttpClient:
    return HttpClient()


def test_the_admin_stylesheet_is_served_with_debug_off(web, settings):
    assert settings.DEBUG is False
    response = web.get("/static/admin/css/base.css")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")


def test_deployments_collect_hashed_compressed_static_files():
    staticfiles = configured.STORAGES["staticfiles"]["BACKEND"]
    assert staticfiles == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert "whitenoise.middleware.WhiteNoiseMiddleware" in configured.MIDDLEWARE
    makefile = (ROOT / "Makefile").read_text()
    run = makefile[makefile.index("\nrun: ") : makefile.index("\nworker: ")]
    assert run.index("collectstatic --noinput") < run.index("runserver")
    assert "manage.py collectstatic --noinput" in (ROOT / "Dockerfile").read_text()
    # The image's collected files are what gunicorn serves: compose must not hide them.
    web = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["web"]
    assert not any("staticfiles" in volume for volume in web.get("volumes", []))
    assert "staticfiles" in (ROOT / ".dockerignore").read_text().split()


def external_references(html: str) -> list[str]:
    """Every src or href that leaves this server (another host, or a protocol-relative URL)."""
    return [
        url
        for url in re.findall(r'(?:src|href)=["\']([^"\']+)', html)
        if re.match(r"(https?:)?//", url)
    ]


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_the_api_docs_load_nothing_from_another_host(web, page):
    response = web.get(page)
    assert response.status_code == 200
    html = response.content.decode()
    assert external_references(html) == []
    assert "cdn." not in html
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', html)
    assert scripts, "the page names its scripts"
    for script in scripts:
        served = web.get(script.replace("&amp;", "&"))
        assert served.status_code == 200, script
        body = b"".join(served.streaming_content) if served.streaming else served.content
        assert b"cdn.jsdelivr.net" not in body, script


def test_the_front_door_leads_to_the_local_docs(web):
    response = web.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/api/docs/"


def test_every_operation_has_a_known_tag_and_a_summary(web, operator):
    schema = operator.get("/api/schema/", {"format": "json"}).json()
    untagged, unsummarised, used = [], [], set()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            name = f"{method.upper()} {path}"
            tags = operation.get("tags", [])
            if len(tags) != 1 or tags[0] not in TAGS:
                untagged.append(f"{name} {tags}")
            used.update(tags)
            if not operation.get("summary"):
                unsummarised.append(name)
    assert untagged == []
    assert unsummarised == []
    assert used == TAGS
    assert {tag["name"] for tag in schema["tags"]} == TAGS  # each described once


def test_the_favicon_answers_and_the_pages_link_it(web, operator):
    icon = web.get("/favicon.ico", follow=True)
    assert icon.status_code == 200
    assert icon["Content-Type"] in {"image/x-icon", "image/vnd.microsoft.icon"}
    admin_page = operator.get("/admin/").content.decode()
    assert re.search(r'<link rel="icon" href="/static/imago/favicon[^"]*\.ico"', admin_page)
    questions = web.get("/questions/").content.decode()
    assert re.search(r'<link rel="icon" href="/static/imago/favicon[^"]*\.ico"', questions)
