from django.urls import URLPattern, URLResolver, path, re_path

from ai import api

IMAGE = r"^images/(?P<pk>(?:[0-9]+|[0-9a-fA-F-]{36}))"

urlpatterns: list[URLPattern | URLResolver] = [
    re_path(rf"{IMAGE}/ocr/$", api.ImageOcrView.as_view(), name="image-ocr"),
    re_path(rf"{IMAGE}/ai/$", api.ImageAiView.as_view(), name="image-ai"),
    path("ai/summarize/", api.SummarizeView.as_view(), name="ai-summarize"),
    path("ai/draft-task/", api.DraftTaskView.as_view(), name="ai-draft-task"),
]
