"""Never silent, and the review loop: a result says what was covered and whether a person should
look; an operator corrects its boxes in the admin, the result is re-rendered from the original and
delivered again as a correction."""

import hashlib
import hmac
import io
import json
from datetime import timedelta

import numpy as np
import PIL.Image
import PIL.ImageDraw
import pytest
from django.contrib.auth.models import Permission
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from images.library import storage
from images.models import AnonymizeSettings, PlateTask, PlateTaskFile, WebhookAttempt
from images.plates.covering import rerender_picture
from images.plates.review import edit_parse
from tests.factories import PlateTaskFactory, PlateTaskFileFactory
from tests.helpers import image_bytes, shared_data, upload
from tests.images.test_anonymize_api import PLATE_PHOTO, _task
from tests.images.test_anonymize_api import receiver as receiver

PLATE = (935, 362, 1034, 411)  # the plate of PLATE_PHOTO, x1 y1 x2 y2
PAINTED = (925, 352, 1044, 421)  # grey paint over it: a car with no plate to find


@pytest.fixture
def plates_missed(settings) -> None:
    """Only sure plates count: the painted photo's car has none (the second look inside the car
    finds faint plate-like shapes at low confidence)."""
    settings.ANONYMIZE_CONFIDENCE = settings.ANONYMIZE_CROP_CONFIDENCE = 0.5


def _photo(*, painted: bool) -> bytes:
    with PIL.Image.open(shared_data("plates", "us") / PLATE_PHOTO) as opened:
        picture = opened.convert("RGB")
    if painted:
        PIL.ImageDraw.Draw(picture).rectangle(PAINTED, fill=(90, 90, 90))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def _pixels(data: bytes) -> np.ndarray:
    with PIL.Image.open(io.BytesIO(data)) as picture:
        return np.asarray(picture.convert("RGB")).astype(int)


def _stored(name: str) -> np.ndarray:
    with default_storage.open(name, "rb") as fp:
        return _pixels(fp.read())


def _region(pixels: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x1, y1, x2, y2 = box
    return pixels[y1:y2, x1:x2]


@pytest.fixture
def reviewer(db, django_user_model) -> APIClient:
    """Staff with the review permission (and the view permission the admin pages need)."""
    user = django_user_model.objects.create_user("reviewer", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["review_covering", "view_platetaskfile", "view_image"]
        )
    )
    api = APIClient()
    api.force_login(user)
    return api


def _review(api: APIClient, row: PlateTaskFile, **data: str):
    return api.post(f"/admin/images/platetaskfile/{row.pk}/change/", data)


def _boxes(keep: list[int], add: list[list[float]]) -> str:
    return json.dumps({"keep": keep, "add": add})


def _covered_row(tenant, *, size: tuple[int, int] = (400, 200)) -> PlateTaskFile:
    """A covered task file made without the models: a red patch, covered by one region."""
    task = PlateTaskFactory(client=tenant.client, mode="solid", total=1)
    picture = PIL.Image.new("RGB", size, (40, 120, 200))
    PIL.ImageDraw.Draw(picture).rectangle((100, 50, 199, 99), fill=(255, 0, 0))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    source = storage.save_bytes(f"{task.storage_dir}/in_0.png", buffer.getvalue())
    region = [[100.0, 50.0], [200.0, 50.0], [200.0, 100.0], [100.0, 100.0]]
    covered = rerender_picture(picture, client=tenant.client, mode="solid", regions=[region])
    result = storage.save_bytes(f"{task.storage_dir}/out_0_patch.webp", covered.data)
    return PlateTaskFileFactory(
        task=task,
        position=0,
        filename="patch.png",
        source_file=source,
        result_file=result,
        plates=1,
        regions=covered.regions,
        plate_confidences=[0.12],
        needs_review=True,
        review_reasons=["low_confidence"],
    )


# Never silent -----------------------------------------------------------------------------


def test_a_vehicle_without_a_found_plate_needs_review(owner, run_jobs, plates_missed):
    task_id = _task(owner.api, ("van.png", _photo(painted=True)), mode="solid").json()["task_id"]
    run_jobs()

    status = owner.api.get(f"/api/v1/task-status/{task_id}").json()
    [result] = status["results"]
    assert (result["plates"], result["has_plate"]) == (0, False)
    assert result["needs_review"] is True
    assert "vehicle_without_plate" in result["review_reasons"]
    assert result["reviewed_at"] is None and result["revision"] == 0
    assert status["needs_review"] == 1


