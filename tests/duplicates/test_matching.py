"""The matching engine on hand-made pairs: what it must call a duplicate and what not."""

import datetime

import pytest

from duplicates.matching import DEFAULT_THRESHOLD, explanation, likely_matches
from duplicates.matching.compare import NAMES, compare, dob_close
from duplicates.matching.engine import DEFAULT_MODEL, pair_score
from duplicates.matching.model import em_learn
from duplicates.matching.normalize import (
    email_normal,
    given_name_canonical,
    name_fold,
    record_from_data,
    street_normal,
)
from duplicates.scanning import match_keys_refresh
from tests import factories

JOHN = {
    "first_name": "William",
    "last_name": "Thompson",
    "date_of_birth": "1979-03-14",
    "email": "william.thompson@gmail.com",
    "phone": "+447700900123",
    "street": "12 High Street",
    "postcode": "SW1A 1AA",
    "city": "London",
}


def score(a: dict, b: dict, model=DEFAULT_MODEL) -> float:
    result = pair_score(model, record_from_data(a), record_from_data(b, customer_id=2))
    return result[0] if result else 0.0


def test_normalisation_folds_names_nicknames_emails_and_streets():
    assert name_fold("Ørsted-Núñez") == "orsted nunez"
    assert given_name_canonical("bill") == given_name_canonical("william") == "william"
    assert given_name_canonical("peggy") == "margaret"
    assert email_normal("Will.Thompson+shop@GoogleMail.com") == "willthompson@gmail.com"
    assert street_normal("12 High St.") == street_normal("12 high street") == ("12", "high street")
    assert street_normal("Hauptstr. 5") == ("5", "haupt strasse")


def test_birth_dates_close_by_typo_transposition_or_day_month_swap():
    assert dob_close("1979-03-14", "1979-03-15")
    assert dob_close("1979-03-14", "1997-03-14")  # adjacent digits transposed
    assert dob_close("1979-03-04", "1979-04-03")  # day and month swapped
    assert dob_close("1979-03-04", "1979-04-02")  # swapped, and a digit mistyped
    assert dob_close("1979-12-31", "1980-01-01")  # one day apart over New Year
    assert not dob_close("1979-03-14", "1985-07-02")
    assert not dob_close("1979-03-04", "1979-05-02")


def test_given_names_close_by_short_form_or_one_letter():
    def level(a: str, b: str) -> str:
        x = record_from_data({**JOHN, "first_name": a})
        y = record_from_data({**JOHN, "first_name": b}, customer_id=2)
        return dict(zip(NAMES, explanation(DEFAULT_MODEL, x, y, compare(x, y)), strict=True))[
            "first_name_birth_date"
        ]["level"]

    assert level("Samantha", "Sam") == "fuzzy"  # cut short, not in the nickname table
    assert level("Ivan", "Iwan") == "fuzzy"  # one letter mistyped
    assert level("Samantha", "Sa") == "disagreed"  # too short to tell
    assert level("Eva", "Ida") == "disagreed"


@pytest.mark.parametrize(
    "change",
    [
        {"last_name": "Thomspon"},  # transposed letters
        {"first_name": "Wiliam", "email": ""},  # typo, e-mail missing
        {"first_name": "Bill"},  # nickname
        {"first_name": "Thompson", "last_name": "William"},  # swapped names
        {"phone": "+447700900123", "email": "W.Thompson@gmail.com", "street": "12 High St"},
        {"date_of_birth": "1979-03-15", "phone": ""},  # birth date one digit off
    ],
)
def test_corrupted_copies_are_matches(change):
    other = {**JOHN, **change}
    assert score(JOHN, other) >= DEFAULT_THRESHOLD


def test_same_name_with_different_birth_date_and_email_is_not_a_match():
    other = {
        **JOHN,
        "date_of_birth": "1991-08-30",
        "email": "wt1991@yahoo.com",
        "phone": "",
        "street": "3 Park Lane",
        "postcode": "M1 1AE",
    }
    assert score(JOHN, other) < DEFAULT_THRESHOLD


