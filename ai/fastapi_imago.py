"""The FastAPI Imago's AI routes (/ai/summarize, /ai/draft-task at the site's root): Imago's own
views, except that `language` may be a name (`français`, `French`) as well as a code, from Babel's
CLDR data. imago_site/urls.py serves them with its other routes (images/compat/fastapi_imago)."""

import unicodedata
from functools import cache

from babel import Locale, UnknownLocaleError
from django.urls import URLPattern, re_path
from rest_framework import serializers

from ai import api
from ai.serializers import SummarizeRequestSerializer

# The languages whose names for other languages are understood, besides each one's own name.
NAMED_IN = ("en", "fr", "de", "es", "it", "pt", "nl")


def _folded(name: str) -> str:
    """Lower case without accents: `Français`, `francais` and `FRANÇAIS` are one name."""
    decomposed = unicodedata.normalize("NFKD", name.strip().casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


@cache
def _codes_by_name() -> dict[str, str]:
    codes = [code for code in Locale("en").languages if len(code) == 2]
    names: dict[str, str] = {}
    for code in codes:
        names[_folded(code)] = code
        for name in (Locale(lang).languages.get(code) for lang in NAMED_IN):
            if name:
                names.setdefault(_folded(name), code)
    for code in codes:
        try:
            autonym = Locale(code).get_language_name(code)
        except UnknownLocaleError:
            continue  # Babel names some languages it has no locale for
        if autonym:
            names.setdefault(_folded(autonym), code)
    return names


def language_code(value: str) -> str | None:
    """The two-letter code of a name or a tag (`français`, `French`, `fr`, `fr-FR`), or None."""
    folded = _folded(value)
    return _codes_by_name().get(folded) or _codes_by_name().get(folded.split("-")[0].split("_")[0])


class LegacySummarizeRequestSerializer(SummarizeRequestSerializer):
    language = serializers.CharField(
        max_length=50,
        required=False,
        allow_blank=True,
        help_text="A code (fr) or a name (français, French); empty: the tenant's language.",
    )

    def validate_language(self, value: str) -> str:
        if not value.strip():
            return ""
        code = language_code(value)
        if code is None:
            raise serializers.ValidationError(
                "Unknown language: send a code such as fr or a name such as français."
            )
        return code


class SummarizeView(api.SummarizeView):
    """`language` may be a name in any of several languages (`français`), or a code."""

    request_serializer = LegacySummarizeRequestSerializer


class DraftTaskView(api.DraftTaskView):
    """The same body (`description`, `context`) and answer as Imago's."""


# Each answers with or without a final slash, as the FastAPI Imago's other paths.
urlpatterns: list[URLPattern] = [
    re_path(r"^ai/summarize/?$", SummarizeView.as_view(), name="fastapi-imago-summarize"),
    re_path(r"^ai/draft-task/?$", DraftTaskView.as_view(), name="fastapi-imago-draft-task"),
]
