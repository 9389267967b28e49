"""A file's records: a Robotoff prediction or question, validated, as the fields of an insight."""

import datetime as dt
import math
import uuid
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

# Every column an import may set; the rest (annotation, votes, username, …) belongs to people.
IMPORT_FIELDS = [
    "barcode",
    "type",
    "value",
    "value_tag",
    "data",
    "timestamp",
    "source_image",
    "automatic_processing",
    "predictor",
    "predictor_version",
    "confidence",
    "server_type",
    "countries",
    "brands",
    "campaign",
    "bounding_box",
    "lc",
    "unique_scans_n",
    "reserved_barcode",
    "with_image",
]
JSON_FIELDS = {"data", "countries", "brands", "campaign", "bounding_box", "lc"}


class BadRecord(ValueError):
    """A record that was skipped, and why."""


@dataclass(frozen=True)
class Record:
    id: uuid.UUID
    fields: dict[str, Any]


def prediction_record(obj: Any) -> Record:
    """A Robotoff prediction (one JSONL line) as the fields of an insight."""
    if not isinstance(obj, dict):
        raise BadRecord(f"expected a JSON object, got {_json_type(obj)}")
    fields: dict[str, Any] = {
        "barcode": _barcode(obj),
        "type": _text(obj, "type", required=True, max_length=64),
        "value": _text(obj, "value"),
        "value_tag": _text(obj, "value_tag", max_length=255),
        "data": _typed(obj, "data", dict, "an object") or {},
        "timestamp": _timestamp(obj.get("timestamp")),
        "source_image": _text(obj, "source_image", max_length=500),
        "automatic_processing": _typed(obj, "automatic_processing", bool, "true or false"),
        "predictor": _text(obj, "predictor", max_length=100),
        "predictor_version": _text(obj, "predictor_version", max_length=100),
        "confidence": _confidence(obj.get("confidence")),
        "server_type": _text(obj, "server_type", max_length=20) or "off",
    }
    # Fields of Robotoff's insight table that predictions rarely carry: set only when present.
    for name in ("countries", "brands", "campaign", "lc"):
        if name in obj:
            fields[name] = _typed(obj, name, list, "a list") or []
    if "bounding_box" in obj:
        fields["bounding_box"] = obj["bounding_box"]
    if "unique_scans_n" in obj:
        fields["unique_scans_n"] = _count(obj.get("unique_scans_n"))
    if "reserved_barcode" in obj:
        fields["reserved_barcode"] = bool(_typed(obj, "reserved_barcode", bool, "true or false"))
    with_image = _typed(obj, "with_image", bool, "true or false")
    fields["with_image"] = bool(fields["source_image"]) if with_image is None else with_image
    return Record(_uuid(obj, "id"), fields)


def question_record(obj: Any) -> Record:
    """A question of Robotoff's /questions answer: only the insight fields it carries."""
    if not isinstance(obj, dict):
        raise BadRecord(f"expected a JSON object, got {_json_type(obj)}")
    source_image = _text(obj, "source_image_url", max_length=500)
    fields = {
        "barcode": _barcode(obj),
        "type": _text(obj, "insight_type", required=True, max_length=64),
        "value": _text(obj, "value"),
        "value_tag": _text(obj, "value_tag", max_length=255),
        "source_image": source_image,
        "with_image": bool(source_image),
        "server_type": _text(obj, "server_type", max_length=20) or "off",
    }
    return Record(_uuid(obj, "insight_id"), fields)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def _typed(obj: dict, name: str, kind: type, described: str) -> Any:
    value = obj.get(name)
    # bool is an int in Python; JSON keeps them apart, and so do we.
    if value is not None and (not isinstance(value, kind) or (kind is int and value is True)):
        raise BadRecord(f"{name} must be {described}, not {_json_type(value)}")
    return value


def _text(obj: dict, name: str, *, required: bool = False, max_length: int | None = None) -> Any:
    # Called nine times a record: the common case (a string) is checked first, in few steps.
    value = obj.get(name)
    if type(value) is str:
        if max_length is not None and len(value) > max_length:
            raise BadRecord(f"{name} is longer than {max_length} characters")
        if "\x00" in value:
            raise BadRecord(f"{name} contains a NUL character")
        if required and not value:
            raise BadRecord(f"{name} is empty")
        return value
    if value is None:
        if required:
            raise BadRecord(f"{name} is missing")
        return None
    raise BadRecord(f"{name} must be a string, not {_json_type(value)}")


def _barcode(obj: dict) -> str:
    return _text(obj, "barcode", required=True, max_length=100)


def _uuid(obj: dict, name: str) -> uuid.UUID:
    value = _text(obj, name, required=True)
    try:
        return uuid.UUID(value)
    except ValueError:
        raise BadRecord(f"{name} is not a UUID: {value[:60]!r}") from None


def _timestamp(value: Any) -> dt.datetime:
    if type(value) is str:
        # The common case first, in few steps (a million times an import).
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise BadRecord(f"timestamp is not a date and time: {value[:60]!r}") from None
        # Robotoff writes naive UTC timestamps.
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    if value is None:
        return timezone.now()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRecord(f"timestamp must be an ISO 8601 string, not {_json_type(value)}")
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (ValueError, OverflowError, OSError):
        raise BadRecord(f"timestamp is not a date and time: {str(value)[:60]!r}") from None


def _confidence(value: Any) -> float | None:
    if value is None:
        return None
    if type(value) is float and math.isfinite(value):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRecord(f"confidence must be a number or null, not {_json_type(value)}")
    return float(value)


def _count(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise BadRecord("unique_scans_n must be a whole number from 0 to 2³¹-1")
    return value
