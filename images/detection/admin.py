"""Detector models and detection batch jobs in the admin; an image's detections on its page, in a
table and drawn over its picture (images/admin.py puts the image page together)."""

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from images.library.signing import signed_url
from images.models import Detection, DetectionJob, DetectorModel, Image, Thumbnail
from kit.admin import ReadOnlyInline

# Box colours by class (the classes of one picture, in name order): readable on any photo.
PALETTE = ["#ff2d55", "#0a84ff", "#30d158", "#ff9f0a", "#bf5af2", "#64d2ff", "#ffd60a"]
BOX = (
    '<g class="detection"><title>{} {}</title>'
    '<rect class="box" x="{}" y="{}" width="{}" height="{}" fill="none" stroke="{}" '
    'stroke-width="{}"></rect>'
    '<rect class="label" x="{}" y="{}" width="{}" height="{}" fill="{}"></rect>'
    '<text x="{}" y="{}" font-size="{}">{} {}</text></g>'
)


@admin.register(DetectorModel)
class DetectorModelAdmin(admin.ModelAdmin):
    list_display = ["name", "client", "task", "backend", "input_size", "default_confidence",
                    "classes", "file"]  # fmt: skip
    list_filter = ["task", "backend", "client"]
    readonly_fields = ["class_names", "created_at"]

    @admin.display(description="classes")
    def classes(self, model: DetectorModel) -> int:
        return len(model.class_names)


@admin.register(DetectionJob)
class DetectionJobAdmin(admin.ModelAdmin):
    list_display = ["uuid", "client", "status", "processed", "total", "created_at", "finished_at"]
    list_filter = ["status", "client"]
    readonly_fields = ["uuid", "client", "status", "params", "total", "processed", "error",
                       "created_at", "finished_at"]  # fmt: skip
    exclude = ["images"]


class DetectionInline(ReadOnlyInline):
    model = Detection
    fields = ["model_name", "class_name", "confidence", "x1", "y1", "x2", "y2", "source"]
    ordering = ["model_name", "-confidence"]


class ImageDetectionsAdmin(admin.ModelAdmin):
    """The image page's picture, with every detection's box and label drawn over it."""

    @admin.display(description="picture")
    def detection_overlay(self, image: Image) -> str:
        thumbnail = max(image.thumbnails.all(), key=lambda t: t.size, default=None)
        if thumbnail is None:
            return "No thumbnail yet."
        return overlay(image, thumbnail, list(image.detections.all()))


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
