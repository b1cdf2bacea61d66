"""PostgreSQL only: the trigram index on search_name goes.

Typos are now found through the dictionary of words (SearchWord), a few tens of
thousands of rows, instead of a trigram index over every customer's name, which
each imported customer cost a dozen GIN entries (measured on a million-row
import: about 6.6 us of PostgreSQL's time a row). The pg_trgm extension stays:
dropping an extension is the database owner's call, and 0002 may be re-run.
"""

from django.db import migrations


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS customer_search_name_trgm")


def restore_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS customer_search_name_trgm "
            "ON customers_customer USING gin (search_name gin_trgm_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [("customers", "0010_search_words")]

    operations = [migrations.RunPython(drop_index, restore_index)]