def test_household_members_are_not_matches():
    spouse = {
        **JOHN,
        "first_name": "Margaret",
        "date_of_birth": "1981-11-02",
        "email": "thompson.family@gmail.com",
    }
    child = {
        **JOHN,
        "first_name": "Oliver",
        "date_of_birth": "2010-06-21",
        "email": "thompson.family@gmail.com",
    }
    assert score(JOHN, spouse) < DEFAULT_THRESHOLD
    assert score(spouse, child) < DEFAULT_THRESHOLD


def test_a_person_is_never_matched_with_an_organisation():
    company = {
        "kind": "organization",
        "organization_name": "William Thompson",
        "email": JOHN["email"],
    }
    assert compare(record_from_data(JOHN), record_from_data(company, customer_id=2)) is None


def test_explanation_names_each_comparison_with_level_weight_and_masked_id():
    a = record_from_data({**JOHN, "national_id": "AB123456C"})
    b = record_from_data({**JOHN, "first_name": "Bill", "national_id": "AB123456C"}, customer_id=2)
    _, _, pattern = pair_score(DEFAULT_MODEL, a, b)
    rows = {row["comparison"]: row for row in explanation(DEFAULT_MODEL, a, b, pattern)}
    # The nickname is resolved before comparing, so the first names agree.
    assert rows["first_name_birth_date"]["level"] == "agreed"
    assert rows["first_name_birth_date"]["b"] == "Bill · 1979-03-14"
    assert rows["email"]["level"] == "agreed" and rows["email"]["weight"] > 0
    assert rows["national_id"]["a"] == "••••••56C"
    assert {row["level"] for row in rows.values()} <= {"agreed", "fuzzy", "disagreed", "missing"}


def test_em_learns_duplicates_apart_from_households():
    """EM on unlabelled patterns: duplicates (first name and birth date agree),
    households (they differ, surname and address agree) and strangers."""
    from collections import Counter

    patterns = Counter(
        {
            (0, 0, 0, 0, 0, -1): 300,
            (1, 0, -1, 0, 0, -1): 100,
            (0, 1, 0, -1, 1, -1): 80,
            (0, 0, 2, 2, 2, -1): 30,
            (7, 0, 0, 0, 0, -1): 250,
            (7, 0, 2, 0, 0, -1): 250,
            (4, 0, 2, 2, 0, -1): 20,
            (5, 0, 2, 0, 0, -1): 40,
            (7, 2, 2, 2, 1, -1): 900,
            (4, 2, 2, 2, 2, -1): 300,
            (7, 1, 2, 2, 2, -1): 200,
        }
    )
    model = em_learn(patterns, threshold=DEFAULT_THRESHOLD)
    assert model.score((0, 0, 0, 0, 0, -1))[0] > 0.99
    assert model.score((7, 0, 0, 0, 0, -1))[0] < 0.01  # a household member
    assert model.score((7, 2, 2, 2, 1, -1))[0] < 0.01
    assert model.weights[0][0] > 0 > model.weights[0][7]


@pytest.mark.django_db
def test_likely_matches_finds_a_visible_block_mate_and_skips_merged_and_restricted(staff):
    match = factories.PersonFactory(
        first_name="William", last_name="Thompson", date_of_birth=datetime.date(1979, 3, 14)
    )
    factories.EmailFactory(customer=match, email="william.thompson@gmail.com")
    hidden = factories.PersonFactory(
        first_name="William",
        last_name="Thompson",
        date_of_birth=datetime.date(1979, 3, 14),
        restricted=True,
    )
    merged = factories.PersonFactory(
        first_name="William",
        last_name="Thompson",
        date_of_birth=datetime.date(1979, 3, 14),
        status="merged",
    )
    match_keys_refresh(customer_ids=[match.pk, hidden.pk, merged.pk])

    found = likely_matches(user=staff, data={**JOHN, "first_name": "Bill"})

    assert [m.customer for m in found] == [match]
    assert found[0].score >= DEFAULT_THRESHOLD
    assert any(row["comparison"] == "email" for row in found[0].explanation)
    assert likely_matches(user=staff, data=JOHN, exclude_id=match.pk) == []


