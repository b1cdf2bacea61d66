"""seed_demo: realistic, valid, audited demo data that can be seeded again safely."""

import datetime as dt
import json
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Count
from django.utils import timezone

from cim.audit import SYSTEM_USERNAME, system_reason
from compliance import roles
from customers import demo, normalization
from customers.models import (
    Customer,
    EmailAddress,
    Interaction,
    OrganizationContact,
    PhoneNumber,
    PostalAddress,
    SourceIdentifier,
)

SUMMARY_KEYS = {
    "customers_created",
    "customers_existing",
    "emails",
    "phones",
    "addresses",
    "interactions",
    "users_created",
    "seconds",
}
DEMO_USERNAMES = ("staff", "support", "steward", "officer", "officer2", "auditor", "admin")
HISTORY_MODELS = (
    Customer,
    EmailAddress,
    PhoneNumber,
    PostalAddress,
    SourceIdentifier,
    OrganizationContact,
    Interaction,
)


def seed(*args: str) -> dict:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.fixture
def debug_on(settings):
    settings.DEBUG = True


@pytest.mark.django_db
def test_seeding_stores_only_values_that_normalisation_leaves_unchanged(debug_on):
    summary = seed("--customers", "60")

    assert summary.keys() >= SUMMARY_KEYS
    assert summary["customers_created"] == 60
    assert summary["customers_existing"] == 0
    assert Customer.objects.count() == 60
    assert summary["emails"] == EmailAddress.objects.count() > 60
    assert summary["phones"] == PhoneNumber.objects.count() >= 60
    assert summary["addresses"] == PostalAddress.objects.count() >= 60
    assert summary["interactions"] == Interaction.objects.count() > 60
    for email in EmailAddress.objects.all():
        assert normalization.normalize_email(email.email) == email.email
    for phone in PhoneNumber.objects.select_related("customer"):
        assert normalization.normalize_phone(phone.number, phone.customer.country.code) == (
            phone.number
        )
    for customer in Customer.objects.all():
        country = customer.country.code
        assert country in demo.COUNTRY_BY_CODE
        assert customer.preferred_language in dict(django_settings.LANGUAGES)
        assert customer.display_name == customer.compose_display_name() != ""
        assert normalization.normalize_national_id(customer.national_id, country) == (
            customer.national_id
        )
        assert normalization.normalize_tax_id(customer.tax_id, country) == customer.tax_id
    assert Customer.objects.exclude(national_id="").exists()
    assert Customer.objects.exclude(tax_id="").exists()


@pytest.mark.django_db
def test_every_kind_of_contact_point_has_exactly_one_primary_per_customer(debug_on):
    seed("--customers", "60")

    for model in (EmailAddress, PhoneNumber, PostalAddress):
        primaries = model.objects.filter(is_primary=True).values("customer").annotate(n=Count("id"))
        assert {row["n"] for row in primaries} == {1}
        assert primaries.count() == Customer.objects.count()
    assert Customer.objects.annotate(n=Count("emails")).filter(n__gt=1).exists()


@pytest.mark.django_db
def test_every_seeded_row_has_one_creation_history_row_by_the_system_job(debug_on):
    seed("--customers", "60")

    for model in HISTORY_MODELS:
        history = model.history.all()
        assert history.count() == model.objects.count() > 0, model.__name__
        assert set(history.values_list("history_type", flat=True)) == {"+"}
        assert set(history.values_list("history_user__username", flat=True)) == {SYSTEM_USERNAME}
        assert set(history.values_list("history_change_reason", flat=True)) == {
            system_reason("seed_demo")
        }
        assert set(history.values_list("id", flat=True)) == set(
            model.objects.values_list("id", flat=True)
        )
    customer = Customer.objects.order_by("id").first()
    record = customer.history.get()
    assert record.history_change_reason == "system: seed_demo"
    assert record.display_name == customer.display_name


@pytest.mark.django_db
def test_seeding_again_creates_nothing_and_a_larger_run_only_the_missing(debug_on):
    seed("--customers", "40")
    counts = {model: model.objects.count() for model in HISTORY_MODELS}

    again = seed("--customers", "40")

    assert again["customers_created"] == 0
    assert again["customers_existing"] == 40
    assert again["interactions"] == 0
    assert again["users_created"] == 0
    for model, count in counts.items():
        assert model.objects.count() == count
        assert model.history.count() == count

    larger = seed("--customers", "60")

    assert larger["customers_created"] == 20
    assert larger["customers_existing"] == 40
    external_ids = SourceIdentifier.objects.filter(source=demo.DEMO_SOURCE).values_list(
        "external_id", flat=True
    )
    assert sorted(external_ids) == [demo.demo_external_id(i) for i in range(1, 61)]
    assert Customer.history.count() == Customer.objects.count() == 60


def test_the_same_seed_gives_the_same_customers_and_another_seed_others():
    now = timezone.now()
    first = demo.DemoGenerator(seed=42, now=now)
    again = demo.DemoGenerator(seed=42, now=now)
    other = demo.DemoGenerator(seed=43, now=now)

    def names(generator):
        return [
            (p.first_name, p.last_name, p.organization_name, p.emails, p.phones, p.national_id)
            for p in map(generator.profile, range(1, 41))
        ]

    assert names(first) == names(again)
    assert names(first) != names(other)


