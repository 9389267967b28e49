"""The admin's list of ObjectVision's users: search by email, their tenant, never a password."""

import pytest
from django.test import Client as BrowserClient

from images.compat.objectvision.models import Member
from images.models import Plan
from images.tenancy.services import client_create

CHANGELIST = "/admin/objectvision/member/"


@pytest.fixture
def staff(admin_client) -> BrowserClient:
    return admin_client


def _member(email: str, tenant: str, django_user_model) -> Member:
    client, _ = client_create(name=tenant, plan=Plan.FREE, with_key=False)
    user = django_user_model.objects.create_user(email, email=email, password="s3cret-pass-phrase")
    return Member.objects.create(user=user, client=client, email=email, name=email[:3])


@pytest.fixture
def members(db, django_user_model) -> list[Member]:
    return [
        _member("ada@example.com", "Analytical Co", django_user_model),
        _member("bob@example.com", "Builders Ltd", django_user_model),
    ]


def test_the_list_shows_each_user_with_its_tenant(staff, members):
    page = staff.get(CHANGELIST).content.decode()
    for email, tenant in [
        ("ada@example.com", "Analytical Co"),
        ("bob@example.com", "Builders Ltd"),
    ]:
        assert email in page and tenant in page


@pytest.mark.parametrize("query", ["ada", "ADA@EXAMPLE", "%00", "<script>", "x" * 5000])
def test_search_by_email_finds_only_matches(staff, members, query):
    response = staff.get(CHANGELIST, {"q": query})
    assert response.status_code == 200
    page = response.content.decode()
    assert "bob@example.com" not in page
    assert ("ada@example.com" in page) == query.lower().startswith("ada")
    assert "<script>" not in page


def test_the_change_page_shows_no_password(staff, members):
    page = staff.get(f"{CHANGELIST}{members[0].pk}/change/").content.decode()
    assert "ada@example.com" in page and "Analytical Co" in page
    assert 'name="password"' not in page and "argon2" not in page
    assert members[0].user.password not in page


def test_users_are_not_added_from_the_admin(staff, members):
    assert staff.get(f"{CHANGELIST}add/").status_code == 403


def test_a_non_staff_user_sees_nothing(members, django_user_model):
    user = django_user_model.objects.create_user("plain", password="pw")
    browser = BrowserClient()
    browser.force_login(user)
    assert browser.get(CHANGELIST).status_code == 302
