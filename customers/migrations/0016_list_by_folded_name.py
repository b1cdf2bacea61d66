"""The customer list goes A to Z by the folded name (search_name), not by the
display name's code points: "Émile" among the Es, "o'Neil" among the Os.

The list's index moves from (display_name, id) to (search_name, id), so an
import still writes one name index per customer. search_name compares by code
point (COLLATE "C" on PostgreSQL), which is alphabetical once folded, and
display_name, indexed no more, takes the database's collation again.
"""

import cim.fields
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('customers', '0015_source_identifier_one_unique_index'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='customer',
            options={'ordering': ['search_name', 'id'], 'permissions': [('view_sensitive_identifiers', 'Can see unmasked national and tax identifiers'), ('merge_customer', 'Can merge and unmerge customers'), ('import_customers', 'Can bulk-import customers'), ('manage_customer_access', 'Can restrict customers and grant access to them')]},
        ),
        migrations.RemoveIndex(
            model_name='customer',
            name='customer_name_idx',
        ),
        migrations.AlterField(
            model_name='customer',
            name='display_name',
            field=models.CharField(editable=False, max_length=255),
        ),
        migrations.AlterField(
            model_name='customer',
            name='search_name',
            field=cim.fields.CodePointCharField(blank=True, editable=False, max_length=255),
        ),
        migrations.AlterField(
            model_name='historicalcustomer',
            name='display_name',
            field=models.CharField(editable=False, max_length=255),
        ),
        migrations.AlterField(
            model_name='historicalcustomer',
            name='search_name',
            field=cim.fields.CodePointCharField(blank=True, editable=False, max_length=255),
        ),
        migrations.AddIndex(
            model_name='customer',
            index=models.Index(fields=['search_name', 'id'], name='customer_name_idx'),
        ),
    ]
