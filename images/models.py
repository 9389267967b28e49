"""The app's models, one module per room (tenancy, library, detection, plates).

Django loads them from here, and code outside a room imports them from here.
"""

from images.detection.models import Detection, DetectionJob, DetectionRun, DetectorModel
from images.library.models import (
    TERMINAL_STEP_STATUSES,
    Exif,
    Image,
    ImageStatus,
    ImageStep,
    ImageTag,
    StepStatus,
    Tag,
    Thumbnail,
)
from images.plates.models import (
    AnonymizeSettings,
    CoveringReview,
    CoverMode,
    PlateTask,
    PlateTaskFile,
    WebhookAttempt,
)
from images.tenancy.models import ALL_SCOPES, DEFAULT_SCOPES, ApiKey, Client, Plan, Scope

__all__ = [
    "ALL_SCOPES",
    "DEFAULT_SCOPES",
    "TERMINAL_STEP_STATUSES",
    "AnonymizeSettings",
    "ApiKey",
    "Client",
    "CoverMode",
    "CoveringReview",
    "Detection",
    "DetectionJob",
    "DetectionRun",
    "DetectorModel",
    "Exif",
    "Image",
    "ImageStatus",
    "ImageStep",
    "ImageTag",
    "Plan",
    "PlateTask",
    "PlateTaskFile",
    "Scope",
    "StepStatus",
    "Tag",
    "Thumbnail",
    "WebhookAttempt",
]
