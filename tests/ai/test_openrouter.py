"""The openrouter provider: the real openai client against a fake OpenAI-compatible server."""

import time

import pytest

from ai.providers import ProviderError, provider_named
from tests.ai.support import openrouter_reply

ANSWER = {"description": "Un chat sur un canapé.", "tags": ["chat", "canapé"], "confidence": 0.8}


def describe(language: str = "fr"):
    return provider_named().describe_image(
        data=b"\x89PNGfake", mime_type="image/png", language=language, hints=[]
    )


def test_it_describes_an_image_with_the_chat_completions_protocol(openrouter):
    openrouter.queue(openrouter_reply(ANSWER))
    completion = describe()
    assert completion.answer.tags == ["chat", "canapé"]
    assert completion.model == "vendor/vision-test"
    assert completion.usage == {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120}
    [request] = openrouter.received
    assert request.path == "/api/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer test-openrouter-key"
    body = request.json()
    assert body["model"] == "vendor/vision-test"
    text, image = body["messages"][0]["content"]
    assert "French" in text["text"]
    assert image["image_url"]["url"].startswith("data:image/png;base64,")
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["required"] == [
        "description",
        "tags",
        "confidence",
    ]


def test_a_malformed_answer_is_a_provider_error(openrouter):
    openrouter.queue(openrouter_reply('{"description": "unterminated'))
    with pytest.raises(ProviderError, match="Malformed answer"):
        describe()


def test_it_retries_after_429_and_then_succeeds(openrouter):
    openrouter.queue(openrouter_reply({}, status=429), openrouter_reply(ANSWER))
    assert describe().answer.description == "Un chat sur un canapé."
    assert len(openrouter.received) == 2


def test_it_retries_a_5xx_and_gives_up_after_the_last_attempt(openrouter):
    openrouter.queue(*[openrouter_reply({}, status=502)] * 3)
    with pytest.raises(ProviderError, match="502"):
        describe()
    assert len(openrouter.received) == 3


def test_a_slow_server_times_out(openrouter, settings):
    settings.AI_TIMEOUT = 0.3
    settings.AI_RETRY_ATTEMPTS = 1
    openrouter.queue(openrouter_reply(ANSWER, delay=2))
    started = time.monotonic()
    with pytest.raises(ProviderError, match="unreachable"):
        describe()
    assert time.monotonic() - started < 1.5


def test_it_drafts_a_task_validated_by_the_schema(openrouter):
    task = {
        "title": "Fix the upload button",
        "summary": "The upload button does nothing on Safari.",
        "steps": ["Reproduce on Safari", "Fix the handler"],
        "acceptance_criteria": ["Uploading works on Safari"],
        "priority": "high",
        "estimate": "s",
    }
    openrouter.queue(openrouter_reply(task))
    completion = provider_named().draft_task(
        description="Upload is broken on Safari", context="", language="en"
    )
    assert completion.answer.model_dump() == task
