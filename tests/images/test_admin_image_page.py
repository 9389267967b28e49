"""An image's admin page tells its whole story, and its Reprocess button queues the pipeline."""

import re

import pytest
from django.core.files.storage import default_storage

from images.library.pipeline import step_names
from images.library.services import image_add_tags
from images.models import Exif, Image
from tests.annotations.test_question_page import photographed
from tests.factories import DetectionFactory, OcrResultFactory, VisionResultFactory
from tests.images.admin_support import csrf_token, queries, stored


def page_of(image: Image) -> str:
    return f"/admin/images/image/{image.pk}/change/"


def the_whole_story(tenant, *, boxes: int = 2) -> Image:
    image = photographed(tenant)
    Exif.objects.create(
        image=image,
        make="NIKON",
        model="COOLPIX P6000",
        iso=64,
        latitude=43.467081,
        longitude=11.885402,
    )
    for n in range(boxes):
        DetectionFactory(
            image=image,
            class_id=0,
            class_name="car",
            confidence=0.91,
            x1=40 + n,
            y1=200,
            x2=300,
            y2=420,
        )
    image_add_tags(image=image, names=["car", "shelf"], source="detection")
    OcrResultFactory(
        image=image,
        text="BIO <script>alert(1)</script>",
        language="fr",
        confidence=0.87,
        has_text=True,
        words=3,
        ocr_languages="fra",
    )
    VisionResultFactory(image=image, description="A green shelf.")
    settled(image)
    image.steps.filter(name="ocr").update(duration_ms=1234)
    image.steps.filter(name="vision").update(
        status="failed", duration_ms=56, error="vision_timeout: the provider did not answer"
    )
    return image


def settled(image: Image) -> Image:
    """The upload's steps, as if a worker had run them all."""
    image.steps.update(status="done")
    return image


def test_the_page_shows_picture_boxes_exif_tags_text_description_and_steps(root, owner):
    image = the_whole_story(owner)
    page = root.get(page_of(image)).content.decode()
    # Boxes and their labels, over the thumbnail.
    assert len(re.findall(r'<rect class="box"', page)) == 2
    assert page.count(">car 0.91</text>") == 2
    assert re.search(r'<div class="imago-overlay"><img src="/files/signed/', page)
    # EXIF with a plain map link: nothing on the page loads a map.
    assert "https://www.openstreetmap.org/?mlat=43.467081&amp;mlon=11.885402" in page
    assert "NIKON COOLPIX P6000" in page and "ISO 64" in page
    assert 'class="imago-chip">car <small>detection</small>' in page
    assert "BIO &lt;script&gt;alert(1)&lt;/script&gt;" in page  # escaped, never run
    assert "tesseract, fr, 3 words, 87% confidence" in page
    assert "A green shelf." in page
    # Each step's status, duration and error.
    assert "vision_timeout: the provider did not answer" in page and "1234" in page
    # Read-only: the Reprocess button, no Save button.
    assert 'id="reprocess"' in page and 'name="_save"' not in page


def test_the_download_link_gives_the_original_bytes(root, owner, client):
    image = the_whole_story(owner)
    page = root.get(page_of(image)).content.decode()
    link = re.search(r'<a href="(/files/signed/[^"]+)" download="shelf.jpg">', page).group(1)
    response = client.get(link)  # signed: no login needed, as the API's download-url
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    with default_storage.open(image.file) as original:
        assert b"".join(response.streaming_content) == original.read()


def test_a_hostile_class_name_is_drawn_as_text(root, owner):
    image = photographed(owner)
    DetectionFactory(
        image=image,
        model_name="m",
        class_id=0,
        class_name='"><svg onload=x>',
        confidence=0.5,
        x1=0,
        y1=0,
        x2=10,
        y2=10,
    )
    page = root.get(page_of(image)).content.decode()
    assert "<svg onload" not in page and "&quot;&gt;&lt;svg onload=x&gt;" in page


def test_a_picture_without_detections_is_shown_without_boxes(root, owner):
    page = root.get(page_of(photographed(owner))).content.decode()
    assert page.count('<rect class="box"') == 0 and "imago-overlay" in page


def test_an_image_just_uploaded_says_what_is_not_there_yet(root, owner):
    image = stored(owner.client, status="pending")
    OcrResultFactory(image=image, text="", confidence=0, ocr_languages="eng")
    response = root.get(page_of(image))
    assert response.status_code == 200
    page = response.content.decode()
    assert "No thumbnail yet." in page and "No text found." in page


def test_the_page_reads_as_few_queries_with_many_boxes_tags_and_steps(root, owner, other):
    few = queries(root, page_of(the_whole_story(owner, boxes=1)))
    many = the_whole_story(other, boxes=30)  # the same photo: another tenant's
    image_add_tags(image=many, names=[f"tag{n}" for n in range(20)], source="ai")
    assert queries(root, page_of(many)) == few


def test_the_reprocess_button_queues_every_step_of_that_image_only(root, owner, other):
    image, untouched = the_whole_story(owner), the_whole_story(other)
    page = root.get(page_of(image))
    response = root.post(
        f"/admin/images/image/{image.pk}/reprocess/",
        {"csrfmiddlewaretoken": csrf_token(page)},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == page_of(image)
    assert f"Queued {len(step_names())} steps again" in response.content.decode()
    assert set(image.steps.values_list("status", flat=True)) == {"pending"}
    assert image.steps.count() == len(step_names())
    assert set(untouched.steps.values_list("status", flat=True)) == {"done", "failed"}


def test_the_reprocess_button_needs_the_pages_csrf_token(root, owner):
    image = settled(photographed(owner))
    assert root.post(f"/admin/images/image/{image.pk}/reprocess/").status_code == 403
    assert not image.steps.filter(status="pending").exists()


def test_reprocess_is_a_post_only(root, owner):
    image = photographed(owner)
    assert root.get(f"/admin/images/image/{image.pk}/reprocess/").status_code == 405


@pytest.mark.parametrize("object_id", ["abc", "99999999999999999999999", "-1", "1%00", "0"])
def test_reprocess_of_an_id_that_is_no_image_is_not_found(root, owner, object_id):
    page = root.get("/admin/")
    response = root.post(
        f"/admin/images/image/{object_id}/reprocess/", {"csrfmiddlewaretoken": csrf_token(page)}
    )
    assert response.status_code == 404


def test_staff_who_may_only_look_cannot_reprocess(viewer, owner):
    image = settled(photographed(owner))
    assert viewer.get(page_of(image)).status_code == 200
    assert viewer.post(f"/admin/images/image/{image.pk}/reprocess/").status_code == 403
    assert not image.steps.filter(status="pending").exists()


def test_someone_not_logged_in_is_sent_to_the_login_page(client, owner):
    image = settled(photographed(owner))
    response = client.post(f"/admin/images/image/{image.pk}/reprocess/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert not image.steps.filter(status="pending").exists()


def test_a_vision_provider_that_failed_says_why(root, owner):
    image = photographed(owner)
    VisionResultFactory(
        image=image, provider="gemini", error="provider_error: 503 from the provider"
    )
    page = root.get(page_of(image)).content.decode()
    assert "provider_error: 503 from the provider" in page
