"""Review in the admin: insights with their image, filters, answers as the staff user, counts."""

from collections import Counter

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from annotations import services
from annotations.models import (
    Annotation,
    AnnotationVote,
    Insight,
    InsightImport,
    InsightKeyword,
    InsightSettings,
)
from annotations.selectors import evidence_box
from annotations.serializers import source_image_url
from images.library.admin import thumbnail_tag
from kit import outbound
from kit.admin import ReadOnlyInline

# Each review state as a filter on the annotation column.
STATUSES = {
    "open": Q(annotation__isnull=True),
    "accepted": Q(annotation__in=[1, 2]),
    "rejected": Q(annotation=0),
    "skipped": Q(annotation=-1),
}

# What the Accept, Reject and Skip buttons of an insight's page send.
BUTTONS = {"1": Annotation.CORRECT, "0": Annotation.INCORRECT, "-1": Annotation.SKIP}


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [(name, name) for name in STATUSES]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Insight]) -> QuerySet[Insight]:
        condition = STATUSES.get(self.value() or "")
        return queryset if condition is None else queryset.filter(condition)


def status_of(insight: Insight) -> str:
    if insight.annotation is None:
        return "open"
    return {1: "accepted", 2: "accepted", 0: "rejected", -1: "skipped"}[insight.annotation]


def counts_per_type(insights: QuerySet[Insight]) -> list[dict]:
    """One row per insight type: how many are open, accepted, rejected, skipped, in all."""
    rows = (
        insights.order_by()
        .values("type")
        .annotate(
            total=Count("pk"), **{name: Count("pk", filter=q) for name, q in STATUSES.items()}
        )
        .order_by("type")
    )
    return list(rows)


def insights_answer(*, insights: QuerySet[Insight], annotation: int, username: str) -> Counter[str]:
    """Answer each open insight as this staff user, through the one annotate service.

    Returns how many answers got each status; closed insights are left as they are.
    """
    outcomes: Counter[str] = Counter()
    outcomes["error_already_annotated"] = insights.filter(annotation__isnull=False).count()
    for insight_id in insights.filter(annotation__isnull=True).values_list("pk", flat=True):
        result = services.insight_annotate(
            insight_id=insight_id,
            annotation=annotation,
            # A skip is a vote, even from staff: the device stands for the staff user.
            device_id=f"user:{username}",
            username=username,
            authenticated=True,
        )
        outcomes[result.status] += 1
    return +outcomes  # without the zero counts


def _report(request: HttpRequest, outcomes: Counter[str]) -> None:
    summary = ", ".join(f"{status}: {n}" for status, n in sorted(outcomes.items())) or "nothing"
    failed = any(status.startswith("error_") for status in outcomes)
    messages.add_message(request, messages.WARNING if failed else messages.SUCCESS, summary)


def _picture(insight: Insight) -> str:
    if insight.image:
        return thumbnail_tag(insight.image, 480)
    url = source_image_url(insight, None)
    if not url:
        return ""
    # An imported insight's picture lives on its product store (Open Food Facts by default).
    return format_html(
        '<a href="{0}" target="_blank" rel="noopener"><img src="{0}" alt="{1}" '
        'style="display:block;max-width:480px;max-height:480px"></a>',
        url,
        insight.source_image,
    )


def _with_box(picture: str, box: list[float]) -> str:
    """The picture with the insight's box over it, in fractions of its size (no script)."""
    y_min, x_min, y_max, x_max = box
    # format_html escapes its arguments to strings first: numbers are formatted here.
    x, y, width, height = (f"{v:.5g}" for v in (x_min, y_min, x_max - x_min, y_max - y_min))
    return format_html(
        '<div style="position:relative;display:inline-block;line-height:0">{}'
        '<svg class="evidence-box" viewBox="0 0 1 1" preserveAspectRatio="none" '
        'style="position:absolute;inset:0;width:100%;height:100%;pointer-events:none">'
        '<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#ff2d55" '
        'stroke-width="3" vector-effect="non-scaling-stroke"></rect></svg></div>',
        picture,
        x,
        y,
        width,
        height,
    )


class VoteInline(ReadOnlyInline):
    model = AnnotationVote
    fields = ["timestamp", "value", "username", "device_id"]


