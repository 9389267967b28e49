"""The admin's personas: a superuser, and staff who may only look."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client as BrowserClient


@pytest.fixture
def root(db, django_user_model) -> BrowserClient:
    """A superuser's browser that sends CSRF tokens only when a form gives it one."""
    browser = BrowserClient(enforce_csrf_checks=True)
    browser.force_login(django_user_model.objects.create_superuser("root", "r@localhost", "pw"))
    return browser


@pytest.fixture
def viewer(db, django_user_model) -> BrowserClient:
    """Staff who may look at images and tenants, not change them."""
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_image", "view_client"])
    )
    browser = BrowserClient()
    browser.force_login(user)
    return browser
