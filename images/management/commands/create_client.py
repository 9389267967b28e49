import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from images.models import ALL_SCOPES, DEFAULT_SCOPES, Plan
from images.tenancy import services


class Command(BaseCommand):
    help = "Create a tenant and print its API key (shown only this once)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--slug", default="")
        parser.add_argument("--plan", choices=Plan.values, default=Plan.FREE)
        parser.add_argument(
            "--scopes",
            default=",".join(DEFAULT_SCOPES),
            help="Comma-separated scopes; 'all' is every tenant scope, without admin "
            "(which manages other tenants): name it, e.g. 'all,admin'.",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        scopes = parse_scopes(options["scopes"])
        client, key = services.client_create(
            name=options["name"], slug=options["slug"], plan=options["plan"], scopes=scopes
        )
        if options["json"]:
            self.stdout.write(json.dumps({"id": client.pk, "slug": client.slug, "key": key}))
            return
        self.stdout.write(f"Client {client.name} ({client.slug}, id {client.pk}) created.")
        self.stdout.write(f"API key (shown once): {key}")


def parse_scopes(value: str) -> list[str]:
    named = [scope.strip() for scope in value.split(",") if scope.strip()]
    unknown = sorted(set(named) - {*ALL_SCOPES, "all"})
    if unknown:
        raise CommandError(f"Unknown scopes: {', '.join(unknown)}. Known: {', '.join(ALL_SCOPES)}")
    # A tenant key with admin can create, rotate and deactivate other tenants: never implied.
    scopes = [*DEFAULT_SCOPES, *named] if "all" in named else named
    return list(dict.fromkeys(scope for scope in scopes if scope != "all"))
