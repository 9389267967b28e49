"""One error shape: whatever refusal a service or a view raises, the API answers it the same way."""

import pytest
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from kit.errors import DomainError


class OutOfStock(DomainError):
    """A service's own refusal: its status follows its code."""

    STATUSES = {"sold_out": 409, "discontinued": 410}

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail, self.STATUSES[code])


class Shop(APIView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes: list = []
    refusal: Exception | None = None

    def get(self, request: Request) -> Response:
        raise self.refusal


def _answer(refusal: Exception) -> Response:
    return Shop.as_view(refusal=refusal)(APIRequestFactory().get("/api/v1/shop/"))


def test_a_domain_error_answers_its_code_detail_and_status():
    response = _answer(DomainError("sold_out", "Nothing left; come back Monday.", 409))
    assert response.status_code == 409
    assert response.data == {"code": "sold_out", "detail": "Nothing left; come back Monday."}


def test_the_extra_facts_of_a_refusal_join_its_body():
    refusal = DomainError("sold_out", "a.jpg: gone.", 409, errors=[{"file": "a.jpg"}])
    assert _answer(refusal).data["errors"] == [{"file": "a.jpg"}]


@pytest.mark.parametrize(("code", "status"), [("sold_out", 409), ("discontinued", 410)])
def test_a_subclass_answers_each_code_with_its_own_status(code, status):
    response = _answer(OutOfStock(code, "Not today."))
    assert (response.status_code, response.data["code"]) == (status, code)


def test_an_unexpected_error_is_not_taken_for_a_refusal():
    with pytest.raises(ValueError, match="a bug"):
        _answer(ValueError("a bug"))
