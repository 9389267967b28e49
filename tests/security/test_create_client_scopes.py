"""`create_client --scopes all` makes a tenant key, never an admin one: `admin` (which creates,
rotates and deactivates other tenants) only when named."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from images.models import DEFAULT_SCOPES, Client, Scope


def create(capsys, *scopes: str) -> Client:
    call_command("create_client", "Command Co", "--scopes", *scopes, "--json")
    return Client.objects.get(pk=json.loads(capsys.readouterr().out)["id"])


def test_all_scopes_leave_out_admin(capsys, db):
    client = create(capsys, "all")

    assert Scope.ADMIN not in client.scopes
    assert set(client.scopes) == set(DEFAULT_SCOPES)


def test_admin_is_given_when_named(capsys, db):
    assert create(capsys, "admin").scopes == [Scope.ADMIN]


def test_all_and_admin_together_give_every_scope(capsys, db):
    client = create(capsys, "all,admin")

    assert set(client.scopes) == {*DEFAULT_SCOPES, Scope.ADMIN}


def test_an_unknown_scope_is_refused(db):
    with pytest.raises(CommandError, match="Unknown scopes: everything"):
        call_command("create_client", "Command Co", "--scopes", "everything")
