"""Fewer index entries per imported customer.

A bulk import writes every index of the rows it inserts. These indexes were
duplicated by another one's prefix (the foreign keys of emails and phones by
their unique (customer, value) constraints, source by (source, external_id),
an import issue's job by import_issue_idx), served no query (LIKE indexes on
phone numbers and sources, the postcode index, history copies of number,
source and merged_into), or held mostly blanks: national_id and merged_into
are now indexed only where set, which every query on them implies.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('customers', '0004_search_token_one_customer_index'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='customer',
            name='customer_national_id_idx',
        ),
        migrations.RemoveIndex(
            model_name='postaladdress',
            name='address_postcode_idx',
        ),
        migrations.AlterField(
            model_name='customer',
            name='merged_into',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='merged_from', to='customers.customer'),
        ),
        migrations.AlterField(
            model_name='emailaddress',
            name='customer',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='emails', to='customers.customer'),
        ),
        migrations.AlterField(
            model_name='historicalcustomer',
            name='merged_into',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='customers.customer'),
        ),
        migrations.AlterField(
            model_name='historicalphonenumber',
            name='number',
            field=models.CharField(help_text='E.164, e.g. +442079460958', max_length=20),
        ),
        migrations.AlterField(
            model_name='historicalsourceidentifier',
            name='source',
            field=models.SlugField(db_index=False),
        ),
        migrations.AlterField(
            model_name='importrowissue',
            name='job',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='issues', to='customers.importjob'),
        ),
        migrations.AlterField(
            model_name='phonenumber',
            name='customer',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='phones', to='customers.customer'),
        ),
        migrations.AlterField(
            model_name='phonenumber',
            name='number',
            field=models.CharField(help_text='E.164, e.g. +442079460958', max_length=20),
        ),
        migrations.AlterField(
            model_name='sourceidentifier',
            name='source',
            field=models.SlugField(db_index=False),
        ),
        migrations.AddIndex(
            model_name='customer',
            index=models.Index(condition=models.Q(('national_id', ''), _negated=True), fields=['national_id'], name='customer_national_id_idx'),
        ),
        migrations.AddIndex(
            model_name='customer',
            index=models.Index(condition=models.Q(('merged_into__isnull', False)), fields=['merged_into'], name='customer_merged_into_idx'),
        ),
        migrations.AddIndex(
            model_name='phonenumber',
            index=models.Index(fields=['number'], name='phone_number_idx'),
        ),
    ]
