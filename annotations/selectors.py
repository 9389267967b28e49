"""Reads: which insights a caller may see, and the question queries over them.

Every question query runs on the partial indexes of open insights (annotation IS NULL) declared
on Insight, so its cost depends on the page asked for, not on the size of the table.
"""

import contextlib
import functools
import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import BooleanField, Count, Exists, F, OrderBy, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from redis.exceptions import RedisError
from rest_framework.request import Request

from annotations.models import AnnotationVote, Insight, InsightSettings
from images.models import Client
from images.tenancy.auth import ClientPrincipal, is_operator
from images.tenancy.selectors import request_client


class Order:
    RANDOM = "random"
    POPULARITY = "popularity"
    CONFIDENCE = "confidence"
    CHOICES = (RANDOM, POPULARITY, CONFIDENCE)
    # The insight list's order when none is asked for (not a question order): by subject, on the
    # (client, barcode) index, so that a page costs its size, not a sort of the tenant's rows.
    SUBJECT = "subject"


# Each ends with id: a stable order, so that pages neither repeat nor skip rows.
ORDERINGS = {
    Order.POPULARITY: [F("unique_scans_n").desc(), F("id").asc()],
    Order.CONFIDENCE: [F("confidence").desc(nulls_last=True), F("id").asc()],
    Order.SUBJECT: [F("barcode").asc(), F("id").asc()],
}


@dataclass(frozen=True)
class QuestionFilters:
    insight_types: list[str] = field(default_factory=list)
    value_tag: str | None = None
    brands: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    predictor: str | None = None
    with_image: bool | None = None
    barcode: str | None = None
    # The insight list's and the unanswered counts' filters.
    annotated: bool | None = None
    annotation: int | None = None
    server_type: str | None = None
    campaigns: list[str] = field(default_factory=list)
    lc: list[str] = field(default_factory=list)
    reserved_barcode: bool | None = None


@dataclass(frozen=True)
class Voter:
    """Who is asking, to leave out the questions they have already answered."""

    device_id: str
    username: str | None = None


def visible_insights(request: Request) -> QuerySet[Insight]:
    """A key sees its tenant; staff see every tenant (or `?client=`); others see public tenants."""
    return insights_of(_visible_tenants(request))


def insights_of(tenants: list[int] | None) -> QuerySet[Insight]:
    """The insights of these tenants (None: of every tenant)."""
    insights = Insight.objects.all()
    if tenants is None:
        return insights
    # One tenant (the usual case) keeps the per-tenant indexes usable; a list of ids is
    # resolved here rather than joined, so that the planner sees constants.
    if len(tenants) == 1:
        return insights.filter(client_id=tenants[0])
    return insights.filter(client_id__in=tenants)


def question_tenants(request: Request, *, open_only: bool = True) -> list[int]:
    """The tenants the caller sees that have open questions (or any insight, for the insight
    list): what question_page reads one by one. An operator without `?client=` sees every
    tenant, most of which may have none."""
    tenants = _visible_tenants(request)
    if tenants is not None and len(tenants) <= 1:
        return tenants
    clients = Client.objects.all() if tenants is None else Client.objects.filter(pk__in=tenants)
    # One probe of a tenant's open-question index (or its (client, barcode) index) each.
    has = Insight.objects.filter(client=OuterRef("pk"))
    asking = Exists(has.filter(annotation__isnull=True) if open_only else has)
    return list(clients.filter(asking).order_by("pk").values_list("pk", flat=True))


def _visible_tenants(request: Request) -> list[int] | None:
    """The tenants the caller sees, None meaning every one."""
    user = request.user
    if isinstance(user, ClientPrincipal) or is_operator(user):
        client = request_client(request)
        return None if client is None else [client.pk]
    return list(
        InsightSettings.objects.filter(public_questions=True, client__is_active=True)
        .order_by("client_id")
        .values_list("client_id", flat=True)
    )


# Filters on a column equal to the value (None: no filter), and on JSON lists holding any value.
_EQUAL_FILTERS = {
    "value_tag": "value_tag",
    "predictor": "predictor",
    "with_image": "with_image",
    "annotation": "annotation",
    "server_type": "server_type",
    "reserved_barcode": "reserved_barcode",
}
_LIST_FILTERS = {"brands": "brands", "countries": "countries", "campaigns": "campaign", "lc": "lc"}


