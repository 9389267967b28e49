"""DRF's page-number pages, refusing page parameters the schema does not allow."""

from typing import Any

from django.core.paginator import Paginator
from rest_framework import pagination
from rest_framework.exceptions import NotFound
from rest_framework.request import Request

from kit.errors import DomainError


class PageNumberPagination(pagination.PageNumberPagination):
    """`page=` (blank) answers 404 like `page=x`, instead of page 1; a `page_size` that is not
    a whole number from 1 answers 400, instead of the default size. The schema types both as
    integers, so a silent fallback hid the caller's mistake."""

    def get_page_number(self, request: Request, paginator: Paginator) -> Any:
        if request.query_params.get(self.page_query_param) == "":
            raise NotFound(self.invalid_page_message.format(page_number="", message="blank"))
        return super().get_page_number(request, paginator)

    def get_page_size(self, request: Request) -> int | None:
        value = request.query_params.get(self.page_size_query_param or "")
        # No int() here: it refuses text of over 4,300 digits (a 500).
        if value is not None and not (value.isascii() and value.isdigit() and value.strip("0")):
            raise DomainError("invalid_page_size", "page_size must be a whole number from 1.", 400)
        if value is None or not self.max_page_size:
            return super().get_page_size(request)
        # Compared without its leading zeros: "0005" is 5, not a number longer than the largest.
        digits = value.lstrip("0")
        if len(digits) > len(str(self.max_page_size)):
            return self.max_page_size  # as DRF caps any size past it, without int()
        # No longer than the largest size, so int() reads it (DRF's would get the zeros too).
        return min(int(digits), self.max_page_size)
