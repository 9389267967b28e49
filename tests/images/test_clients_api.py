import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from images.models import ApiKey, Client

pytestmark = pytest.mark.django_db


def test_an_admin_creates_a_client_and_sees_its_key_once(admin_tenant):
    response = admin_tenant.api.post(
        "/api/v1/clients/",
        {"name": "Acme Photos", "plan": "premium", "scopes": ["images:read"]},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["slug"] == "acme-photos"
    assert body["plan"] == "premium"
    assert body["key"].startswith("imago_")
    detail = admin_tenant.api.get(f"/api/v1/clients/{body['id']}/").json()
    assert "key" not in detail
    assert detail["key_prefixes"] == [body["key"][:14]]
    api = APIClient()
    api.credentials(HTTP_X_API_KEY=body["key"])
    assert api.get("/api/v1/images/").status_code == 200


def test_it_rejects_unknown_scopes(admin_tenant):
    response = admin_tenant.api.post(
        "/api/v1/clients/", {"name": "X", "scopes": ["root"]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "scopes" in response.json()["errors"]


def test_an_admin_updates_quotas(admin_tenant, owner):
    response = admin_tenant.api.patch(
        f"/api/v1/clients/{owner.client.pk}/", {"image_quota": 10}, format="json"
    )
    assert response.status_code == 200
    owner.client.refresh_from_db()
    assert owner.client.image_quota == 10


def test_delete_deactivates_instead_of_deleting(admin_tenant, owner):
    response = admin_tenant.api.delete(f"/api/v1/clients/{owner.client.pk}/")
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert Client.objects.filter(pk=owner.client.pk, is_active=False).exists()
    assert owner.api.get("/api/v1/images/").status_code == 401


def test_rotate_key_shows_the_new_key_once(admin_tenant, owner):
    response = admin_tenant.api.post(f"/api/v1/clients/{owner.client.pk}/rotate-key/")
    assert response.status_code == 200
    new_key = response.json()["key"]
    assert ApiKey.objects.filter(client=owner.client, revoked_at__isnull=True).count() == 1
    assert owner.api.get("/api/v1/images/").status_code == 401
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {new_key}")
    assert api.get("/api/v1/images/").status_code == 200


def test_a_tenant_without_admin_scope_cannot_manage_clients(owner):
    assert owner.api.get("/api/v1/clients/").status_code == 403
    assert owner.api.post("/api/v1/clients/", {"name": "x"}).status_code == 403


def test_create_client_command_prints_json(capsys, db):
    call_command("create_client", "Command Co", "--plan", "premium", "--scopes", "all", "--json")
    created = json.loads(capsys.readouterr().out)
    assert set(created) == {"id", "slug", "key"}
    client = Client.objects.get(pk=created["id"])
    assert client.plan == "premium"
    assert "admin" not in client.scopes  # only when named (tests/security)


def test_createsuperuser_reads_the_standard_environment(monkeypatch, django_user_model):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "ops")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-password")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "ops@example.com")
    call_command("createsuperuser", "--noinput")
    assert django_user_model.objects.get(username="ops").check_password("a-long-password")
