"""Whom a request acts for: a key for its own tenant, staff for the one they name (?client=)."""

import pytest
from django.contrib.auth.models import AnonymousUser
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from images.models import ApiKey, Image
from images.tenancy.auth import ClientPrincipal
from images.tenancy.selectors import for_tenant, request_client, tenant_of
from kit.errors import DomainError
from tests.helpers import image_bytes, upload_file


def _request(user: object, query: str = "") -> Request:
    request = Request(APIRequestFactory().get(f"/api/v1/images/{query}"))
    request.user = user
    return request


def _key(tenant) -> ClientPrincipal:
    return ClientPrincipal(client=tenant.client, api_key=None)


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("op", password="pw", is_staff=True)


@pytest.mark.django_db
def test_a_key_acts_for_its_own_tenant_whatever_client_it_names(owner, other):
    request = _request(_key(owner), f"?client={other.client.slug}")
    assert tenant_of(request) == owner.client
    assert set(for_tenant(request, ApiKey.objects.all())) == set(owner.client.api_keys.all())


@pytest.mark.django_db
def test_staff_act_for_the_client_they_name_by_slug_or_id(staff, owner, other):
    assert tenant_of(_request(staff, f"?client={owner.client.slug}")) == owner.client
    by_id = _request(staff, f"?client={other.client.pk}")
    assert tenant_of(by_id) == other.client
    assert set(for_tenant(by_id, ApiKey.objects.all())) == set(other.client.api_keys.all())


@pytest.mark.django_db
def test_staff_naming_no_client_see_every_tenant_but_cannot_act_for_one(staff, owner, other):
    request = _request(staff)
    assert request_client(request) is None
    assert for_tenant(request, ApiKey.objects.all()).count() == 2
    with pytest.raises(DomainError) as refused:
        tenant_of(request)
    assert (refused.value.code, refused.value.status) == ("client_required", 400)


@pytest.mark.django_db
def test_staff_naming_an_unknown_client_are_refused(staff, owner):
    for unknown in ("no-such-co", "999999", "not a slug"):
        with pytest.raises(DomainError) as refused:
            request_client(_request(staff, f"?client={unknown}"))
        assert (refused.value.code, refused.value.status) == ("unknown_client", 400)


@pytest.mark.django_db
def test_a_caller_neither_tenant_nor_staff_sees_nothing_and_acts_for_no_one(owner):
    request = _request(AnonymousUser(), f"?client={owner.client.slug}")
    assert not for_tenant(request, ApiKey.objects.all()).exists()
    with pytest.raises(DomainError):
        tenant_of(request)


def _png() -> object:
    return upload_file("a.png", image_bytes("PNG"))


# Every route that stores something for a tenant: staff must say which.
TENANT_WRITES = [
    ("post", "/api/v1/images/", lambda: {"file": _png()}),
    ("post", "/api/v1/process-task/", lambda: {"files": [_png()]}),
    ("post", "/api/v1/detect/image", lambda: {"file": _png()}),
    ("post", "/api/v1/detect/batch", lambda: {"files": [_png()]}),
    ("post", "/api/v1/detect/models", lambda: {"name": "mine", "file": _png()}),
    ("post", "/api/v1/insights/import", lambda: {"file": upload_file("a.jsonl", b"{}\n")}),
    ("get", "/api/v1/anonymize/settings", lambda: {}),
    ("patch", "/api/v1/anonymize/settings", lambda: {"mode": "blur"}),
    ("put", "/api/v1/anonymize/stub", lambda: {"file": _png()}),
    ("delete", "/api/v1/anonymize/stub", lambda: {}),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "data"), TENANT_WRITES)
def test_staff_must_name_the_client_they_act_for(operator, method, path, data):
    response = getattr(operator, method)(path, data(), format="multipart")
    assert (response.status_code, response.json()["code"]) == (400, "client_required")
    assert not Image.objects.exists()