@pytest.mark.django_db
def test_likely_matches_for_rows_batches_a_preview_chunk(staff, django_assert_max_num_queries):
    customer = factories.PersonFactory(
        first_name="Margaret", last_name="Okafor", date_of_birth=datetime.date(1990, 1, 2)
    )
    match_keys_refresh(customer_ids=[customer.pk])
    from duplicates.matching import likely_duplicates_in_rows

    rows = [
        {"first_name": "Peggy", "last_name": "Okafor", "date_of_birth": "1990-01-02"},
        {"first_name": "Zed", "last_name": "Nobody", "date_of_birth": "2001-01-01"},
    ] * 20
    with django_assert_max_num_queries(8):
        count, described = likely_duplicates_in_rows(user=staff, rows=rows, described=3)
    # Every Peggy is counted; the first three are described, for the preview.
    assert count == 20
    assert sorted(described) == [0, 2, 4]
    assert described[0].customer == customer
    assert any(part["comparison"] == "last_name" for part in described[0].explanation)


@pytest.mark.django_db
def test_a_preview_chunk_finds_for_each_row_what_a_check_of_that_row_finds(monkeypatch, staff):
    from duplicates.matching import likely_duplicates_in_rows, lookup
    from duplicates.matching.blocking import lookup_blocks

    people = [
        ("Margaret", "Okafor", datetime.date(1990, 1, 2), "margaret.okafor@example.com"),
        ("Tomasz", "Nowak", datetime.date(1985, 6, 30), "t.nowak@example.pl"),
        ("Ingrid", "Larsen", datetime.date(1972, 11, 9), "ingrid.larsen@example.no"),
        ("Pedro", "Alves", datetime.date(2001, 3, 17), "pedro.alves@example.pt"),
    ]
    stored = []
    for first, last, born, email in people:
        customer = factories.PersonFactory(first_name=first, last_name=last, date_of_birth=born)
        factories.EmailFactory(customer=customer, email=email)
        stored.append(customer)
    match_keys_refresh(customer_ids=[c.pk for c in stored])
    rows = [
        {"first_name": first, "last_name": last, "date_of_birth": born.isoformat(), "email": email}
        for first, last, born, email in people
    ]

    def rows_read(row):
        blocks = lookup_blocks(record_from_data(row).keys)
        members = lookup.key_members({key for keys in blocks for key in keys})
        return sum(map(len, members.values()))

    # Each check alone reads all it needs; four under that one bound would not.
    monkeypatch.setattr(lookup, "LOOKUP_MAX_ROWS", max(map(rows_read, rows)))
    one_by_one = [likely_matches(user=staff, data=row, limit=1) for row in rows]
    assert [found[0].customer for found in one_by_one] == stored

    count, described = likely_duplicates_in_rows(user=staff, rows=rows, described=len(rows))

    assert count == len(rows)
    assert {index: match.customer for index, match in described.items()} == dict(enumerate(stored))


def test_phones_in_different_formats_match_once_normalised_to_e164():
    from customers.normalization import normalize_phone

    national = normalize_phone("020 7946 0958", "GB")
    international = normalize_phone("+44 (0)20-7946-0958", "GB")
    a = {**JOHN, "email": "", "phone": national, "date_of_birth": ""}
    b = {**JOHN, "email": "", "phone": international, "date_of_birth": "", "first_name": "Bill"}
    pattern = compare(record_from_data(a), record_from_data(b, customer_id=2))
    assert pattern[3] == 0  # phone agrees
    assert score(a, b) >= DEFAULT_THRESHOLD


# -- term frequencies -------------------------------------------------------------

TRAINING = {
    (0, 0, 0, 0, 0, -1): 300,
    (1, 0, -1, 0, 0, -1): 100,
    (0, 1, 0, -1, 1, -1): 80,
    (0, 0, 2, 2, 2, -1): 30,
    (0, 0, 0, 2, 2, -1): 30,
    (3, 0, 0, 0, 0, -1): 40,
    (7, 0, 0, 0, 0, -1): 250,
    (7, 0, 2, 0, 0, -1): 250,
    (4, 0, 2, 2, 0, -1): 20,
    (5, 0, 2, 0, 0, -1): 40,
    (7, 2, 2, 2, 1, -1): 900,
    (4, 2, 2, 2, 2, -1): 300,
    (7, 1, 2, 2, 2, -1): 200,
    (0, 2, 2, 2, 2, -1): 150,
    (1, 2, 2, 2, 2, -1): 60,
}


