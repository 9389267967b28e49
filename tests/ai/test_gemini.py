"""The gemini provider: the real google-genai client against a fake Gemini HTTP server."""

import time

import pytest

from ai.providers import ProviderError, provider_named
from tests.ai.support import gemini_reply

ANSWER = {
    "description": "A red car parked on a street.",
    "tags": ["car", "street"],
    "confidence": 0.9,
}


def describe(language: str = "en"):
    return provider_named().describe_image(
        data=b"\xff\xd8fake", mime_type="image/jpeg", language=language, hints=["car"]
    )


def test_it_describes_an_image_with_the_sdk_wire_protocol(gemini):
    gemini.queue(gemini_reply(ANSWER))
    completion = describe(language="fr")
    assert completion.answer.description == "A red car parked on a street."
    assert completion.answer.tags == ["car", "street"]
    assert completion.model == "gemini-test-001"
    assert completion.usage == {"input_tokens": 120, "output_tokens": 30, "total_tokens": 150}
    [request] = gemini.received
    # The SDK picks the API version (v1beta or v1); the method is Gemini's REST one.
    assert request.path.startswith("/v1")
    assert request.path.endswith("/models/gemini-test:generateContent")
    assert request.headers["x-goog-api-key"] == "test-gemini-key"
    body = request.json()
    parts = body["contents"][0]["parts"]
    assert "image/jpeg" in parts[0]["inlineData"].values()
    assert "French" in parts[1]["text"]
    assert body["generationConfig"]["responseMimeType"] == "application/json"
    assert "tags" in str(body["generationConfig"]["responseSchema"])


def test_a_malformed_answer_is_a_provider_error(gemini):
    gemini.queue(gemini_reply("The picture shows a car."))
    with pytest.raises(ProviderError, match="Malformed answer"):
        describe()


def test_an_answer_outside_the_schema_is_a_provider_error(gemini):
    gemini.queue(gemini_reply({"description": "x", "tags": "car", "confidence": 3}))
    with pytest.raises(ProviderError, match="Malformed answer"):
        describe()


def test_it_retries_after_429_and_then_succeeds(gemini):
    gemini.queue(gemini_reply({}, status=429), gemini_reply({}, status=503), gemini_reply(ANSWER))
    assert describe().answer.tags == ["car", "street"]
    assert len(gemini.received) == 3


def test_it_gives_up_after_the_last_attempt(gemini):
    gemini.queue(*[gemini_reply({}, status=500)] * 3)
    with pytest.raises(ProviderError, match="500"):
        describe()
    assert len(gemini.received) == 3


def test_a_client_error_is_not_retried(gemini):
    gemini.queue(gemini_reply({}, status=400))
    with pytest.raises(ProviderError, match="400"):
        describe()
    assert len(gemini.received) == 1


def test_a_slow_server_times_out(gemini, settings):
    settings.AI_TIMEOUT = 0.3
    settings.AI_RETRY_ATTEMPTS = 2
    gemini.queue(gemini_reply(ANSWER, delay=2), gemini_reply(ANSWER, delay=2))
    started = time.monotonic()
    with pytest.raises(ProviderError, match="unreachable"):
        describe()
    assert time.monotonic() - started < 1.8
