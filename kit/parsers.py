"""JSON bodies with a bounded nesting depth; form bodies whose one-value fields are sent once.

Python's json module recurses once per level: a 6 KB body of 3,000 brackets raises RecursionError
(a 500), and a few hundred levels parse but then cost every walk over the data. No request of this
API needs more than a handful of levels, so deeper documents are refused before they are parsed.
"""

import codecs
import json
import re
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import get_encoding
from rest_framework.utils.json import strict_constant

# The only characters the depth check looks at; the C regex engine skips the others in bulk.
# (Matching whole strings with a regex was quadratic: a string that never closes, such as
# `"\"\"\"...`, made re.sub scan to the end again from every quote.)
_SIGNIFICANT = re.compile(r'[\[\]{}"\\]')


class TooDeep(ValueError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON nested deeper than {limit} levels.")


def json_depth(text: str) -> int:
    """How deep arrays and objects nest in `text`, without parsing it (brackets in strings
    do not count; malformed text gives some number, and the parser refuses it afterwards)."""
    # One pass, left to right, each character looked at once: linear whatever the text.
    depth = deepest = 0
    in_string = False
    escaped_at = -1  # the position of the character a backslash in a string escapes
    for match in _SIGNIFICANT.finditer(text):
        char, at = match.group(), match.start()
        if in_string:
            if at == escaped_at:
                continue  # \" or \\: part of the string, escaping nothing after it
            if char == "\\":
                escaped_at = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def loads(text: str, **kwargs: Any) -> Any:
    """json.loads, refusing (TooDeep, a ValueError) documents past API_JSON_MAX_DEPTH."""
    if json_depth(text) > settings.API_JSON_MAX_DEPTH:
        raise TooDeep(settings.API_JSON_MAX_DEPTH)
    return json.loads(text, **kwargs)


class JSONParser(parsers.JSONParser):
    """DRF's parser (same errors, same strictness) with the depth limit: 400 `too_deep`."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        encoding = get_encoding(parser_context or {})
        try:
            text = codecs.getreader(encoding)(stream).read()
            parse_constant = strict_constant if self.strict else None
            return loads(text, parse_constant=parse_constant)
        except TooDeep as exc:
            raise ParseError(str(exc), code="too_deep") from exc
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc


class SingleValues(QueryDict):
    """Form data in which a field read as one value refuses a key sent more than once.

    Django's QueryDict answers the last of repeated values, so `rate_limit=x&rate_limit=` reads
    as an empty (null) rate limit: what a client meant is unknown, and the request is refused.
    Fields that take several values (files, scopes, classes) read them with getlist(), as before.
    """

    def __getitem__(self, key: str) -> Any:
        if len(self.getlist(key)) > 1:
            raise ValidationError({key: ["Sent more than once; this field takes one value."]})
        return super().__getitem__(key)

    def items(self) -> Iterator[tuple[str, Any]]:
        # Walks over every key (DRF's html list parsing does), not a read of one field.
        for key in self:
            yield key, super().__getitem__(key)


def single_values(data: MultiValueDict) -> SingleValues:
    strict = SingleValues(mutable=True, encoding=getattr(data, "encoding", None))
    for key, values in data.lists():
        strict.setlist(key, values)
    strict._mutable = False
    return strict


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None) -> SingleValues:
        return single_values(super().parse(stream, media_type, parser_context))


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None) -> parsers.DataAndFiles:
        parsed = super().parse(stream, media_type, parser_context)
        return parsers.DataAndFiles(single_values(parsed.data), parsed.files)
