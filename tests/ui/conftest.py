"""The question page's Chromium, shared: one way to start the browser."""

from tests.annotations.test_question_page import browser  # noqa: F401 (a fixture)
