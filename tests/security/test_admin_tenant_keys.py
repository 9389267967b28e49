"""A tenant made in the admin gets a key that works, with scopes chosen from the real ones."""

import io
import re

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.test import Client as BrowserClient
from rest_framework.test import APIClient

from images.models import DEFAULT_SCOPES, ApiKey, Client, Scope
from images.tenancy.auth import hash_key

ADD = "/admin/images/client/add/"
# The inline formsets' management forms: none added on the add page.
NO_INLINES = {
    "api_keys-TOTAL_FORMS": "0",
    "api_keys-INITIAL_FORMS": "0",
    "anonymize-TOTAL_FORMS": "0",
    "anonymize-INITIAL_FORMS": "0",
}


@pytest.fixture
def root(db, django_user_model) -> BrowserClient:
    browser = BrowserClient()
    browser.force_login(django_user_model.objects.create_superuser("root", "r@localhost", "pw"))
    return browser


def add_tenant(browser: BrowserClient, slug: str, **form: object):
    data = {"name": slug.title(), "slug": slug, "plan": "free", "is_active": "on"}
    return browser.post(ADD, {**data, **NO_INLINES, **form}, follow=True)


def shown_key(response) -> str:
    [message] = [str(m) for m in get_messages(response.wsgi_request) if "New API key" in str(m)]
    return re.search(r"imago_[\w-]+", message).group()


def api(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_the_add_page_offers_a_checkbox_per_scope_with_the_full_tenant_ones_ticked(root):
    page = root.get(ADD).content.decode()
    for scope in Scope:
        assert re.search(rf'type="checkbox" name="scopes" value="{scope.value}"', page), scope
    ticked = set(re.findall(r'type="checkbox" name="scopes" value="([\w:]+)"[^>]*checked', page))
    assert ticked == {str(s) for s in DEFAULT_SCOPES}  # every tenant scope, never admin
    assert 'name="preset"' in page


def test_a_tenant_added_with_the_defaults_gets_a_key_that_works(root):
    defaults = [str(s) for s in DEFAULT_SCOPES]
    response = add_tenant(root, "ticked", scopes=defaults)
    assert response.status_code == 200
    assert Client.objects.get(slug="ticked").scopes == defaults
    key = shown_key(response)
    assert api(key).get("/api/v1/images/").status_code == 200


def test_a_mistyped_scope_is_refused_and_nothing_is_saved(root):
    response = add_tenant(root, "typo", scopes=["images:rea"])
    assert "images:rea is not one of the available choices" in response.content.decode()
    assert not Client.objects.filter(slug="typo").exists()


def test_no_scope_at_all_is_refused(root):
    response = add_tenant(root, "nothing")
    assert "Choose at least one scope" in response.content.decode()
    assert not Client.objects.filter(slug="nothing").exists()


def test_the_read_only_preset_gives_read_scopes_whatever_is_ticked(root):
    response = add_tenant(root, "reader", preset="read_only", scopes=["admin"])
    client = Client.objects.get(slug="reader")
    assert client.scopes == [Scope.IMAGES_READ, Scope.INSIGHTS_READ]
    key = shown_key(response)
    assert api(key).get("/api/v1/images/").status_code == 200
    assert api(key).delete("/api/v1/images/1/").status_code == 403


def test_the_full_tenant_preset_has_every_scope_but_admin(root):
    add_tenant(root, "full", preset="tenant")
    assert Client.objects.get(slug="full").scopes == [str(s) for s in DEFAULT_SCOPES]


@pytest.mark.django_db
def test_seed_demo_leaves_the_demo_key_as_the_only_active_one(monkeypatch):
    call_command("seed_demo", stdout=io.StringIO())
    demo = Client.objects.get(slug="demo")
    [active] = demo.api_keys.filter(revoked_at__isnull=True)
    assert active.key_hash == hash_key("imago_demo-key-change-me")

    # A new demo key replaces the old one rather than adding to it.
    monkeypatch.setenv("IMAGO_DEMO_KEY", "imago_another-demo-key")
    call_command("seed_demo", stdout=io.StringIO())
    [active] = demo.api_keys.filter(revoked_at__isnull=True)
    assert active.key_hash == hash_key("imago_another-demo-key")
    assert ApiKey.objects.filter(client=demo).count() == 3  # the others are kept, revoked
