"""plate_detect's clients against Imago, unchanged (contract: legacy-contracts.md, section 1).

The live test is such a client: it knows only the contract's paths, fields and shapes, and sends
no credentials. The others check the edges with Django's test client: hostile values first.
"""

import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP

import django_rq
import httpx
import PIL.Image
import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from images.models import AnonymizeSettings, PlateTask, PlateTaskFile, WebhookAttempt
from images.plates.tasks import covered_name
from tests.helpers import Receiver, image_bytes, make_tenant, media_files, shared_data, upload_file
from tests.live import ROOT, live_server, live_worker

PLATE_PHOTO = "0b86cecf-67d1-4fc0-87c9-b36b0ee228bb.jpg"
STATUSES = {"pending", "processing", "completed", "failed"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    backend = Receiver()
    backend.start()
    yield backend
    backend.stop()


def form_parts(headers: dict[str, str], body: bytes) -> list[Message]:
    """The parts of a multipart/form-data body, each with its field name and filename."""
    head = f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode()
    return list(BytesParser(policy=HTTP).parsebytes(head + body).iter_parts())


def field_name(part: Message) -> str:
    return part.get_param("name", header="content-disposition")


def is_webp(data: bytes) -> bool:
    return data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def picture_bytes(fmt: str) -> bytes:
    buffer = io.BytesIO()
    PIL.Image.new("RGB", (320, 240), (40, 120, 200)).save(buffer, fmt)
    return buffer.getvalue()


# The whole flow, live -------------------------------------------------------------------------


def _create(base: str, files: list[tuple[str, bytes, str]]) -> str:
    answer = httpx.post(
        f"{base}/api/v1/process-task/",
        files=[("files", item) for item in files],
        timeout=60,
    )
    assert answer.status_code == 202, answer.text
    task_id = answer.json()["task_id"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", task_id)
    return task_id


def _poll(base: str, task_id: str) -> dict:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status = httpx.get(f"{base}/api/v1/task-status/{task_id}", timeout=30)
        assert status.status_code == 200, status.text
        body = status.json()
        assert body["task_id"] == task_id and body["status"] in STATUSES
        if body["status"] in ("completed", "failed"):
            return body
        time.sleep(0.5)
    pytest.fail("the task did not finish in 3 minutes")


def _wait_for(condition: object, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"waited {seconds} s for {what}")
        time.sleep(0.3)


def _run_cleanup_as_cron_does() -> None:
    """imago_site/cron.py queues images.jobs.cleanup_tasks on `low`; the live worker runs it."""
    job = django_rq.get_queue("low").enqueue("images.jobs.cleanup_tasks")
    _wait_for(lambda: job.get_status(refresh=True) == "finished", "the cleanup job")


@pytest.mark.slow
def test_a_plate_detect_client_runs_its_whole_flow_without_a_key(
    transactional_db, collected, tmp_path, receiver
):
    tenant = make_tenant("Legacy plates")
    env = {
        "PLATE_DETECT_CLIENT": tenant.client.slug,
        # plate_detect's README points the upload webhook at /api/images/upload.
        "BACKEND_UPLOAD_URL": f"{receiver.url}/api/images/upload",
        "BACKEND_CALLBACK_URL": f"{receiver.url}/callback",
        "TASK_STORAGE_TTL_HOURS": "2",
        # The receiver is on loopback: only the operator's own targets may go there.
        "OUTBOUND_ALLOWED_HOSTS": "",
        "AI_FETCH_ALLOWED_HOSTS": "",
    }
    files = [
        ("car1.jpg", (shared_data("plates", "us") / PLATE_PHOTO).read_bytes(), "image/jpeg"),
        ("car2.png", picture_bytes("PNG"), "image/png"),
        ("car3.webp", picture_bytes("WEBP"), "image/webp"),
    ]
    with live_server(collected, tmp_path, **env) as base, live_worker(collected, tmp_path, **env):
        task_id = _create(base, files)
        done = _poll(base, task_id)
        assert done["status"] == "completed"
        names = sorted(result["filename"] for result in done["results"])
        assert names == ["covered_car1.webp", "covered_car2.webp", "covered_car3.webp"]
        for result in done["results"]:
            assert result["url"] == f"/tasks_storage/{task_id}/output/{result['filename']}"
            fetched = httpx.get(base + result["url"], timeout=30)
            assert fetched.status_code == 200 and is_webp(fetched.content)

        _wait_for(lambda: receiver.at("/api/images/upload") and receiver.at("/callback"), "hooks")
        [(headers, body)] = receiver.at("/api/images/upload")
        parts = form_parts(headers, body)
        [task_part] = [p for p in parts if field_name(p) == "task_id"]
        assert task_part.get_payload(decode=True).decode() == task_id
        images = [p for p in parts if field_name(p) == "images"]
        assert sorted(p.get_filename() for p in images) == names
        assert all(is_webp(p.get_payload(decode=True)) for p in images)
        [(_, notice)] = receiver.at("/callback")
        assert json.loads(notice)["task_id"] == task_id

        # TASK_STORAGE_TTL_HOURS set the lifetime; the clock is moved past it, not waited for.
        task = PlateTask.objects.get(uuid=task_id)
        lifetime = task.expires_at - task.created_at
        assert abs(lifetime - timedelta(hours=2)) < timedelta(seconds=5)
        PlateTask.objects.filter(pk=task.pk).update(expires_at=timezone.now())
        _run_cleanup_as_cron_does()
        assert httpx.get(f"{base}/api/v1/task-status/{task_id}", timeout=30).status_code == 410
        gone = httpx.get(base + done["results"][0]["url"], timeout=30)
        assert (gone.status_code, gone.json()["code"]) == (410, "task_expired")
        assert not [p for p in media_files() if task_id in str(p)]


# Keyless requests -----------------------------------------------------------------------------


def _keyless_task(*files: tuple[str, bytes]):
    payload = {"files": [upload_file(name, data) for name, data in files]}
    return APIClient().post("/api/v1/process-task/", payload, format="multipart")


def test_keyless_requests_answer_401_when_no_tenant_is_named(owner, settings):
    settings.PLATE_DETECT_CLIENT = ""
    response = _keyless_task(("a.png", image_bytes("PNG")))
    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")
    assert not PlateTask.objects.exists()


def test_a_name_that_is_no_active_tenant_lets_nobody_in(owner, settings):
    settings.PLATE_DETECT_CLIENT = "no-such-tenant"
    assert _keyless_task(("a.png", image_bytes("PNG"))).status_code == 401
    owner.client.is_active = False
    owner.client.save()
    settings.PLATE_DETECT_CLIENT = owner.client.slug
    assert _keyless_task(("a.png", image_bytes("PNG"))).status_code == 401


def test_keyless_requests_act_as_the_named_tenant_on_plate_detects_routes(owner, settings):
    settings.PLATE_DETECT_CLIENT = owner.client.slug
    for path in ("/api/v1/process-task/", "/api/v1/process-task"):
        payload = {"files": [upload_file("a.png", image_bytes("PNG"))]}
        response = APIClient().post(path, payload, format="multipart")
        assert response.status_code == 202
    assert set(PlateTask.objects.values_list("client", flat=True)) == {owner.client.pk}
    task_id = PlateTask.objects.first().uuid
    assert APIClient().get(f"/api/v1/task-status/{task_id}").json()["status"] == "pending"


@pytest.mark.parametrize(
    "path",
    ["/api/v1/images/", "/api/v1/anonymize/settings", "/api/v1/detect/history", "/api/v1/"],
)
def test_keyless_requests_are_refused_everywhere_else(owner, settings, path):
    settings.PLATE_DETECT_CLIENT = owner.client.slug
    response = APIClient().get(path)
    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")


@pytest.mark.parametrize(
    "headers",
    [{"HTTP_X_API_KEY": "imago_wrong"}, {"HTTP_AUTHORIZATION": "Bearer something"}],
)
def test_a_wrong_credential_is_never_taken_for_no_credential(owner, settings, headers):
    settings.PLATE_DETECT_CLIENT = owner.client.slug
    payload = {"files": [upload_file("a.png", image_bytes("PNG"))]}
    response = APIClient().post("/api/v1/process-task/", payload, format="multipart", **headers)
    assert response.status_code == 401
    assert not PlateTask.objects.exists()


def test_keyless_callers_see_only_the_named_tenants_tasks(owner, other, settings, run_jobs):
    settings.PLATE_DETECT_CLIENT = owner.client.slug
    payload = {"files": [upload_file("a.png", image_bytes("PNG"))]}
    theirs = other.api.post("/api/v1/process-task/", payload, format="multipart").json()["task_id"]
    run_jobs()
    [result] = other.api.get(f"/api/v1/task-status/{theirs}").json()["results"]
    assert other.api.get(result["url"]).status_code == 200
    for path in (f"/api/v1/task-status/{theirs}", result["url"]):
        response = APIClient().get(path)
        assert (response.status_code, response.json()["code"]) == (404, "not_found")
        assert owner.api.get(path).status_code == 404


# Result paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("../../etc/passwd.jpg", "covered_passwd.webp"),
        ("a b?#%&.png", "covered_a_b.webp"),
        ("..", "covered_image_3.webp"),
        ("", "covered_image_3.webp"),
        ("C:\\photos\\car.jpg", "covered_Cphotoscar.webp"),
        ("x" * 300 + ".jpg", f"covered_{'x' * 80}.webp"),
        ("voiture-été.jpeg", "covered_voiture-été.webp"),
    ],
)
def test_result_names_are_safe_in_a_path(filename, expected):
    assert covered_name(PlateTaskFile(position=3, filename=filename)) == expected


