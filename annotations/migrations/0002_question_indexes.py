from django.db import migrations, models

CONFIDENCE_INDEX = "insight_open_confidence_nl"


def create_confidence_index(apps, schema_editor):
    # SQLite cannot index NULLS LAST; its tables are small enough to sort.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {CONFIDENCE_INDEX} ON annotations_insight "
            "(client_id, confidence DESC NULLS LAST) WHERE annotation IS NULL"
        )


def drop_confidence_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {CONFIDENCE_INDEX}")


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
        migrations.RunPython(create_confidence_index, drop_confidence_index, elidable=False),
    ]
