"""Google Gemini through the google-genai SDK (JSON answers constrained by a response schema)."""

import httpx
import httpx2
from google import genai
from google.genai import errors, types

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
    parse_answer,
    summarize_prompt,
)

RETRY_STATUSES = [429, 500, 502, 503, 504]
# The SDK sends with httpx2 (a fork of httpx), or httpx when given an httpx client.
TRANSPORT_ERRORS = (httpx.HTTPError, httpx2.HTTPError, OSError)


class GeminiProvider(Provider):
    name = "gemini"

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str = "",
        timeout: float,
        attempts: int,
        initial_delay: float,
    ) -> None:
        self.model = model
        options = types.HttpOptions(
            base_url=base_url or None,
            timeout=round(timeout * 1000),
            # The SDK retries 429 and 5xx answers (and timeouts) with exponential backoff.
            retry_options=types.HttpRetryOptions(
                attempts=attempts,
                initial_delay=initial_delay,
                max_delay=max(initial_delay * 8, 1),
                jitter=initial_delay,
                http_status_codes=RETRY_STATUSES,
            ),
        )
        self.client = genai.Client(api_key=api_key, http_options=options)

    def describe_image(
        self, *, data: bytes, mime_type: str, language: str, hints: list[str]
    ) -> Completion[VisionAnswer]:
        parts = [types.Part.from_bytes(data=data, mime_type=mime_type)]
        return self._ask([*parts, describe_prompt(language, hints)], VisionAnswer)

    def read_text(self, *, data: bytes, mime_type: str) -> Completion[TextAnswer]:
        parts = [types.Part.from_bytes(data=data, mime_type=mime_type)]
        return self._ask([*parts, READ_TEXT_PROMPT], TextAnswer)

    def summarize(
        self, *, text: str, title: str | None, language: str
    ) -> Completion[SummaryAnswer]:
        return self._ask([summarize_prompt(text, title, language)], SummaryAnswer)

    def draft_task(self, *, description: str, context: str, language: str) -> Completion[TaskDraft]:
        return self._ask([draft_task_prompt(description, context, language)], TaskDraft)

    def _ask(self, contents: list, schema: type[Answer]) -> Completion[Answer]:
        config = types.GenerateContentConfig(
            response_mime_type="application/json",
            response_schema=schema,
            temperature=0.2,
            # No tools are offered: the SDK's function-calling loop has nothing to do.
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        try:
            response = self.client.models.generate_content(
                model=self.model, contents=contents, config=config
            )
        except errors.APIError as exc:
            raise ProviderError(f"Gemini answered {exc.code}: {exc.message}") from exc
        except TRANSPORT_ERRORS as exc:
            raise ProviderError(f"Gemini is unreachable: {type(exc).__name__}: {exc}") from exc
        usage = response.usage_metadata
        return Completion(
            answer=parse_answer(response.text, schema),
            model=response.model_version or self.model,
            usage=usage
            and {
                "input_tokens": usage.prompt_token_count,
                "output_tokens": usage.candidates_token_count,
                "total_tokens": usage.total_token_count,
            },
        )
