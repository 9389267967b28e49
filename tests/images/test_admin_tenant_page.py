"""A tenant's admin page: its usage against quotas, links to its data, and a key rotation."""

import re

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import InsightFactory, PlateTaskFactory
from tests.images.admin_support import csrf_token, queries, result_count, stored


def page_of(tenant) -> str:
    return f"/admin/images/client/{tenant.client.pk}/change/"


def rotate_url(tenant) -> str:
    return f"/admin/images/client/{tenant.client.pk}/rotate-key/"


def api(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def rotate(root, tenant):
    confirmation = root.get(rotate_url(tenant))
    assert confirmation.status_code == 200
    return root.post(
        rotate_url(tenant), {"csrfmiddlewaretoken": csrf_token(confirmation)}, follow=True
    )


def with_data(tenant, *, images: int = 2, tasks: int = 1, insights: int = 3) -> None:
    for n in range(images):
        stored(tenant.client, size=1_500_000 * (n + 1))
    for _ in range(tasks):
        PlateTaskFactory(client=tenant.client, expires_at=timezone.now())
    for n in range(insights):
        InsightFactory(client=tenant.client, barcode=str(n))


def test_the_page_shows_usage_against_the_quotas(root, owner):
    owner.client.image_quota, owner.client.storage_quota_bytes = 10, 10_000_000
    owner.client.save()
    with_data(owner)
    page = root.get(page_of(owner)).content.decode()
    assert re.search(r'<meter min="0" max="10" value="2"[^>]*></meter>2 of 10', page)
    assert re.search(
        r'<meter min="0" max="10000000" value="4500000"[^>]*></meter>4.3\xa0MB of 9.5\xa0MB', page
    )
    assert "120 requests a minute (the free plan&#x27;s)" in page


def test_a_tenant_without_quotas_says_so(root, owner):
    page = root.get(page_of(owner)).content.decode()
    assert "0 <small>(no quota)</small>" in page and "<meter" not in page


def test_the_links_list_the_tenants_own_data_only(root, owner, other):
    with_data(owner, images=2, tasks=1, insights=3)
    with_data(other, images=4, tasks=2, insights=5)
    InsightFactory(client=owner.client, barcode="x", annotation=1)
    page = root.get(page_of(owner)).content.decode()
    links = dict(
        (label, (url.replace("&amp;", "&"), int(count)))
        for label, url, count in re.findall(
            r'<th>([^<]+)</th><td><a href="([^"]+)">(\d+)</a>', page
        )
    )
    assert {label: count for label, (_, count) in links.items()} == {
        "Images": 2,
        "Plate tasks": 1,
        "Detection jobs": 0,
        "Insights waiting for a decision": 3,
    }
    for url, count in links.values():
        assert result_count(root, url) == count, url


def test_the_page_reads_as_few_queries_whatever_the_tenant_stores(root, owner, other):
    with_data(owner, images=1, tasks=1, insights=1)
    with_data(other, images=20, tasks=5, insights=30)
    assert queries(root, page_of(other)) == queries(root, page_of(owner))


def test_rotating_the_key_refuses_the_old_one_and_shows_the_new_one_once(root, owner, other):
    page = root.get(page_of(owner)).content.decode()
    assert f'href="{rotate_url(owner)}"' in page
    response = rotate(root, owner)
    assert response.redirect_chain[-1][0] == page_of(owner)
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    key = re.search(r"imago_[\w-]+", message).group()
    assert key in response.content.decode()
    assert api(owner.key).get("/api/v1/images/").status_code == 401
    assert api(key).get("/api/v1/images/").status_code == 200
    assert key not in root.get(page_of(owner)).content.decode()  # shown once
    assert other.api.get("/api/v1/images/").status_code == 200  # another tenant's key: untouched


def test_the_confirmation_page_rotates_nothing(root, owner):
    page = root.get(rotate_url(owner)).content.decode()
    assert "Rotating revokes the 1 active key of" in page
    assert owner.api.get("/api/v1/images/").status_code == 200


def test_rotating_needs_the_pages_csrf_token(root, owner):
    assert root.post(rotate_url(owner)).status_code == 403
    assert owner.api.get("/api/v1/images/").status_code == 200


@pytest.mark.parametrize("object_id", ["abc", "99999999999999999999999", "-1", "0"])
def test_rotating_the_key_of_no_tenant_is_not_found(root, object_id):
    assert root.get(f"/admin/images/client/{object_id}/rotate-key/").status_code == 404


def test_staff_who_may_only_look_cannot_rotate(viewer, owner):
    assert viewer.get(page_of(owner)).status_code == 200
    assert viewer.get(rotate_url(owner)).status_code == 403
    assert viewer.post(rotate_url(owner)).status_code == 403
    assert owner.api.get("/api/v1/images/").status_code == 200


def test_the_add_page_has_no_usage_yet(root):
    page = root.get("/admin/images/client/add/").content.decode()
    assert page.count("field-usage") == 0 and 'id="rotate-key"' not in page
