"""The review page in headless Chromium, on a server started as `make run` starts it: an operator
removes a wrong box, draws a missing one, saves, and the covered result is re-rendered."""

import numpy as np
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from images.models import PlateTaskFile
from tests.annotations.test_question_page import log_in, wait_for
from tests.images.test_anonymize_review import _covered_row, _region, _stored
from tests.ui import test_browser as browser_pages
from tests.ui.test_browser import SCREENSHOTS, styled, visit

pytestmark = pytest.mark.slow  # Chromium against a live server

# The live server of the browser tests (DEBUG off, collected static files): its fixtures.
collected, server = browser_pages.collected, browser_pages.server

DRAWN = (300, 120, 360, 180)  # in the 400 x 200 picture's pixels
PATCH = (100, 50, 199, 99)  # the red patch _covered_row covers


def _drag(browser, svg, box: tuple[int, int, int, int], size: tuple[int, int]) -> None:
    """Press at the box's corner and release at the opposite one (offsets from the centre)."""
    width, height = svg.size["width"], svg.size["height"]
    scale_x, scale_y = width / size[0], height / size[1]
    x1, y1, x2, y2 = box
    start = (round(x1 * scale_x - width / 2), round(y1 * scale_y - height / 2))
    ActionChains(browser).move_to_element_with_offset(svg, *start).click_and_hold().move_by_offset(
        round((x2 - x1) * scale_x), round((y2 - y1) * scale_y)
    ).release().perform()


def test_an_operator_draws_a_box_and_removes_one_in_the_browser(
    browser, server, owner, django_user_model
):
    django_user_model.objects.create_superuser("root", "root@localhost", "pw")
    row = _covered_row(owner)
    log_in(browser, server, "root", "pw")

    visit(browser, server, f"/admin/images/platetaskfile/{row.pk}/change/", "#review-boxes rect",
          "review")  # fmt: skip
    styled(browser)
    original = browser.find_element(By.ID, "review-original")
    wait_for(
        browser,
        lambda d: d.execute_script("return arguments[0].naturalWidth", original) == 400,
        "the original did not load",
    )
    svg = browser.find_element(By.ID, "review-boxes")
    browser.find_element(By.CSS_SELECTOR, "#review-boxes rect.review-kept").click()  # remove it
    _drag(browser, svg, DRAWN, (400, 200))
    assert browser.find_elements(By.CSS_SELECTOR, "#review-boxes rect.review-removed")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#review-boxes rect.review-added")) == 1
    browser.save_screenshot(str(SCREENSHOTS / "review-drawn.png"))

    browser.find_element(By.ID, "review-save").click()
    wait_for(
        browser,
        # Read in one script: the page is replaced under a found element as the form posts.
        lambda d: d.execute_script(
            "const cell = document.getElementById('review-revision');"
            " return cell ? cell.textContent.trim() : ''"
        ).startswith("1"),
        "the correction was not saved",
    )
    covered = browser.find_element(By.ID, "review-covered")
    wait_for(
        browser,
        lambda d: d.execute_script("return arguments[0].naturalWidth", covered) == 400,
        "the re-rendered result did not load",
    )
    browser.save_screenshot(str(SCREENSHOTS / "review-saved.png"))
    row = PlateTaskFile.objects.get(pk=row.pk)
    [quad] = row.regions
    assert np.allclose(np.min(quad, axis=0), DRAWN[:2], atol=3)
    assert np.allclose(np.max(quad, axis=0), DRAWN[2:], atol=3)
    assert row.reviewed_by.username == "root" and not row.needs_review
    pixels = _stored(row.result_file)
    x1, y1, x2, y2 = DRAWN
    assert _region(pixels, (x1 + 4, y1 + 4, x2 - 4, y2 - 4)).max() < 30  # covered: solid black
    patch = _region(pixels, (PATCH[0] + 4, PATCH[1] + 4, PATCH[2] - 4, PATCH[3] - 4))
    assert patch[..., 0].min() > 200 and patch[..., 1].max() < 60  # the red patch is back
    violations = [
        entry["message"]
        for entry in browser.get_log("browser")
        if "Content Security Policy" in entry["message"]
    ]
    assert violations == []
