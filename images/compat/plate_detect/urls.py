from django.urls import path

from images.compat.plate_detect.views import TaskResultFileView

urlpatterns = [
    path(
        "tasks_storage/<str:task_id>/output/<str:filename>",
        TaskResultFileView.as_view(),
        name="plate-detect-result",
    ),
]
