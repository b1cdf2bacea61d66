"""Search tokens keyed by (customer, token): no id column, no index of its own on
the customer.

Django does not migrate a table to a composite primary key, so the state
changes are declared and the table is rebuilt here: the old one is set aside,
the new one created as the model says (on PostgreSQL and SQLite alike), and the
tokens copied across, one per customer and word. Not reversible: the tokens are
a derived index, rebuilt from the customers' names by customers.search.
"""

import django.db.models.deletion
from django.db import migrations, models

TABLE = "customers_customersearchtoken"
SET_ASIDE = "customers_customersearchtoken_before_0008"


def rebuild(apps, schema_editor):
    token = apps.get_model("customers", "CustomerSearchToken")
    connection = schema_editor.connection
    quote = schema_editor.quote_name
    with connection.cursor() as cursor:
        # Index names are global to a schema: the old ones go before the new
        # table takes them (SQLite's primary key has none).
        for name, info in connection.introspection.get_constraints(cursor, TABLE).items():
            if info["primary_key"] and connection.vendor == "postgresql":
                schema_editor.execute(f"ALTER TABLE {quote(TABLE)} DROP CONSTRAINT {quote(name)}")
            elif info["index"] and not info["primary_key"] and not info["unique"]:
                schema_editor.execute(f"DROP INDEX {quote(name)}")
    schema_editor.execute(f"ALTER TABLE {quote(TABLE)} RENAME TO {quote(SET_ASIDE)}")
    schema_editor.create_model(token)
    schema_editor.execute(
        f"INSERT INTO {quote(TABLE)} (customer_id, token, phonetic) "  # noqa: S608
        f"SELECT customer_id, token, MIN(phonetic) FROM {quote(SET_ASIDE)} "
        "GROUP BY customer_id, token"
    )
    schema_editor.execute(f"DROP TABLE {quote(SET_ASIDE)}")


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0007_history_read_by_record"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="customersearchtoken", name="id"),
                migrations.AddField(
                    model_name="customersearchtoken",
                    name="pk",
                    field=models.CompositePrimaryKey(
                        "customer",
                        "token",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                migrations.AlterField(
                    model_name="customersearchtoken",
                    name="customer",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="customers.customer",
                    ),
                ),
            ],
        ),
        migrations.RunPython(rebuild),
    ]
