"""PostgreSQL only: the dictionary of words loses the LIKE twin that Django
adds to a text primary key (varchar_pattern_ops).

The word column compares by code point (COLLATE "C"), whose B-tree serves a
prefix LIKE already, and nothing looks words up by pattern: the twin only cost
each new word an index entry more. SQLite has no such index.
"""

from django.db import migrations

TABLE = "customers_searchword"
COLUMN = "word"


def _like_indexes(schema_editor) -> list[str]:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexname LIKE %s",
            [TABLE, f"{TABLE}_{COLUMN}_%_like"],
        )
        return [name for (name,) in cursor.fetchall()]


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in _like_indexes(schema_editor):
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


def restore(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql" or _like_indexes(schema_editor):
        return
    schema_editor.execute(
        f'CREATE INDEX "{TABLE}_{COLUMN}_7d3181ea_like" '
        f'ON "{TABLE}" ("{COLUMN}" varchar_pattern_ops)'
    )


class Migration(migrations.Migration):
    dependencies = [("customers", "0016_list_by_folded_name")]

    operations = [migrations.RunPython(drop, restore)]
