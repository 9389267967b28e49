"""Reading a file to import: gzip and the format are detected, then records are read one at a
time (a line, or one question), within INSIGHT_IMPORT_MAX_LINE_BYTES,
INSIGHT_IMPORT_MAX_INFLATED_BYTES and API_JSON_MAX_DEPTH; a record that cannot be read is a
BadLine."""

import functools
import gzip
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Literal

import ijson
import orjson
from django.conf import settings

from annotations.importer.records import BadRecord, Record, prediction_record, question_record
from kit import parsers
from kit.errors import DomainError

Format = Literal["predictions", "questions"]
FORMATS = ("auto", "predictions", "questions")
GZIP_MAGIC = b"\x1f\x8b"
HEAD_BYTES = 64 * 1024
# The rest of a line longer than INSIGHT_IMPORT_MAX_LINE_BYTES is skipped this much at a time.
SKIP_BYTES = 64 * 1024


class ImportRefused(DomainError):
    """Nothing in the file could be read (empty, not JSON, an unknown format), or it is too big."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail, 413 if code == "file_too_large" else 400)


@dataclass(frozen=True)
class BadLine:
    """Where a refused record was (a line of JSONL, or the n-th question) and why."""

    unit: Literal["line", "question", "file"]
    number: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {self.unit: self.number, "reason": self.reason}

    def __str__(self) -> str:
        return f"{self.unit} {self.number}: {self.reason}"


@dataclass
class Source:
    """A file opened for import: its format, its records, and how far into it we are."""

    format: Format
    stream: IO[bytes]
    position: Callable[[], int]
    size: int | None


def open_source(fp: IO[bytes], *, format: str = "auto") -> Source:
    """Detect gzip (by magic bytes) and the format (by content), or raise ImportRefused."""
    if format not in FORMATS:
        raise ImportRefused("unknown_format", f"format must be one of {', '.join(FORMATS)}.")
    raw_position = fp.tell
    size = _size_of(fp)
    buffered = io.BufferedReader(_Unclosable(fp), HEAD_BYTES)
    stream: IO[bytes] = buffered
    if buffered.peek(2)[:2] == GZIP_MAGIC:
        inflated = _Inflated(gzip.GzipFile(fileobj=buffered, mode="rb"))
        stream = io.BufferedReader(inflated, HEAD_BYTES)
    try:
        head = stream.peek(HEAD_BYTES)  # type: ignore[attr-defined]
    except (OSError, EOFError) as exc:
        raise ImportRefused("unreadable_file", f"The file cannot be decompressed: {exc}") from exc
    if not head.strip():
        raise ImportRefused("empty_file", "The file is empty.")
    detected = _detect(head)
    if detected is None:
        raise ImportRefused(
            "not_json",
            "The file is neither Robotoff predictions (JSON Lines) nor questions (JSON).",
        )
    return Source(
        format=detected if format == "auto" else format,  # type: ignore[arg-type]
        stream=stream,
        position=raw_position,
        size=size,
    )


def _size_of(fp: IO[bytes]) -> int | None:
    try:
        here = fp.tell()
        end = fp.seek(0, io.SEEK_END)
        fp.seek(here)
    except (OSError, AttributeError, ValueError):
        return None
    return end


class _Unclosable(io.RawIOBase):
    """Lets a BufferedReader read a caller's file without closing it when it is collected."""

    def __init__(self, fp: IO[bytes]) -> None:
        self.fp = fp

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.fp.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        pass


class InflatedTooLarge(OSError):
    """A compressed file inflates past INSIGHT_IMPORT_MAX_INFLATED_BYTES."""


class _Inflated(io.RawIOBase):
    """A gzip stream that stops at INSIGHT_IMPORT_MAX_INFLATED_BYTES: a small upload may
    inflate to far more than INSIGHT_IMPORT_MAX_BYTES, which only bounds what is stored."""

    def __init__(self, fp: IO[bytes]) -> None:
        self.fp = fp
        self.left = settings.INSIGHT_IMPORT_MAX_INFLATED_BYTES

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.fp.read(len(buffer))
        self.left -= len(data)
        if self.left < 0:
            raise InflatedTooLarge(
                f"the file inflates to more than {settings.INSIGHT_IMPORT_MAX_INFLATED_BYTES} "
                "bytes (INSIGHT_IMPORT_MAX_INFLATED_BYTES)"
            )
        buffer[: len(data)] = data
        return len(data)


class _QuestionTooLong(Exception):
    pass


class _Marked(io.RawIOBase):
    """Counts the bytes read since mark(): ijson holds a whole question (and any one string)
    in memory, so a question longer than INSIGHT_IMPORT_MAX_LINE_BYTES stops the file."""

    def __init__(self, fp: IO[bytes], limit: int) -> None:
        self.fp = fp
        self.limit = limit
        self.since = 0

    def readable(self) -> bool:
        return True

    def mark(self) -> None:
        self.since = 0

    def readinto(self, buffer: Any) -> int:
        data = self.fp.read(len(buffer))
        self.since += len(data)
        if self.since > self.limit:
            raise _QuestionTooLong
        buffer[: len(data)] = data
        return len(data)


