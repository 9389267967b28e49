"""HTML fragments of the admin's image and tenant pages (styled by static/imago/admin.css)."""

from collections.abc import Callable, Iterable

from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from images.library.signing import signed_url
from images.models import Image, ImageTag

NOTHING = "—"


def facts(rows: Iterable[tuple[str, object]]) -> SafeString:
    """A two-column table of what is known; the rows without a value are left out."""
    shown = [(label, value) for label, value in rows if value not in (None, "")]
    if not shown:
        return SafeString(NOTHING)
    body = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", shown)
    return format_html('<table class="imago-facts">{}</table>', body)


def chips(tags: Iterable[ImageTag]) -> SafeString:
    items = format_html_join(
        "",
        '<span class="imago-chip">{} <small>{}</small></span>',
        ((t.tag.name, t.source) for t in tags),
    )
    return format_html('<div class="imago-chips">{}</div>', items) if items else SafeString(NOTHING)


def text_block(text: str, about: str, *, monospace: bool = False) -> SafeString:
    """A text as it was read (line breaks kept, long ones scrolled), with where it came from."""
    tag = "pre" if monospace else "div"
    return format_html(
        '<{} class="imago-text">{}</{}><p class="imago-about">{}</p>', tag, text, tag, about
    )


def download_link(image: Image) -> SafeString:
    """A signed link to the original, as the API's download-url gives (relative: any host)."""
    url, _ = signed_url(None, client=image.client, name=image.file, content_type=image.content_type)
    return format_html(
        '<a href="{}" download="{}">{}</a> ({}, {})',
        url,
        image.original_filename or f"{image.uuid}.{image.format}",
        image.original_filename or "original",
        image.content_type,
        filesizeformat(image.size_bytes),
    )


def usage(used: int, quota: int | None, show: Callable[[int], str]) -> SafeString:
    """How much is used of a quota, with a bar when there is one."""
    if quota is None:
        return format_html("{} <small>(no quota)</small>", show(used))
    return format_html(
        '<span class="imago-usage"><meter min="0" max="{}" value="{}" high="{}"></meter>'
        "{} of {}</span>",
        quota,
        used,
        quota * 0.9,
        show(used),
        show(quota),
    )
