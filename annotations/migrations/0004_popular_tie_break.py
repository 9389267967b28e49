"""The popularity indexes end with id, the routes' tie-breaker.

Without it a page of /questions/popular sorted the whole tie group: with every unique_scans_n 0,
as in most imports, the tenant's every open insight (0.8 s a request at 1M insights; 7 ms with
it). The price is paid on import: entries that were one deduplicated posting list per tie now go
to random places, ~15 µs of PostgreSQL CPU per new insight at 1M rows (46 → 61 µs). The
confidence indexes stay without id: a confidence's ties are few, and an incremental sort of them
is cheap.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0003_fewer_insight_indexes"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="insight", name="insight_open_popular"),
        migrations.AddIndex(
            model_name="insight",
            index=models.Index(
                condition=models.Q(("annotation__isnull", True)),
                fields=["client", "-unique_scans_n", "id"],
                name="insight_open_popular",
            ),
        ),
        migrations.RemoveIndex(model_name="insight", name="insight_open_popular_all"),
        migrations.AddIndex(
            model_name="insight",
            index=models.Index(
                condition=models.Q(("annotation__isnull", True)),
                fields=["-unique_scans_n", "id"],
                name="insight_open_popular_all",
            ),
        ),
    ]
