"""Watch-list screening: the same fuzzy name matcher as duplicate detection finds
spelling variants, aliases, transliterations and reordered names; officers
clear or confirm each hit."""

import datetime

import pytest
from guardian.shortcuts import assign_perm

from cim.audit import system_actor
from compliance import screening, services
from compliance.models import KycCase, RefusedAttempt, ScreeningHit, WatchListEntry
from compliance.tasks import screening_nightly
from customers import services as customer_services
from customers.matching import best_name_similarity, name_similarity
from tests import factories
from tests.compliance.kyc import open_case, page_text, submitted_case

THRESHOLD = 86


@pytest.mark.parametrize(
    ("customer_name", "listed_name"),
    [
        ("Jon Smyth", "John Smith"),  # spelling variants
        ("Mohamed Rashid", "Muhammad Rashid"),
        ("Sergey Ivanov", "Sergei Ivanov"),
        ("Putin Vladimir", "Vladimir Putin"),  # word order
        ("Vladimir Putin", "Владимир Путин"),  # transliteration
        ("Jürgen Müller-Lüdenscheidt", "Jurgen Muller Ludenscheidt"),  # accents, hyphen
        ("Vladimir Putin", "Vladimir Vladimirovich Putin"),  # a middle name
        ("Osama bin Laden", "Usama bin Ladin"),
        ("J Smith", "John Smith"),  # an initial
        ("MCDONALD, RONALD", "Ronald Mc Donald"),  # case, punctuation, spacing
    ],
)
def test_name_matcher_finds_variants(customer_name, listed_name):
    assert name_similarity(customer_name, listed_name) >= THRESHOLD
    assert name_similarity(listed_name, customer_name) == name_similarity(
        customer_name, listed_name
    )


@pytest.mark.parametrize(
    ("customer_name", "listed_name"),
    [
        ("Jane Smith", "John Smith"),
        ("Peter Brown", "Paul Brown"),
        ("Maria Lopez", "Mario Rossi"),
        ("", "John Smith"),
    ],
)
def test_name_matcher_keeps_different_people_apart(customer_name, listed_name):
    assert name_similarity(customer_name, listed_name) < THRESHOLD


def test_the_best_alias_is_the_one_reported():
    score, matched = best_name_similarity(
        "Victor Drakoff", ["Viktor Drakov", "V. Drakov", "Виктор Драков"]
    )
    assert score >= THRESHOLD and matched in ("Viktor Drakov", "Виктор Драков")
    assert best_name_similarity("Anyone", []) == (0.0, "")


def entry(**fields) -> WatchListEntry:
    values = {
        "list_name": "OFAC SDN",
        "reference": "SDN-1",
        "name": "Viktor Drakov",
        "aliases": ["Victor Drakoff", "Виктор Драков"],
        "country": "RU",
        **fields,
    }
    created = WatchListEntry.objects.create(**values)
    screening.watchlist_index_refresh([created.pk])
    return created


def screen_everyone():
    return screening.entries_screen(
        entries=WatchListEntry.objects.all(), actor=system_actor(), reason="test screening"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "customer_name",
    [("Viktor", "Drakov"), ("Victor", "Drakoff"), ("Drakov", "Viktor"), ("Viktor", "Drakow")],
)
def test_list_entries_are_screened_against_customers(customer_name):
    first, last = customer_name
    customer = factories.PersonFactory(first_name=first, last_name=last)
    factories.PersonFactory(first_name="Victoria", last_name="Drake")
    entry()
    assert screen_everyone() == 1
    hit = ScreeningHit.objects.get()
    assert hit.customer == customer and hit.status == ScreeningHit.Status.OPEN
    assert hit.score >= THRESHOLD
    assert hit.history.get().history_change_reason == "test screening"


@pytest.mark.django_db
def test_a_new_customer_is_screened_on_creation_and_on_a_change_of_name(support):
    entry()
    created = customer_services.customer_create(
        actor=support, reason="walk-in", kind="person", first_name="Victor", last_name="Drakoff"
    )
    hit = ScreeningHit.objects.get(customer=created)
    assert hit.matched_name == "Victor Drakoff"
    assert hit.history.get().history_user.username == "system"
    other = factories.PersonFactory(first_name="Vera", last_name="Dunn")
    customer_services.customer_update(
        actor=support, customer=other, reason="married", last_name="Drakov", first_name="Viktor"
    )
    assert ScreeningHit.objects.filter(customer=other).exists()


