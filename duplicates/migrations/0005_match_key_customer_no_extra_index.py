import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """MatchKey's customer column had two identical b-trees (the foreign key's own
    and match_key_customer_idx); a full scan rebuilds each, so one goes."""

    dependencies = [
        ("customers", "0003_import_jobs"),
        ("duplicates", "0004_merge_requests"),
    ]

    operations = [
        migrations.AlterField(
            model_name="matchkey",
            name="customer",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="customers.customer",
            ),
        ),
    ]
