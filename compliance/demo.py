"""KYC demo data: cases in every status, a country risk list, a small watch
list and a screening hit, so a person trying the demo can act at once.

Called by seed_demo once the demo users and customers exist:

    from compliance.demo import seed_kyc_demo
    summary = seed_kyc_demo(users=users_by_username, customers=customers, rng=random.Random(seed))

Everything goes through the compliance services, as the demo users, so the
history, maker-checker and risk are exactly what the application would have
produced. Rerunnable: once the demo watch list exists it does nothing.
"""

from __future__ import annotations

import datetime
import random

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.utils import timezone

from cim.audit import stamp, system_actor, system_reason
from customers.models import Customer

from . import screening, services
from .models import KycCase, KycCheck, Occupation, ScreeningHit, WatchListEntry

DEMO_LIST = "Demo consolidated sanctions"
JOB = "seed_demo"
NEEDED_USERS = ("staff", "officer", "officer2")

COUNTRY_RISKS = [
    ("IR", "high", "FATF call for action"),
    ("KP", "high", "FATF call for action"),
    ("MM", "high", "FATF call for action"),
    ("AE", "medium", "FATF increased monitoring (demo)"),
    ("PA", "medium", "FATF increased monitoring (demo)"),
    ("TR", "medium", "FATF increased monitoring (demo)"),
]

# (list reference, name, aliases, date of birth, country): fictitious people.
WATCH_LIST = [
    ("DEMO-0001", "Viktor Drakov", ["Victor Drakoff", "Виктор Драков"], "1961-03-14", "RU"),
    ("DEMO-0002", "Amara Castellanos Rivas", ["Amara Rivas"], "1975-11-02", "VE"),
    ("DEMO-0003", "Northwind Shell Holdings", ["NW Shell Holdings Ltd"], "", "PA"),
    ("DEMO-0004", "Yusuf Al-Haddad", ["Youssef Alhaddad"], "1969", "SY"),
]

PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
    b"trailer << /Root 1 0 R >>\n%%EOF\n"
)


def _document(case: KycCase, actor, *, doc_type: str = "passport", expired: bool = False) -> None:
    today = timezone.localdate()
    expiry = today - datetime.timedelta(days=40) if expired else today.replace(year=today.year + 6)
    services.kyc_document_add(
        case=case,
        actor=actor,
        upload=SimpleUploadedFile(f"{doc_type}-{case.customer_id}.pdf", PDF, "application/pdf"),
        doc_type=doc_type,
        number=f"X{case.customer_id:07d}",
        issuing_country=str(case.customer.country or "") or "GB",
        expiry_date=expiry,
    )


def _complete(case: KycCase, actor, *, expired: bool = False) -> KycCase:
    for check in case.checks.all():
        services.kyc_check_record(
            check=check, actor=actor, result=KycCheck.Result.PASSED, note="seen in person"
        )
    _document(case, actor, expired=expired)
    return KycCase.objects.get(pk=case.pk)


def _open(customer: Customer, actor, **fields) -> KycCase:
    case = services.kyc_case_open(customer=customer, actor=actor, reason="demo: KYC case opened")
    if fields:
        case = services.kyc_case_update(
            case=case, actor=actor, reason="demo: customer details", **fields
        )
    return case


def _submitted(customer: Customer, actor, **fields) -> KycCase:
    case = _complete(_open(customer, actor, **fields), actor)
    return services.kyc_case_submit(case=case, actor=actor)


def _candidates(customers: list[Customer], rng: random.Random) -> tuple[list, list]:
    usable = [
        c for c in customers if not c.restricted and c.status == Customer.Status.ACTIVE and c.pk
    ]
    people = [c for c in usable if c.kind == Customer.Kind.PERSON]
    organisations = [c for c in usable if c.kind == Customer.Kind.ORGANIZATION]
    rng.shuffle(people)
    rng.shuffle(organisations)
    return people, organisations


