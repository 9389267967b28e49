"""Robotoff-compatible routes, each with and without a trailing slash (clients use both).

Fixed words (random, popular, unanswered, detail, annotate) come before the {barcode} routes
that would otherwise swallow them; a new fixed route under insights/ (such as insights/import)
must be listed before `insights/<barcode>` too.
"""

from django.urls import URLPattern, URLResolver, path
from drf_spectacular.utils import extend_schema
from rest_framework.views import APIView

from annotations import api, import_api


def both(route: str, view: type[APIView], name: str) -> list[URLPattern]:
    """The route without a slash (in the schema) and with one (left out of it, same view).

    Both carry the name, so that metrics and logs count them as one route; reverse() gives the
    slashless one (the last listed).
    """
    unlisted = extend_schema(exclude=True)(type(f"{view.__name__}Slash", (view,), {}))
    return [
        path(f"{route}/", unlisted.as_view(), name=name),
        path(route, view.as_view(), name=name),
    ]


urlpatterns: list[URLPattern | URLResolver] = [
    *both("questions", api.QuestionsView, "questions"),
    *both("questions/random", api.RandomQuestionsView, "questions-random"),
    *both("questions/popular", api.PopularQuestionsView, "questions-popular"),
    *both("questions/unanswered", api.UnansweredQuestionsView, "questions-unanswered"),
    *both("questions/<str:barcode>", api.BarcodeQuestionsView, "questions-barcode"),
    *both("insights", api.InsightListView, "insights"),
    *both("insights/annotate", api.AnnotateView, "insights-annotate"),
    # Import routes: before insights/<barcode>, which would take "import" for a barcode.
    *both("insights/import", import_api.InsightImportView, "insight-import"),
    *both(
        "insights/imports/<uuid:import_id>",
        import_api.InsightImportStatusView,
        "insight-import-status",
    ),
    *both("insights/random", api.RandomInsightsView, "insights-random"),
    *both("insights/detail/<uuid:insight_id>", api.InsightDetailView, "insight-detail"),
    *both("insights/<str:barcode>", api.BarcodeInsightsView, "insights-barcode"),
    *both("users/statistics/<str:username>", api.UserStatisticsView, "users-statistics"),
]
