"""Moving the phonetic keys from the tokens to a dictionary of words keeps
every stored customer findable by sound, and moves back on a rollback."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = ("customers", "0009_import_job_file_deleted_at")
AFTER = ("customers", "0010_search_words")
KEYS = {"john": "JN", "jane": "JN", "jon": "JN", "smith": "SMT", "smyth": "SMT"}


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return MigrationExecutor(connection).loader.project_state([target]).apps


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_phonetic_keys_move_to_the_words_and_back():
    try:
        apps = _migrate(BEFORE)
        Customer = apps.get_model("customers", "Customer")
        Token = apps.get_model("customers", "CustomerSearchToken")
        for first, last in (("John", "Smith"), ("Jane", "Smith"), ("Jon", "Smyth")):
            customer = Customer.objects.create(
                kind="person",
                first_name=first,
                last_name=last,
                display_name=f"{first} {last}",
                search_name=f"{first} {last}".lower(),
            )
            for word in (first.lower(), last.lower()):
                Token.objects.create(customer=customer, token=word, phonetic=KEYS[word])

        apps = _migrate(AFTER)
        SearchWord = apps.get_model("customers", "SearchWord")
        assert dict(SearchWord.objects.values_list("word", "phonetic")) == KEYS
        assert apps.get_model("customers", "CustomerSearchToken").objects.count() == 6

        apps = _migrate(BEFORE)
        Token = apps.get_model("customers", "CustomerSearchToken")
        assert set(Token.objects.values_list("token", "phonetic")) == set(KEYS.items())
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
