"""/docs and /redoc, the FastAPI Imago's docs pages, in headless Chromium on a live server."""

import pytest
from selenium.webdriver.common.by import By

from tests.annotations.test_question_page import browser  # noqa: F401 (a fixture)
from tests.live import live_server
from tests.ui.test_browser import visit

pytestmark = pytest.mark.slow  # Chromium against a live server


@pytest.fixture
def server(transactional_db, collected, tmp_path):
    with live_server(collected, tmp_path) as base:
        yield base


def test_its_docs_pages_show_its_routes_from_this_server_alone(browser, server):  # noqa: F811
    requested = visit(browser, server, "/docs", ".swagger-ui .opblock", "fastapi-imago-docs")
    paths = {p.text for p in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert {"/images/upload", "/images/{id}/status", "/auth/clients", "/ai/summarize"} <= paths
    assert not [path for path in paths if path.startswith("/api/")]
    requested += visit(browser, server, "/redoc", "redoc .api-content h1", "fastapi-imago-redoc")
    assert "FastAPI Imago" in browser.find_element(By.CSS_SELECTOR, "redoc .api-content h1").text
    elsewhere = [url for url in requested if not url.startswith((server, "data:", "blob:"))]
    assert elsewhere == []
