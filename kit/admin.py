"""Small helpers the apps' admin pages and the dashboard share."""

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.urls import reverse

# Counts shown in the admin stop here: an exact count of millions is a scan of them all.
COUNT_CAP = 10_000


@dataclass(frozen=True)
class CappedCount:
    count: int
    capped: bool

    def __str__(self) -> str:
        return f"{self.count:,}+" if self.capped else f"{self.count:,}"


def changelist(model: type, **params: str) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def capped_count(rows: QuerySet) -> CappedCount:
    """How many rows, counted no further than COUNT_CAP (one query with a LIMIT inside)."""
    count = rows[: COUNT_CAP + 1].count()
    return CappedCount(min(count, COUNT_CAP), count > COUNT_CAP)


# The context of a page whose fields are all read-only: no Save buttons.
READ_ONLY_PAGE = {
    "show_save": False,
    "show_save_and_continue": False,
    "show_save_and_add_another": False,
}


class ReadOnlyInline(admin.TabularInline):
    """Rows shown for reference on their parent's page: none added, changed or deleted there."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return list(self.fields or [])

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def object_or_404(model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str) -> Any:
    """The page's object as the admin finds it: 404 for an unknown or malformed id, 403 for a
    user who may not change it."""
    obj = model_admin.get_object(request, unquote(object_id))
    if obj is None:
        raise Http404("No such object.")
    if not model_admin.has_change_permission(request, obj):
        raise PermissionDenied
    return obj
