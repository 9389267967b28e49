"""Detector models, detection batch jobs, runs and the objects they found."""

import uuid

from django.db import models
from django.db.models import Q

from images.library.models import Image
from images.tenancy.models import Client


class DetectorModel(models.Model):
    """A registered detection model: the built-in ones (from settings) or a tenant's own."""

    class Task(models.TextChoices):
        DETECT = "detect"
        SEGMENT = "segment"
        OBB = "obb"

    class Backend(models.TextChoices):
        ONNX = "onnx"
        # Tenants' .pt uploads of old: refused at run time (images.detection.engine.get_detector).
        ULTRALYTICS = "ultralytics"

    name = models.SlugField(max_length=100)
    client = models.ForeignKey(
        Client, null=True, blank=True, on_delete=models.CASCADE, help_text="Empty: built in."
    )
    task = models.CharField(max_length=10, choices=Task.choices)
    file = models.CharField(max_length=500, help_text="Path under MODELS_DIR.")
    class_names = models.JSONField(default=list)
    input_size = models.PositiveIntegerField(default=640)
    default_confidence = models.FloatField(default=0.25)
    backend = models.CharField(max_length=20, choices=Backend.choices, default=Backend.ONNX)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["client_id", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=Q(client__isnull=True), name="unique_builtin_model"
            ),
            models.UniqueConstraint(fields=["client", "name"], name="unique_tenant_model"),
        ]

    def __str__(self) -> str:
        return self.name


class DetectionJob(models.Model):
    """A batch of images sent to the detect API, processed by one RQ job."""

    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        COMPLETED = "completed"
        FAILED = "failed"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="detection_jobs")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    params = models.JSONField(default=dict)
    images = models.ManyToManyField(Image, related_name="+")
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"detection job {self.uuid}"


class DetectionRun(models.Model):
    """One pass of one model over one image, with its parameters and findings."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="detection_runs")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="detection_runs")
    job = models.ForeignKey(
        DetectionJob, null=True, blank=True, on_delete=models.CASCADE, related_name="runs"
    )
    model_name = models.CharField(max_length=100)
    confidence = models.FloatField()
    classes = models.JSONField(null=True, blank=True, help_text="Class filter, if any.")
    source = models.CharField(max_length=20, default="pipeline")
    annotated_file = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["client", "created_at"])]

    def __str__(self) -> str:
        return f"{self.model_name} on {self.image_id}"


class Detection(models.Model):
    """One object found in an image by a detection model (pipeline step or detect API)."""

    run = models.ForeignKey(
        DetectionRun, on_delete=models.CASCADE, related_name="detections", null=True
    )
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="detections")
    model_name = models.CharField(max_length=100)
    class_id = models.PositiveIntegerField()
    class_name = models.CharField(max_length=100, db_index=True)
    confidence = models.FloatField()
    x1 = models.FloatField(help_text="Box in pixels of the oriented original image.")
    y1 = models.FloatField()
    x2 = models.FloatField()
    y2 = models.FloatField()
    polygon = models.JSONField(null=True, blank=True, help_text="Mask outline or OBB quad.")
    source = models.CharField(max_length=20, default="pipeline")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-confidence"]
        indexes = [models.Index(fields=["image", "model_name"])]

    def __str__(self) -> str:
        return f"{self.class_name} {self.confidence:.2f} in {self.image_id}"