def test_a_covered_plate_says_its_confidence(owner, run_jobs, settings):
    settings.ANONYMIZE_REVIEW_CONFIDENCE = 0.99  # any plate found is "low": flagged
    task_id = _task(owner.api, ("car.png", _photo(painted=False))).json()["task_id"]
    run_jobs()

    [result] = owner.api.get(f"/api/v1/task-status/{task_id}").json()["results"]
    assert result["plates"] >= 1
    assert len(result["plate_confidences"]) == result["plates"]
    assert all(0.05 <= c < 0.99 for c in result["plate_confidences"])
    assert "low_confidence" in result["review_reasons"]


def test_a_picture_scaled_down_before_covering_needs_review(owner, run_jobs, settings):
    settings.ANONYMIZE_MAX_SIDE = 300
    task_id = _task(owner.api, ("wide.png", image_bytes("PNG", size=(900, 300)))).json()["task_id"]
    run_jobs()

    [result] = owner.api.get(f"/api/v1/task-status/{task_id}").json()["results"]
    assert result["review_reasons"] == ["scaled_down"] and result["needs_review"] is True


# The review loop ----------------------------------------------------------------------------


def test_an_operators_box_covers_the_region_and_is_delivered_again(
    owner, run_jobs, receiver, reviewer, plates_missed
):
    receiver.start()
    AnonymizeSettings.objects.create(
        client=owner.client,
        upload_url=f"{receiver.url}/upload",
        callback_url=f"{receiver.url}/callback",
        webhook_secret="s3cret",
    )
    painted = _photo(painted=True)
    task_id = _task(owner.api, ("van.png", painted), mode="solid").json()["task_id"]
    run_jobs()
    assert sorted(path for path, _, _ in receiver.received) == ["/callback", "/upload"]
    row = PlateTaskFile.objects.get()
    first_result = row.result_file

    answer = _review(reviewer, row, action="correct", boxes=_boxes([], [list(PAINTED)]))
    assert answer.status_code == 302
    run_jobs()

    row.refresh_from_db()
    assert (row.revision, row.needs_review, row.reviewed_by.username) == (1, False, "reviewer")
    assert row.operator_boxes == [[float(v) for v in PAINTED]]
    assert not default_storage.exists(first_result)
    covered = _region(_stored(row.result_file), PAINTED)
    assert (np.abs(covered - _region(_pixels(painted), PAINTED)).max(axis=2) > 40).mean() > 0.95
    # Sent again, signed as the first delivery, marked as a correction of this one file.
    again = receiver.received[2:]
    assert sorted(path for path, _, _ in again) == ["/callback", "/upload"]
    for _, headers, body in again:
        expected = hmac.new(
            b"s3cret", headers["X-Imago-Timestamp"].encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        assert headers["X-Imago-Signature"] == f"sha256={expected}"
    callback = json.loads(next(body for path, _, body in again if path == "/callback"))
    assert (callback["task_id"], callback["correction"], callback["needs_review"]) == (
        task_id,
        True,
        0,
    )
    [result] = callback["results"]
    assert (result["source_filename"], result["revision"], result["needs_review"]) == (
        "van.png",
        1,
        False,
    )
    assert result["filename"] == "covered_van_r1.webp"  # served at its relative url
    assert owner.api.get(result["url"]).status_code == 200
    upload_body = next(body for path, _, body in again if path == "/upload")
    assert b'name="correction"' in upload_body and b"RIFF" in upload_body
    status = owner.api.get(f"/api/v1/task-status/{task_id}").json()
    assert status["needs_review"] == 0 and status["results"][0]["reviewed_at"]
    call_command("cleanup_tasks")
    run_jobs()
    assert len(receiver.received) == 4  # nothing sent a third time


def test_a_correction_the_receiver_missed_is_sent_once_it_is_back(
    owner, reviewer, receiver, run_jobs
):
    row = _covered_row(owner)
    PlateTask.objects.update(
        status="completed", delivered_at=timezone.now(), callback_url=f"{receiver.url}/callback"
    )
    assert _review(reviewer, row, action="correct", boxes=_boxes([0], [])).status_code == 302
    run_jobs()  # the receiver is down: every retry fails and is recorded
    assert WebhookAttempt.objects.filter(ok=False).exclude(correction="").count() >= 2

    receiver.start()
    call_command("cleanup_tasks")  # what the periodic job does
    run_jobs()

    [(path, _, body)] = receiver.received
    assert path == "/callback" and json.loads(body)["correction"] is True
    call_command("cleanup_tasks")
    run_jobs()
    assert len(receiver.received) == 1


def test_removing_a_box_restores_the_original_pixels(owner, run_jobs, reviewer):
    photo = _photo(painted=False)
    _task(owner.api, ("car.png", photo), mode="solid").json()
    run_jobs()
    row = PlateTaskFile.objects.get()
    plate = _region(_pixels(photo), PLATE)
    assert (np.abs(_region(_stored(row.result_file), PLATE) - plate).max(axis=2) > 40).mean() > 0.5

    answer = _review(reviewer, row, action="correct", boxes=_boxes([], []))

    assert answer.status_code == 302
    row.refresh_from_db()
    assert row.regions == [] and row.revision == 1
    # The plate is back as the original has it (WebP is lossy: close, not identical).
    assert np.abs(_region(_stored(row.result_file), PLATE) - plate).mean() < 6


def test_an_operator_marks_a_result_reviewed(owner, reviewer, db):
    row = _covered_row(owner)
    assert _review(reviewer, row, action="reviewed").status_code == 302
    row.refresh_from_db()
    assert (row.needs_review, row.reviewed_by.username, row.revision) == (False, "reviewer", 0)
    assert row.reviewed_at is not None and row.review_reasons == ["low_confidence"]


def test_the_review_queue_filters_what_needs_review(owner, reviewer, db):
    flagged, calm = _covered_row(owner), _covered_row(owner)
    PlateTaskFile.objects.filter(pk=calm.pk).update(needs_review=False, filename="calm.png")

    page = reviewer.get("/admin/images/platetaskfile/?needs_review__exact=1")

    assert page.status_code == 200
    assert f"/admin/images/platetaskfile/{flagged.pk}/change/" in page.content.decode()
    assert f"/admin/images/platetaskfile/{calm.pk}/change/" not in page.content.decode()
    review = reviewer.get(f"/admin/images/platetaskfile/{flagged.pk}/change/").content.decode()
    assert 'id="review-original"' in review and 'id="review-covered"' in review
    assert "low_confidence" in review and "0.12" in review


def test_only_staff_with_the_permission_review(owner, db, django_user_model, operator, client):
    row = _covered_row(owner)
    url = f"/admin/images/platetaskfile/{row.pk}/change/"
    boxes = {"action": "correct", "boxes": _boxes([], [])}
    assert client.post(url, boxes).status_code == 302  # to the login page
    assert operator.post(url, boxes).status_code == 403  # staff without any permission
    assert operator.get(url).status_code == 403
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_platetaskfile"))
    api = APIClient()
    api.force_login(viewer)
    page = api.get(url)
    assert page.status_code == 200 and 'id="review-form"' not in page.content.decode()
    assert api.post(url, boxes).status_code == 403
    assert api.post(url, {"action": "reviewed"}).status_code == 403
    row.refresh_from_db()
    assert (row.revision, row.needs_review, row.reviewed_at) == (0, True, None)


HOSTILE = [
    ("not json", "invalid_boxes"),
    ("[1, 2]", "invalid_boxes"),
    ('{"keep": "0"}', "invalid_boxes"),
    ('{"keep": [1]}', "invalid_boxes"),  # one region only: index 0
    ('{"keep": [0, 0]}', "invalid_boxes"),
    ('{"keep": [-1]}', "invalid_boxes"),
    ('{"keep": [true]}', "invalid_boxes"),
    ('{"add": [[1, 2, 3]]}', "invalid_boxes"),
    ('{"add": [["1", 2, 3, 4]]}', "invalid_boxes"),
    ('{"add": [[NaN, 2, 30, 40]]}', "invalid_boxes"),
    ('{"add": [[0, 0, Infinity, 40]]}', "invalid_boxes"),
    ('{"add": [[-5, 10, 50, 60]]}', "box_out_of_image"),
    ('{"add": [[10, 10, 401, 60]]}', "box_out_of_image"),
    ('{"add": [[10, 10, 50, 201]]}', "box_out_of_image"),
    ('{"add": [[50, 10, 10, 60]]}', "box_out_of_image"),
    ('{"add": [[10, 10, 10, 60]]}', "box_out_of_image"),
    ('{"add": [[0, 0, 1' + "0" * 400 + ", 5]]}", "box_out_of_image"),
    (json.dumps({"add": [[0, 0, 5, 5]] * 101}), "too_many_boxes"),
    (json.dumps({"keep": [0], "add": [[0, 0, 5, 5]] * 100}), "too_many_boxes"),
    ("[" * 70_000, "too_large"),
]


@pytest.mark.parametrize(("boxes", "code"), HOSTILE)
def test_hostile_boxes_are_refused_with_their_code(owner, reviewer, db, boxes, code):
    row = _covered_row(owner)
    answer = _review(reviewer, row, action="correct", boxes=boxes)

    assert answer.status_code == 400
    assert f"Refused ({code}):" in answer.content.decode()
    row.refresh_from_db()
    assert (row.revision, row.needs_review) == (0, True)
    assert row.result_file and default_storage.exists(row.result_file)


def test_the_cap_on_boxes_is_a_setting(settings):
    settings.ANONYMIZE_REVIEW_MAX_BOXES = 2
    edit = edit_parse(_boxes([0], [[0, 0, 5, 5]]), regions=1, width=10, height=10)
    assert (edit.keep, edit.add) == ([0], [(0.0, 0.0, 5.0, 5.0)])
    with pytest.raises(Exception, match="at most 2"):
        edit_parse(_boxes([0], [[0, 0, 5, 5]] * 2), regions=1, width=10, height=10)


def test_a_drawn_box_is_in_the_results_pixels_and_covers_them(owner, reviewer, db):
    row = _covered_row(owner)
    answer = _review(reviewer, row, action="correct", boxes=_boxes([0], [[300, 120, 360, 180]]))
    assert answer.status_code == 302
    row.refresh_from_db()
    pixels = _stored(row.result_file)
    assert _region(pixels, (305, 125, 355, 175)).max() < 30  # solid: black
    assert _region(pixels, (105, 55, 195, 95)).max() < 30  # the kept region too
    assert _region(pixels, (10, 10, 90, 40)).mean() > 60  # elsewhere untouched


def test_originals_are_kept_until_the_task_expires(owner, reviewer, db):
    row = _covered_row(owner)
    assert default_storage.exists(row.source_file)
    PlateTask.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    answer = _review(reviewer, row, action="correct", boxes=_boxes([], []))
    assert answer.status_code == 400 and "Refused (task_expired):" in answer.content.decode()
    call_command("cleanup_tasks")
    assert not default_storage.exists(row.source_file)


# Stored images ------------------------------------------------------------------------------


def test_a_stored_images_result_is_reviewed_the_same_way(owner, run_jobs, reviewer, plates_missed):
    painted = _photo(painted=True)
    image_id = upload(owner.api, ("van.png", painted)).json()["images"][0]["id"]
    owner.api.post(f"/api/v1/images/{image_id}/anonymize/", {"mode": "solid"}, format="json")
    run_jobs()
    result = owner.api.get(f"/api/v1/images/{image_id}/anonymize/").json()
    assert result["needs_review"] is True and "vehicle_without_plate" in result["review_reasons"]
    queue = reviewer.get("/admin/images/image/?anonymized=review").content.decode()
    assert f"/admin/images/image/{image_id}/change/" in queue

    url = f"/admin/images/image/{image_id}/review/"
    assert reviewer.get(url).status_code == 200
    answer = reviewer.post(url, {"action": "correct", "boxes": _boxes([], [list(PAINTED)])})

    assert answer.status_code == 302
    result = owner.api.get(f"/api/v1/images/{image_id}/anonymize/").json()
    assert (result["revision"], result["needs_review"]) == (1, False) and result["reviewed_at"]
    covered = _region(_pixels(b"".join(APIClient().get(result["url"]).streaming_content)), PAINTED)
    assert (np.abs(covered - _region(_pixels(painted), PAINTED)).max(axis=2) > 40).mean() > 0.95
    bad = reviewer.post(url, {"action": "correct", "boxes": _boxes([], [[0, 0, 1e9, 5]])})
    assert bad.status_code == 400 and "Refused (box_out_of_image):" in bad.content.decode()