def tf_model():
    """A model learned by EM, with name frequencies as a full scan counts them:
    John and Smith common, most names rare."""
    from collections import Counter

    from duplicates.matching.model import Frequencies

    model = em_learn(Counter(TRAINING), threshold=DEFAULT_THRESHOLD)
    firsts = {
        "john": 400,
        "william": 40,
        "margaret": 30,
        "oliver": 30,
        "xavier": 1,
        **{f"given{i}": 5 for i in range(1800)},
    }
    lasts = {"smith": 300, "thompson": 20, "quennell": 1, **{f"family{i}": 4 for i in range(2500)}}
    model.frequencies = {
        "first": Frequencies.from_counts(firsts),
        "last": Frequencies.from_counts(lasts),
    }
    return model


STRANGER = {
    "email": "someone.else@example.org",
    "phone": "+447700900999",
    "street": "3 Park Lane",
    "postcode": "M1 1AE",
    "city": "Manchester",
}


def test_agreeing_on_common_names_counts_less_than_on_rare_ones():
    """The same pattern (first name, surname and birth date agree, nothing else):
    two John Smiths born on one day may well be strangers, two Xavier Quennells not."""
    model = tf_model()
    common_a = {**JOHN, "first_name": "John", "last_name": "Smith"}
    rare_a = {**JOHN, "first_name": "Xavier", "last_name": "Quennell"}
    common_b, rare_b = {**common_a, **STRANGER}, {**rare_a, **STRANGER}
    common = pair_score(
        model, record_from_data(common_a), record_from_data(common_b, customer_id=2)
    )
    rare = pair_score(model, record_from_data(rare_a), record_from_data(rare_b, customer_id=2))
    assert common[2] == rare[2] == (0, 0, 2, 2, 2, -1)
    assert common[0] < rare[0] and common[1] < rare[1]
    assert common[0] < DEFAULT_THRESHOLD <= rare[0]
    # Without frequencies the pattern alone decides.
    model.frequencies = None
    assert model.score(common[2])[0] == model.score(rare[2])[0]


def test_name_frequencies_survive_the_model_json():
    from duplicates.matching.model import MatchModel

    model = tf_model()
    again = MatchModel.from_json(model.as_json())
    a = record_from_data({**JOHN, "first_name": "John", "last_name": "Smith"})
    b = record_from_data(
        {**JOHN, "first_name": "John", "last_name": "Smith", **STRANGER}, customer_id=2
    )
    assert pair_score(again, a, b)[:2] == pytest.approx(pair_score(model, a, b)[:2])
    rows = {row["comparison"]: row for row in explanation(model, a, b, pair_score(model, a, b)[2])}
    assert "customers share it" in rows["last_name"]["label"]
    assert rows["last_name"]["weight"] < model.weights[1][0]


@pytest.mark.parametrize(
    "change",
    [
        {"last_name": "Thomspon"},  # transposed letters
        {"first_name": "Wiliam", "email": ""},  # typo, e-mail missing
        {"first_name": "Bill"},  # nickname
        {"first_name": "Thompson", "last_name": "William"},  # swapped names
        {"phone": "+447700900123", "email": "W.Thompson@gmail.com", "street": "12 High St"},
        {"date_of_birth": "1979-03-15", "phone": ""},  # birth date one digit off
    ],
)
def test_corrupted_copies_still_match_with_term_frequencies(change):
    assert score(JOHN, {**JOHN, **change}, tf_model()) >= DEFAULT_THRESHOLD


def test_same_name_different_birth_date_and_households_still_apart_with_term_frequencies():
    model = tf_model()
    other = {
        **JOHN,
        "date_of_birth": "1991-08-30",
        "email": "wt1991@yahoo.com",
        "phone": "",
        "street": "3 Park Lane",
        "postcode": "M1 1AE",
    }
    assert score(JOHN, other, model) < DEFAULT_THRESHOLD
    spouse = {
        **JOHN,
        "first_name": "Margaret",
        "date_of_birth": "1981-11-02",
        "email": "thompson.family@gmail.com",
    }
    child = {
        **JOHN,
        "first_name": "Oliver",
        "date_of_birth": "2010-06-21",
        "email": "thompson.family@gmail.com",
    }
    assert score(JOHN, spouse, model) < DEFAULT_THRESHOLD
    assert score(spouse, child, model) < DEFAULT_THRESHOLD