def test_hostile_and_repeated_names_give_distinct_fetchable_results(owner, run_jobs):
    names = ["../../x.png", "x.png", "x.png", "a b?#.png", "été.png"]
    payload = {"files": [upload_file(name, image_bytes("PNG")) for name in names]}
    task_id = owner.api.post("/api/v1/process-task/", payload, format="multipart").json()["task_id"]
    run_jobs()
    results = owner.api.get(f"/api/v1/task-status/{task_id}").json()["results"]
    # The multipart parser already drops directories from a part's filename.
    assert [r["source_filename"] for r in results] == ["x.png", *names[1:]]
    assert len({r["url"] for r in results}) == len(names)
    for result in results:
        assert result["url"].startswith(f"/tasks_storage/{task_id}/output/covered_")
        response = owner.api.get(result["url"], HTTP_ACCEPT="image/webp")
        assert response.status_code == 200 and response["Content-Type"] == "image/webp"
        assert is_webp(b"".join(response.streaming_content))


@pytest.mark.parametrize(
    "path",
    [
        "/tasks_storage/not-a-uuid/output/covered_a.webp",
        "/tasks_storage/4f1c2a9e-0000-4000-8000-000000000000/output/covered_a.webp",  # no task
        "/tasks_storage/{task}/output/in_0.png",  # the input, not a result
        "/tasks_storage/{task}/output/..%2Fin_0.png",
        "/tasks_storage/{task}/output/covered_nothing.webp",
        "/tasks_storage/{task}/input/covered_a.webp",
    ],
)
def test_anything_but_a_result_answers_a_json_404(owner, run_jobs, path):
    payload = {"files": [upload_file("a.png", image_bytes("PNG"))]}
    task_id = owner.api.post("/api/v1/process-task/", payload, format="multipart").json()["task_id"]
    run_jobs()
    response = owner.api.get(path.replace("{task}", task_id))
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_results_answer_410_once_the_task_expired(owner, run_jobs):
    payload = {"files": [upload_file("a.png", image_bytes("PNG"))]}
    task_id = owner.api.post("/api/v1/process-task/", payload, format="multipart").json()["task_id"]
    run_jobs()
    [result] = owner.api.get(f"/api/v1/task-status/{task_id}").json()["results"]
    PlateTask.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    for _ in range(2):  # before the cleanup, and after it purged the files
        response = owner.api.get(result["url"])
        assert (response.status_code, response.json()["code"]) == (410, "task_expired")
        call_command("cleanup_tasks")
    assert media_files() == []


