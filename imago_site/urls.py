from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)
from rest_framework import routers

from ai import fastapi_imago as fastapi_imago_ai
from annotations.views import question_page
from images.compat.fastapi_imago import urls as fastapi_imago
from images.compat.fastapi_imago.root import site_root
from images.library.api import ImageViewSet
from images.library.signing import serve_signed
from images.models import Scope
from images.tenancy.api import ClientViewSet
from imago_site import health
from imago_site.metrics import MetricsView


class ApiRoot(routers.APIRootView):
    required_scopes: list[Scope] = []


class Router(routers.DefaultRouter):
    APIRootView = ApiRoot


router = Router()
router.register("images", ImageViewSet, basename="image")
router.register("clients", ClientViewSet, basename="client")


def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """Browsers ask for /favicon.ico whatever a page links; the file's name carries its hash."""
    return HttpResponseRedirect(static("imago/favicon.ico"))


urlpatterns = [
    path("", site_root, name="site-root"),
    path("favicon.ico", favicon),
    path("health", health.health, name="health"),
    path("health/detailed", health.health_detailed, name="health-detailed"),
    path("health/", include("images.compat.objectvision.health_urls")),
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("api/v1/", include(router.urls)),
    path("api/v1/", include("images.urls")),
    path("api/v1/", include("ai.urls")),
    path("api/v1/", include("annotations.urls")),
    path("api/v1/", include("images.compat.objectvision.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file: the page has no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html"),
        name="redoc",
    ),
    path("api-auth/", include("rest_framework.urls")),
    path("questions/", question_page, name="question-page"),
    path("files/signed/<str:token>", serve_signed, name="signed-file"),
    path("", include("images.compat.plate_detect.urls")),
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    # The FastAPI Imago's root paths (/images/..., /auth/clients, /ai/..., /docs): after Imago's.
    path("", include(fastapi_imago.with_docs(fastapi_imago_ai.urlpatterns))),
]

handler400 = "kit.errors.json_400"
handler404 = "kit.errors.json_404"
handler500 = "kit.errors.json_500"
