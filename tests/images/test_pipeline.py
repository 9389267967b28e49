import io
import json
import os
import subprocess
import sys
from datetime import timedelta

import django_rq
import PIL.Image
import pytest
from django.core.management import call_command
from django.db import connection, transaction
from rq.job import Job

from images.library import pipeline
from images.library.services import image_add_tags
from images.models import Image, ImageStep
from tests.helpers import image_bytes, make_tenant, media_files, shared_data, upload


def _upload_path(tenant, path) -> dict:
    response = upload(tenant.api, (path.name, path.read_bytes()))
    assert response.status_code == 201, response.content
    return response.json()["images"][0]


def test_it_reads_the_gps_of_a_real_photo(owner, run_jobs):
    created = _upload_path(owner, shared_data("exif", "gps", "DSCN0010.jpg"))
    run_jobs()
    exif = owner.api.get(f"/api/v1/images/{created['id']}/exif/").json()
    assert exif["latitude"] == pytest.approx(43.467448, abs=1e-5)
    assert exif["longitude"] == pytest.approx(11.885127, abs=1e-5)
    assert exif["taken_at"].startswith("2008-10-22T16:28:39")
    assert "NIKON" in exif["make"].upper()
    assert "43.46" in exif["maps_url"]
    assert exif["tags"]["GPS"]
    detail = owner.api.get(f"/api/v1/images/{created['id']}/").json()
    assert detail["status"] == "done"
    statuses = {s["name"]: s["status"] for s in detail["steps"]}
    assert set(statuses) == set(pipeline.step_names())
    assert statuses["exif"] == statuses["thumbnails"] == statuses["detection"] == "done"
    assert statuses["insights"] == "done"
    assert set(statuses.values()) <= {"done", "skipped"}
    assert all(s["duration_ms"] is not None for s in detail["steps"])
    has_gps = owner.api.get("/api/v1/images/?has_gps=true").json()
    assert [i["id"] for i in has_gps["results"]] == [created["id"]]


def test_every_odd_metadata_file_is_processed_without_a_failed_step(owner, run_jobs):
    paths = sorted(p for p in shared_data("exif", "odd").iterdir() if p.is_file())
    assert paths
    for path in paths:
        _upload_path(owner, path)
    run_jobs()
    failed = ImageStep.objects.filter(status="failed").values_list(
        "image__original_filename", "name", "error"
    )
    assert list(failed) == []
    assert Image.objects.filter(status="done").count() == len(paths)


def test_thumbnails_are_made_and_served_by_signed_url(owner, run_jobs):
    created = upload(owner.api, ("big.jpg", image_bytes(size=(2000, 1500)))).json()["images"][0]
    run_jobs()
    detail = owner.api.get(f"/api/v1/images/{created['id']}/").json()
    sizes = {t["size"]: (t["width"], t["height"]) for t in detail["thumbnails"]}
    assert sizes == {256: (256, 192), 1024: (1024, 768)}
    link = owner.api.get(f"/api/v1/images/{created['id']}/thumbnail-url/?size=1024").json()
    response = owner.api.get(link["url"])
    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"
    with PIL.Image.open(io.BytesIO(b"".join(response.streaming_content))) as thumb:
        assert thumb.format == "WEBP"
        assert thumb.size == (1024, 768)


@pytest.mark.slow
def test_landscape_orientations_give_alike_thumbnails(owner, run_jobs):
    folder = shared_data("exif", "orientation")
    for n in range(1, 9):
        _upload_path(owner, folder / f"landscape_{n}.jpg")
    run_jobs()
    sizes = {
        (t.width, t.height)
        for image in Image.objects.prefetch_related("thumbnails")
        for t in image.thumbnails.all()
        if t.size == 256
    }
    assert len(sizes) == 1
    assert Image.objects.filter(status="done").count() == 8


