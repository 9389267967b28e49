from django.urls import path, re_path

from images.detection import api as detection_api
from images.plates import api as anonymize_api

urlpatterns = [
    path("detect/image", detection_api.DetectImageView.as_view(), name="detect-image"),
    path("detect/batch", detection_api.DetectBatchView.as_view(), name="detect-batch"),
    path("detect/jobs/<str:job_id>", detection_api.DetectJobView.as_view(), name="detect-job"),
    path("detect/history", detection_api.DetectHistoryView.as_view(), name="detect-history"),
    path("detect/models", detection_api.DetectModelsView.as_view(), name="detect-models"),
    path(
        "detect/<str:detection_id>/image",
        detection_api.DetectionImageView.as_view(),
        name="detect-annotated-image",
    ),
    path("process-task/", anonymize_api.ProcessTaskView.as_view(), name="process-task"),
    path("process-task", anonymize_api.ProcessTaskNoSlashView.as_view()),
    path("task-status/<str:task_id>", anonymize_api.TaskStatusView.as_view(), name="task-status"),
    path("anonymize/settings", anonymize_api.AnonymizeSettingsView.as_view(), name="anon-settings"),
    path("anonymize/stub", anonymize_api.StubView.as_view(), name="anonymize-stub"),
    re_path(
        r"^images/(?P<pk>(?:[0-9]+|[0-9a-fA-F-]{36}))/anonymize/$",
        anonymize_api.ImageAnonymizeView.as_view(),
        name="image-anonymize",
    ),
    re_path(
        r"^images/(?P<pk>(?:[0-9]+|[0-9a-fA-F-]{36}))/detections/$",
        detection_api.ImageDetectionsView.as_view(),
        name="image-detections",
    ),
]
