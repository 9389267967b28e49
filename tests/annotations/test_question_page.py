"""The question page: its HTML, then the page in Debian's headless Chromium, driven by Selenium."""

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import PIL.Image
import PIL.ImageDraw
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from annotations.models import AnnotationVote, Insight
from images.library.steps import thumbnails_step
from images.models import Image
from tests.annotations.support import BARCODE, make_public
from tests.factories import InsightFactory
from tests.helpers import image_bytes, upload
from tests.live import SCREENSHOTS, requested_urls

CHROMIUM = Path("/usr/bin/chromium")
# Where street_scene() draws its car, as an object insight's box: y_min, x_min, y_max, x_max.
CAR_BOX = [0.4, 0.25, 0.7667, 0.65]
BOX_COLOUR = "rgba(255, 45, 85, 1)"  # #question-box's border: the page's own style applied
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# How long the page may take to load a question or store an answer: a wait, not a measure.
PATIENCE = 20


@pytest.fixture
def browser(monkeypatch) -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(
            f"{' and '.join(missing)} not installed: apt-get install chromium chromium-driver "
            "(make test does it when run as root)"
        )
    # The driver and browser are named: Selenium Manager must never try to download either.
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1200,900",
        "--lang=en",
    ):
        options.add_argument(argument)
    # Every request the pages make, for tests that check nothing leaves the server.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def wait_for(driver: WebDriver, condition, message: str):
    return WebDriverWait(driver, PATIENCE).until(lambda d: condition(d), message)


def page_state(driver: WebDriver) -> tuple[str, str | None]:
    """The page's state and the question on screen, read in one go (the page moves on its own)."""
    return tuple(
        driver.execute_script(
            "return [document.getElementById('page').dataset.state,"
            " document.getElementById('question').dataset.insightId || null]"
        )
    )


def state(driver: WebDriver) -> str:
    return page_state(driver)[0]


def shown_insight(driver: WebDriver) -> str:
    """The id of the question on screen, once one is, with its picture already in place.

    A picture that arrived after its question would move the answer buttons down under a click.
    """
    now, insight_id = wait_for(
        driver, lambda d: (s := page_state(d))[0] in ("question", "empty") and s, "no question came"
    )
    assert now == "question", driver.find_element(By.ID, "page").text
    assert driver.execute_script(
        "const picture = document.getElementById('question-image');"
        " return !picture.hidden && picture.complete && picture.naturalWidth > 0"
    ), "the question came before its picture"
    return insight_id


def next_after(driver: WebDriver, previous: str) -> None:
    """Wait until the page moved past a question (another one, or none left)."""

    def moved(d: WebDriver) -> bool:
        now, insight_id = page_state(d)
        return now == "empty" or (now == "question" and insight_id != previous)

    wait_for(driver, moved, f"the page stayed on {previous}")


def press(driver: WebDriver, key: str) -> None:
    driver.find_element(By.TAG_NAME, "body").send_keys(key)


def photographed(tenant) -> Image:
    """An uploaded photo with its thumbnails made (the other steps are not needed)."""
    response = upload(tenant.api, ("shelf.jpg", image_bytes(size=(640, 480), color=(20, 120, 40))))
    image = Image.objects.get(pk=response.json()["images"][0]["id"])
    thumbnails_step(image)
    return image


def street_scene() -> bytes:
    """A drawn street with a red car for a box to point at, made here (no shared data needed)."""
    picture = PIL.Image.new("RGB", (800, 600), (140, 195, 235))
    draw = PIL.ImageDraw.Draw(picture)
    draw.rectangle((0, 380, 800, 600), fill=(85, 88, 95))  # the road
    draw.rectangle((0, 362, 800, 382), fill=(175, 175, 165))  # the pavement's kerb
    for x in range(40, 800, 160):
        draw.rectangle((x, 480, x + 80, 490), fill=(235, 235, 225))  # lane marks
    draw.polygon([(270, 300), (320, 245), (430, 245), (480, 300)], fill=(170, 25, 35))  # roof
    draw.polygon([(285, 298), (325, 255), (372, 255), (372, 298)], fill=(190, 225, 245))
    draw.polygon([(380, 298), (380, 255), (425, 255), (462, 298)], fill=(190, 225, 245))
    draw.rounded_rectangle((200, 295, 520, 410), 24, fill=(205, 35, 45))  # body
    for x in (230, 410):
        draw.ellipse((x, 370, x + 80, 450), fill=(25, 25, 30))  # tyres
        draw.ellipse((x + 22, 392, x + 58, 428), fill=(190, 190, 195))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def object_on(image: Image, value: str, box: list[float]) -> Insight:
    return InsightFactory(
        client=image.client,
        image=image,
        barcode=str(image.uuid),
        type="object",
        value=value,
        predictor="imago-detection-coco",
        confidence=0.91,
        bounding_box=box,
        source_image=image.file,
        with_image=True,
    )


