"""Tenants in the admin: their keys, scopes and quotas (images/admin.py adds their usage and what
they hold in the other rooms, and registers the page)."""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from images.models import ALL_SCOPES, DEFAULT_SCOPES, ApiKey, Client, Scope
from images.tenancy import services
from kit.admin import ReadOnlyInline, object_or_404


class ApiKeyInline(ReadOnlyInline):
    model = ApiKey
    fields = ["prefix", "created_at", "last_used_at", "revoked_at"]


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


class ClientAdmin(admin.ModelAdmin):
    form = ClientForm
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
    inlines = [ApiKeyInline]
    actions = ["deactivate", "rotate_key"]
    fieldsets = [(None, {"fields": CLIENT_FIELDS})]

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
