from django.urls import path, re_path

from images import detection_api

urlpatterns = [
    path("detect/image", detection_api.DetectImageView.as_view(), name="detect-image"),
    path("detect/batch", detection_api.DetectBatchView.as_view(), name="detect-batch"),
    path("detect/jobs/<str:job_id>", detection_api.DetectJobView.as_view(), name="detect-job"),
    path("detect/history", detection_api.DetectHistoryView.as_view(), name="detect-history"),
    path("detect/models", detection_api.DetectModelsView.as_view(), name="detect-models"),
    re_path(
        r"^images/(?P<pk>[0-9]+|[0-9a-fA-F-]{36})/detections/$",
        detection_api.ImageDetectionsView.as_view(),
        name="image-detections",
    ),
]