def _detect(head: bytes) -> Format | None:
    """Questions when the first JSON object has a top-level "questions" key; JSONL otherwise."""
    first = head.lstrip()[:1]
    if first not in (b"{", b"["):
        # Still JSON Lines if a later line is an object: the bad first line will be reported.
        return "predictions" if b"\n{" in head else None
    try:
        for prefix, event, value in ijson.parse(io.BytesIO(head)):
            if prefix == "" and event == "map_key" and value == "questions":
                return "questions"
            if prefix == "" and event in ("end_map", "end_array"):
                return "predictions"
    except ijson.common.IncompleteJSONError:
        pass
    return "predictions"


def read_records(source: Source) -> Iterator[Record | BadLine]:
    if source.format == "questions":
        return _read_questions(source.stream)
    return _read_lines(source.stream)


def _no_constant(name: str) -> None:
    # json accepts NaN and Infinity, which are not JSON and which jsonb refuses.
    raise ValueError(f"{name} is not a JSON value")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def _decode(text: str) -> Any:
    """json.loads, less its two regular-expression passes for whitespace (a third of its time)."""
    text = text.strip()
    obj, end = _DECODER.raw_decode(text)
    if end != len(text):
        raise ValueError(f"Extra data: line 1 column {end + 1} (char {end})")
    return obj


def _refuse_deep(line: bytes) -> None:
    """ValueError for a line nested past API_JSON_MAX_DEPTH, as for API bodies.

    Past 1,024 levels orjson refuses a line and the standard parser then raises RecursionError
    (no ValueError, so it failed the whole run); below that, orjson reads it but storing it
    recurses as deep. Counting brackets runs at C speed, so only a line with enough of them to
    be too deep pays for the exact check.
    """
    limit = settings.API_JSON_MAX_DEPTH
    if line.count(b"[") + line.count(b"{") <= limit:
        return
    # Only ASCII brackets, quotes and backslashes count: replaced bytes change nothing.
    if parsers.json_depth(line.decode(errors="replace")) > limit:
        raise ValueError(f"nested too deep: more than {limit} levels")


def _parse(line: bytes) -> Any:
    """orjson (a third of the standard parser's time); a line it refuses is parsed again by the
    standard one, which says why in the words a bad line's report has always used (and accepts
    what it always has, such as integers beyond 64 bits)."""
    _refuse_deep(line)
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        obj = _decode(line.decode())
    # What orjson refuses and json takes includes escaped lone surrogates ("\ud800"), which
    # no UTF-8 text (and so no PostgreSQL string) can hold.
    try:
        json.dumps(obj, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise ValueError("a string holds a lone surrogate (\\ud800-\\udfff)") from None
    return obj


def _read_lines(stream: IO[bytes]) -> Iterator[Record | BadLine]:
    number = 0
    cap = settings.INSIGHT_IMPORT_MAX_LINE_BYTES
    # One more byte than the cap: room for the newline of a line of exactly `cap` bytes.
    readline = functools.partial(stream.readline, cap + 1)
    try:
        for number, line in enumerate(iter(readline, b""), 1):
            if len(line) > cap and line[-1:] != b"\n":
                # Never read whole: a gzip line can inflate to gigabytes.
                _skip_line(stream)
                yield BadLine("line", number, f"longer than {cap} bytes")
                continue
            if not line.strip():
                continue
            if b"\\u0000" in line:
                # PostgreSQL stores no NUL character, in text or in jsonb.
                yield BadLine("line", number, "contains a NUL character (\\u0000)")
                continue
            try:
                obj = _parse(line)
            except ValueError as exc:
                yield BadLine("line", number, f"not valid JSON ({exc})")
                continue
            try:
                yield prediction_record(obj)
            except BadRecord as exc:
                yield BadLine("line", number, str(exc))
    except (OSError, EOFError) as exc:
        yield BadLine("file", number + 1, f"the file could not be read on: {exc}")


def _skip_line(stream: IO[bytes]) -> None:
    while (chunk := stream.readline(SKIP_BYTES)) and chunk[-1:] != b"\n":
        pass


def _read_questions(stream: IO[bytes]) -> Iterator[Record | BadLine]:
    number = 0
    cap = settings.INSIGHT_IMPORT_MAX_LINE_BYTES
    # ijson reads ahead by its buffer: a question may end that far past the bytes counted.
    marked = _Marked(stream, cap + HEAD_BYTES)
    try:
        questions = ijson.items(marked, "questions.item", use_float=True, buf_size=HEAD_BYTES)
        for number, obj in enumerate(questions, 1):
            marked.mark()
            try:
                yield question_record(obj)
            except BadRecord as exc:
                yield BadLine("question", number, str(exc))
    except _QuestionTooLong:
        yield BadLine("file", number + 1, f"question {number + 1} is longer than {cap} bytes")
    except (ijson.JSONError, OSError, EOFError, UnicodeDecodeError) as exc:
        # ijson stops at an escaped lone surrogate ("\ud800"), which no UTF-8 text holds.
        yield BadLine("file", number + 1, f"invalid JSON after question {number}: {exc}")