def street(tenant) -> Image:
    response = upload(tenant.api, ("street.jpg", street_scene()))
    image = Image.objects.get(pk=response.json()["images"][0]["id"])
    thumbnails_step(image)
    return image


def screenshot(driver: WebDriver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def label_on(image: Image, value: str, value_tag: str) -> Insight:
    return InsightFactory(
        client=image.client,
        image=image,
        barcode=str(image.uuid),
        value=value,
        value_tag=value_tag,
        predictor="imago-ocr-keywords",
        source_image=image.file,
        with_image=True,
    )


def log_in(driver: WebDriver, base: str, username: str, password: str) -> None:
    driver.get(f"{base}/admin/login/?next=/admin/")
    driver.find_element(By.ID, "id_username").send_keys(username)
    driver.find_element(By.ID, "id_password").send_keys(password + Keys.ENTER)
    wait_for(driver, lambda d: d.current_url.endswith("/admin/"), "the admin login failed")


def test_the_page_is_self_contained_html_that_calls_the_api(client, db):
    page = client.get("/questions/?lang=xx&insight_types=label&client=acme")
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    assert '<html lang="en">' in html  # an unknown language falls back to English
    found = re.search(r'id="page-config" type="application/json">(.*?)</script>', html)
    config = json.loads(found.group(1))
    assert config.pop("csrfToken")  # for staff sessions, which DRF checks against CSRF
    assert config == {
        "questionsUrl": "/api/v1/questions/random",
        "annotateUrl": "/api/v1/insights/annotate",
        "lang": "en",
        "filters": {"client": "acme", "insight_types": "label"},
    }
    assert "csrftoken" in page.cookies
    # No build step and no CDN: every script and style is in the page itself (the icon is ours).
    assert not re.search(r"<(script|link|img)(?! rel=\"icon\")[^>]+(src|href)=", html)
    assert client.post("/questions/").status_code == 405


@pytest.mark.slow
def test_staff_answer_with_keys_and_buttons_and_the_page_never_reloads(
    browser, live_server, owner, django_user_model
):
    django_user_model.objects.create_user("op", password="pw", is_staff=True)
    image = photographed(owner)
    labels = [
        label_on(image, "Bio", "en:organic"),
        label_on(image, "Vegan", "en:vegan"),
        label_on(image, "Fair trade", "en:fair-trade"),
    ]
    log_in(browser, live_server.url, "op", "pw")
    browser.get(f"{live_server.url}/questions/")
    first = shown_insight(browser)
    # Set once: if the page reloaded, this would be gone.
    browser.execute_script("window.__sameVisit = 'yes'")

    assert "Signed in as" in browser.find_element(By.ID, "who").text
    assert browser.find_element(By.ID, "question-text").text == "Does the product have this label?"
    shown = Insight.objects.get(pk=first)
    assert browser.find_element(By.ID, "question-value").text == shown.value
    assert "/files/signed/" in browser.find_element(By.ID, "question-image").get_attribute("src")
    assert "Y" in browser.find_element(By.TAG_NAME, "footer").text  # the shortcuts are listed

    # A held key's repeats answer nothing (an answer disables the buttons before its request).
    held = (
        "document.body.dispatchEvent(new KeyboardEvent('keydown', {key: 'y', repeat: true,"
        " bubbles: true})); return document.getElementById('answer-yes').disabled"
    )
    assert browser.execute_script(held) is False
    press(browser, "y")
    next_after(browser, first)
    accepted = Insight.objects.get(pk=first)
    assert (accepted.annotation, accepted.username) == (1, "op")
    assert image.tags.filter(name=accepted.value_tag).exists()  # applied to the image at once

    second = shown_insight(browser)
    browser.find_element(By.ID, "answer-no").click()
    next_after(browser, second)
    assert Insight.objects.get(pk=second).annotation == 0

    third = shown_insight(browser)
    press(browser, Keys.ARROW_DOWN)  # skip: a vote, even from staff
    wait_for(browser, lambda d: state(d) == "empty", "the last question did not go")
    skipped = Insight.objects.get(pk=third)
    assert (skipped.annotation, skipped.n_votes) == (None, 1)

    assert {first, second, third} == {str(i.pk) for i in labels}
    assert browser.find_element(By.ID, "empty").text.startswith("No more questions.")
    assert browser.execute_script("return window.__sameVisit") == "yes"


@pytest.mark.slow
def test_anonymous_visitors_vote_on_public_questions_in_their_language(
    browser, live_server, owner, other
):
    make_public(owner)
    public = label_on(photographed(owner), "Bio", "en:organic")
    label_on(photographed(other), "Secret", "en:secret")  # not public: never shown

    browser.get(f"{live_server.url}/questions/?lang=en")
    assert shown_insight(browser) == str(public.pk)
    browser.execute_script("window.__sameVisit = 'yes'")
    assert "Anonymous" in browser.find_element(By.ID, "who").text

    Select(browser.find_element(By.ID, "lang")).select_by_value("fr")
    wait_for(
        browser,
        lambda d: d.find_element(By.ID, "question-text").text == "Le produit a-t-il ce label ?",
        "the question was not asked in French",
    )
    assert browser.find_element(By.ID, "answer-yes").text.startswith("Oui")
    assert browser.current_url.endswith("lang=fr")

    press(browser, "y")  # the shortcuts stay the same in every language
    wait_for(browser, lambda d: state(d) == "empty", "the voted question was shown again")
    vote = AnnotationVote.objects.get(insight=public)
    assert (vote.value, vote.username) == (1, None)
    assert vote.device_id.startswith("web-")
    public.refresh_from_db()
    assert (public.annotation, public.n_votes) == (None, 1)  # one vote of the three needed
    assert browser.find_element(By.ID, "empty").text.startswith("Plus de questions.")
    assert browser.execute_script("return window.__sameVisit") == "yes"


@pytest.mark.slow
def test_the_page_says_when_there_is_nothing_to_ask(browser, live_server, db):
    browser.get(f"{live_server.url}/questions/")
    wait_for(browser, lambda d: state(d) == "empty", "no empty state")
    assert browser.find_element(By.ID, "empty").is_displayed()
    assert not browser.find_element(By.ID, "question").is_displayed()


@pytest.mark.slow
def test_an_object_question_shows_its_box_and_a_lost_picture_says_so(browser, live_server, owner):
    make_public(owner)
    car = object_on(street(owner), "car", CAR_BOX)
    # An imported question whose picture is gone: its link answers 404 (from this server).
    lost = f"{live_server.url}/static/imago/no-such-picture.jpg"
    InsightFactory(
        client=owner.client, value="Bio", value_tag="en:organic", source_image=lost, with_image=True
    )
    requested_urls(browser)  # from here on

    browser.get(f"{live_server.url}/questions/?insight_types=object")
    assert shown_insight(browser) == str(car.pk)
    picture = browser.find_element(By.ID, "question-image")
    box = browser.find_element(By.ID, "question-box")
    assert box.is_displayed() and box.size["width"] > 0 and box.size["height"] > 0
    # Where the insight says, in the picture as shown (border included: box-sizing).
    assert box.size["width"] / picture.size["width"] == pytest.approx(0.4, abs=0.02)
    assert box.size["height"] / picture.size["height"] == pytest.approx(0.3667, abs=0.02)
    assert box.location["x"] - picture.location["x"] == pytest.approx(
        0.25 * picture.size["width"], abs=2
    )
    assert box.value_of_css_property("border-top-color") == BOX_COLOUR
    assert browser.find_element(By.ID, "question-barcode").text == str(car.barcode)
    screenshot(browser, "question-box")

    browser.get(f"{live_server.url}/questions/?insight_types=label")
    wait_for(browser, lambda d: page_state(d)[0] == "question", "no question came")
    missing = browser.find_element(By.ID, "picture-missing")
    assert missing.is_displayed() and missing.text == "The picture could not be loaded."
    assert browser.find_element(By.ID, "question-barcode").text == BARCODE  # still said
    assert browser.find_element(By.ID, "question-value").text == "Bio"
    assert not browser.find_element(By.ID, "question-image").is_displayed()
    assert not browser.find_element(By.ID, "question-box").is_displayed()
    assert browser.find_element(By.ID, "answer-yes").is_enabled()  # it can still be answered
    screenshot(browser, "question-no-picture")

    requested = requested_urls(browser)
    assert lost in requested
    assert [url for url in requested if not url.startswith((live_server.url, "data:"))] == []
