"""The provider interface: four questions, each answered as a schema-validated object."""

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

import pydantic


class ProviderError(Exception):
    """A provider failed to answer (network, quota, timeout) or answered outside the schema."""


class VisionAnswer(pydantic.BaseModel):
    description: str | None = pydantic.Field(description="One or two sentences about the image.")
    tags: list[str] = pydantic.Field(max_length=30, description="Short lower-case keywords.")
    confidence: float | None = pydantic.Field(ge=0, le=1, description="How sure, 0 to 1.")


class TextAnswer(pydantic.BaseModel):
    text: str = pydantic.Field(description="All visible text, line by line; empty if none.")
    language: str | None = pydantic.Field(description="ISO 639-1 code of the text, or null.")
    confidence: float = pydantic.Field(ge=0, le=1, description="How sure of the reading, 0 to 1.")


class SummaryAnswer(pydantic.BaseModel):
    summary: str = pydantic.Field(min_length=1, description="A few sentences.")


class TaskDraft(pydantic.BaseModel):
    title: str = pydantic.Field(min_length=1, max_length=120)
    summary: str = pydantic.Field(min_length=1)
    steps: list[str] = pydantic.Field(min_length=1, max_length=20)
    acceptance_criteria: list[str] = pydantic.Field(min_length=1, max_length=20)
    priority: Literal["low", "medium", "high", "urgent"]
    estimate: Literal["xs", "s", "m", "l", "xl"] = pydantic.Field(
        description="T-shirt size: xs under an hour, s a few hours, m a day, l a week, xl more."
    )


Answer = TypeVar("Answer", bound=pydantic.BaseModel)


@dataclass(frozen=True)
class Completion(Generic[Answer]):
    answer: Answer
    model: str | None = None
    usage: dict | None = None


def parse_answer(text: str | None, schema: type[Answer]) -> Answer:
    """The provider's JSON text validated against the schema; anything else is a ProviderError."""
    try:
        return schema.model_validate(json.loads(text or ""))
    except (json.JSONDecodeError, pydantic.ValidationError) as exc:
        raise ProviderError(f"Malformed answer for {schema.__name__}: {exc}") from exc


def json_schema(schema: type[pydantic.BaseModel]) -> dict:
    return schema.model_json_schema()


class Provider(ABC):
    name: str
    model: str | None = None
    # Remote providers can read text in images; the local one cannot.
    reads_images = True

    @abstractmethod
    def describe_image(
        self, *, data: bytes, mime_type: str, language: str, hints: list[str]
    ) -> Completion[VisionAnswer]: ...

    @abstractmethod
    def read_text(self, *, data: bytes, mime_type: str) -> Completion[TextAnswer]: ...

    @abstractmethod
    def summarize(
        self, *, text: str, title: str | None, language: str
    ) -> Completion[SummaryAnswer]: ...

    @abstractmethod
    def draft_task(
        self, *, description: str, context: str, language: str
    ) -> Completion[TaskDraft]: ...


LANGUAGE_NAMES = {"en": "English", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian"}


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def describe_prompt(language: str, hints: list[str]) -> str:
    prompt = (
        "Describe this image for a photo library. Answer in JSON with: description (one or two "
        f"sentences in {language_name(language)}), tags (up to 15 short lower-case keywords in "
        f"{language_name(language)}: objects, scene, colours, text topics), confidence (0 to 1)."
    )
    if hints:
        prompt += f" Other tools found: {', '.join(hints)}."
    return prompt


READ_TEXT_PROMPT = (
    "Transcribe all text visible in this image, line by line, exactly as written. Answer in JSON "
    "with: text (empty string when there is none), language (ISO 639-1 code or null), confidence "
    "(0 to 1)."
)


def summarize_prompt(text: str, title: str | None, language: str) -> str:
    return (
        f"Summarise this web page in {language_name(language)} in three to five sentences. "
        f"Answer in JSON with: summary.\n\nTitle: {title or '(none)'}\n\n{text}"
    )


def draft_task_prompt(description: str, context: str, language: str) -> str:
    return (
        f"Draft a work task in {language_name(language)} from this request. Answer in JSON with: "
        "title (imperative, under 80 characters), summary, steps (ordered list), "
        "acceptance_criteria (testable statements), priority (low, medium, high or urgent), "
        "estimate (xs under an hour, s a few hours, m a day, l a week, xl more).\n\n"
        f"Request: {description}\n\nContext: {context or '(none)'}"
    )
