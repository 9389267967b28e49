"""Reads: which insights a caller may see, and the question queries over them.

Every question query runs on the partial indexes of open insights (annotation IS NULL) declared
on Insight, so its cost depends on the page asked for, not on the size of the table.
"""

import random
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.db.models import BooleanField, Exists, F, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from rest_framework.request import Request

from annotations.models import AnnotationVote, Insight, InsightSettings
from images.auth import ClientPrincipal, is_operator
from images.selectors import request_client


class Order:
    RANDOM = "random"
    POPULARITY = "popularity"
    CONFIDENCE = "confidence"
    CHOICES = (RANDOM, POPULARITY, CONFIDENCE)


@dataclass(frozen=True)
class QuestionFilters:
    insight_types: list[str] = field(default_factory=list)
    value_tag: str | None = None
    brands: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    predictor: str | None = None
    with_image: bool | None = None
    barcode: str | None = None


@dataclass(frozen=True)
class Voter:
    """Who is asking, to leave out the questions they have already answered."""

    device_id: str
    username: str | None = None


def visible_insights(request: Request) -> QuerySet[Insight]:
    """A key sees its tenant; staff see every tenant (or `?client=`); others see public tenants."""
    insights = Insight.objects.all()
    user = request.user
    if isinstance(user, ClientPrincipal) or is_operator(user):
        client = request_client(request)
        return insights if client is None else insights.filter(client=client)
    public = list(
        InsightSettings.objects.filter(public_questions=True, client__is_active=True).values_list(
            "client_id", flat=True
        )
    )
    # One tenant (the usual case) keeps the per-tenant indexes usable; a list of ids is
    # resolved here rather than joined, so that the planner sees constants.
    if len(public) == 1:
        return insights.filter(client_id=public[0])
    return insights.filter(client_id__in=public)


def insights_filtered(insights: QuerySet[Insight], filters: QuestionFilters) -> QuerySet[Insight]:
    if filters.barcode is not None:
        insights = _with_barcode(insights, filters.barcode)
    if filters.insight_types:
        insights = insights.filter(type__in=filters.insight_types)
    if filters.value_tag:
        insights = insights.filter(value_tag=filters.value_tag)
    if filters.predictor:
        insights = insights.filter(predictor=filters.predictor)
    if filters.with_image is not None:
        insights = insights.filter(with_image=filters.with_image)
    if filters.brands:
        insights = _json_list_has_any(insights, "brands", filters.brands)
    if filters.countries:
        insights = _json_list_has_any(insights, "countries", filters.countries)
    return insights


def _json_list_has_any(
    insights: QuerySet[Insight], column: str, values: list[str]
) -> QuerySet[Insight]:
    """Rows whose JSON list `column` holds any of `values` (Robotoff's `contains_any`)."""
    if connection.vendor == "postgresql":
        # jsonb `?|` matches the string elements of an array. The GIN indexes that serve it hold
        # only non-empty lists (most are empty, and an empty one costs an entry on each write):
        # saying "not empty", which `?|` implies, lets the planner use them.
        return insights.filter(**{f"{column}__has_any_keys": values}).exclude(**{column: []})
    # SQLite has no array containment operator; json_each walks the list.
    placeholders = ", ".join(["%s"] * len(values))
    table = Insight._meta.db_table
    condition = RawSQL(
        f'EXISTS (SELECT 1 FROM json_each("{table}"."{column}") '
        f"WHERE json_each.value IN ({placeholders}))",
        values,
        output_field=BooleanField(),
    )
    return insights.alias(**{f"_has_{column}": condition}).filter(**{f"_has_{column}": True})


def open_questions(
    insights: QuerySet[Insight], filters: QuestionFilters, voter: Voter | None = None
) -> QuerySet[Insight]:
    """Unannotated insights that this device (or user) has not voted on yet."""
    questions = insights_filtered(insights.filter(annotation__isnull=True), filters)
    if voter is not None:
        by = Q(device_id=voter.device_id)
        if voter.username:
            by |= Q(username=voter.username)
        votes = AnnotationVote.objects.filter(by, insight=OuterRef("pk"))
        questions = questions.filter(~Exists(votes))
    return questions


def with_pictures(questions: QuerySet[Insight]) -> QuerySet[Insight]:
    """What a question's source_image_url reads: the tenant and the image's thumbnails."""
    return questions.select_related("client", "image").prefetch_related("image__thumbnails")


def question_page(
    questions: QuerySet[Insight], *, order_by: str, count: int, page: int = 1
) -> list[Insight]:
    """One page of questions in the asked order.

    Random order draws a point r in [0, 1) and reads the open-question index from r onwards,
    wrapping round to the start when fewer than `count` rows follow r; `page` means nothing for
    a random draw (each call is a fresh draw), so it is ignored there.
    """
    if order_by == Order.RANDOM:
        point = random.random()
        first = list(questions.filter(random_key__gte=point).order_by("random_key")[:count])
        if len(first) < count:
            first += list(
                questions.filter(random_key__lt=point).order_by("random_key")[: count - len(first)]
            )
        return first
    if order_by == Order.POPULARITY:
        ordering = [F("unique_scans_n").desc(), "id"]
    else:
        ordering = [F("confidence").desc(nulls_last=True), "id"]
    offset = (page - 1) * count
    return list(questions.order_by(*ordering)[offset : offset + count])


def question_count(questions: QuerySet[Insight]) -> int:
    """How many questions match, counted up to INSIGHT_QUESTION_COUNT_CAP.

    An exact COUNT(*) over millions of open insights reads every matching index entry on every
    request; counting at most CAP rows keeps the cost bounded, and a client only needs to
    know whether there are "many" questions left. A count at the cap means "at least this many".
    """
    cap = settings.INSIGHT_QUESTION_COUNT_CAP
    return questions.order_by().values("pk")[:cap].count()


def insights_for_barcode(insights: QuerySet[Insight], barcode: str) -> QuerySet[Insight]:
    return _with_barcode(insights, barcode).order_by("-timestamp")


def _with_barcode(insights: QuerySet[Insight], barcode: str) -> QuerySet[Insight]:
    # A path may carry %00, which PostgreSQL refuses in text: no subject has such an id.
    if "\x00" in barcode:
        return insights.none()
    return insights.filter(barcode=barcode)