def insights_filtered(insights: QuerySet[Insight], filters: QuestionFilters) -> QuerySet[Insight]:
    if filters.barcode is not None:
        insights = _with_barcode(insights, filters.barcode)
    if filters.insight_types:
        insights = insights.filter(type__in=filters.insight_types)
    if filters.annotated is not None:
        insights = insights.filter(annotation__isnull=not filters.annotated)
    for name, column in _EQUAL_FILTERS.items():
        # A blank text means no filter, as an absent one does.
        if (value := getattr(filters, name)) is not None and value != "":
            insights = insights.filter(**{column: value})
    for name, column in _LIST_FILTERS.items():
        if values := getattr(filters, name):
            insights = _json_list_has_any(insights, column, values)
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
    questions: QuerySet[Insight],
    *,
    order_by: str,
    count: int,
    page: int = 1,
    tenants: Sequence[int] = (),
) -> list[Insight]:
    """One page of questions (or of any insights: the insight list) in the asked order.

    Random order draws a point r in [0, 1) and reads the open-question index from r onwards,
    wrapping round to the start when fewer than `count` rows follow r; `page` means nothing for
    a random draw (each call is a fresh draw), so it is ignored there.

    The question indexes are per tenant (an index across tenants would be one more to keep up on
    every imported insight). Questions of several tenants, named in `tenants` (see
    question_tenants), are read on PostgreSQL as one query of per-tenant pages merged in the
    asked order: the same page as ordering them all, without sorting them all. A deep page costs
    each tenant its offset, as OFFSET always does.
    """
    tenants = list(dict.fromkeys(tenants))
    merged = len(tenants) > 1 and connection.vendor == "postgresql"
    if merged:
        read = functools.partial(_merged_ids, questions, tenants)
    else:
        read = functools.partial(_page, questions)
    if order_by == Order.RANDOM:
        point = random.random()
        found = read(Q(random_key__gte=point), [F("random_key").asc()], 0, count)
        if len(found) < count:
            found += read(Q(random_key__lt=point), [F("random_key").asc()], 0, count - len(found))
    else:
        found = read(Q(), ORDERINGS[order_by], (page - 1) * count, count)
    if merged:
        rows = questions.order_by().in_bulk(found)
        return [rows[pk] for pk in found if pk in rows]
    return found


def _page(
    questions: QuerySet[Insight], where: Q, ordering: list[OrderBy], offset: int, count: int
) -> list[Insight]:
    return list(questions.filter(where).order_by(*ordering)[offset : offset + count])


def _merged_ids(
    questions: QuerySet[Insight],
    tenants: list[int],
    where: Q,
    ordering: list[OrderBy],
    offset: int,
    count: int,
) -> list[Any]:
    """The ids of _page over several tenants: the first offset + count of each tenant, on its
    own index, merged by a UNION ALL ordered and cut again."""
    # The union is ordered by its own columns: the keys of the order, id first.
    keys = dict.fromkeys(["id", *(order.expression.name for order in ordering)])
    parts = [
        questions.filter(where, client_id=tenant)
        .order_by(*ordering)
        .values_list(*keys)[: offset + count]
        for tenant in tenants
    ]
    merged = parts[0].union(*parts[1:], all=True).order_by(*ordering)[offset : offset + count]
    return [row[0] for row in merged]


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


def unanswered_by_value_tag(
    insights: QuerySet[Insight], filters: QuestionFilters, *, count: int, page: int
) -> tuple[int, list[tuple[str, int]]]:
    """Open questions that need a person, counted per value_tag, most first (Robotoff's
    /questions/unanswered): how many value tags match, and one page of (value_tag, questions).

    "Need a person": not automatically processable; Imago's own pipeline leaves that unset.
    """
    questions = insights_filtered(
        insights.filter(annotation__isnull=True, value_tag__isnull=False), filters
    ).exclude(automatic_processing=True)
    tags = questions.order_by().values("value_tag")
    grouped = tags.annotate(n=Count("pk")).order_by("-n", "value_tag")
    offset = (page - 1) * count
    rows = grouped.values_list("value_tag", "n")[offset : offset + count]
    return tags.distinct().count(), list(rows)


def unanswered_cached(
    request: Request, filters: QuestionFilters, *, count: int, page: int
) -> tuple[int, list[tuple[str, int]]]:
    """unanswered_by_value_tag for the tenants the caller sees, kept for
    INSIGHT_UNANSWERED_CACHE_SECONDS: its cost grows with the tenants' rows, and anonymous
    callers could otherwise keep a core busy with it."""
    tenants = _visible_tenants(request)
    key = _unanswered_key(tenants, filters, count=count, page=page)
    found = None
    with contextlib.suppress(RedisError):  # no cache: answer anyway, at full cost
        found = cache.get(key)
    if found is not None:
        return found
    found = unanswered_by_value_tag(insights_of(tenants), filters, count=count, page=page)
    with contextlib.suppress(RedisError):
        cache.set(key, found, settings.INSIGHT_UNANSWERED_CACHE_SECONDS)
    return found


def _unanswered_key(
    tenants: list[int] | None, filters: QuestionFilters, *, count: int, page: int
) -> str:
    # Hashed: anonymous callers see every public tenant, a list that may be long.
    asked = json.dumps([tenants, asdict(filters), count, page], sort_keys=True)
    return f"questions-unanswered:{hashlib.sha256(asked.encode()).hexdigest()}"


def annotation_count(insights: QuerySet[Insight], username: str) -> int:
    """How many of these insights this user annotated (Robotoff's user statistics)."""
    if "\x00" in username:
        return 0
    return insights.filter(username=username, annotation__isnull=False).count()


def evidence_box(insight: Insight) -> list[float] | None:
    """The part of the picture an insight is about: y_min, x_min, y_max, x_max from 0 to 1.

    Imported insights carry whatever their file held, in the field or (as Robotoff's object
    predictions do) in `data`: anything but four ordered fractions is no box.
    """
    data = insight.data if isinstance(insight.data, dict) else {}
    box = insight.bounding_box if insight.bounding_box is not None else data.get("bounding_box")
    if not isinstance(box, list | tuple) or len(box) != 4:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in box):
        return None
    y_min, x_min, y_max, x_max = box
    if not (0 <= y_min < y_max <= 1 and 0 <= x_min < x_max <= 1):
        return None  # also NaN, which compares false
    return [float(v) for v in box]
