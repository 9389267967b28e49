"""What an operator sees, in headless Chromium, on a server started as `make run` starts it.

DEBUG off, static files collected (hashed and compressed) and served by WhiteNoise, a separate
server process on the test database. Screenshots of each page land in SCREENSHOTS_DIR
(./screenshots by default) for a reviewer to look at.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from images.library.services import image_add_tags
from images.models import Exif, Image
from tests.annotations.test_question_page import (
    CAR_BOX,
    label_on,
    log_in,
    object_on,
    photographed,
    street,
    wait_for,
)
from tests.factories import DetectionFactory, OcrResultFactory, VisionResultFactory
from tests.live import SCREENSHOTS, collect_static, live_server, requested_urls

pytestmark = pytest.mark.slow  # Chromium against a live server

# The admin's header colour (--header-bg in admin/css/base.css): the stylesheet was applied.
ADMIN_HEADER = "rgba(65, 118, 144, 1)"


@pytest.fixture(scope="session")
def collected(tmp_path_factory) -> Path:
    return collect_static(tmp_path_factory.mktemp("staticfiles"))


@pytest.fixture
def server(transactional_db, collected, tmp_path) -> Iterator[str]:
    with live_server(collected, tmp_path) as base:
        yield base


def visit(driver: WebDriver, base: str, path: str, ready: str, shot: str) -> list[str]:
    """Open a page, wait for a CSS selector, take a screenshot; the URLs it requested."""
    driver.get(base + path)
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ready), f"{path}: no {ready}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{shot}.png"))
    return requested_urls(driver)


def sheets_loaded(driver: WebDriver) -> None:
    """Every stylesheet the page links to loaded, with rules in it."""
    sheets = driver.execute_script(
        "return [...document.styleSheets].filter(s => s.href).map(s => [s.href, s.cssRules.length])"
    )
    assert sheets and all(rules > 0 for _, rules in sheets), sheets


def styled(driver: WebDriver) -> None:
    """Every stylesheet of the page loaded, and the admin's own one applied."""
    sheets_loaded(driver)
    header = driver.find_element(By.ID, "header").value_of_css_property("background-color")
    assert header == ADMIN_HEADER


def readonly_text(driver: WebDriver, field: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, f".field-{field} .readonly").text.strip()


def photo_with_gps_and_detections(tenant) -> Image:
    image = photographed(tenant)
    Exif.objects.create(
        image=image,
        make="NIKON",
        model="COOLPIX P6000",
        iso=64,
        latitude=43.467081,
        longitude=11.885402,
    )
    for name, box in (("car", (40, 200, 300, 420)), ("person", (420, 80, 520, 400))):
        DetectionFactory(
            image=image,
            class_id=0,
            class_name=name,
            confidence=0.91,
            x1=box[0],
            y1=box[1],
            x2=box[2],
            y2=box[3],
        )
    image_add_tags(image=image, names=["car", "person", "shelf"], source="detection")
    OcrResultFactory(
        image=image,
        text="BIO\nLAIT ENTIER 1 L",
        language="fr",
        confidence=0.87,
        has_text=True,
        words=4,
        ocr_languages="fra",
    )
    VisionResultFactory(
        image=image, description="A car parked by a person in front of a green shelf."
    )
    Image.objects.filter(pk=image.pk).update(status="done")
    image.steps.update(status="done", duration_ms=420, finished_at=image.created_at)
    image.steps.filter(name="vision").update(
        status="failed", error="vision_timeout: the provider did not answer in 60 s"
    )
    return image


# The image page's fields, each with data in the photo above: none may show the admin's "-".
STORY_FIELDS = [
    "detection_overlay",
    "tag_list",
    "ocr_text",
    "ai_description",
    "exif_summary",
    "original",
    "client",
    "status",
    "dimensions",
    "size",
]


