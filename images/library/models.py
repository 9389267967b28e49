"""Images, their pipeline steps, thumbnails, EXIF and tags."""

import uuid

from django.db import models
from django.db.models import Q

from images.library.exif import maps_url
from images.tenancy.models import Client


class ImageStatus(models.TextChoices):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class Image(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="images")
    file = models.CharField(max_length=500, help_text="Storage key of the original.")
    original_filename = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=50)
    format = models.CharField(max_length=10)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    status = models.CharField(
        max_length=20, choices=ImageStatus.choices, default=ImageStatus.PENDING, db_index=True
    )
    tags = models.ManyToManyField("Tag", through="ImageTag", related_name="images", blank=True)
    # False: a file sent only to be detected on (POST /detect/image without save=true). It is
    # outside the tenant's library and quota, no pipeline step runs on it, and its original is
    # deleted once detected; the row stays for its detection runs.
    in_library = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "sha256"],
                condition=Q(in_library=True),
                name="unique_image_per_client",
            ),
        ]
        indexes = [models.Index(fields=["client", "status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.original_filename or self.uuid} ({self.client})"

    @property
    def storage_dir(self) -> str:
        return f"{self.client.storage_prefix}/images/{self.uuid}"


class StepStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


TERMINAL_STEP_STATUSES = {StepStatus.DONE, StepStatus.FAILED, StepStatus.SKIPPED}


class ImageStep(models.Model):
    """One pipeline step's state for one image."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=30)
    status = models.CharField(max_length=20, choices=StepStatus.choices, default=StepStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    job_id = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["image", "name"], name="unique_step_per_image"),
        ]
        indexes = [models.Index(fields=["status", "name"])]

    def __str__(self) -> str:
        return f"{self.name}: {self.status}"


class Thumbnail(models.Model):
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="thumbnails")
    size = models.PositiveIntegerField(help_text="Requested long side in pixels.")
    file = models.CharField(max_length=500)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size_bytes = models.PositiveIntegerField()

    class Meta:
        ordering = ["size"]
        constraints = [
            models.UniqueConstraint(fields=["image", "size"], name="unique_thumbnail_size"),
        ]

    def __str__(self) -> str:
        return f"{self.size}px of {self.image_id}"


class Exif(models.Model):
    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="exif")
    make = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=100, blank=True)
    lens = models.CharField(max_length=200, blank=True)
    iso = models.PositiveIntegerField(null=True, blank=True)
    aperture = models.FloatField(null=True, blank=True)
    shutter = models.CharField(max_length=20, blank=True)
    exposure_seconds = models.FloatField(null=True, blank=True)
    focal_length = models.FloatField(null=True, blank=True)
    taken_at = models.DateTimeField(null=True, blank=True, db_index=True)
    orientation = models.PositiveSmallIntegerField(null=True, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    altitude = models.FloatField(null=True, blank=True)
    tags = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(latitude__isnull=True) | Q(latitude__gte=-90, latitude__lte=90),
                name="exif_latitude_range",
            ),
        ]

    def __str__(self) -> str:
        return f"EXIF of {self.image_id}"

    @property
    def has_gps(self) -> bool:
        return self.latitude is not None and self.longitude is not None

    @property
    def maps_url(self) -> str | None:
        return maps_url(self.latitude, self.longitude)


class Tag(models.Model):
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["client", "name"], name="unique_tag")]

    def __str__(self) -> str:
        return self.name


class ImageTag(models.Model):
    image = models.ForeignKey(Image, on_delete=models.CASCADE)
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE)
    source = models.CharField(max_length=30, default="user", help_text="user, detection, ai, …")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["image", "tag"], name="unique_image_tag")]

    def __str__(self) -> str:
        return f"{self.tag} on {self.image_id}"
