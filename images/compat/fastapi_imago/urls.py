"""The FastAPI Imago's paths at the site's root; each answers with or without a final slash."""

from django.urls import URLPattern, URLResolver
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


def with_docs(ai_urls: list[URLPattern]) -> list[URLPattern | URLResolver]:
    """Its routes, with its AI routes (the ai app's: ai/fastapi_imago.py), and the docs of all."""
    api_urls = [*router.urls, *ai_urls]
    return [*api_urls, *docs_urls(api_urls)]
