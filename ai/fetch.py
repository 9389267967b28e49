"""Fetching web pages for summaries through the outbound guard (kit/outbound.py: no
loopback or private addresses, one deadline, redirects limited, the size capped)."""

from dataclasses import dataclass

import httpx
import trafilatura
from django.conf import settings

from kit.errors import DomainError
from kit.outbound import OutboundError, read_capped, stream

HTML_TYPES = ("text/html", "application/xhtml+xml")


class FetchError(DomainError):
    """A page that cannot be summarised; the outbound guard's refusals keep their codes."""

    STATUSES = {
        "blocked_address": 400,
        "invalid_url": 400,
        "too_large": 413,
        "not_html": 422,
        "unreachable": 502,
    }

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail, self.STATUSES[code])


@dataclass(frozen=True)
class Page:
    url: str
    title: str | None
    text: str


def page_fetch(url: str) -> Page:
    """The page's main text, extracted by trafilatura; FetchError with a stable code otherwise."""
    body, final_url, charset = _download(url)
    html = body.decode(charset, errors="replace") if charset else body
    document = trafilatura.bare_extraction(html, url=final_url, with_metadata=True)
    text = (document.text or "").strip() if document else ""
    if not text:
        raise FetchError("not_html", "The page has no main text to summarise.")
    return Page(url=final_url, title=document.title, text=text)


def _download(url: str) -> tuple[bytes, str, str | None]:
    limit = settings.AI_FETCH_MAX_BYTES
    headers = {"User-Agent": "Imago/1.0 (page summary)", "Accept": "text/html"}
    try:
        with stream(
            "GET",
            url,
            deadline=settings.AI_FETCH_TIMEOUT,
            max_redirects=settings.AI_FETCH_MAX_REDIRECTS,
            headers=headers,
        ) as response:
            if response.status_code >= 400:
                raise FetchError("unreachable", f"The page answered HTTP {response.status_code}.")
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type not in HTML_TYPES:
                raise FetchError("not_html", f"The page is {content_type or 'untyped'}, not HTML.")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise FetchError("too_large", f"The page is {declared} bytes; at most {limit}.")
            body, more = read_capped(response, limit=limit)
            if more:
                raise FetchError("too_large", f"The page is larger than {limit} bytes.")
            return body, str(response.url), response.charset_encoding
    except OutboundError as exc:
        raise FetchError(exc.code, exc.detail) from exc
    except httpx.TooManyRedirects as exc:
        raise FetchError("unreachable", "The page redirects too many times.") from exc
    except httpx.TimeoutException as exc:
        raise FetchError("unreachable", "The page did not answer in time.") from exc
    except httpx.HTTPError as exc:
        raise FetchError("unreachable", f"The page could not be fetched: {exc}.") from exc
