import re

import pytest
from django.contrib.messages import get_messages
from django.test import Client as BrowserClient

from images.models import ApiKey, Client, PlateTask, WebhookAttempt
from tests.helpers import image_bytes, upload, upload_file


@pytest.fixture
def browser(db, django_user_model) -> BrowserClient:
    user = django_user_model.objects.create_superuser("root", "root@localhost", "pw")
    browser = BrowserClient()
    browser.force_login(user)
    return browser


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_creating_a_client_in_the_admin_shows_its_key_once(browser):
    response = browser.post(
        "/admin/images/client/add/",
        {
            "name": "Admin Made",
            "slug": "admin-made",
            "plan": "free",
            "scopes": ["images:read"],
            "is_active": "on",
            "api_keys-TOTAL_FORMS": "0",
            "api_keys-INITIAL_FORMS": "0",
            "anonymize-TOTAL_FORMS": "0",
            "anonymize-INITIAL_FORMS": "0",
        },
        follow=True,
    )
    assert response.status_code == 200
    [message] = [m for m in _messages(response) if "New API key" in m]
    client = Client.objects.get(slug="admin-made")
    key = ApiKey.objects.get(client=client)
    full_key = re.search(r"imago_[\w-]+", message).group()
    assert full_key.startswith(key.prefix)
    # Shown once: the change page afterwards has the prefix only.
    page = browser.get(f"/admin/images/client/{client.pk}/change/").content.decode()
    assert key.prefix in page
    assert full_key not in page


def test_the_rotate_and_deactivate_actions(browser, owner):
    pk = str(owner.client.pk)
    response = browser.post(
        "/admin/images/client/", {"action": "rotate_key", "_selected_action": [pk]}, follow=True
    )
    assert any("New API key" in m for m in _messages(response))
    assert owner.api.get("/api/v1/images/").status_code == 401
    browser.post("/admin/images/client/", {"action": "deactivate", "_selected_action": [pk]})
    owner.client.refresh_from_db()
    assert owner.client.is_active is False


def test_the_image_pages_show_thumbnails_exif_and_steps(browser, owner, run_jobs):
    path_data = image_bytes(size=(800, 600))
    created = upload(owner.api, ("a.jpg", path_data)).json()["images"][0]
    run_jobs()
    changelist = browser.get(f"/admin/images/image/?client__id__exact={owner.client.pk}")
    assert changelist.status_code == 200
    assert b"/files/signed/" in changelist.content
    detail = browser.get(f"/admin/images/image/{created['id']}/change/").content.decode()
    assert "/files/signed/" in detail
    assert "thumbnails" in detail and "done" in detail
    assert "field-exif_summary" in detail


def test_the_reprocess_action_queues_the_steps(browser, owner, run_jobs):
    created = upload(owner.api, ("a.jpg", image_bytes())).json()["images"][0]
    run_jobs()
    browser.post(
        "/admin/images/image/",
        {"action": "reprocess", "_selected_action": [str(created["id"])]},
    )
    assert owner.client.images.get().status == "pending"
    run_jobs()
    assert owner.client.images.get().status == "done"


def test_the_queue_dashboard_is_reachable(browser):
    assert browser.get("/admin/rq/").status_code == 200


def test_the_task_page_shows_before_and_after_and_retries_delivery(
    browser, owner, run_jobs, settings
):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]  # an intranet receiver, down
    response = owner.api.post(
        "/api/v1/process-task/",
        {
            "files": [upload_file("a.png", image_bytes("PNG"))],
            "callback_url": "http://127.0.0.1:9/down",
        },
        format="multipart",
    )
    assert response.status_code == 202
    run_jobs()
    task = PlateTask.objects.get()
    page = browser.get(f"/admin/images/platetask/{task.pk}/change/").content.decode()
    assert page.count("/files/signed/") == 2  # before and after
    assert "http://127.0.0.1:9/down" in page  # the failed attempts are listed
    attempts = WebhookAttempt.objects.count()
    browser.post(
        "/admin/images/platetask/", {"action": "retry_delivery", "_selected_action": [task.pk]}
    )
    run_jobs()
    assert WebhookAttempt.objects.count() > attempts
