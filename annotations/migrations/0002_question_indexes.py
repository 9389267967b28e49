from django.db import migrations, models

# Made on PostgreSQL only: SQLite cannot index NULLS LAST, has no GIN, and holds small tables.
POSTGRESQL_ONLY = [
    # Best guesses first, unknown confidence last (a plain DESC index puts NULLs first).
    (
        "CREATE INDEX IF NOT EXISTS insight_open_confidence_nl ON annotations_insight "
        "(client_id, confidence DESC NULLS LAST) WHERE annotation IS NULL",
        "DROP INDEX IF EXISTS insight_open_confidence_nl",
    ),
    (
        "CREATE INDEX IF NOT EXISTS insight_open_confidence_nl_all ON annotations_insight "
        "(confidence DESC NULLS LAST) WHERE annotation IS NULL",
        "DROP INDEX IF EXISTS insight_open_confidence_nl_all",
    ),
    # `brands` and `countries` filters (jsonb ?|): a rare value is found without a scan.
    (
        "CREATE INDEX IF NOT EXISTS insight_open_brands ON annotations_insight "
        "USING gin (brands) WHERE annotation IS NULL",
        "DROP INDEX IF EXISTS insight_open_brands",
    ),
    (
        "CREATE INDEX IF NOT EXISTS insight_open_countries ON annotations_insight "
        "USING gin (countries) WHERE annotation IS NULL",
        "DROP INDEX IF EXISTS insight_open_countries",
    ),
    # How types spread over tenants: without it the planner assumes every tenant has every type
    # and counts a type a tenant lacks with a full table scan.
    (
        "CREATE STATISTICS IF NOT EXISTS insight_client_type (dependencies, mcv) "
        "ON client_id, type FROM annotations_insight",
        "DROP STATISTICS IF EXISTS insight_client_type",
    ),
]


def create_postgresql_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for create, _drop in POSTGRESQL_ONLY:
            schema_editor.execute(create)


def drop_postgresql_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for _create, drop in reversed(POSTGRESQL_ONLY):
            schema_editor.execute(drop)


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0001_insights"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="insight",
            index=models.Index(
                condition=models.Q(("annotation__isnull", True)),
                fields=["random_key"],
                name="insight_open_random_all",
            ),
        ),
        migrations.AddIndex(
            model_name="insight",
            index=models.Index(
                condition=models.Q(("annotation__isnull", True)),
                fields=["-unique_scans_n"],
                name="insight_open_popular_all",
            ),
        ),
        migrations.RunPython(create_postgresql_only, drop_postgresql_only, elidable=False),
    ]
