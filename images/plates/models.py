"""Plate tasks, their files, covering reviews, webhook attempts and per-tenant settings."""

import uuid

from django.conf import settings
from django.db import models

from images.tenancy.models import Client


class CoverMode(models.TextChoices):
    STUB = "stub"
    BLUR = "blur"
    PIXELATE = "pixelate"
    SOLID = "solid"


class AnonymizeSettings(models.Model):
    """A tenant's plate-covering defaults and where finished tasks are delivered."""

    client = models.OneToOneField(Client, on_delete=models.CASCADE, related_name="anonymize")
    mode = models.CharField(max_length=10, choices=CoverMode.choices, default=CoverMode.STUB)
    stub_file = models.CharField(
        max_length=500, blank=True, help_text="Storage key of the tenant's own stub image."
    )
    cover_faces = models.BooleanField(default=False)
    on_upload = models.BooleanField(
        default=False, help_text="Run the anonymize step on every uploaded image."
    )
    upload_url = models.URLField(
        blank=True, help_text="Multipart POST of task_id + images (one part per file)."
    )
    callback_url = models.URLField(blank=True, help_text="JSON POST of {task_id, status, results}.")
    webhook_secret = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return f"anonymisation settings of {self.client}"


class PlateTask(models.Model):
    """A plate_detect-compatible task: up to 50 images covered, delivered, then expired."""

    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        COMPLETED = "completed"
        FAILED = "failed"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="plate_tasks")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    mode = models.CharField(max_length=10, choices=CoverMode.choices)
    cover_faces = models.BooleanField(default=False)
    upload_url = models.URLField(blank=True)
    callback_url = models.URLField(blank=True)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)
    purged_at = models.DateTimeField(
        null=True, blank=True, help_text="Files and results deleted; kept to answer 410."
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"plate task {self.uuid}"

    @property
    def storage_dir(self) -> str:
        return f"{self.client.storage_prefix}/tasks/{self.uuid}"

    @property
    def needs_delivery(self) -> bool:
        return bool(self.upload_url or self.callback_url)


class CoveringReview(models.Model):
    """What the covering of one picture found, why a person should look, and who did.

    `needs_review` stays true until an operator marks the result reviewed or corrects its boxes;
    the reasons stay as the record of why it was flagged.
    """

    plate_confidences = models.JSONField(default=list, blank=True)
    needs_review = models.BooleanField(default=False, db_index=True)
    review_reasons = models.JSONField(default=list, blank=True, help_text="Stable codes.")
    operator_boxes = models.JSONField(
        default=list, blank=True, help_text="Boxes drawn by operators, [x1, y1, x2, y2] in pixels."
    )
    revision = models.PositiveSmallIntegerField(
        default=0, help_text="Corrections re-rendered since the first covering."
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class PlateTaskFile(CoveringReview):
    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"

    task = models.ForeignKey(PlateTask, on_delete=models.CASCADE, related_name="files")
    position = models.PositiveSmallIntegerField()
    filename = models.CharField(max_length=255)
    source_file = models.CharField(max_length=500, blank=True)
    result_file = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error_code = models.CharField(max_length=50, blank=True)
    error = models.TextField(blank=True)
    plates = models.PositiveSmallIntegerField(default=0)
    faces = models.PositiveSmallIntegerField(default=0)
    regions = models.JSONField(default=list, blank=True, help_text="Covered quads, in pixels.")

    class Meta:
        ordering = ["position"]
        # One permission for every covered result, task files and stored images alike.
        permissions = [("review_covering", "Can review and correct covered plates")]

    def __str__(self) -> str:
        return self.filename


class WebhookAttempt(models.Model):
    """Every delivery attempt of a task's results, successful or not."""

    task = models.ForeignKey(PlateTask, on_delete=models.CASCADE, related_name="attempts")
    kind = models.CharField(max_length=10, choices=[("upload", "upload"), ("callback", "callback")])
    url = models.URLField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    correction = models.CharField(
        max_length=40, blank=True, help_text="The corrected file and revision; empty: the task."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} to {self.url}: {self.status_code or self.error[:40]}"
