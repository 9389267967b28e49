"""An ObjectVision client, written from its contract alone (legacy-contracts.md, section 2),
against a live Imago server and worker: only the base URL differs from its own backend.

signup → login (form) → bearer → users/{id} read and renamed → detect/image with `image` → jobs →
health routes → history limit/offset → annotated JPEG → refresh → logout → the refresh token
refused.
"""

import base64
import io
import json
import time
import uuid
from collections.abc import Iterator

import PIL.Image
import pytest
import requests

from tests.helpers import shared_data
from tests.live import live_server, live_worker

pytestmark = pytest.mark.slow  # a live server and worker

PHOTOS = [
    "0b86cecf-67d1-4fc0-87c9-b36b0ee228bb.jpg",
    "12c6cb72-3ea3-49e7-b381-e0cdfc5e8960.jpg",
]
PASSWORD = "a long enough password"
# The contract's own variable names, as an ObjectVision deployment sets them.
LEGACY_ENV = {
    "OBJECTVISION_SIGNUP": "true",
    "JWT_SECRET_KEY": "objectvision-secret-for-tests",
    "ACCESS_TOKEN_EXPIRE_MINUTES": "5",
    "REFRESH_TOKEN_EXPIRE_DAYS": "2",
}


@pytest.fixture
def base(transactional_db, collected, tmp_path) -> Iterator[str]:
    with (
        live_server(collected, tmp_path, **LEGACY_ENV) as url,
        live_worker(collected, tmp_path, **LEGACY_ENV),
    ):
        yield url


def _photos() -> list[bytes]:
    return [shared_data("plates", "us", name).read_bytes() for name in PHOTOS]


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _finished(base: str, headers: dict, detection_id: str) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = requests.get(f"{base}/api/v1/detect/jobs/{detection_id}", headers=headers)
        assert job.status_code == 200, job.text
        if job.json()["status"] not in ("pending", "processing", "PENDING", "PROCESSING"):
            return job.json()
        time.sleep(0.5)
    pytest.fail(f"detection {detection_id} did not finish")


def test_an_objectvision_client_runs_its_whole_flow(base):
    signup = requests.post(
        f"{base}/api/v1/auth/signup",
        json={"email": "ada@example.com", "password": PASSWORD, "name": "Ada"},
    )
    assert signup.status_code == 201, signup.text
    user = signup.json()
    assert user["email"] == "ada@example.com" and "password" not in user

    login = requests.post(  # a form, not JSON; the email goes in `username`
        f"{base}/api/v1/auth/login", data={"username": "ada@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    tokens = login.json()
    assert tokens["token_type"] == "bearer"
    claims = _claims(tokens["access_token"])
    assert claims["sub"] == str(uuid.UUID(user["id"]))
    assert 0 < claims["exp"] - time.time() <= 5 * 60
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    _check_user(base, bearer, user)

    detection_ids = []
    for n, photo in enumerate(_photos()):
        sent = requests.post(
            f"{base}/api/v1/detect/image",
            headers=bearer,
            files={"image": (f"photo{n}.jpg", photo, "image/jpeg")},
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["status"] == "processing"
        detection_ids.append(sent.json()["detection_id"])
        assert _finished(base, bearer, detection_ids[-1])["status"] == "completed"

    _check_health(base)
    history = requests.get(f"{base}/api/v1/detect/history", headers=bearer).json()
    assert (history["total"], history["limit"], history["offset"]) == (2, 10, 0)
    pages = [
        requests.get(
            f"{base}/api/v1/detect/history", headers=bearer, params={"limit": 1, "offset": n}
        ).json()
        for n in (0, 1)
    ]
    assert [(p["total"], p["limit"], p["offset"], len(p["items"])) for p in pages] == [
        (2, 1, 0, 1),
        (2, 1, 1, 1),
    ]
    # Newest first; item field names are not specified: the detection's id is one of them.
    newest, oldest = pages[0]["items"][0], pages[1]["items"][0]
    assert detection_ids[1] in newest.values() and detection_ids[0] in oldest.values()

    picture = requests.get(f"{base}/api/v1/detect/{detection_ids[0]}/image", headers=bearer)
    assert picture.status_code == 200
    assert picture.headers["Content-Type"] == "image/jpeg"
    assert picture.headers["Content-Disposition"] == f"inline; filename={detection_ids[0]}.jpg"
    assert PIL.Image.open(io.BytesIO(picture.content)).format == "JPEG"

    refreshed = requests.post(
        f"{base}/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    bearer = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    assert requests.get(f"{base}/api/v1/detect/history", headers=bearer).status_code == 200

    logout = requests.post(
        f"{base}/api/v1/auth/logout",
        headers=bearer,
        json={"refresh_token": tokens["refresh_token"]},
    )
    assert logout.status_code == 200, logout.text
    again = requests.post(
        f"{base}/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert again.status_code == 401
    assert requests.get(f"{base}/api/v1/detect/history").status_code == 401


def _check_user(base: str, bearer: dict, user: dict) -> None:
    url = f"{base}/api/v1/users/{user['id']}"
    assert requests.get(url, headers=bearer).json()["email"] == "ada@example.com"
    renamed = requests.patch(url, headers=bearer, json={"name": "Ada Lovelace"})
    assert renamed.status_code == 200, renamed.text
    assert requests.get(url, headers=bearer).json()["name"] == "Ada Lovelace"
    other = requests.get(f"{base}/api/v1/users/{uuid.uuid4()}", headers=bearer)
    assert other.status_code in (403, 404)


def _check_health(base: str) -> None:
    """No auth, no prefix; the worker that ran the detections is listed by name."""
    assert requests.get(f"{base}/health").json()["status"] == "ok"
    for part in ("database", "redis"):
        assert requests.get(f"{base}/health/{part}").json() == {"status": "ok", part: "connected"}
    workers = requests.get(f"{base}/health/celery").json()
    assert workers["status"] == "ok" and workers["workers"], workers
