"""Robotoff-style insights and votes, owned by a tenant.

The contract (paths, fields, status strings, vote rules) is shared/docs/robotoff-compat.md.
"""

import random
import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from images.models import Client, Image


def new_random_key() -> float:
    return random.random()


class Annotation(models.IntegerChoices):
    SKIP = -1, "skip / ambiguous"
    INCORRECT = 0, "incorrect"
    CORRECT = 1, "correct"
    CORRECT_WITH_DATA = 2, "correct with user data"


class InsightType(models.TextChoices):
    """Robotoff's question types, and the ones Imago's pipeline makes."""

    LABEL = "label"
    BRAND = "brand"
    CATEGORY = "category"
    PRODUCT_WEIGHT = "product_weight"
    PACKAGING = "packaging"
    IMAGE_TAG = "image_tag"
    OBJECT = "object"


class Insight(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: every index led by client serves `client_id = …` (and the cascade).
    client = models.ForeignKey(
        Client, on_delete=models.CASCADE, related_name="insights", db_index=False
    )
    barcode = models.CharField(max_length=100, help_text="The subject's id.")
    image = models.ForeignKey(
        Image,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="insights",
        # Indexed by the partial insight_image below: most insights have no image.
        db_index=False,
    )
    type = models.CharField(max_length=64)
    value = models.TextField(null=True, blank=True)
    value_tag = models.CharField(max_length=255, null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    timestamp = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    annotation = models.SmallIntegerField(choices=Annotation.choices, null=True, blank=True)
    n_votes = models.PositiveIntegerField(default=0)
    username = models.CharField(max_length=255, null=True, blank=True)
    source_image = models.CharField(max_length=500, null=True, blank=True)
    automatic_processing = models.BooleanField(null=True, blank=True)
    predictor = models.CharField(max_length=100, null=True, blank=True)
    predictor_version = models.CharField(max_length=100, null=True, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    server_type = models.CharField(max_length=20, default="off")
    countries = models.JSONField(default=list, blank=True)
    brands = models.JSONField(default=list, blank=True)
    campaign = models.JSONField(default=list, blank=True)
    bounding_box = models.JSONField(null=True, blank=True)
    lc = models.JSONField(default=list, blank=True)
    unique_scans_n = models.PositiveIntegerField(default=0)
    reserved_barcode = models.BooleanField(default=False)
    with_image = models.BooleanField(default=False)
    # A uniform key drawn at creation: a random question is the first row at or after a random
    # point on this index, instead of sorting the whole table by random().
    random_key = models.FloatField(default=new_random_key)
    # The import run that created this insight (an upload's InsightImport id, or a command's
    # own): how a run tells the rows it made from those that were there before it.
    import_run = models.UUIDField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-timestamp"]
        indexes = [
            models.Index(fields=["client", "barcode"]),
            # `image_id = …` (an image's insights, and the cascade when it is deleted) only ever
            # looks for non-null ids.
            models.Index(fields=["image"], condition=Q(image__isnull=False), name="insight_image"),
            # A user's annotations (GET /users/statistics/{username}), counted from the index
            # alone. Only annotated insights carry a username: importing open ones costs this
            # index nothing.
            models.Index(
                fields=["client", "username", "annotation"],
                condition=Q(username__isnull=False),
                name="insight_annotator",
            ),
            # Open questions, by each order the question routes offer.
            models.Index(
                fields=["client", "random_key"],
                condition=Q(annotation__isnull=True),
                name="insight_open_random",
            ),
            # id too: the routes break ties by id, and without it in the index a page is a sort
            # of the tenant's whole tie group (with every unique_scans_n 0, all of it).
            models.Index(
                fields=["client", "-unique_scans_n", "id"],
                condition=Q(annotation__isnull=True),
                name="insight_open_popular",
            ),
            models.Index(
                fields=["client", "type", "random_key"],
                condition=Q(annotation__isnull=True),
                name="insight_open_type_random",
            ),
            # No index across tenants: pages of several tenants merge per-tenant pages
            # (selectors.question_page; migration 0006).
            # Migration 0002 also adds, on PostgreSQL only, the (client, confidence DESC NULLS
            # LAST) index that "best guesses first" needs (SQLite cannot index NULLS LAST) and
            # statistics on how types spread over tenants; migration 0003 narrows its GIN
            # indexes to non-empty lists. Every index here is paid for on each imported row
            # (migrations 0003 and 0006 say which were dropped and why).
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.value_tag or self.value} for {self.barcode}"

    @property
    def is_open(self) -> bool:
        return self.annotation is None


class AnnotationVote(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    insight = models.ForeignKey(Insight, on_delete=models.CASCADE, related_name="votes")
    username = models.CharField(max_length=255, null=True, blank=True)
    value = models.SmallIntegerField(
        choices=[(-1, "skip"), (0, "incorrect"), (1, "correct")],
    )
    device_id = models.CharField(max_length=255)
    # A keyed hash of the client address (never the address): votes that decide an insight
    # must come from distinct addresses, whatever device ids one caller makes up.
    address_hash = models.CharField(max_length=64, blank=True, default="")
    timestamp = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-timestamp"]
        constraints = [
            models.UniqueConstraint(fields=["insight", "device_id"], name="one_vote_per_device"),
        ]
        indexes = [models.Index(fields=["device_id"])]

    def __str__(self) -> str:
        return f"{self.value} on {self.insight_id} by {self.username or self.device_id}"


class InsightSettings(models.Model):
    """A tenant's choices for insights: public questions and where applied answers go."""

    client = models.OneToOneField(Client, on_delete=models.CASCADE, related_name="insight_settings")
    public_questions = models.BooleanField(
        default=False, help_text="Anonymous callers may see and vote on this tenant's questions."
    )
    downstream_url = models.URLField(
        blank=True, help_text="Applied insights whose subject is not an image are POSTed here."
    )
    downstream_secret = models.CharField(
        max_length=200, blank=True, help_text="Signs downstream updates (HMAC-SHA256)."
    )

    class Meta:
        verbose_name_plural = "insight settings"

    def __str__(self) -> str:
        return f"Insight settings of {self.client}"


class KeywordKind(models.TextChoices):
    LABEL = "label"
    BRAND = "brand"


class InsightKeyword(models.Model):
    """A word or phrase that, found in an image's OCR text, makes a label or brand insight."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="insight_keywords")
    kind = models.CharField(max_length=10, choices=KeywordKind.choices)
    keyword = models.CharField(max_length=200)
    value_tag = models.CharField(max_length=255, help_text="For example en:organic.")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["kind", "keyword"]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "kind", "keyword"], name="unique_keyword_per_client"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.keyword} → {self.value_tag}"


class InsightImport(models.Model):
    """An import run over HTTP (an RQ job), with its progress and the lines it refused."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="insight_imports")
    file = models.CharField(max_length=500, help_text="Storage key of the uploaded file.")
    original_filename = models.CharField(max_length=255, blank=True)
    format = models.CharField(max_length=20, default="auto")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    lines_read = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    bad = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(
        default=0, help_text="Open insights of the file's (barcode, type) pairs it replaced."
    )
    keep_missing = models.BooleanField(
        default=False, help_text="Keep the insights the file does not name, instead of replacing."
    )
    errors = models.JSONField(default=list, blank=True, help_text="[{line, reason}], capped.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Import {self.id} ({self.status})"
