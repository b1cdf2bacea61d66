"""PostgreSQL only: the indexes that search looks e-mails and phone numbers up
by become hash indexes.

Their only use is equality (an address in any case, an E.164 number), which a
hash index serves with a 4-byte code an entry instead of the whole value: a
smaller index, cheaper to insert into when an import adds customers at random
places in it (measured on a million-row import: 5 us of PostgreSQL's time a row
for the two). SQLite has no hash indexes and keeps the B-trees the models
declare; the names stay, so that a later migration finds them either way.
"""

from django.db import migrations

INDEXES = [
    ("email_lower_idx", "customers_emailaddress", "(lower(email))"),
    ("phone_number_idx", "customers_phonenumber", "(number)"),
]


def rebuild_with(method):
    def rebuild(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for name, table, key in INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
            schema_editor.execute(f"CREATE INDEX {name} ON {table} USING {method} {key}")

    return rebuild


class Migration(migrations.Migration):
    dependencies = [("customers", "0012_record_history_unindexed")]

    operations = [migrations.RunPython(rebuild_with("hash"), rebuild_with("btree"))]
