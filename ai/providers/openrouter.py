"""OpenRouter's OpenAI-compatible chat API through the openai SDK (JSON-schema answers)."""

import base64

import openai

from ai.providers.base import (
    READ_TEXT_PROMPT,
    Answer,
    Completion,
    Provider,
    ProviderError,
    SummaryAnswer,
    TaskDraft,
    TextAnswer,
    VisionAnswer,
    describe_prompt,
    draft_task_prompt,
    json_schema,
    parse_answer,
    summarize_prompt,
)


class OpenRouterProvider(Provider):
    name = "openrouter"

    def __init__(
        self, *, api_key: str, model: str, base_url: str, timeout: float, attempts: int
    ) -> None:
        self.model = model
        # The SDK retries 408, 409, 429 and 5xx answers and timeouts with exponential backoff,
        # honouring Retry-After.
        self.client = openai.OpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max(attempts - 1, 0)
        )

    def describe_image(
        self, *, data: bytes, mime_type: str, language: str, hints: list[str]
    ) -> Completion[VisionAnswer]:
        return self._ask(
            _with_image(describe_prompt(language, hints), data, mime_type), VisionAnswer
        )

    def read_text(self, *, data: bytes, mime_type: str) -> Completion[TextAnswer]:
        return self._ask(_with_image(READ_TEXT_PROMPT, data, mime_type), TextAnswer)

    def summarize(
        self, *, text: str, title: str | None, language: str
    ) -> Completion[SummaryAnswer]:
        return self._ask(summarize_prompt(text, title, language), SummaryAnswer)

    def draft_task(self, *, description: str, context: str, language: str) -> Completion[TaskDraft]:
        return self._ask(draft_task_prompt(description, context, language), TaskDraft)

    def _ask(self, content: str | list[dict], schema: type[Answer]) -> Completion[Answer]:
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=[{"role": "user", "content": content}],
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": schema.__name__, "schema": json_schema(schema)},
                },
                temperature=0.2,
            )
        except openai.APIStatusError as exc:
            raise ProviderError(f"OpenRouter answered {exc.status_code}: {exc.message}") from exc
        except openai.APIConnectionError as exc:
            # APITimeoutError is a kind of APIConnectionError.
            raise ProviderError(f"OpenRouter is unreachable: {exc}") from exc
        if not response.choices:
            raise ProviderError("OpenRouter answered without a choice.")
        usage = response.usage
        return Completion(
            answer=parse_answer(response.choices[0].message.content, schema),
            model=response.model or self.model,
            usage=usage
            and {
                "input_tokens": usage.prompt_tokens,
                "output_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            },
        )


def _with_image(prompt: str, data: bytes, mime_type: str) -> list[dict]:
    url = f"data:{mime_type};base64,{base64.b64encode(data).decode()}"
    return [{"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": url}}]
