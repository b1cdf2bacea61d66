"""The six roles exist with their permissions, and conflicting roles are refused
wherever groups are assigned."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from compliance import roles
from customers.models import EmailAddress, Interaction, PhoneNumber, SensitiveDataAccess
from tests import factories
from tests.conftest import make_persona

pytestmark = pytest.mark.django_db


def test_the_migration_creates_every_role_with_exactly_its_permissions():
    for role in roles.ROLES:
        group = Group.objects.get(name=role)
        granted = {
            f"{p.content_type.app_label}.{p.codename}"
            for p in group.permissions.select_related("content_type")
        }
        assert granted == set(roles.ROLE_PERMISSIONS[role]), role


@pytest.mark.parametrize(
    ("username", "status"),
    [
        ("staff", 200),
        ("support", 200),
        ("steward", 200),
        ("officer", 200),
        ("auditor", 200),
        ("admin", 200),
    ],
)
def test_every_role_browses_customers(username, status, persona, client_for, customer):
    client = client_for(persona(username))
    assert client.get("/customers/").status_code == status
    assert client.get(f"/customers/{customer.pk}/").status_code == status


def test_a_user_without_a_role_sees_no_customers(client_for, customer):
    nobody = get_user_model().objects.create_user("nobody", password="x" * 12)
    client = client_for(nobody)
    assert client.get("/customers/").status_code == 403
    assert client.get(f"/customers/{customer.pk}/").status_code == 404


@pytest.mark.parametrize("username", ["staff", "officer", "auditor"])
def test_roles_without_the_right_cannot_add_contact_points_even_by_crafted_post(
    username, persona, client_for, customer
):
    client = client_for(persona(username))
    response = client.post(
        f"/customers/{customer.pk}/phone/new/", {"number": "+442079460958", "label": "mobile"}
    )
    assert response.status_code == 403
    assert not PhoneNumber.objects.filter(customer=customer).exists()


@pytest.mark.parametrize("username", ["staff", "steward", "officer", "auditor", "admin"])
def test_only_support_reps_add_notes(username, persona, client_for, customer):
    response = client_for(persona(username)).post(
        f"/customers/{customer.pk}/interactions/new/",
        {"kind": "note", "occurred_at": "2026-11-01T10:00", "summary": "crafted"},
    )
    assert response.status_code == 403
    assert not Interaction.objects.filter(customer=customer).exists()


def test_support_rep_adds_a_note_to_the_timeline(support, client_for, customer):
    response = client_for(support).post(
        f"/customers/{customer.pk}/interactions/new/",
        {
            "kind": "note",
            "channel": "phone",
            "occurred_at": "2026-11-01T10:00",
            "summary": "Asked about the new tariff",
        },
    )
    assert response.status_code == 302
    note = Interaction.objects.get(customer=customer)
    assert note.created_by == support
    assert note.history.get().history_user == support


@pytest.mark.parametrize("username", ["staff", "officer", "auditor"])
def test_roles_that_may_not_edit_customers_get_403_and_the_row_is_unchanged(
    username, persona, client_for
):
    customer = factories.PersonFactory(first_name="Ann", last_name="Lee")
    response = client_for(persona(username)).post(
        f"/customers/{customer.pk}/edit/", {"kind": "person", "first_name": "Crafted"}
    )
    assert response.status_code == 403
    customer.refresh_from_db()
    assert customer.first_name == "Ann"


def test_auditor_changes_nothing(auditor, client_for, customer):
    client = client_for(auditor)
    for url in (f"/customers/{customer.pk}/email/new/", "/customers/new/"):
        response = client.post(url, {"email": "a@example.com", "kind": "person", "last_name": "X"})
        assert response.status_code == 403
    assert not EmailAddress.objects.exists()


def test_identifiers_are_masked_on_the_page_for_every_role(persona, client_for):
    customer = factories.PersonFactory(country="NL", national_id="111222333")
    for username in ("staff", "support", "steward", "admin", "officer", "auditor"):
        page = client_for(persona(username)).get(f"/customers/{customer.pk}/").content.decode()
        assert "111222333" not in page, username
        assert "\u2022\u2022\u2022\u20222333" in page  # the last four digits only
        assert ("Reveal" in page) is (username in ("officer", "auditor")), username


@pytest.mark.parametrize("username", ["officer", "auditor"])
def test_officers_and_auditors_reveal_an_identifier_and_the_access_is_recorded(
    username, persona, client_for
):
    customer = factories.PersonFactory(country="NL", national_id="111222333")
    user = persona(username)
    response = client_for(user).post(f"/customers/{customer.pk}/reveal/national_id/")
    assert response.status_code == 200
    assert "111222333" in response.content.decode()
    access = SensitiveDataAccess.objects.get()
    assert (access.user, access.customer, access.field) == (user, customer, "national_id")


@pytest.mark.parametrize("username", ["staff", "support", "steward", "admin"])
def test_other_roles_cannot_reveal_even_by_crafted_post(username, persona, client_for):
    customer = factories.PersonFactory(country="NL", national_id="111222333")
    response = client_for(persona(username)).post(f"/customers/{customer.pk}/reveal/national_id/")
    assert response.status_code == 403
    assert "111222333" not in response.content.decode()
    assert not SensitiveDataAccess.objects.exists()


def test_reveal_needs_a_post(officer, client_for, customer):
    assert (
        client_for(officer).get(f"/customers/{customer.pk}/reveal/national_id/").status_code == 405
    )


def test_administrator_and_compliance_officer_cannot_be_held_together():
    user = make_persona("admin")
    with pytest.raises(roles.RoleConflictError) as caught, transaction.atomic():
        user.groups.add(Group.objects.get(name=roles.COMPLIANCE_OFFICER))
    assert caught.value.messages == [
        "The roles Compliance Officer and Administrator cannot be held by one user "
        "(segregation of duties)."
    ]
    assert list(user.groups.values_list("name", flat=True)) == [roles.ADMINISTRATOR]


def test_conflict_is_refused_when_assigned_from_the_group_side_too():
    user = make_persona("officer")
    with pytest.raises(roles.RoleConflictError), transaction.atomic():
        Group.objects.get(name=roles.AUDITOR).user_set.add(user)
    assert not user.groups.filter(name=roles.AUDITOR).exists()


def test_non_conflicting_roles_and_teams_can_be_combined():
    user = make_persona("support", (roles.SUPPORT_REP, roles.DATA_STEWARD))
    team = Group.objects.create(name="Private banking team")
    user.groups.add(team)
    assert user.groups.count() == 3


def test_admin_site_refuses_conflicting_roles_with_a_clear_message(client_for):
    superuser = get_user_model().objects.create_superuser("root", password="x" * 12)
    target = make_persona("admin")
    groups = Group.objects.filter(name__in=[roles.ADMINISTRATOR, roles.COMPLIANCE_OFFICER])
    response = client_for(superuser).post(
        f"/admin/auth/user/{target.pk}/change/",
        {
            "username": "admin",
            "is_active": "on",
            "is_staff": "on",
            "groups": [g.pk for g in groups],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 200
    assert "cannot be held by one user" in response.content.decode()
    assert list(target.groups.values_list("name", flat=True)) == [roles.ADMINISTRATOR]