# Webhooks -------------------------------------------------------------------------------------


def test_the_operators_targets_are_used_and_may_be_internal(owner, settings, run_jobs, receiver):
    settings.PLATE_DETECT_CLIENT = owner.client.slug
    settings.BACKEND_UPLOAD_URL = f"{receiver.url}/api/images/upload"
    settings.BACKEND_CALLBACK_URL = f"{receiver.url}/callback"
    settings.OUTBOUND_ALLOWED_HOSTS = settings.AI_FETCH_ALLOWED_HOSTS = []
    task_id = _keyless_task(("car.png", image_bytes("PNG")), ("bus.png", image_bytes("PNG")))
    task_id = task_id.json()["task_id"]
    run_jobs()
    [(headers, body)] = receiver.at("/api/images/upload")
    parts = form_parts(headers, body)
    assert [field_name(p) for p in parts] == ["task_id", "images", "images"]
    assert [p.get_filename() for p in parts[1:]] == ["covered_car.webp", "covered_bus.webp"]
    assert {p.get_content_type() for p in parts[1:]} == {"image/webp"}
    [(_, notice)] = receiver.at("/callback")
    notice = json.loads(notice)
    assert (notice["task_id"], notice["status"]) == (task_id, "completed")
    assert notice["results"][0]["url"] == f"/tasks_storage/{task_id}/output/covered_car.webp"