@pytest.mark.django_db
def test_demo_has_near_duplicates_households_organisations_and_restricted_customers(debug_on):
    summary = seed("--customers", "60")

    assert summary["near_duplicates"] >= 2
    assert summary["household_members"] >= 2
    assert summary["restricted"] == Customer.objects.filter(restricted=True).count() >= 2
    # A near-duplicate carries a second, legacy source id and shares the phone of
    # the record it duplicates.
    legacy = SourceIdentifier.objects.filter(source=demo.LEGACY_SOURCE).select_related("customer")
    assert legacy.count() == summary["near_duplicates"]
    for identifier in legacy:
        duplicate = identifier.customer
        assert duplicate.source_identifiers.filter(source=demo.DEMO_SOURCE).exists()
        shared = PhoneNumber.objects.filter(number=duplicate.phones.get(is_primary=True).number)
        assert shared.values("customer").distinct().count() == 2
    # Households: different people sharing a surname and a home address.
    homes = (
        PostalAddress.objects.filter(is_primary=True, customer__kind=Customer.Kind.PERSON)
        .values("street", "postcode", "customer__last_name")
        .annotate(people=Count("customer", distinct=True))
        .filter(people__gt=1)
    )
    assert homes.exists()
    contacts = OrganizationContact.objects.select_related("organization", "person")
    assert contacts.exists()
    for link in contacts:
        assert link.organization.kind == Customer.Kind.ORGANIZATION
        assert link.person.kind == Customer.Kind.PERSON
        assert link.role
    assert Interaction.objects.filter(kind=Interaction.Kind.PURCHASE, amount__gt=0).exists()
    for interaction in Interaction.objects.exclude(amount=None)[:50]:
        assert (
            interaction.currency == demo.COUNTRY_BY_CODE[interaction.customer.country.code].currency
        )
        assert interaction.reference.startswith(("INV-", "ORD-"))
    oldest = Interaction.objects.order_by("occurred_at").first().occurred_at
    assert timezone.now() - oldest < dt.timedelta(days=3 * 365 + 1)


@pytest.mark.django_db
def test_demo_users_exist_in_their_roles_when_debug_is_on(debug_on):
    summary = seed("--customers", "60")

    assert summary["users_created"] == len(DEMO_USERNAMES)
    users = {u.username: u for u in get_user_model().objects.filter(username__in=DEMO_USERNAMES)}
    assert set(users) == set(DEMO_USERNAMES)
    expected = {username: role for username, role, *_ in demo.DEMO_USERS}
    for username, user in users.items():
        assert list(user.groups.values_list("name", flat=True)) == [expected[username]]
        assert user.check_password(django_settings.CIM_DEMO_PASSWORD)
        assert not user.is_superuser
    assert expected["officer"] == expected["officer2"] == roles.COMPLIANCE_OFFICER
    assert users["admin"].is_staff
    assert not users["staff"].is_staff
    # The officer was granted a couple of restricted customers; officer2 none.
    restricted = list(Customer.objects.filter(restricted=True))
    granted = [c for c in restricted if users["officer"].has_perm("customers.view_customer", c)]
    assert len(granted) == demo.OFFICER_RESTRICTED_GRANTS
    assert not any(users["officer2"].has_perm("customers.view_customer", c) for c in restricted)

    assert seed("--customers", "60")["users_created"] == 0


@pytest.mark.django_db
def test_no_demo_users_when_debug_is_off(settings):
    settings.DEBUG = False

    summary = seed("--customers", "10")

    assert summary["users_created"] == 0
    assert "skipped" in summary["demo_users"]
    assert not get_user_model().objects.filter(username__in=DEMO_USERNAMES).exists()
    assert Customer.objects.count() == 10


def test_every_country_generates_valid_identifiers_phones_and_emails():
    """Beyond the few countries a small seed reaches: many profiles, no database."""
    generator = demo.DemoGenerator(seed=42, now=timezone.now())
    seen = set()
    for index in range(1, 1500):
        profile = generator.profile(index)
        country = profile.country.code
        seen.add(country)
        assert profile.language in dict(django_settings.LANGUAGES)
        assert normalization.normalize_national_id(profile.national_id, country) == (
            profile.national_id
        )
        assert normalization.normalize_tax_id(profile.tax_id, country) == profile.tax_id
        for number, _ in profile.phones:
            assert normalization.normalize_phone(number, country) == number
        for email, _ in profile.emails:
            assert normalization.normalize_email(email) == email
    assert seen == set(demo.COUNTRY_BY_CODE)


@pytest.mark.django_db
def test_seeding_queues_a_full_duplicate_scan_for_the_review_queue(debug_on):
    from duplicates.models import DuplicateScan

    summary = seed("--customers", "40")
    scan = DuplicateScan.objects.get()
    assert summary["duplicate_scan"] == scan.pk
    assert (scan.kind, scan.status, scan.requested_by) == ("full", "queued", None)
    assert "duplicate_scan" not in seed("--customers", "40")  # nothing new, no scan
