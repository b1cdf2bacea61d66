"""One index for a source identifier's two lookups.

The unique (source, external_id) index and the index on external_id alone
become one unique (external_id, source) index: lookups by the pair (imports,
invoices, consents) and by the id alone (search) both use its leading column,
and each identifier an import writes costs one B-tree insert fewer. Nothing
looks identifiers up by source alone but the demo seeder and the bench, which
read them once. In one transaction on PostgreSQL, so the pair is never
without its unique index.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('customers', '0014_code_point_collation'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='sourceidentifier',
            name='source_external_id_unique',
        ),
        migrations.RemoveIndex(
            model_name='sourceidentifier',
            name='source_external_id_idx',
        ),
        migrations.AddConstraint(
            model_name='sourceidentifier',
            constraint=models.UniqueConstraint(fields=('external_id', 'source'), name='source_external_id_unique'),
        ),
    ]