def test_phone_formats_still_match_with_term_frequencies():
    from customers.normalization import normalize_phone

    a = {**JOHN, "email": "", "phone": normalize_phone("020 7946 0958", "GB"), "date_of_birth": ""}
    b = {**a, "phone": normalize_phone("+44 (0)20-7946-0958", "GB"), "first_name": "Bill"}
    assert score(a, b, tf_model()) >= DEFAULT_THRESHOLD


@pytest.mark.django_db
def test_name_frequencies_are_counted_from_the_profiles():
    from duplicates.matching.engine import learn_model, name_frequencies

    people = [("Bill", "Smith"), ("William", "Smith"), ("Mary Ann", "Smith"), ("Mary", "Jones")]
    customers = [factories.PersonFactory(first_name=f, last_name=last) for f, last in people]
    customers.append(factories.OrganizationFactory(organization_name="Smith Ltd"))
    match_keys_refresh(customer_ids=[c.pk for c in customers])

    frequencies = name_frequencies()
    assert frequencies["first"].counts == {"william": 2, "mary": 2}  # nickname resolved
    assert frequencies["last"].counts == {"smith": 3, "jones": 1}  # people only
    assert frequencies["last"].share("smith") == 0.75
    # Pairs of two people: 2 of 12 share both names, 4 the first, 6 the surname.
    assert frequencies["first"].squares == pytest.approx(4 / 12)
    assert frequencies["last"].with_first == pytest.approx((2 / 12) / (4 / 12 * 6 / 12))
    from collections import Counter

    model = learn_model(Counter(TRAINING), threshold=DEFAULT_THRESHOLD)
    assert model.as_json()["frequencies"]["last"]["counts"] == {"smith": 3, "jones": 1}


def test_an_email_or_phone_shared_by_very_many_customers_is_no_evidence():
    from duplicates.matching.compare import MISSING, Common

    a = record_from_data(JOHN)
    b = record_from_data(
        {**JOHN, "first_name": "Oliver", "date_of_birth": "2010-06-21"}, customer_id=2
    )
    common = Common.from_keys(
        [*(f"e:{e}" for e in a.emails), *(f"p:{p}" for p in a.phones), "n:unrelated"]
    )
    email, phone = NAMES.index("email"), NAMES.index("phone")
    assert compare(a, b)[email] == 0 and compare(a, b)[phone] == 0
    assert compare(a, b, common)[email] == MISSING and compare(a, b, common)[phone] == MISSING
    rows = {
        row["comparison"]: row for row in explanation(DEFAULT_MODEL, a, b, compare(a, b, common))
    }
    assert rows["email"]["label"] == "shared by very many customers: no evidence either way"
    assert rows["email"]["weight"] == 0


def test_em_learns_namesakes_who_share_a_surname_and_nothing_else():
    from collections import Counter

    from duplicates.matching.model import FLOOR, NAMESAKES, PERSON

    namesakes_seen = {(4, 0, 2, 2, 2, -1): 200, (4, 0, -1, 2, 2, -1): 100, (5, 0, 2, 2, 2, -1): 60}
    model = em_learn(Counter({**TRAINING, **namesakes_seen}), threshold=DEFAULT_THRESHOLD)
    namesakes = model.classes[NAMESAKES]["probs"]
    # They share a surname, never a contact point or an id, nor first name and birth date.
    assert namesakes[1][0] > 0.5
    assert all(namesakes[c][0] <= 2 * FLOOR for c in (2, 3, 4))  # e-mail, phone, address
    assert all(namesakes[PERSON][level] <= 2 * FLOOR for level in (0, 1, 2))
    assert model.score((4, 0, 2, 2, 2, -1))[0] < DEFAULT_THRESHOLD


def test_the_same_house_number_on_another_street_of_the_postcode_is_not_the_same_home():
    a = record_from_data(JOHN)
    address = NAMES.index("address")
    same_home = record_from_data({**JOHN, "street": "12 High St"}, customer_id=2)
    next_street = record_from_data({**JOHN, "street": "12 Mill Road"}, customer_id=3)
    assert compare(a, same_home)[address] == 0
    assert compare(a, next_street)[address] == 1  # the same postcode only