def box_sizes(driver: WebDriver, selector: str) -> list[tuple[float, float]]:
    """The drawn size of each SVG element (WebDriver's own size is unreliable inside SVG)."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => {"
        " const r = e.getBoundingClientRect(); return [r.width, r.height]; })",
        selector,
    )


def test_the_admin_and_the_docs_are_styled_complete_and_self_contained(
    browser, server, owner, django_user_model
):
    django_user_model.objects.create_superuser("root", "root@localhost", "pw")
    owner.client.image_quota = 100
    owner.client.save()
    image = photo_with_gps_and_detections(owner)
    insight = label_on(image, "Bio", "en:organic")
    log_in(browser, server, "root", "pw")
    requested = requested_urls(browser)

    requested += visit(browser, server, "/admin/", "#dashboard", "dashboard")
    styled(browser)
    dashboard = browser.find_element(By.ID, "dashboard")
    assert dashboard.value_of_css_property("display") == "grid"  # our stylesheet, applied
    tenants = browser.find_element(By.ID, "dashboard-tenants").text
    assert "Owner Co" in tenants and "KB" in tenants  # the photo's bytes, counted
    assert browser.find_element(By.ID, "dashboard-queues").find_elements(By.TAG_NAME, "a")
    assert "/static/" in browser.execute_script(
        "return document.querySelector('link[rel=icon]').href"
    )

    requested += visit(browser, server, "/admin/images/image/", "#result_list", "image-list")
    styled(browser)
    thumbnail = browser.find_element(By.CSS_SELECTOR, "#result_list img")
    assert browser.execute_script("return arguments[0].naturalWidth", thumbnail) > 0

    # The tenant's page: its scopes as ticked boxes, its keys by prefix.
    page = f"/admin/images/client/{owner.client.pk}/change/"
    requested += visit(browser, server, page, "#id_scopes", "tenant")
    styled(browser)
    ticked = browser.find_elements(By.CSS_SELECTOR, "#id_scopes input:checked")
    assert {box.get_attribute("value") for box in ticked} == set(owner.client.scopes)
    assert "1 of 100" in readonly_text(browser, "usage")
    assert len(browser.find_elements(By.CSS_SELECTOR, ".field-related a")) == 4
    assert browser.find_element(By.ID, "rotate-key").is_displayed()

    page = f"/admin/images/image/{image.pk}/change/"
    requested += visit(browser, server, page, ".field-detection_overlay svg", "image")
    styled(browser)
    exif = readonly_text(browser, "exif_summary")
    assert "43.467081, 11.885402 (map)" in exif and "NIKON" in exif
    assert readonly_text(browser, "detection_overlay") != "-"  # a picture: no text, no "-"
    for selector in ("rect.box", "text"):
        sizes = box_sizes(browser, f".field-detection_overlay svg {selector}")
        assert len(sizes) == 2 and all(w > 0 and h > 0 for w, h in sizes), (selector, sizes)
    for field in STORY_FIELDS:
        assert readonly_text(browser, field) not in ("", "-"), field
    assert "LAIT ENTIER" in readonly_text(browser, "ocr_text")
    assert "vision_timeout" in browser.find_element(By.ID, "steps-group").text
    assert browser.find_element(By.CSS_SELECTOR, "#reprocess button").is_displayed()
    overlay = browser.find_element(By.CSS_SELECTOR, ".field-detection_overlay img")
    wait_for(
        browser,
        lambda d: d.execute_script("return arguments[0].naturalWidth", overlay) > 0,
        "the overlay's picture did not load",
    )
    browser.execute_script("document.querySelector('.field-tag_list').scrollIntoView()")
    browser.save_screenshot(str(SCREENSHOTS / "image-found.png"))
    browser.execute_script("document.getElementById('steps-group').scrollIntoView()")
    browser.save_screenshot(str(SCREENSHOTS / "image-steps.png"))

    # Rotating the tenant's key: a confirmation, then the new key shown once.
    page = f"/admin/images/client/{owner.client.pk}/rotate-key/"
    requested += visit(browser, server, page, "#rotate-key-form", "tenant-rotate-key")
    styled(browser)
    browser.find_element(By.CSS_SELECTOR, "#rotate-key-form input[type=submit]").click()
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".messagelist code"), "no key")
    assert browser.find_element(By.CSS_SELECTOR, ".messagelist code").text.startswith("imago_")
    browser.save_screenshot(str(SCREENSHOTS / "tenant-new-key.png"))
    requested += requested_urls(browser)

    page = f"/admin/annotations/insight/{insight.pk}/change/"
    requested += visit(browser, server, page, ".field-large_preview img", "insight")
    styled(browser)

    requested += visit(browser, server, "/api/docs/", ".swagger-ui .opblock-tag", "docs")
    tags = {t.text.split("\n")[0] for t in browser.find_elements(By.CSS_SELECTOR, ".opblock-tag")}
    assert {"images", "detection", "insights"} <= tags
    sheets_loaded(browser)
    tag = browser.find_element(By.CSS_SELECTOR, ".swagger-ui .opblock-tag")
    assert tag.value_of_css_property("font-size") == "24px"  # swagger-ui.css applied
    requested += visit(browser, server, "/api/redoc/", "redoc .api-content h1", "redoc")
    # ReDoc styles itself from its script: its side menu has its own background.
    menu = browser.find_element(By.CSS_SELECTOR, "redoc .menu-content")
    assert menu.value_of_css_property("background-color") == "rgba(250, 250, 250, 1)"

    elsewhere = [url for url in requested if not url.startswith((server, "data:", "blob:"))]
    assert elsewhere == []
    assert any("/static/admin/css/base." in url for url in requested)


def test_an_insight_page_draws_the_box_it_is_about(browser, server, owner, django_user_model):
    django_user_model.objects.create_superuser("root", "root@localhost", "pw")
    insight = object_on(street(owner), "car", CAR_BOX)
    log_in(browser, server, "root", "pw")
    requested = requested_urls(browser)

    page = f"/admin/annotations/insight/{insight.pk}/change/"
    drawn = ".field-large_preview .evidence-box rect"
    requested += visit(browser, server, page, drawn, "insight-box")
    styled(browser)
    picture = browser.find_element(By.CSS_SELECTOR, ".field-large_preview img")
    wait_for(
        browser,
        lambda d: d.execute_script("return arguments[0].naturalWidth", picture) > 0,
        "the insight's picture did not load",
    )
    box = browser.find_element(By.CSS_SELECTOR, drawn)
    width, height = box.size["width"], box.size["height"]
    assert width > 0 and height > 0
    assert width / picture.size["width"] == pytest.approx(0.4, abs=0.02)
    assert height / picture.size["height"] == pytest.approx(0.3667, abs=0.02)
    browser.save_screenshot(str(SCREENSHOTS / "insight-box.png"))  # with the picture in

    assert [url for url in requested if not url.startswith((server, "data:", "blob:"))] == []
