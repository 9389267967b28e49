"""HTML fragments of the admin's image and tenant pages (styled by static/imago/admin.css)."""

from collections.abc import Callable, Iterable

from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from images.library.signing import signed_url
from images.models import Detection, Image, ImageTag, Thumbnail

NOTHING = "—"
# Box colours by class (the classes of one picture, in name order): readable on any photo.
PALETTE = ["#ff2d55", "#0a84ff", "#30d158", "#ff9f0a", "#bf5af2", "#64d2ff", "#ffd60a"]
BOX = (
    '<g class="detection"><title>{} {}</title>'
    '<rect class="box" x="{}" y="{}" width="{}" height="{}" fill="none" stroke="{}" '
    'stroke-width="{}"></rect>'
    '<rect class="label" x="{}" y="{}" width="{}" height="{}" fill="{}"></rect>'
    '<text x="{}" y="{}" font-size="{}">{} {}</text></g>'
)


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


def overlay(image: Image, thumbnail: Thumbnail, detections: list[Detection]) -> SafeString:
    """The thumbnail with every detection's box and label drawn over it in SVG."""
    url, _ = signed_url(None, client=image.client, name=thumbnail.file, content_type="image/webp")
    # Boxes are in the oriented original; the thumbnail has the same proportions.
    scale = max(image.width, image.height) / max(thumbnail.width, thumbnail.height)
    width, height = thumbnail.width * scale, thumbnail.height * scale
    classes = sorted({d.class_name for d in detections})
    colours = {name: PALETTE[n % len(PALETTE)] for n, name in enumerate(classes)}
    # Sizes in hundredths of the long side: the same on screen whatever the original's size.
    unit = max(width, height) / 100
    shapes = format_html_join(
        "", BOX, (_box(d, unit, width, colours[d.class_name]) for d in detections)
    )
    return format_html(
        '<div class="imago-overlay"><img src="{}" width="{}" height="{}" alt="">'
        '<svg viewBox="0 0 {} {}" preserveAspectRatio="none">{}</svg></div>',
        url,
        thumbnail.width,
        thumbnail.height,
        _n(width),
        _n(height),
        shapes,
    )


def _box(d: Detection, unit: float, width: float, colour: str) -> tuple:
    confidence = f"{d.confidence:.2f}"
    font = 2.4 * unit
    label_w, label_h = font * (0.62 * len(f"{d.class_name} {confidence}") + 0.6), font * 1.35
    # Above the box when there is room, else just inside its top; never past the right edge.
    label_x = max(0.0, min(d.x1, width - label_w))
    label_y = d.y1 - label_h if d.y1 >= label_h else d.y1
    return (
        d.class_name, confidence,
        _n(d.x1), _n(d.y1), _n(d.x2 - d.x1), _n(d.y2 - d.y1), colour, _n(unit / 2),
        _n(label_x), _n(label_y), _n(label_w), _n(label_h), colour,
        _n(label_x + font * 0.3), _n(label_y + font * 1.02), _n(font), d.class_name, confidence,
    )  # fmt: skip


def _n(value: float) -> str:
    # format_html escapes its arguments to strings first: numbers are formatted here.
    return f"{value:.1f}"


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
