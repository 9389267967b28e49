"""The question page: a person answers insights one after another; the API does the work."""

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from images.tenancy.auth import is_operator

LANGUAGES = {"en": "English", "fr": "Français"}
# Query parameters the page passes on to the question route, as the API spells them.
PASSED_ON = ("client", "insight_types", "value_tag", "predictor", "brands", "countries")


@require_GET
def question_page(request: HttpRequest) -> HttpResponse:
    lang = request.GET.get("lang", "en")
    config = {
        "questionsUrl": reverse("questions-random"),
        "annotateUrl": reverse("insights-annotate"),
        "lang": lang if lang in LANGUAGES else "en",
        "filters": {name: request.GET[name] for name in PASSED_ON if request.GET.get(name)},
        # Staff answer with their session, which DRF guards with the CSRF token.
        "csrfToken": get_token(request),
    }
    context = {
        "config": config,
        "languages": LANGUAGES,
        "operator": is_operator(request.user),
    }
    return render(request, "annotations/questions.html", context)
