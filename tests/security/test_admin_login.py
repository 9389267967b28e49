"""The admin login locks a username out, from an address, after repeated failures (django-axes);
the lockout uses the same client address as everything else (TRUSTED_PROXIES)."""

import pytest
from django.test import Client as HttpClient

LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture
def staff(django_user_model):
    django_user_model.objects.create_user("ops", password="right-password", is_staff=True)
    django_user_model.objects.create_user("ana", password="her-password", is_staff=True)


def log_in(username: str, password: str, address: str = "203.0.113.7", **headers: str):
    return HttpClient().post(
        LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address, **headers
    )


def fail(times: int, username: str = "ops", address: str = "203.0.113.7", **headers: str):
    for _ in range(times):
        # The form again, or the lockout page from the failure that reaches the limit.
        assert log_in(username, "wrong", address, **headers).status_code in (200, 429)


@pytest.mark.django_db
def test_the_right_password_still_logs_in(staff):
    response = log_in("ops", "right-password")

    assert response.status_code == 302 and response["Location"] == "/admin/"


@pytest.mark.django_db
def test_repeated_failures_lock_the_user_out_even_with_the_right_password(staff, settings):
    fail(settings.AXES_FAILURE_LIMIT)

    response = log_in("ops", "right-password")

    assert response.status_code == 429
    assert "_auth_user_id" not in response.client.session


@pytest.mark.django_db
def test_another_user_is_not_locked_out(staff, settings):
    fail(settings.AXES_FAILURE_LIMIT)

    assert log_in("ana", "her-password").status_code == 302


@pytest.mark.django_db
def test_a_forged_forwarded_for_does_not_reset_the_count(staff, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        fail(1, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")

    assert log_in("ops", "right-password", HTTP_X_FORWARDED_FOR="192.0.2.1").status_code == 429


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_forwarded_client_is_locked_out_not_the_proxy(staff, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    fail(settings.AXES_FAILURE_LIMIT, address="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.1")

    elsewhere = log_in("ops", "right-password", "10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.2")
    locked = log_in("ops", "right-password", "10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.1")

    assert elsewhere.status_code == 302
    assert locked.status_code == 429
