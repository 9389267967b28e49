"""Tenants in the admin: their keys, scopes, quotas and usage."""

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, QuerySet, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from images.library import admin_html
from images.library.services import client_usage
from images.models import (
    ALL_SCOPES,
    DEFAULT_SCOPES,
    AnonymizeSettings,
    ApiKey,
    Client,
    DetectionJob,
    Image,
    PlateTask,
    Scope,
)
from images.tenancy import services
from images.tenancy.auth import client_rate_limit
from kit import outbound
from kit.admin import ReadOnlyInline, capped_count, changelist, object_or_404


class ApiKeyInline(ReadOnlyInline):
    model = ApiKey
    fields = ["prefix", "created_at", "last_used_at", "revoked_at"]


class AnonymizeSettingsInline(admin.StackedInline):
    model = AnonymizeSettings
    extra = 0
    max_num = 1
    formfield_overrides = {
        models.URLField: {"assume_scheme": "https", "validators": [outbound.url_validator]}
    }


# The usual sets of scopes, so that nobody has to remember which of eight boxes a role needs.
SCOPE_PRESETS = {
    "read_only": [Scope.IMAGES_READ, Scope.INSIGHTS_READ],
    "tenant": DEFAULT_SCOPES,
}


class ClientForm(forms.ModelForm):
    """Scopes as one checkbox per real scope (a JSON textarea saved typos and empty lists)."""

    preset = forms.ChoiceField(
        choices=[
            ("", "As ticked below"),
            ("read_only", "Read-only: images:read and insights:read"),
            ("tenant", "Full tenant: every scope but admin"),
        ],
        required=False,
        widget=forms.RadioSelect,
        help_text="A preset replaces the ticks below.",
    )
    scopes = forms.MultipleChoiceField(
        # Labelled as the API and its docs spell them.
        choices=[(scope, scope) for scope in ALL_SCOPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Client
        fields = ["name", "slug", "plan", "scopes", "storage_quota_bytes", "image_quota",
                  "rate_limit", "detection_model", "is_active"]  # fmt: skip

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            # A new tenant can use the API at once; admin is granted on purpose only.
            self.initial["scopes"] = [str(scope) for scope in DEFAULT_SCOPES]

    def clean(self) -> dict:
        cleaned = super().clean()
        preset = cleaned.get("preset")
        chosen = SCOPE_PRESETS[preset] if preset else cleaned.get("scopes", [])
        # Kept in the declared order, so that the stored list reads the same for everyone.
        cleaned["scopes"] = [scope for scope in ALL_SCOPES if scope in chosen]
        if not cleaned["scopes"] and "scopes" not in self.errors:
            self.add_error(
                "scopes",
                "Choose at least one scope, or a preset: a key without any can do nothing.",
            )
        return cleaned


CLIENT_FIELDS = ["name", "slug", "plan", "preset", "scopes", "storage_quota_bytes", "image_quota",
                 "rate_limit", "detection_model", "is_active"]  # fmt: skip


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    form = ClientForm
    readonly_fields = ["usage", "related"]
    list_display = [
        "name",
        "slug",
        "plan",
        "is_active",
        "image_count",
        "storage_used",
        "image_quota",
        "storage_quota_bytes",
        "created_at",
    ]
    list_filter = ["plan", "is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [ApiKeyInline, AnonymizeSettingsInline]
    actions = ["deactivate", "rotate_key"]

    def get_fieldsets(self, request: HttpRequest, obj: Client | None = None) -> list[tuple]:
        settings_fieldset = (None, {"fields": CLIENT_FIELDS})
        if obj is None:
            return [settings_fieldset]
        return [("At a glance", {"fields": ["usage", "related"]}), settings_fieldset]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Client]:
        return (
            super()
            .get_queryset(request)
            .annotate(n_images=Count("images"), n_bytes=Sum("images__size_bytes"))
        )

    def get_urls(self) -> list[URLPattern]:
        rotate = path(
            "<path:object_id>/rotate-key/",
            self.admin_site.admin_view(self.rotate_key_view),
            name="images_client_rotate_key",
        )
        return [rotate, *super().get_urls()]

    def rotate_key_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The tenant page's Rotate key button: a confirmation page, then a POST that rotates."""
        client = object_or_404(self, request, object_id)
        if request.method == "POST":
            _show_key_once(request, client, services.client_rotate_key(client=client))
            return HttpResponseRedirect(reverse("admin:images_client_change", args=[client.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": client,
            "active_keys": client.api_keys.filter(revoked_at__isnull=True).count(),
            "title": f"Rotate the API key of {client}",
        }
        return TemplateResponse(request, "admin/images/client/rotate_key.html", context)

    @admin.display(description="images", ordering="n_images")
    def image_count(self, client: Client) -> int:
        return client.n_images

    @admin.display(description="storage used", ordering="n_bytes")
    def storage_used(self, client: Client) -> str:
        return filesizeformat(client.n_bytes or 0)

    @admin.display(description="usage")
    def usage(self, client: Client) -> str:
        used = client_usage(client=client)
        state = "active" if client.is_active else "inactive: its keys are refused"
        storage = admin_html.usage(used["bytes"], client.storage_quota_bytes, filesizeformat)
        rate = f"{client_rate_limit(client)} requests a minute"
        if not client.rate_limit:
            rate += f" (the {client.plan} plan's)"
        return admin_html.facts(
            [
                ("Plan", f"{client.get_plan_display()}, {state}"),
                ("Images", admin_html.usage(used["images"], client.image_quota, str)),
                ("Storage", storage),
                ("Rate limit", rate),
            ]
        )

    @admin.display(description="its data")
    def related(self, client: Client) -> str:
        mine = {"client__id__exact": client.pk}
        links = [
            ("Images", changelist(Image, **mine), client.images.count()),
            ("Plate tasks", changelist(PlateTask, **mine), client.plate_tasks.count()),
            ("Detection jobs", changelist(DetectionJob, **mine), client.detection_jobs.count()),
            (
                "Insights waiting for a decision",
                changelist(client.insights.model, **mine, status="open"),
                capped_count(client.insights.filter(annotation__isnull=True)),
            ),
        ]
        return admin_html.facts(
            (label, format_html('<a href="{}">{}</a>', url, count)) for label, url, count in links
        )

    def save_model(self, request: HttpRequest, obj: Client, form: object, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            key = services.api_key_create(client=obj)
            _show_key_once(request, obj, key)

    @admin.action(description="Deactivate the selected clients (their keys stop working)")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Client]) -> None:
        for client in queryset:
            services.client_deactivate(client=client)
        self.message_user(request, f"Deactivated {queryset.count()} client(s).")

    @admin.action(description="Rotate the API key (old keys stop working)")
    def rotate_key(self, request: HttpRequest, queryset: QuerySet[Client]) -> None:
        for client in queryset:
            _show_key_once(request, client, services.client_rotate_key(client=client))


def _show_key_once(request: HttpRequest, client: Client, key: str) -> None:
    messages.warning(
        request,
        format_html(
            "New API key for {}: <code>{}</code> — copy it now, it will not be shown again.",
            client,
            key,
        ),
    )
