"""Whom a request acts for, and the rows it may see: one way for every view."""

from typing import TypeVar

from django.core.validators import slug_re
from django.db.models import Model, QuerySet
from rest_framework.request import Request

from images.models import Client
from images.tenancy.auth import ClientPrincipal, is_operator
from kit.errors import DomainError

Row = TypeVar("Row", bound=Model)


def request_client(request: Request) -> Client | None:
    """The tenant a request acts for: the key's, or for staff the one named by `?client=`.

    None means a staff user looking at every tenant (or a caller who is neither).
    """
    user = request.user
    if isinstance(user, ClientPrincipal):
        return user.client
    if is_operator(user):
        chosen = request.query_params.get("client") or request.data.get("client")
        if chosen:
            chosen = str(chosen)
            lookup = {"pk": chosen} if chosen.isascii() and chosen.isdigit() else {"slug": chosen}
            client = (
                Client.objects.filter(**lookup).first()
                if "pk" in lookup or slug_re.fullmatch(chosen)
                else None
            )
            if client is None:
                raise DomainError("unknown_client", f"No client {chosen!r}.", 400)
            return client
    return None


def tenant_of(request: Request) -> Client:
    """The tenant a request writes for: staff must name one."""
    client = request_client(request)
    if client is None:
        raise DomainError("client_required", "Staff must name a client (?client=).", 400)
    return client


def for_tenant(request: Request, rows: QuerySet[Row]) -> QuerySet[Row]:
    """The rows (of a model with a `client`) the request may see: its tenant's; staff's chosen
    tenant's, or every tenant's when they name none; nobody else's any."""
    client = request_client(request)
    if client is not None:
        return rows.filter(client=client)
    return rows if is_operator(request.user) else rows.none()