@pytest.mark.django_db
def test_a_date_of_birth_that_differs_keeps_a_weak_match_out():
    factories.PersonFactory(
        first_name="Viktor", last_name="Drakow", date_of_birth=datetime.date(1990, 1, 1)
    )
    entry(date_of_birth=datetime.date(1961, 3, 14), aliases=[])
    assert screen_everyone() == 0


@pytest.mark.django_db
def test_a_cleared_pair_is_not_raised_again_unless_either_side_changes(officer, support):
    customer = factories.PersonFactory(first_name="Viktor", last_name="Drakov")
    listed = entry()
    screen_everyone()
    hit = ScreeningHit.objects.get()
    screening.screening_hit_clear(hit=hit, officer=officer, reason="different person, born 1990")
    assert screen_everyone() == 0
    assert ScreeningHit.objects.get().status == ScreeningHit.Status.CLEARED
    # The customer's details change: the pair is raised again.
    customer_services.customer_update(
        actor=support,
        customer=customer,
        reason="birth date corrected",
        date_of_birth=datetime.date(1961, 3, 14),
    )
    hit.refresh_from_db()
    assert hit.status == ScreeningHit.Status.OPEN
    assert "the customer changed" in hit.history.latest().history_change_reason
    screening.screening_hit_clear(hit=hit, officer=officer, reason="checked again: not them")
    # The entry changes: raised again.
    listed.aliases = [*listed.aliases, "V. Drakov"]
    listed.save()
    assert screen_everyone() == 1
    assert (
        "the watch-list entry changed"
        in ScreeningHit.objects.get().history.latest().history_change_reason
    )


@pytest.mark.django_db
def test_confirming_a_hit_raises_the_risk_to_high_and_blocks_approval(staff, officer, officer2):
    customer = factories.PersonFactory(first_name="Viktor", last_name="Drakov")
    case = submitted_case(customer, staff)
    assert case.risk_level == "low"
    entry()
    screen_everyone()
    with pytest.raises(services.Conflict, match="open watch-list hits must be cleared"):
        services.kyc_case_approve(case=case, officer=officer2)
    screening.screening_hit_confirm(
        hit=ScreeningHit.objects.get(), officer=officer, reason="same person: passport matches"
    )
    case.refresh_from_db()
    assert case.risk_level == "high" and case.status == KycCase.Status.SUBMITTED
    assert any(f["code"] == "watchlist" and f["forces_high"] for f in case.risk_factors)
    assert case.history.latest().history_change_reason.startswith("confirmed watch-list match")
    with pytest.raises(services.Conflict, match="a confirmed watch-list match blocks approval"):
        services.kyc_case_approve(case=case, officer=officer2)
    assert services.kyc_case_reject(case=case, officer=officer2, reason="sanctioned").status == (
        "rejected"
    )


@pytest.mark.django_db
def test_confirming_a_hit_on_an_approved_customer_opens_a_review(staff, officer, officer2):
    customer = factories.PersonFactory(first_name="Viktor", last_name="Drakov")
    approved = services.kyc_case_approve(case=submitted_case(customer, staff), officer=officer2)
    entry()
    screen_everyone()
    screening.screening_hit_confirm(hit=ScreeningHit.objects.get(), officer=officer, reason="yes")
    review = KycCase.objects.get(customer=customer, status="draft")
    assert review.kind == KycCase.Kind.EVENT_REVIEW and review.previous_case == approved
    assert review.risk_level == "high"


@pytest.mark.django_db
def test_nightly_screening_screens_what_changed_since_the_last_run(support):
    screening_nightly()  # the first run is a full one, over nothing yet
    entry()
    changed = factories.PersonFactory(first_name="Anna", last_name="Berg")
    customer_services.customer_update(
        actor=support,
        customer=changed,
        reason="name change",
        first_name="Victor",
        last_name="Drakoff",
    )
    ScreeningHit.objects.all().delete()  # as if the on-change hook had not run
    result = screening_nightly()
    assert result["hits"] == 1 and result["entries"] == 1
    assert ScreeningHit.objects.get().customer == changed
    assert screening_nightly()["hits"] == 0  # nothing changed since


