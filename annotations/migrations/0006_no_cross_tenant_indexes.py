"""No question index across tenants (issue 6: import ≥ 20,000/s).

Each imported insight paid for three indexes that only pages over several tenants read
(anonymous callers of public tenants, operators without `?client=`): 17 µs of PostgreSQL time
per insight at 1,000,000 rows, a third of its share of an import. Those pages are now merged from
per-tenant pages (selectors.question_page), each read on the tenant's own index.
"""

from django.db import migrations

CONFIDENCE_ALL = "insight_open_confidence_nl_all"


def drop_confidence_all(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {CONFIDENCE_ALL}")


def create_confidence_all(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {CONFIDENCE_ALL} ON annotations_insight "
            "(confidence DESC NULLS LAST) WHERE annotation IS NULL"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0005_import_replaces"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="insight", name="insight_open_random_all"),
        migrations.RemoveIndex(model_name="insight", name="insight_open_popular_all"),
        migrations.RunPython(drop_confidence_all, create_confidence_all, elidable=False),
    ]
