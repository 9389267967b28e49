"""The image list: what a gallery needs in one request, and the step details on demand."""

from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.helpers import image_bytes, upload


def test_a_gallery_needs_one_request_the_list_carries_signed_thumbnail_links(owner, run_jobs):
    upload(owner.api, ("a.png", image_bytes("PNG", size=(640, 480))))
    run_jobs()

    item = owner.api.get("/api/v1/images/").json()["results"][0]

    assert [t["size"] for t in item["thumbnails"]] == sorted(settings.THUMBNAIL_SIZES)
    assert "steps" not in item  # only on the detail, or when asked
    for thumbnail in item["thumbnails"]:
        picture = owner.api.get(thumbnail["url"])  # a signed link: no key needed
        assert (picture.status_code, picture["Content-Type"]) == (200, "image/webp")
        assert thumbnail["width"] <= thumbnail["size"] and thumbnail["expires_at"]


def test_steps_come_with_lists_when_asked_and_always_with_the_detail(owner, run_jobs):
    created = upload(owner.api, ("a.png", image_bytes("PNG"))).json()["images"][0]
    run_jobs()

    listed = owner.api.get("/api/v1/images/?expand=steps").json()["results"][0]
    detail = owner.api.get(f"/api/v1/images/{created['id']}/").json()

    assert {s["name"] for s in listed["steps"]} == {s["name"] for s in detail["steps"]}
    assert detail["thumbnails"] and detail["thumbnails"][0]["url"]


def test_lists_read_the_steps_only_when_asked(owner, run_jobs, django_assert_num_queries):
    # The steps table is the biggest per-image read: a plain list must not prefetch it.
    upload(owner.api, ("a.png", image_bytes("PNG")), ("b.png", image_bytes("PNG")))
    run_jobs()
    with CaptureQueriesContext(connection) as expanded:
        owner.api.get("/api/v1/images/?expand=steps")

    with django_assert_num_queries(len(expanded.captured_queries) - 1) as plain:
        owner.api.get("/api/v1/images/")

    assert any("images_imagestep" in q["sql"] for q in expanded.captured_queries)
    assert not any("images_imagestep" in q["sql"] for q in plain.captured_queries)
