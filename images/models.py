import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from images.exif import maps_url


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


class DetectorModel(models.Model):
    """A registered detection model: the built-in ones (from settings) or a tenant's own."""

    class Task(models.TextChoices):
        DETECT = "detect"
        SEGMENT = "segment"
        OBB = "obb"

    class Backend(models.TextChoices):
        ONNX = "onnx"
        # Tenants' .pt uploads of old: refused at run time (images.engine.get_detector).
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
