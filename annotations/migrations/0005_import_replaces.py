"""Import runs record the insights they replaced (deleted) and whether they were told not to
(keep_missing)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0004_popular_tie_break"),
    ]

    operations = [
        migrations.AddField(
            model_name="insightimport",
            name="deleted",
            field=models.PositiveIntegerField(
                default=0,
                help_text="Open insights of the file's (barcode, type) pairs it replaced.",
            ),
        ),
        migrations.AddField(
            model_name="insightimport",
            name="keep_missing",
            field=models.BooleanField(
                default=False,
                help_text="Keep the insights the file does not name, instead of replacing.",
            ),
        ),
    ]
