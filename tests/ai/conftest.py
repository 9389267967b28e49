"""Fixtures of the ai tests: a fake Gemini, a fake OpenRouter, a web page server."""

import pytest

from tests.ai.support import FakeServer


@pytest.fixture
def fake_server():
    server = FakeServer()
    yield server
    server.close()


@pytest.fixture
def gemini(fake_server, settings) -> FakeServer:
    """The real google-genai client pointed at a fake Gemini; quick retries and timeouts."""
    settings.AI_PROVIDER = "gemini"
    settings.GEMINI_API_KEY = "test-gemini-key"
    settings.GEMINI_MODEL = "gemini-test"
    settings.GEMINI_BASE_URL = fake_server.url
    settings.AI_TIMEOUT = 1.0
    settings.AI_RETRY_ATTEMPTS = 3
    settings.AI_RETRY_INITIAL_DELAY = 0.01
    return fake_server


@pytest.fixture
def openrouter(fake_server, settings) -> FakeServer:
    """The real openai client pointed at a fake OpenRouter; quick timeouts."""
    settings.AI_PROVIDER = "openrouter"
    settings.OPENROUTER_API_KEY = "test-openrouter-key"
    settings.OPENROUTER_MODEL = "vendor/vision-test"
    settings.OPENROUTER_BASE_URL = f"{fake_server.url}/api/v1"
    settings.AI_TIMEOUT = 1.0
    settings.AI_RETRY_ATTEMPTS = 3
    return fake_server


@pytest.fixture(autouse=True)
def _no_real_keys(settings) -> None:
    """Tests never use keys from the environment: the local provider unless a test says so."""
    settings.AI_PROVIDER = ""
    settings.GEMINI_API_KEY = ""
    settings.OPENROUTER_API_KEY = ""
    settings.AI_FETCH_ALLOWED_HOSTS = []