def test_a_flaky_step_is_retried_and_succeeds(owner, run_jobs, monkeypatch):
    real = pipeline.STEPS["exif"].function
    calls = []

    def flaky(image):
        calls.append(image.pk)
        if len(calls) == 1:
            raise ConnectionError("storage hiccup")
        return real(image)

    monkeypatch.setitem(pipeline.STEPS, "exif", pipeline.Step("exif", flaky))
    created = upload(owner.api, ("a.jpg", image_bytes())).json()["images"][0]
    run_jobs()
    step = ImageStep.objects.get(image_id=created["id"], name="exif")
    assert (step.status, step.attempts, step.error) == ("done", 2, "")
    assert Image.objects.get(pk=created["id"]).status == "done"


def test_a_step_that_keeps_failing_lands_in_the_dead_letter_queue(owner, run_jobs, monkeypatch):
    def broken(image):
        raise RuntimeError("model exploded")

    monkeypatch.setitem(pipeline.STEPS, "thumbnails", pipeline.Step("thumbnails", broken))
    created = upload(owner.api, ("a.jpg", image_bytes())).json()["images"][0]
    run_jobs()
    steps = {s.name: s for s in ImageStep.objects.filter(image_id=created["id"])}
    # One failing step never stops the others.
    assert steps["exif"].status == "done"
    assert steps["thumbnails"].status == "failed"
    assert steps["thumbnails"].attempts == 4
    assert "model exploded" in steps["thumbnails"].error
    assert Image.objects.get(pk=created["id"]).status == "failed"
    failed = django_rq.get_queue("default").failed_job_registry
    assert failed.get_job_ids() == [steps["thumbnails"].job_id]


def test_reprocess_reruns_named_steps(owner, run_jobs):
    created = upload(owner.api, ("a.jpg", image_bytes())).json()["images"][0]
    run_jobs()
    response = owner.api.post(
        f"/api/v1/images/{created['id']}/reprocess/", {"steps": ["exif"]}, format="json"
    )
    assert response.status_code == 202
    assert {s["name"]: s["status"] for s in response.json()["steps"]}["exif"] == "pending"
    run_jobs()
    assert ImageStep.objects.get(image_id=created["id"], name="exif").attempts == 1
    assert Image.objects.get(pk=created["id"]).status == "done"


