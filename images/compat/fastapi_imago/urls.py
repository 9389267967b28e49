"""The FastAPI Imago's paths at the site's root; each answers with or without a final slash."""

from django.urls import URLPattern, URLResolver, re_path
from rest_framework import routers

from images.compat.fastapi_imago import api
from images.compat.fastapi_imago.openapi import docs_urls


class Router(routers.SimpleRouter):
    def __init__(self) -> None:
        super().__init__()
        # Its paths have no final slash; clients that add one are answered too.
        self.trailing_slash = "/?"


router = Router()
router.register("images", api.ImageViewSet, basename="fastapi-imago-image")
router.register("auth/clients", api.ClientViewSet, basename="fastapi-imago-client")

api_urls: list[URLPattern | URLResolver] = [
    *router.urls,
    re_path(r"^ai/summarize/?$", api.SummarizeView.as_view(), name="fastapi-imago-summarize"),
    re_path(r"^ai/draft-task/?$", api.DraftTaskView.as_view(), name="fastapi-imago-draft-task"),
]

urlpatterns = [*api_urls, *docs_urls(api_urls)]