@pytest.mark.django_db
def test_the_hit_queue_lists_only_visible_customers(officer, officer2, client_for):
    visible = factories.PersonFactory(first_name="Viktor", last_name="Drakov")
    hidden = factories.PersonFactory(first_name="Victor", last_name="Drakoff", restricted=True)
    assign_perm("customers.view_customer", officer2, hidden)
    entry()
    screen_everyone()
    page = page_text(client_for(officer).get("/compliance/screening/"))
    assert "Viktor Drakov" in page and hidden.display_name not in page
    hidden_hit = ScreeningHit.objects.get(customer=hidden)
    response = client_for(officer).post(
        f"/compliance/screening/{hidden_hit.pk}/confirm/", {"reason": "crafted"}
    )
    assert response.status_code == 404
    assert ScreeningHit.objects.get(pk=hidden_hit.pk).status == "open"
    assert hidden.display_name in page_text(client_for(officer2).get("/compliance/screening/"))
    assert visible.display_name in page_text(client_for(officer2).get("/compliance/screening/"))


@pytest.mark.django_db
@pytest.mark.parametrize("username", ["staff", "support", "admin", "auditor"])
def test_only_officers_resolve_hits(username, persona, client_for):
    factories.PersonFactory(first_name="Viktor", last_name="Drakov")
    entry()
    screen_everyone()
    hit = ScreeningHit.objects.get()
    user = persona(username)
    for action in ("clear", "confirm"):
        response = client_for(user).post(
            f"/compliance/screening/{hit.pk}/{action}/", {"reason": "crafted"}
        )
        assert response.status_code == 403
    assert ScreeningHit.objects.get().status == ScreeningHit.Status.OPEN
    if username == "auditor":  # may read the queue, so the refusal is the service's
        assert RefusedAttempt.objects.filter(user=user).count() == 2


@pytest.mark.django_db
def test_officer_clears_a_hit_in_place_with_htmx(officer, client_for):
    factories.PersonFactory(first_name="Viktor", last_name="Drakov")
    entry()
    screen_everyone()
    hit = ScreeningHit.objects.get()
    client = client_for(officer)
    missing = client.post(
        f"/compliance/screening/{hit.pk}/clear/", {"reason": ""}, headers={"HX-Request": "true"}
    )
    assert missing.status_code == 200 and "Give the reason." in page_text(missing)
    assert ScreeningHit.objects.get().status == "open"
    cleared = client.post(
        f"/compliance/screening/{hit.pk}/clear/",
        {"reason": "born 1990, not 1961"},
        headers={"HX-Request": "true"},
    )
    body = page_text(cleared)
    assert body.startswith(f'<tr id="hit-{hit.pk}">') and "Cleared (false positive)" in body
    hit.refresh_from_db()
    assert (hit.status, hit.resolved_by, hit.resolution_reason) == (
        "cleared",
        officer,
        "born 1990, not 1961",
    )
    again = client.post(f"/compliance/screening/{hit.pk}/confirm/", {"reason": "changed my mind"})
    assert again.status_code == 409
    assert "This hit was already cleared (false positive) by Officer." in page_text(again)


@pytest.mark.django_db
def test_a_draft_case_page_shows_the_hit_to_officers_and_a_count_to_staff(
    staff, officer, client_for
):
    customer = factories.PersonFactory(first_name="Viktor", last_name="Drakov")
    case = open_case(customer, staff)
    entry()
    screen_everyone()
    officer_page = page_text(client_for(officer).get(f"/compliance/kyc/{case.pk}/"))
    assert "OFAC SDN SDN-1" in officer_page
    staff_page = page_text(client_for(staff).get(f"/compliance/kyc/{case.pk}/"))
    assert "OFAC SDN" not in staff_page and "1 watch-list match for a Compliance Officer" in (
        staff_page
    )