def test_reprocess_refuses_an_unknown_step(owner, run_jobs):
    created = upload(owner.api, ("a.jpg", image_bytes())).json()["images"][0]
    response = owner.api.post(
        f"/api/v1/images/{created['id']}/reprocess/", {"steps": ["nope"]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_thumbnail_reprocessing_leaves_no_stale_files(owner, run_jobs):
    created = upload(owner.api, ("a.jpg", image_bytes(size=(600, 400)))).json()["images"][0]
    run_jobs()
    before = len(media_files())
    owner.api.post(
        f"/api/v1/images/{created['id']}/reprocess/", {"steps": ["thumbnails"]}, format="json"
    )
    run_jobs()
    assert len(media_files()) == before == 3


def test_premium_work_goes_to_the_high_queue(db, run_jobs):
    premium = make_tenant("Premium", plan="premium")
    upload(premium.api, ("a.jpg", image_bytes()))
    # Steps that wait for others are deferred until those finish, not queued yet.
    waiting = sum(1 for step in pipeline.STEPS.values() if step.after)
    assert django_rq.get_queue("high").count == len(pipeline.step_names()) - waiting
    assert django_rq.get_queue("default").count == 0


def test_a_finished_image_is_announced_on_the_tenants_channel(owner, run_jobs):
    pubsub = django_rq.get_connection("default").pubsub()
    pubsub.subscribe(pipeline.events_channel(owner.client))
    pubsub.get_message(timeout=1)  # the subscription confirmation
    created = upload(owner.api, ("a.jpg", image_bytes())).json()["images"][0]
    run_jobs()
    # Channels are shared by every Redis database: keep only this image's events.
    events = []
    while message := pubsub.get_message(timeout=0.5):
        event = json.loads(message["data"])
        if event["uuid"] == created["uuid"]:
            events.append(event)
    [event] = events  # exactly once
    assert event["event"] == "image.processed"
    assert (event["image_id"], event["status"]) == (created["id"], "done")


def test_the_reprocess_command_queues_on_the_low_queue(owner, run_jobs, capsys):
    upload(owner.api, ("a.jpg", image_bytes()))
    run_jobs()
    call_command("reprocess", "--client", owner.client.slug, "--step", "exif")
    assert "[1/1]" in capsys.readouterr().out
    assert django_rq.get_queue("low").count == 1
    run_jobs()
    assert Image.objects.get().status == "done"


@pytest.mark.slow
def test_a_real_worker_process_runs_the_pipeline(owner, run_jobs, settings):
    """`manage.py rqworker --burst` in its own process, forking per job, as in production."""
    created = upload(owner.api, ("a.jpg", image_bytes(size=(640, 480)))).json()["images"][0]
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        database_url = f"sqlite:///{db['NAME']}"
    else:
        database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = {**os.environ, "DATABASE_URL": database_url, "MEDIA_ROOT": str(settings.MEDIA_ROOT)}
    result = subprocess.run(
        [sys.executable, "manage.py", "rqworker", "--burst", "high", "default", "low"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    image = Image.objects.get(pk=created["id"])
    assert image.status == "done", list(image.steps.values_list("name", "status", "error"))
    assert image.thumbnails.count() == 2


def test_a_step_waits_for_the_steps_it_reads(owner, run_jobs, monkeypatch, settings):
    order = []

    def record(name):
        def run(image):
            order.append(name)
            return {}

        return run

    steps = {
        "late": pipeline.Step("late", record("late"), after=("early",)),
        "early": pipeline.Step("early", record("early")),
    }
    monkeypatch.setattr(pipeline, "STEPS", {**pipeline.STEPS, **steps})
    # Declared the wrong way round (the system check would say so): "late" is queued first.
    settings.PIPELINE_STEPS = [*settings.PIPELINE_STEPS, "late", "early"]
    upload(owner.api, ("a.jpg", image_bytes()))
    run_jobs()
    assert order.index("early") < order.index("late")
    assert Image.objects.get().status == "done"


def test_tags_are_lower_cased_and_deduplicated(owner):
    upload(owner.api, ("a.jpg", image_bytes()))
    image = Image.objects.get()
    assert image_add_tags(image=image, names=["Car", "car ", "", "Person"], source="ai") == [
        "car",
        "person",
    ]
    image_add_tags(image=image, names=["car"], source="detection")
    listed = owner.api.get("/api/v1/images/?tag=car").json()["results"]
    assert [i["tags"] for i in listed] == [["car", "person"]]


def test_an_upload_writes_its_steps_in_one_statement_and_queues_them_at_once(
    owner, transactional_db, django_assert_max_num_queries
):
    # The step rows in one INSERT and the image's status read and written: not a query a step.
    image = _stored_image(owner)
    with transaction.atomic(), django_assert_max_num_queries(3):
        steps = pipeline.pipeline_enqueue(image=image)
    assert sorted(s.name for s in steps) == sorted(pipeline.step_names())
    assert all(s.pk for s in steps)
    # Steps that read no other step are queued; the others wait, deferred, on those they read.
    queue = django_rq.get_queue("default")
    queued = {job.args[1] for job in queue.get_jobs()}
    waiting = {
        job.args[1]: set(job.dependency_ids)
        for job in Job.fetch_many(queue.deferred_job_registry.get_job_ids(), queue.connection)
    }
    assert queued == {n for n, s in pipeline.STEPS.items() if not s.after}
    job_of = {s.name: s.job_id for s in ImageStep.objects.filter(image=image)}
    for name, parents in waiting.items():
        assert {job_of[p] for p in pipeline.STEPS[name].after} == parents


def test_enqueueing_again_resets_the_step_rows(owner, run_jobs):
    created = upload(owner.api, ("a.png", image_bytes("PNG"))).json()["images"][0]
    run_jobs()
    ImageStep.objects.filter(image_id=created["id"], name="ocr").update(error="old", attempts=3)
    image = Image.objects.get(pk=created["id"])
    with transaction.atomic():
        pipeline.pipeline_enqueue(image=image, steps=["ocr"])
    ocr = ImageStep.objects.get(image=image, name="ocr")
    assert (ocr.status, ocr.error, ocr.attempts, ocr.finished_at) == ("pending", "", 0, None)
    assert ImageStep.objects.filter(image=image).exclude(name="ocr").exclude(status="pending")
    run_jobs()
    assert ImageStep.objects.get(image=image, name="ocr").status in ("done", "skipped")


def _stored_image(tenant) -> Image:
    data = image_bytes("PNG")
    return Image.objects.create(
        client=tenant.client,
        file="x/original.png",
        content_type="image/png",
        format="PNG",
        width=64,
        height=48,
        size_bytes=len(data),
        sha256="0" * 64,
    )


def test_steps_are_queued_in_their_declared_order_whatever_the_apps_import_order(
    owner, transactional_db
):
    created = upload(owner.api, ("a.png", image_bytes("PNG"))).json()["images"][0]
    rows = ImageStep.objects.filter(image_id=created["id"]).order_by("id")
    assert [row.name for row in rows] == [
        "exif", "thumbnails", "ocr", "detection", "anonymize", "vision", "insights"
    ]  # fmt: skip
    queued = [job.args[1] for job in django_rq.get_queue("default").get_jobs()]
    assert queued == ["exif", "thumbnails", "ocr", "detection", "anonymize"]


def test_a_step_left_out_of_the_order_does_not_run(owner, run_jobs, settings):
    settings.PIPELINE_STEPS = ["exif", "thumbnails"]
    created = upload(owner.api, ("a.png", image_bytes("PNG"))).json()["images"][0]
    run_jobs()
    steps = owner.api.get(f"/api/v1/images/{created['id']}/").json()["steps"]
    assert [(s["name"], s["status"]) for s in steps] == [("exif", "done"), ("thumbnails", "done")]


def test_the_system_check_refuses_an_unknown_step_and_a_reader_before_its_source(settings):
    declared = settings.PIPELINE_STEPS
    settings.PIPELINE_STEPS = ["exif", "insights", "ocr", "vision", "detection", "ocrr"]
    errors = {(e.id, e.msg) for e in pipeline.pipeline_order_check()}
    assert ("images.E001", "PIPELINE_STEPS names 'ocrr', which no installed app registers.") in (
        errors
    )
    assert {msg.split(":")[0] for id_, msg in errors if id_ == "images.E002"} == {
        "The insights step reads ocr's output",
        "The insights step reads vision's output",
        "The insights step reads detection's output",
        "The vision step reads detection's output",
    }
    settings.PIPELINE_STEPS = declared
    assert pipeline.pipeline_order_check() == []


TURNED_OFF = {"reason": "turned off (PIPELINE_STEPS)"}


def test_a_queued_step_turned_off_before_it_ran_is_skipped_and_the_image_finishes(
    owner, run_jobs, settings
):
    created = upload(owner.api, ("a.png", image_bytes("PNG"))).json()["images"][0]
    settings.PIPELINE_STEPS = [name for name in settings.PIPELINE_STEPS if name != "ocr"]
    run_jobs()
    ocr = ImageStep.objects.get(image_id=created["id"], name="ocr")
    assert (ocr.status, ocr.result) == ("skipped", TURNED_OFF)
    assert Image.objects.get(pk=created["id"]).status == "done"


def test_the_sweep_skips_pending_steps_turned_off_and_reports_only_those_it_queued(
    owner, settings, transactional_db
):
    image = _stored_image(owner)
    ImageStep.objects.bulk_create(
        [ImageStep(image=image, name=name, status="pending") for name in ("exif", "ocr")]
    )
    settings.PIPELINE_STEPS = ["exif", "thumbnails"]
    sweep = pipeline.pipeline_requeue_stuck(older_than=timedelta(0))
    assert sweep.requeued == {image.pk: ["exif"]}
    ocr = ImageStep.objects.get(image=image, name="ocr")
    assert (ocr.status, ocr.result) == ("skipped", TURNED_OFF)
    again = pipeline.pipeline_requeue_stuck(older_than=timedelta(0))
    assert image.pk not in again.requeued  # exif's job is queued now; ocr is finished
