"""Tenants and their API keys."""

from django.db import models


class Scope(models.TextChoices):
    IMAGES_READ = "images:read"
    IMAGES_WRITE = "images:write"
    IMAGES_DELETE = "images:delete"
    AI_USE = "ai:use"
    INSIGHTS_READ = "insights:read"
    INSIGHTS_WRITE = "insights:write"
    INSIGHTS_ANNOTATE = "insights:annotate"
    ADMIN = "admin"


ALL_SCOPES = [scope.value for scope in Scope]
DEFAULT_SCOPES = [
    Scope.IMAGES_READ,
    Scope.IMAGES_WRITE,
    Scope.IMAGES_DELETE,
    Scope.AI_USE,
    Scope.INSIGHTS_READ,
    Scope.INSIGHTS_WRITE,
    Scope.INSIGHTS_ANNOTATE,
]


class Plan(models.TextChoices):
    FREE = "free"
    PREMIUM = "premium"


class Client(models.Model):
    """A tenant: every image, key and insight belongs to exactly one."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.FREE)
    scopes = models.JSONField(default=list, blank=True)
    storage_quota_bytes = models.BigIntegerField(
        null=True, blank=True, help_text="Empty means unlimited."
    )
    image_quota = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: unlimited.")
    rate_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests per minute; empty uses the plan's default."
    )
    detection_model = models.CharField(
        max_length=100, blank=True, help_text="Registered model for the detection step."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def storage_prefix(self) -> str:
        return f"clients/{self.pk}"


class ApiKey(models.Model):
    """Only a SHA-256 of the key is kept; the key itself is shown once when made."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="api_keys")
    prefix = models.CharField(max_length=16, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.client})"