def seed_kyc_demo(*, users: dict, customers: list[Customer], rng: random.Random) -> dict:
    """Create the KYC demo on top of the demo users and customers; returns a summary.

    Cases (one per customer, none restricted): a draft; a case submitted by
    `staff` and one submitted by `officer` (so officer can approve the first at
    once, and sees maker-checker refuse the second, which officer2 can
    approve); a resubmitted case; one sent back for changes; approved ones
    (low and overridden high risk); a rejected one; an overdue periodic
    review; an open case with an expired document. Plus a country risk list,
    a small watch list and an open screening hit.
    """
    if WatchListEntry.objects.filter(list_name=DEMO_LIST).exists():
        return {"kyc_skipped": "KYC demo data already exists"}
    missing = [name for name in NEEDED_USERS if name not in users]
    if missing:
        return {"kyc_skipped": f"demo users missing: {', '.join(missing)}"}
    staff, officer, officer2 = (users[name] for name in NEEDED_USERS)
    people, organisations = _candidates(customers, rng)
    if len(people) < 11:
        return {"kyc_skipped": "at least 11 unrestricted demo persons are needed"}
    already = set(
        KycCase.objects.filter(customer__in=people + organisations).values_list(
            "customer_id", flat=True
        )
    )
    people = [c for c in people if c.pk not in already]
    organisations = [c for c in organisations if c.pk not in already]
    pick = iter(people)

    with transaction.atomic():
        for country, level, note in COUNTRY_RISKS:
            services.country_risk_set(
                actor=officer, country=country, level=level, note=note, reason="demo: risk list"
            )

        _open(next(pick), staff, occupation=Occupation.EMPLOYED)  # draft
        _submitted(next(pick), staff, occupation=Occupation.RETIRED)
        _submitted(next(pick), officer, occupation=Occupation.REAL_ESTATE)

        sent_back = _submitted(next(pick), staff, occupation=Occupation.SELF_EMPLOYED)
        services.kyc_case_request_changes(
            case=sent_back, officer=officer2, reason="demo: the address proof is too old"
        )

        resubmitted = _submitted(next(pick), staff, occupation=Occupation.STUDENT)
        services.kyc_case_request_changes(
            case=resubmitted, officer=officer, reason="demo: add a bank statement"
        )
        _document(resubmitted, staff, doc_type="bank_statement")
        services.kyc_case_submit(case=resubmitted, actor=staff)

        approved = _submitted(next(pick), staff, occupation=Occupation.EMPLOYED)
        services.kyc_case_approve(case=approved, officer=officer, reason="demo: all verified")

        pep = _complete(
            _open(next(pick), staff, pep=True, occupation=Occupation.PUBLIC_OFFICIAL), staff
        )
        services.kyc_risk_override(
            case=pep, officer=officer2, level="high", reason="demo: senior PEP, enhanced review"
        )
        services.kyc_case_submit(case=pep, actor=staff)
        services.kyc_case_approve(case=pep, officer=officer, reason="demo: EDD complete")

        rejected = _submitted(next(pick), staff, occupation=Occupation.MONEY_SERVICES)
        services.kyc_case_reject(
            case=rejected, officer=officer2, reason="demo: source of funds not established"
        )

        # An approval from years ago whose periodic review is now overdue.
        old = _submitted(next(pick), staff, occupation=Occupation.EMPLOYED)
        old = services.kyc_case_approve(case=old, officer=officer2, reason="demo: verified")
        old.decided_at -= datetime.timedelta(days=3 * 365 + 20)
        old.next_review_date = timezone.localdate() - datetime.timedelta(days=20)
        stamp(old, actor=system_actor(), reason=system_reason(f"{JOB}: backdated for the demo"))
        old.save()
        reason = system_reason(f"{JOB}: periodic review")
        services.kyc_reviews_open_due(actor=system_actor(), reason=reason)
        services.kyc_reviews_mark_overdue(actor=system_actor(), reason=reason)

        _complete(_open(next(pick), staff), staff, expired=True)  # draft, expired passport

        if organisations:
            _submitted(organisations[0], staff, occupation=Occupation.CASH_INTENSIVE)

        # The watch list, with one entry a demo customer's name resembles.
        target = next(pick)
        entries = []
        for reference, name, aliases, born, country in WATCH_LIST:
            entries.append(_entry(reference, name, aliases, born, country, actor=officer))
        lookalike = _entry(
            "DEMO-0005",
            f"{target.last_name} {target.first_name}".strip() or target.display_name,
            [target.display_name.upper()],
            "",
            str(target.country or ""),
            actor=officer,
        )
        entries.append(lookalike)
        screening.watchlist_index_refresh([entry.pk for entry in entries])
        hits = screening.entries_screen(
            entries=entries,
            actor=system_actor(),
            reason=system_reason(f"{JOB}: screening the demo watch list"),
        )

    statuses = dict.fromkeys(KycCase.Status.values, 0)
    for status in KycCase.objects.values_list("status", flat=True):
        statuses[status] += 1
    return {
        "kyc_cases": sum(statuses.values()),
        "kyc_statuses": statuses,
        "country_risks": len(COUNTRY_RISKS),
        "watchlist_entries": len(entries),
        "screening_hits": hits,
        "open_screening_hits": ScreeningHit.objects.filter(status="open").count(),
    }


def _entry(reference, name, aliases, born, country, *, actor) -> WatchListEntry:
    dob, year = None, None
    if len(born) == 4:
        year = int(born)
    elif born:
        dob = datetime.date.fromisoformat(born)
        year = dob.year
    entry = WatchListEntry(
        list_name=DEMO_LIST,
        reference=reference,
        name=name,
        aliases=aliases,
        date_of_birth=dob,
        birth_year=year,
        country=country,
    )
    stamp(entry, actor=actor, reason=f"{JOB}: demo watch list").save()
    return entry
