"""PostgreSQL only: pg_trgm and a trigram index for typo-tolerant name search.

Names are folded (accents, case, punctuation) in Python before they are stored
in search_name, so SQLite and PostgreSQL compare the same strings and no
unaccent() call, which PostgreSQL cannot index, is needed at query time.
"""

from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS customer_search_name_trgm "
    "ON customers_customer USING gin (search_name gin_trgm_ops)",
]
BACKWARD = ["DROP INDEX IF EXISTS customer_search_name_trgm"]


def run(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [("customers", "0001_initial")]

    operations = [migrations.RunPython(run(FORWARD), run(BACKWARD))]
