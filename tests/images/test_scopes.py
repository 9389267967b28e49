"""Scopes are declared one way: by HTTP method (or one list for every method), as Scope members."""

from collections.abc import Iterator

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from images.models import Client, Scope
from tests.helpers import image_bytes, make_tenant, upload

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def _views(patterns: list | None = None) -> Iterator[tuple[str, type[APIView], list[str]]]:
    """Each API route's view class and the HTTP methods it answers (HEAD and OPTIONS aside)."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            yield from _views(entry.url_patterns)
        elif isinstance(entry, URLPattern) and hasattr(entry.callback, "cls"):
            view = entry.callback.cls
            actions = getattr(entry.callback, "actions", None)
            methods = actions or {m.lower(): m for m in METHODS if hasattr(view, m.lower())}
            answered = sorted(m.upper() for m in methods if m.upper() in METHODS)
            yield str(entry.pattern), view, answered


# One route per view and methods (the router adds a `.json` twin to each of its routes).
API_VIEWS = list(
    {(view, tuple(methods)): (route, view, methods) for route, view, methods in _views()}.values()
)


@pytest.mark.parametrize(("route", "view", "methods"), API_VIEWS, ids=[r for r, _, _ in API_VIEWS])
def test_every_method_a_view_answers_names_its_scopes(route, view, methods):
    scopes = getattr(view, "required_scopes", None)
    if scopes is None:  # views with their own permission (public routes, Robotoff's)
        return
    by_method = scopes if isinstance(scopes, dict) else dict.fromkeys(methods, scopes)
    assert set(by_method) <= METHODS, f"{view.__name__}: scopes by action, not by method"
    assert set(methods) <= set(by_method), f"{view.__name__} leaves a method to `admin`"
    for named in by_method.values():
        assert all(isinstance(scope, Scope) for scope in named), f"{view.__name__}: {named}"


@pytest.fixture
def reader_image(db) -> tuple:
    """A tenant's image, and the tenant's key once its scopes are narrowed to images:read."""
    tenant = make_tenant("Reader Co")
    image_id = upload(tenant.api, ("a.png", image_bytes("PNG"))).json()["images"][0]["id"]
    Client.objects.filter(pk=tenant.client.pk).update(scopes=[Scope.IMAGES_READ])
    return tenant.api, image_id


@pytest.mark.parametrize("path", ["/api/v1/images/{}/", "/api/v1/images/{}/anonymize/"])
def test_a_read_key_may_ask_head_wherever_it_may_get(reader_image, path):
    api, image_id = reader_image
    assert api.get(path.format(image_id)).status_code == 200
    assert api.head(path.format(image_id)).status_code == 200


def test_a_read_key_may_not_write_nor_delete(reader_image):
    api, image_id = reader_image
    covered = api.post(f"/api/v1/images/{image_id}/anonymize/", {}, format="json")
    assert (covered.status_code, covered.json()["code"]) == (403, "missing_scope")
    deleted = api.delete(f"/api/v1/images/{image_id}/")
    assert (deleted.status_code, deleted.json()["code"]) == (403, "missing_scope")
    assert "images:delete" in deleted.json()["detail"]