@admin.register(Insight)
class InsightAdmin(admin.ModelAdmin):
    change_list_template = "admin/annotations/insight/change_list.html"
    change_form_template = "admin/annotations/insight/change_form.html"
    list_display = ["preview", "type", "shown_value", "status", "n_votes", "confidence",
                    "predictor", "client", "barcode", "timestamp"]  # fmt: skip
    list_filter = ["type", "client", "predictor", StatusFilter]
    search_fields = ["=barcode", "value", "value_tag"]
    list_select_related = ["client", "image__client"]
    # Each page counts its rows once: a second count of the whole table costs as much again.
    show_full_result_count = False
    inlines = [VoteInline]
    fields = ["large_preview", "id", "client", "barcode", "image", "type", "value", "value_tag",
              "status", "annotation", "username", "completed_at", "n_votes", "predictor",
              "predictor_version", "confidence", "bounding_box", "data", "source_image",
              "with_image", "automatic_processing", "server_type", "countries", "brands",
              "campaign", "lc", "unique_scans_n", "reserved_barcode", "timestamp",
              "import_run"]  # fmt: skip
    readonly_fields = fields
    actions = ["accept", "reject", "skip"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Insight]:
        return super().get_queryset(request).prefetch_related("image__thumbnails")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Insights come from imports and the pipeline; people answer them.
        return False

    def save_model(self, request: HttpRequest, obj: Insight, form: object, change: bool) -> None:
        # Every field is read-only: saving the form would write back a copy read before an
        # answer (a vote, another reviewer) came in. Answers go through insights_answer.
        pass

    def get_urls(self) -> list[URLPattern]:
        answer = path(
            "<path:object_id>/answer/",
            self.admin_site.admin_view(require_POST(self.answer_view)),
            name="annotations_insight_answer",
        )
        return [answer, *super().get_urls()]

    def answer_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The Accept / Reject / Skip buttons of an insight's page."""
        insight = get_object_or_404(Insight, pk=object_id)
        if not self.has_change_permission(request, insight):
            raise PermissionDenied
        annotation = BUTTONS.get(request.POST.get("annotation", ""))
        if annotation is None:
            return HttpResponseBadRequest("annotation must be 1, 0 or -1")
        outcomes = insights_answer(
            insights=Insight.objects.filter(pk=insight.pk),
            annotation=annotation,
            username=request.user.get_username(),
        )
        _report(request, outcomes)
        return HttpResponseRedirect(reverse("admin:annotations_insight_change", args=[insight.pk]))

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None
    ):  # type: ignore[override]
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "answer_url": reverse("admin:annotations_insight_answer", args=[object_id]),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def _answer_selected(
        self, request: HttpRequest, queryset: QuerySet[Insight], value: int
    ) -> None:
        username = request.user.get_username()
        _report(request, insights_answer(insights=queryset, annotation=value, username=username))

    @admin.action(description="Accept the selected insights (as you)", permissions=["change"])
    def accept(self, request: HttpRequest, queryset: QuerySet[Insight]) -> None:
        self._answer_selected(request, queryset, Annotation.CORRECT)

    @admin.action(description="Reject the selected insights (as you)", permissions=["change"])
    def reject(self, request: HttpRequest, queryset: QuerySet[Insight]) -> None:
        self._answer_selected(request, queryset, Annotation.INCORRECT)

    @admin.action(description="Skip the selected insights (a vote of -1)", permissions=["change"])
    def skip(self, request: HttpRequest, queryset: QuerySet[Insight]) -> None:
        self._answer_selected(request, queryset, Annotation.SKIP)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):  # type: ignore[override]
        response = super().changelist_view(request, extra_context)
        if isinstance(response, TemplateResponse) and "cl" in response.context_data:
            # The counts follow the filters and the search shown above them.
            response.context_data["type_counts"] = counts_per_type(
                response.context_data["cl"].queryset
            )
        return response

    @admin.display(description="")
    def preview(self, insight: Insight) -> str:
        return thumbnail_tag(insight.image, 80) if insight.image else "—"

    @admin.display(description="preview")
    def large_preview(self, insight: Insight) -> str:
        picture = _picture(insight)
        box = evidence_box(insight)
        if not picture or not box:
            return picture or "—"
        return _with_box(picture, box)

    @admin.display(description="value", ordering="value")
    def shown_value(self, insight: Insight) -> str:
        if insight.value and insight.value_tag and insight.value != insight.value_tag:
            return f"{insight.value} ({insight.value_tag})"
        return insight.value or insight.value_tag or "—"

    @admin.display(description="status", ordering="annotation")
    def status(self, insight: Insight) -> str:
        return status_of(insight)


@admin.register(InsightSettings)
class InsightSettingsAdmin(admin.ModelAdmin):
    list_display = ["client", "public_questions", "downstream_url"]
    list_filter = ["public_questions"]
    list_select_related = ["client"]
    formfield_overrides = {
        models.URLField: {"assume_scheme": "https", "validators": [outbound.url_validator]}
    }


@admin.register(InsightKeyword)
class InsightKeywordAdmin(admin.ModelAdmin):
    """Each tenant's keyword list: filter by client, edit the tag and the switch in the list."""

    list_display = ["keyword", "kind", "value_tag", "is_active", "client"]
    list_editable = ["value_tag", "is_active"]
    list_filter = ["client", "kind", "is_active"]
    search_fields = ["keyword", "value_tag"]
    list_select_related = ["client"]


@admin.register(InsightImport)
class InsightImportAdmin(admin.ModelAdmin):
    list_display = ["id", "client", "original_filename", "format", "status", "lines_read",
                    "created", "updated", "unchanged", "bad", "deleted", "created_at",
                    "finished_at"]  # fmt: skip
    list_filter = ["status", "client"]
    fields = ["id", "client", "original_filename", "file", "format", "keep_missing", "status",
              "lines_read", "created", "updated", "unchanged", "bad", "deleted", "bad_lines",
              "error", "created_at", "finished_at"]  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="bad lines")
    def bad_lines(self, run: InsightImport) -> str:
        if not run.errors:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td></tr>",
            ((e.get("line", "?"), e.get("reason", e)) for e in run.errors),
        )
        return format_html("<table><tr><th>line</th><th>reason</th></tr>{}</table>", rows)
