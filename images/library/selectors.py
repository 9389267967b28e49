"""Reads: the querysets every API view and admin page starts from, image search, tag counts."""

import uuid

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection
from django.db.models import Count, Q, QuerySet
from rest_framework.request import Request

from images.models import Image, Tag
from images.tenancy.selectors import for_tenant
from kit.errors import DomainError


def image_queryset(request: Request, *, with_steps: bool = True) -> QuerySet[Image]:
    """The request's images; `with_steps=False` for lists not asked for `?expand=steps`, which
    never show the steps: prefetching them would be the largest read of the page for nothing."""
    related = ["steps", "thumbnails", "tags"] if with_steps else ["thumbnails", "tags"]
    # Detection inputs not saved to the library are reached through their detection runs only.
    images = (
        Image.objects.filter(in_library=True)
        .select_related("client", "exif")
        .prefetch_related(*related)
    )
    return for_tenant(request, images)


def image_find(request: Request, value: object) -> Image | None:
    """The request's image by id or uuid; None when it has none, or the value is neither."""
    value = str(value)
    if value.isascii() and value.isdigit():
        pk = parse_number(value)
        return None if pk is None else image_queryset(request).filter(pk=pk).first()
    key = parse_uuid(value)
    return None if key is None else image_queryset(request).filter(uuid=key).first()


MAX_ID = 2**63 - 1  # the largest primary key any of our databases stores


def parse_number(value: str) -> int | None:
    """A primary key (or any count) from a URL, a query or a form; None when no row can have it.

    isdigit() alone accepts "²" and other digits that int() refuses, and int() refuses text of
    more than 4,300 digits; an id past 64 bits overflows the database's integer.
    """
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(MAX_ID)):
        return None
    number = int(value)
    return number if number <= MAX_ID else None


def parse_uuid(value: str) -> uuid.UUID | None:
    """A UUID from a URL or a form, or None: the database would refuse a malformed one."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def image_get(request: Request, value: object) -> Image:
    """image_find, answering 404 when there is no such image."""
    image = image_find(request, value)
    if image is None:
        raise DomainError("not_found", "No such image.", 404)
    return image


# What `?q=` searches, as paths from an image: its tags, and the text the apps above add when
# they start (ai: the OCR text and the AI description).
SEARCHED_FIELDS = ["tags__name"]


def searched_fields_add(*paths: str) -> None:
    SEARCHED_FIELDS.extend(path for path in paths if path not in SEARCHED_FIELDS)


def image_search(images: QuerySet[Image], query: str) -> QuerySet[Image]:
    """Images whose SEARCHED_FIELDS match every word of the query.

    PostgreSQL ranks nothing but matches words with its full-text search ('simple' dictionary:
    no stemming, so that English and French text are searched alike); SQLite matches substrings.
    """
    query = query.strip()
    if not query:
        return images
    if connection.vendor == "postgresql":
        return images.filter(_full_text_match(query))
    condition = Q()
    for word in query.split():
        found = Q()
        for path in SEARCHED_FIELDS:
            matching = Image.objects.filter(**{f"{path}__icontains": word})
            found |= Q(pk__in=matching.values("pk"))
        condition &= found
    return images.filter(condition)


def _full_text_match(query: str) -> Q:
    search = SearchQuery(query, config="simple", search_type="websearch")
    # One row per tag of each image, each with the other fields' text.
    documents = Image.objects.annotate(
        document=SearchVector(*SEARCHED_FIELDS, config="simple")
    ).filter(document=search)
    return Q(pk__in=documents.values("pk"))


def tag_counts(images: QuerySet[Image]) -> QuerySet[Tag]:
    """The tags on these images, each with how many of them carry it, most used first."""
    return (
        Tag.objects.filter(imagetag__image__in=images)
        .annotate(count=Count("imagetag__image", distinct=True))
        .order_by("-count", "name")
    )
