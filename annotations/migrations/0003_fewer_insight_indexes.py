"""Fewer indexes to keep up on each imported insight (issue 6: import ≥ 20,000/s).

- client: its own index repeats the first column of (client, barcode) and of every per-tenant
  question index.
- image: most insights have no image; a partial index (image IS NOT NULL) serves `image_id = …`.
- insight_open_confidence (client, confidence DESC): PostgreSQL orders by confidence DESC NULLS
  LAST, which only insight_open_confidence_nl (migration 0002) serves; SQLite's tables are small.
- (client, type, annotation): every question route reads open insights, which
  insight_open_type_random serves by type; only the admin's counts per type read all of them.
- On PostgreSQL, the GIN indexes of `brands` and `countries` hold only non-empty lists (the
  selectors say `<> '[]'` with `?|`), so that the usual empty list costs them nothing.
"""

from django.db import migrations, models

# The GIN indexes of migration 0002 (PostgreSQL only): which rows each holds, before and after.
BEFORE = {
    "insight_open_brands": "annotation IS NULL",
    "insight_open_countries": "annotation IS NULL",
}
AFTER = {
    "insight_open_brands": "annotation IS NULL AND brands <> '[]'::jsonb",
    "insight_open_countries": "annotation IS NULL AND countries <> '[]'::jsonb",
}


def _recreate(schema_editor, conditions: dict[str, str]) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, condition in conditions.items():
        column = name.removeprefix("insight_open_")
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
        schema_editor.execute(
            f"CREATE INDEX {name} ON annotations_insight USING gin ({column}) WHERE {condition}"
        )


def forwards(apps, schema_editor):
    _recreate(schema_editor, AFTER)


def backwards(apps, schema_editor):
    _recreate(schema_editor, BEFORE)


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0002_question_indexes"),
        ("images", "0003_anonymize"),
    ]

    operations = [
        migrations.AlterField(
            model_name="insight",
            name="client",
            field=models.ForeignKey(
                db_index=False,
                on_delete=models.deletion.CASCADE,
                related_name="insights",
                to="images.client",
            ),
        ),
        migrations.AlterField(
            model_name="insight",
            name="image",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=models.deletion.CASCADE,
                related_name="insights",
                to="images.image",
            ),
        ),
        migrations.AddIndex(
            model_name="insight",
            index=models.Index(
                condition=models.Q(("image__isnull", False)),
                fields=["image"],
                name="insight_image",
            ),
        ),
        migrations.RemoveIndex(model_name="insight", name="insight_open_confidence"),
        migrations.RemoveIndex(model_name="insight", name="annotations_client__e30fdf_idx"),
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
