"""Which provider answers: the tenant's choice, else AI_PROVIDER, else whichever has a key."""

import logging

from django.conf import settings

from ai.providers.base import (
    Completion,
    Provider,
    ProviderError,
    SummaryAnswer,
    TaskDraft,
    TextAnswer,
    VisionAnswer,
)
from ai.providers.gemini import GeminiProvider
from ai.providers.local import LocalProvider
from ai.providers.openrouter import OpenRouterProvider

__all__ = [
    "Completion",
    "Provider",
    "ProviderError",
    "SummaryAnswer",
    "TaskDraft",
    "TextAnswer",
    "VisionAnswer",
    "provider_named",
]

logger = logging.getLogger(__name__)


def provider_named(name: str = "") -> Provider:
    """The named provider ('' for the settings' choice); one without its key falls back to local.

    A missing key must never fail the pipeline: it is logged, and the local provider answers.
    """
    name = name or settings.AI_PROVIDER or _provider_with_a_key()
    if name == "gemini":
        if settings.GEMINI_API_KEY:
            return GeminiProvider(
                api_key=settings.GEMINI_API_KEY,
                model=settings.GEMINI_MODEL,
                base_url=settings.GEMINI_BASE_URL,
                timeout=settings.AI_TIMEOUT,
                attempts=settings.AI_RETRY_ATTEMPTS,
                initial_delay=settings.AI_RETRY_INITIAL_DELAY,
            )
        logger.warning("AI provider gemini has no GEMINI_API_KEY: the local provider answers.")
    elif name == "openrouter":
        if settings.OPENROUTER_API_KEY:
            return OpenRouterProvider(
                api_key=settings.OPENROUTER_API_KEY,
                model=settings.OPENROUTER_MODEL,
                base_url=settings.OPENROUTER_BASE_URL,
                timeout=settings.AI_TIMEOUT,
                attempts=settings.AI_RETRY_ATTEMPTS,
            )
        logger.warning("AI provider openrouter has no OPENROUTER_API_KEY: the local one answers.")
    elif name != "local":
        logger.warning("Unknown AI provider %r: the local provider answers.", name)
    return LocalProvider()


def _provider_with_a_key() -> str:
    if settings.GEMINI_API_KEY:
        return "gemini"
    if settings.OPENROUTER_API_KEY:
        return "openrouter"
    return "local"
