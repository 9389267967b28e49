"""Insights record the import run that created them, so that a run tells its own rows from older
ones without keeping their ids aside (a nullable column: no table rewrite)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0006_no_cross_tenant_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="insight",
            name="import_run",
            field=models.UUIDField(blank=True, editable=False, null=True),
        ),
    ]
