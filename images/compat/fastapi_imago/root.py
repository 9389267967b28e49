"""`GET /`: the FastAPI Imago's info JSON for clients that ask for JSON; browsers go to the docs."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse

# HTML listed first answers `*/*`, a missing Accept and browsers: JSON only when preferred.
OFFERED = ["text/html", "application/json"]


def site_root(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        response: HttpResponse = JsonResponse(
            {"code": "method_not_allowed", "detail": "/ answers GET only."}, status=405
        )
        response["Allow"] = "GET, HEAD"
    elif request.get_preferred_type(OFFERED) == "application/json":
        response = JsonResponse(_info())
    else:
        response = HttpResponseRedirect("/api/docs/")
    response["Vary"] = "Accept"  # one URL, two answers: caches must tell them apart
    return response


def _info() -> dict[str, str]:
    return {
        "name": settings.SPECTACULAR_SETTINGS["TITLE"],
        "version": settings.SPECTACULAR_SETTINGS["VERSION"],
        "docs": "/docs",
        "api_docs": "/api/docs/",
        "health": "/health",
    }
