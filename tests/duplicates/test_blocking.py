"""Blocking: who is compared with whom, and never anyone else."""

import datetime
from unittest import mock

import pytest

from duplicates.matching.blocking import (
    MAX_BLOCK,
    WINDOW,
    block_pairs,
    blocked_together,
    key_bucket,
    record_keys,
)
from duplicates.matching.normalize import record_from_data
from duplicates.models import DuplicateScan, MatchKey
from duplicates.scanning import duplicate_scan_run
from tests import factories

ANNA = {
    "first_name": "Anna",
    "last_name": "Kowalski",
    "date_of_birth": "1988-05-06",
    "email": "anna.k@example.com",
    "postcode": "00-950",
}


def keys(data: dict) -> set[str]:
    return set(record_keys(record_from_data(data)))


def test_corrupted_copies_keep_a_shared_key():
    assert keys(ANNA) & keys(
        {**ANNA, "first_name": "Kowalski", "last_name": "Anna", "email": ""}
    )  # swapped
    assert keys(ANNA) & keys({**ANNA, "last_name": "Nowak", "email": ""})  # married
    assert keys(ANNA) & keys(
        {**ANNA, "first_name": "Hanna", "date_of_birth": "", "postcode": ""}
    )  # same e-mail
    assert keys({"first_name": "Bill", "last_name": "Smith", "date_of_birth": "1970-01-02"}) & (
        keys({"first_name": "Smith", "last_name": "Bill", "date_of_birth": "1970-01-02"})
    )


def test_strangers_share_no_key():
    assert not keys(ANNA) & keys(
        {
            "first_name": "Oskar",
            "last_name": "Brandt",
            "date_of_birth": "1950-02-03",
            "email": "ob@example.org",
        }
    )


def test_a_record_without_birth_date_meets_its_name_of_any_year():
    # Lost the birth date, moved, no e-mail: no key in common with the original.
    undated = {"first_name": "Anna", "last_name": "Kowalski", "postcode": "31-001"}
    assert not keys(ANNA) & keys(undated)
    assert blocked_together(keys(ANNA), keys(undated))
    assert blocked_together(keys(undated), keys({**ANNA, "date_of_birth": "1950-01-01"}))
    # Its name's keys of every year share one bucket, so one scan chunk holds them.
    name_keys = [k for k in keys(ANNA) | keys(undated) if k.startswith("n:")]
    assert len(name_keys) == 2 and len({key_bucket(k) for k in name_keys}) == 1
    # Dated records of one name born in other years still do not meet by it,
    # nor does an undated record meet another name.
    assert not blocked_together(
        keys({**ANNA, "email": "", "postcode": ""}),
        keys({**ANNA, "date_of_birth": "1950-01-01", "email": "", "postcode": ""}),
    )
    assert not blocked_together(keys(ANNA), keys({**undated, "first_name": "Oskar"}))


def test_a_large_block_is_compared_by_window_not_all_pairs():
    members = [record_from_data(ANNA, customer_id=i) for i in range(1, 301)]
    pairs = list(block_pairs(members))
    assert len(pairs) <= 300 * WINDOW < 300 * 299 // 2
    assert all(a.id < b.id for a, b in pairs)
    small = members[:MAX_BLOCK]
    assert len(list(block_pairs(small))) == MAX_BLOCK * (MAX_BLOCK - 1) // 2


@pytest.mark.django_db
def test_a_scan_compares_only_customers_that_share_a_key():
    people = [
        factories.PersonFactory(first_name=first, last_name=last, date_of_birth=dob)
        for first, last, dob in [
            ("Anna", "Kowalski", datetime.date(1988, 5, 6)),
            ("Ana", "Kowalski", datetime.date(1988, 5, 6)),
            ("Anna", "Kowalska", datetime.date(1988, 5, 6)),
            ("Oskar", "Brandt", datetime.date(1950, 2, 3)),
            ("Oscar", "Brandt", datetime.date(1950, 2, 3)),
            ("Li", "Wei", datetime.date(2001, 9, 9)),
            ("Oskar", "Brandt", None),  # meets both Oskars by name alone
            ("Anna", "Kowalski", datetime.date(1961, 1, 2)),  # no undated Anna to meet
            ("Dora", "Quist", None),  # no one of that name
        ]
    ]
    compared = []
    from duplicates.matching import compare as compare_module

    real = compare_module.compare

    def spy(a, b, *common):
        compared.append((a.id, b.id))
        return real(a, b, *common)

    with mock.patch.object(compare_module, "compare", side_effect=spy):
        summary = duplicate_scan_run(DuplicateScan.objects.create(kind="full"))

    assert summary["status"] == "completed"
    keys_of = {}
    for customer_id, key in MatchKey.objects.values_list("customer_id", "key"):
        keys_of.setdefault(customer_id, set()).add(key)
    assert compared
    for a, b in compared:
        assert blocked_together(keys_of[a], keys_of[b]), f"#{a} and #{b} were compared"
    for lonely in (people[5].pk, people[7].pk, people[8].pk):
        assert all(lonely not in pair for pair in compared)
    undated_oskar, oskars = people[6].pk, {people[3].pk, people[4].pk}
    assert {b if a == undated_oskar else a for a, b in compared if undated_oskar in (a, b)} == (
        oskars
    )
    # Each pair is scored once, whatever the number of keys it shares (the
    # learning pass sees the same pairs once more).
    assert summary["pairs_compared"] == len(set(compared)) == len(compared) // 2


def test_the_home_key_tells_the_streets_of_one_postcode_apart():
    def home(street: str) -> set[str]:
        return {key for key in keys({**ANNA, "street": street}) if key.startswith("a:")}

    assert home("12 High Street") == home("12 High St.")  # the same home, written two ways
    assert home("12 High Street") != home("12 Mill Road")  # the same number, another street
    assert home("12 High Street") != home("14 High Street")