def test_a_failed_task_sends_its_notice_and_no_upload(owner, settings, run_jobs, receiver):
    settings.PLATE_DETECT_CLIENT = owner.client.slug
    settings.BACKEND_UPLOAD_URL = f"{receiver.url}/api/images/upload"
    settings.BACKEND_CALLBACK_URL = f"{receiver.url}/callback"
    task_id = _keyless_task(("notes.txt", b"hello")).json()["task_id"]
    run_jobs()
    assert [path for path, _, _ in receiver.received] == ["/callback"]
    notice = json.loads(receiver.received[0][2])
    assert (notice["task_id"], notice["status"]) == (task_id, "failed")
    [result] = notice["results"]
    assert (result["filename"], result["url"], result["error"]["code"]) == (
        "notes.txt",
        None,
        "not_an_image",
    )
    assert PlateTask.objects.get().delivered_at is not None


def test_a_tenants_own_targets_win_and_stay_guarded(owner, other, settings, run_jobs, receiver):
    settings.PLATE_DETECT_CLIENT = owner.client.slug
    settings.BACKEND_CALLBACK_URL = f"{receiver.url}/operator"
    settings.OUTBOUND_ALLOWED_HOSTS = settings.AI_FETCH_ALLOWED_HOSTS = []
    # Saved before the guard existed, or by hand: the guard still stops it when sending.
    AnonymizeSettings.objects.create(client=owner.client, callback_url=f"{receiver.url}/tenant")
    AnonymizeSettings.objects.create(
        client=other.client, callback_url=settings.BACKEND_CALLBACK_URL
    )
    _keyless_task(("a.png", image_bytes("PNG")))
    payload = {"files": [upload_file("a.png", image_bytes("PNG"))]}
    other.api.post("/api/v1/process-task/", payload, format="multipart")
    run_jobs()
    assert receiver.received == []
    errors = set(WebhookAttempt.objects.values_list("error", flat=True))
    assert errors and all(error.startswith("blocked_address") for error in errors)
    response = owner.api.patch(
        "/api/v1/anonymize/settings", {"callback_url": f"{receiver.url}/x"}, format="json"
    )
    assert response.status_code == 400


def test_a_request_cannot_point_the_operators_trust_elsewhere(owner, settings, run_jobs, receiver):
    settings.PLATE_DETECT_CLIENT = owner.client.slug
    settings.BACKEND_CALLBACK_URL = f"{receiver.url}/operator"
    settings.OUTBOUND_ALLOWED_HOSTS = settings.AI_FETCH_ALLOWED_HOSTS = []
    payload = {
        "files": [upload_file("a.png", image_bytes("PNG"))],
        "callback_url": f"{receiver.url}/elsewhere",
    }
    response = APIClient().post("/api/v1/process-task/", payload, format="multipart")
    assert (response.status_code, response.json()["code"]) == (400, "blocked_address")
    assert not PlateTask.objects.exists()


# Settings under plate_detect's names ----------------------------------------------------------

SETTINGS = ["TASK_TTL_HOURS", "MAX_UPLOAD_FILES", "MAX_UPLOAD_BYTES", "REDIS_URL"]
LEGACY = {
    "TASK_STORAGE_TTL_HOURS": "5",
    "MAX_FILES_PER_REQUEST": "7",
    "MAX_FILE_SIZE_BYTES": "1000",
    "REDIS_HOST": "redis",
    "REDIS_PORT": "6390",
}
OURS = {
    "TASK_TTL_HOURS": "1",
    "MAX_UPLOAD_FILES": "2",
    "MAX_UPLOAD_BYTES": "3",
    "REDIS_URL": "redis://ours:6379/3",
}


def _settings_in_a_process(**env: str) -> subprocess.CompletedProcess:
    names = [*SETTINGS, "BACKEND_UPLOAD_URL"]
    script = f"from django.conf import settings; print([getattr(settings, n) for n in {names!r}])"
    clean = {k: v for k, v in os.environ.items() if k not in {*SETTINGS, *LEGACY}}
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", script],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
    )


def test_plate_detects_names_are_read_when_ours_are_unset():
    done = _settings_in_a_process(**LEGACY, BACKEND_UPLOAD_URL="http://backend:8001/up")
    assert done.stdout.strip() == str(
        [5, 7, 1000, "redis://redis:6390/0", "http://backend:8001/up"]
    )
    done = _settings_in_a_process(**LEGACY, **OURS)
    assert done.stdout.strip() == str([1, 2, 3, "redis://ours:6379/3", ""])


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://backend/", "http://b/" + "x" * 200])
def test_an_operator_target_that_cannot_be_sent_stops_the_start(url):
    done = _settings_in_a_process(BACKEND_UPLOAD_URL=url)
    assert done.returncode != 0 and "BACKEND_UPLOAD_URL must be an http(s) URL" in done.stderr
