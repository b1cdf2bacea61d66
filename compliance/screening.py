"""Watch lists and screening: importing a list, matching customers against it,
and the officer's queue of hits. The writes here follow the rules of
compliance.services (permission checks, refusals recorded, history user and
reason on every write).

Matching uses customers.matching.name_similarity, the one name matcher of the
project (word order, transliteration, accents, spelling and sound-alike
variants), against an entry's name and each alias. Candidates are found
through phonetic keys first, so a customer is scored against a handful of
entries, not the whole list, and an entry against a handful of customers:
- a customer against the list: WatchListToken, the entries' words and keys;
- an entry against the customers: CustomerSearchToken and SearchWord, the
  index customer search already keeps.

When screening runs: on a customer's creation and on a change of name or date
of birth (a hook in customers.services), after each list import (a task per
import), and nightly (a beat task screening what changed since the last run).
A pair an officer cleared is not raised again unless the customer's or the
entry's identifying details change.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone
from django_countries import countries

from cim.audit import stamp, system_actor, system_reason
from customers.matching import best_name_similarity, name_words
from customers.models import Customer, CustomerSearchToken
from customers.search import fold, phonetic_key, sounds_like

from . import roles
from .models import (
    KycCase,
    ScreeningHit,
    ScreeningRun,
    WatchListEntry,
    WatchListImport,
    WatchListToken,
)
from .services import (
    Conflict,
    NotAllowed,
    kyc_case_risk_refresh,
    kyc_event_review_open,
    refusals_recorded,
)

logger = logging.getLogger(__name__)

CANNOT_IMPORT = "Only Compliance Officers import watch lists."
CANNOT_RESOLVE = "Only Compliance Officers clear or confirm screening hits."
HIT_NOT_VISIBLE = "This customer is not visible to you."
HIT_ALREADY_RESOLVED = "This hit was already {status} by {who}."
RESOLUTION_REASON_REQUIRED = "Give the reason."

# Each name is compared with at most this many candidate customers or entries.
MAX_CANDIDATES = 500
MAX_WORDS = 6


def threshold() -> float:
    return float(settings.CIM_SCREENING_THRESHOLD)


# Fingerprints and the token index ------------------------------------------


def _digest(parts: Iterable) -> str:
    return hashlib.sha256(json.dumps(list(parts), default=str).encode()).hexdigest()


def customer_fingerprint(customer: Customer) -> str:
    """What identifies a customer for screening: name, date of birth, country."""
    return _digest(
        [fold(customer.display_name), customer.date_of_birth, str(customer.country or "")]
    )


def entry_fingerprint(entry: WatchListEntry) -> str:
    return _digest(
        [
            entry.name,
            sorted(entry.aliases),
            entry.date_of_birth,
            entry.birth_year,
            str(entry.country or ""),
        ]
    )


def entry_tokens(entry: WatchListEntry) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for name in entry.names:
        for word in name_words(name):
            seen.setdefault(word[:60], phonetic_key(word))
    return list(seen.items())


def watchlist_index_refresh(entry_ids: Iterable[int]) -> None:
    """Rebuild the token index of these entries from their names and aliases."""
    entry_ids = list(entry_ids)
    WatchListToken.objects.filter(entry_id__in=entry_ids).delete()
    WatchListToken.objects.bulk_create(
        [
            WatchListToken(entry=entry, token=token, phonetic=key)
            for entry in WatchListEntry.objects.filter(pk__in=entry_ids)
            for token, key in entry_tokens(entry)
        ],
        batch_size=2000,
    )


PREFIX = 4  # "Drakow" finds "Drakov" by its first letters when the sound differs


def _entry_sounds_like(word: str) -> Q:
    return Q(phonetic=phonetic_key(word))


def _word_match(word: str, sounds_like: Callable[[str], Q]) -> Q:
    match = sounds_like(word)
    if len(word) >= PREFIX:
        prefix = word[:PREFIX]
        match |= Q(token__gte=prefix, token__lt=prefix[:-1] + chr(ord(prefix[-1]) + 1))
    return match


def _candidates(
    tokens: QuerySet, owner: str, name: str, sounds_like: Callable[[str], Q]
) -> list[int]:
    """Ids of the owners (customers or entries) having a word that sounds like,
    or starts like, each of enough words of `name`: two words (one for a
    one-word name), so "John" alone does not bring every John. `sounds_like`:
    the tokens that sound like a word."""
    words = list(dict.fromkeys(name_words(name)))[:MAX_WORDS]
    if not words:
        return []
    matches = [_word_match(word, sounds_like) for word in words]
    either = Q()
    for match in matches:
        either |= match
    # Which of the name's words a stored token matched (the first it matches).
    which = Case(
        *(When(m, then=Value(i)) for i, m in enumerate(matches)), output_field=IntegerField()
    )
    return list(
        tokens.filter(either)
        .annotate(word=which)
        .values(owner)
        .annotate(n=Count("word", distinct=True))
        .filter(n__gte=min(2, len(words)))
        .values_list(owner, flat=True)[:MAX_CANDIDATES]
    )


# Scoring ---------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    score: float
    matched_name: str
    explanation: str


def match_score(customer: Customer, entry: WatchListEntry) -> Match:
    """How well a customer matches an entry: the best name similarity against the
    entry's name and aliases, nudged by the date of birth when both know it."""
    name_score, matched = best_name_similarity(customer.display_name, entry.names)
    score, notes = name_score, [f"name {name_score:.0f}"]
    dob = customer.date_of_birth
    if dob and entry.date_of_birth:
        if dob == entry.date_of_birth:
            score, notes = score + 5, [*notes, "same date of birth"]
        else:
            score, notes = score - 10, [*notes, "different date of birth"]
    elif dob and entry.birth_year:
        if dob.year == entry.birth_year:
            score, notes = score + 3, [*notes, "same year of birth"]
        else:
            score, notes = score - 8, [*notes, "different year of birth"]
    if customer.country and entry.country and str(customer.country) == str(entry.country):
        score, notes = score + 2, [*notes, "same country"]
    return Match(
        score=round(max(0.0, min(100.0, score)), 1),
        matched_name=matched,
        explanation=", ".join(notes)[:255],
    )


def entries_for_customer(customer: Customer) -> list[WatchListEntry]:
    """Active entries sharing enough name words with the customer."""
    tokens = WatchListToken.objects.filter(entry__active=True)
    entry_ids = _candidates(tokens, "entry_id", customer.display_name, _entry_sounds_like)
    return list(WatchListEntry.objects.filter(pk__in=entry_ids)) if entry_ids else []


def customers_for_entry(entry: WatchListEntry) -> list[Customer]:
    """Customers sharing enough name words with any of the entry's names."""
    ids: set[int] = set()
    for name in entry.names:
        ids.update(_candidates(CustomerSearchToken.objects.all(), "customer_id", name, sounds_like))
    if not ids:
        return []
    return list(
        Customer.objects.filter(pk__in=ids)
        .exclude(status=Customer.Status.MERGED)
        .only("id", "display_name", "date_of_birth", "country", "kind")
    )


# Recording hits --------------------------------------------------------------


def _record(customer: Customer, entry: WatchListEntry, match: Match, *, actor, reason) -> bool:
    """Raise, raise again or refresh the hit for this pair. True when an officer
    now has something new to look at."""
    customer_fp, entry_fp = customer_fingerprint(customer), entry_fingerprint(entry)
    hit = ScreeningHit.objects.filter(customer=customer, entry=entry).first()
    values = {
        "score": match.score,
        "customer_name": customer.display_name[:255],
        "matched_name": match.matched_name[:255],
        "explanation": match.explanation,
        "customer_fingerprint": customer_fp,
        "entry_fingerprint": entry_fp,
    }
    if hit is None:
        hit = ScreeningHit(customer=customer, entry=entry, **values)
        stamp(hit, actor=actor, reason=reason).save()
        return True
    if hit.status == ScreeningHit.Status.CONFIRMED:
        return False
    if hit.status == ScreeningHit.Status.CLEARED:
        changed = [
            side
            for side, before, now in (
                ("customer", hit.customer_fingerprint, customer_fp),
                ("watch-list entry", hit.entry_fingerprint, entry_fp),
            )
            if before != now
        ]
        if not changed:
            return False
        for name, value in values.items():
            setattr(hit, name, value)
        hit.status, hit.raised_at = ScreeningHit.Status.OPEN, timezone.now()
        hit.resolved_by, hit.resolved_at, hit.resolution_reason = None, None, ""
        why = f"raised again: the {' and the '.join(changed)} changed since it was cleared"
        stamp(hit, actor=actor, reason=why[:100]).save()
        return True
    if any(getattr(hit, name) != value for name, value in values.items()):
        for name, value in values.items():
            setattr(hit, name, value)
        stamp(hit, actor=actor, reason=reason).save()
    return False


def customer_screen(*, customer: Customer, actor, reason: str) -> int:
    """Screen one customer against the active watch lists; the hits raised."""
    if customer.status == Customer.Status.MERGED:
        return 0
    raised = 0
    limit = threshold()
    for entry in entries_for_customer(customer):
        match = match_score(customer, entry)
        if match.score >= limit:
            raised += _record(customer, entry, match, actor=actor, reason=reason)
    return raised


def entries_screen(*, entries: Iterable[WatchListEntry], actor, reason: str) -> int:
    """Screen every customer against these entries; the hits raised."""
    raised = 0
    limit = threshold()
    for entry in entries:
        if not entry.active:
            continue
        with transaction.atomic():
            for customer in customers_for_entry(entry):
                match = match_score(customer, entry)
                if match.score >= limit:
                    raised += _record(customer, entry, match, actor=actor, reason=reason)
    return raised


def customer_screen_on_change(*, customer: Customer, actor) -> None:
    """The customers.services hook: screen a customer who was just created,
    renamed or given another date of birth, in the same transaction. A failure
    here must not lose the customer's change: the nightly run catches up."""
    who = getattr(actor, "username", "") or "system"
    try:
        with transaction.atomic():
            customer_screen(
                customer=customer,
                actor=system_actor(),
                reason=system_reason(f"screening after a change by {who}")[:100],
            )
    except Exception:
        logger.exception("Screening customer %s failed; the nightly run will retry", customer.pk)


def screening_after_bulk_change(*, created: int, updated: int, reason: str) -> None:
    """The customers.services bulk hook: an import's new and renamed customers are
    screened by an incremental run queued right away, not at night."""
    from .tasks import screening_nightly

    screening_nightly.delay()


def screening_run_nightly(*, actor, full: bool = False) -> ScreeningRun:
    """Screen what changed since the last finished run: customers created or
    changed against the whole list, and new or changed entries against every
    customer. The first run (or `full`) screens every entry against every
    customer."""
    last = ScreeningRun.objects.filter(finished_at__isnull=False).order_by("-started_at").first()
    run = ScreeningRun.objects.create(full=full or last is None)
    reason = system_reason(f"nightly screening run {run.pk}")
    entries = WatchListEntry.objects.filter(active=True).order_by("pk")
    if not run.full:
        since = last.started_at
        entries = entries.filter(updated_at__gte=since)
        changed_customers = (
            Customer.objects.filter(updated_at__gte=since)
            .exclude(status=Customer.Status.MERGED)
            .order_by("pk")
            .only("id", "display_name", "date_of_birth", "country", "kind", "status")
        )
        for customer in changed_customers.iterator(chunk_size=500):
            with transaction.atomic():
                run.hits_raised += customer_screen(customer=customer, actor=actor, reason=reason)
            run.customers_screened += 1
    for entry in entries.iterator(chunk_size=500):
        run.hits_raised += entries_screen(entries=[entry], actor=actor, reason=reason)
        run.entries_screened += 1
    run.finished_at = timezone.now()
    run.save()
    return run


# Resolving hits --------------------------------------------------------------


def _resolver_check(hit: ScreeningHit, officer) -> None:
    from customers.selectors import customers_visible_to

    names = set(officer.groups.values_list("name", flat=True))
    if roles.ADMINISTRATOR in names or not officer.has_perm("compliance.resolve_screeninghit"):
        raise NotAllowed(CANNOT_RESOLVE)
    if not customers_visible_to(officer).filter(pk=hit.customer_id).exists():
        raise NotAllowed(HIT_NOT_VISIBLE)
    if hit.status != ScreeningHit.Status.OPEN:
        who = hit.resolved_by.get_full_name() or hit.resolved_by.username if hit.resolved_by else ""
        raise Conflict(
            HIT_ALREADY_RESOLVED.format(status=hit.get_status_display().lower(), who=who or "?")
        )


def screening_hit_clear(*, hit: ScreeningHit, officer: AbstractBaseUser, reason: str):
    """A false positive: closed with the reason, and not raised again unless the
    customer or the entry changes."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": RESOLUTION_REASON_REQUIRED})
    with (
        refusals_recorded(
            actor=officer, action="clear hit", customer=hit.customer, target=str(hit)
        ),
        transaction.atomic(),
    ):
        locked = ScreeningHit.objects.select_for_update().select_related("customer", "entry")
        locked = locked.get(pk=hit.pk)
        _resolver_check(locked, officer)
        locked.status = ScreeningHit.Status.CLEARED
        locked.resolved_by, locked.resolved_at = officer, timezone.now()
        locked.resolution_reason = reason
        locked.customer_fingerprint = customer_fingerprint(locked.customer)
        locked.entry_fingerprint = entry_fingerprint(locked.entry)
        stamp(locked, actor=officer, reason=f"cleared: {reason}"[:100]).save()
        return locked


def screening_hit_confirm(*, hit: ScreeningHit, officer: AbstractBaseUser, reason: str):
    """A true match: the customer's risk becomes high and approval is blocked.
    The customer's open case is re-rated; with none open, a review case opens."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": RESOLUTION_REASON_REQUIRED})
    with (
        refusals_recorded(
            actor=officer, action="confirm hit", customer=hit.customer, target=str(hit)
        ),
        transaction.atomic(),
    ):
        locked = ScreeningHit.objects.select_for_update().select_related("customer", "entry")
        locked = locked.get(pk=hit.pk)
        _resolver_check(locked, officer)
        locked.status = ScreeningHit.Status.CONFIRMED
        locked.resolved_by, locked.resolved_at = officer, timezone.now()
        locked.resolution_reason = reason
        stamp(locked, actor=officer, reason=f"confirmed: {reason}"[:100]).save()
        why = f"confirmed watch-list match: {locked.entry.list_name} {locked.entry.reference}"
        open_case = KycCase.objects.filter(
            customer=locked.customer, status__in=KycCase.OPEN
        ).first()
        if open_case is not None:
            kyc_case_risk_refresh(case=open_case, actor=officer, reason=why[:100])
        else:
            kyc_event_review_open(
                customer=locked.customer,
                actor=system_actor(),
                reason=system_reason(f"review after a {why}")[:100],
            )
        return locked


# Importing a list ------------------------------------------------------------

COLUMNS = ("name", "aliases", "date_of_birth", "country", "list_name", "reference")
REQUIRED_VALUES = ("name", "list_name", "reference")
ALIAS_SEPARATORS = (";", "|")

FILE_EMPTY = "The file is empty."
FILE_NOT_UTF8 = "The file is not UTF-8 text: save it as “CSV UTF-8” and try again."
FILE_TOO_LARGE = "The file is {size:.1f} MB; a watch list may be at most {limit} MB."
FILE_NOT_CSV = "The file could not be read as CSV: {error}."
FILE_NO_ROWS = "The file has a header but no rows."
MISSING_COLUMNS = "The file has no {columns} column{s}. The columns are: {expected}."
VALUE_REQUIRED = "Row {row}, column {column}: a value is required."
BAD_DATE = (
    "Row {row}, column date_of_birth: “{value}” is not a date; use YYYY-MM-DD, or YYYY when "
    "only the year is known."
)
BAD_COUNTRY = "Row {row}, column country: “{value}” is not an ISO 3166 country code or name."
DUPLICATE_REFERENCE = (
    "Row {row}, column reference: {reference} is already on row {first} for list {list_name}."
)
TOO_LONG = "Row {row}, column {column}: at most {limit} characters."
MAX_ERRORS_SHOWN = 50


class WatchListFileError(ValidationError):
    """The file was refused as a whole; `messages` name the row and column of each problem."""


@dataclass
class WatchListRow:
    row: int
    name: str
    aliases: list[str]
    date_of_birth: datetime.date | None
    birth_year: int | None
    country: str
    list_name: str
    reference: str
    raw: dict = field(default_factory=dict, repr=False)


def _parse_birth(value: str, row: int, errors: list[str]):
    if not value:
        return None, None
    if len(value) == 4 and value.isdigit():
        return None, int(value)
    try:
        day = datetime.date.fromisoformat(value)
    except ValueError:
        errors.append(BAD_DATE.format(row=row, value=value))
        return None, None
    return day, day.year


def _parse_country(value: str, row: int, errors: list[str]) -> str:
    if not value:
        return ""
    code = countries.alpha2(value) or countries.by_name(value)
    if not code:
        errors.append(BAD_COUNTRY.format(row=row, value=value))
        return ""
    return code


def watchlist_csv_parse(content: bytes) -> list[WatchListRow]:
    """Every row of a watch-list CSV, or WatchListFileError listing every problem
    with its row (the header is row 1) and column."""
    limit = settings.CIM_WATCHLIST_MAX_MB
    if len(content) > limit * 1024 * 1024:
        raise WatchListFileError([FILE_TOO_LARGE.format(size=len(content) / 2**20, limit=limit)])
    if not content.strip():
        raise WatchListFileError([FILE_EMPTY])
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise WatchListFileError([FILE_NOT_UTF8]) from None
    first_line = text.splitlines()[0]
    delimiter = max(",;\t", key=first_line.count)
    try:
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        header = [column.strip().lower() for column in next(reader)]
        records = list(reader)
    except csv.Error as error:
        raise WatchListFileError([FILE_NOT_CSV.format(error=error)]) from None
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        raise WatchListFileError(
            [
                MISSING_COLUMNS.format(
                    columns=", ".join(missing),
                    s="s" if len(missing) > 1 else "",
                    expected=", ".join(COLUMNS),
                )
            ]
        )
    position = {column: header.index(column) for column in COLUMNS}
    errors: list[str] = []
    rows: list[WatchListRow] = []
    first_seen: dict[tuple[str, str], int] = {}
    for number, record in enumerate(records, start=2):
        if not any(cell.strip() for cell in record):
            continue
        cells = {
            column: (record[index].strip() if index < len(record) else "")
            for column, index in position.items()
        }
        for column in REQUIRED_VALUES:
            if not cells[column]:
                errors.append(VALUE_REQUIRED.format(row=number, column=column))
        for column, limit_chars in (("name", 255), ("list_name", 100), ("reference", 100)):
            if len(cells[column]) > limit_chars:
                errors.append(TOO_LONG.format(row=number, column=column, limit=limit_chars))
        aliases_text = cells["aliases"]
        for separator in ALIAS_SEPARATORS[1:]:
            aliases_text = aliases_text.replace(separator, ALIAS_SEPARATORS[0])
        aliases = [alias.strip()[:255] for alias in aliases_text.split(";") if alias.strip()]
        dob, year = _parse_birth(cells["date_of_birth"], number, errors)
        country = _parse_country(cells["country"], number, errors)
        key = (cells["list_name"], cells["reference"])
        if all(key) and key in first_seen:
            errors.append(
                DUPLICATE_REFERENCE.format(
                    row=number, reference=key[1], first=first_seen[key], list_name=key[0]
                )
            )
        first_seen.setdefault(key, number)
        rows.append(
            WatchListRow(
                row=number,
                name=cells["name"],
                aliases=aliases,
                date_of_birth=dob,
                birth_year=year,
                country=country,
                list_name=cells["list_name"],
                reference=cells["reference"],
                raw=cells,
            )
        )
    if errors:
        shown = errors[:MAX_ERRORS_SHOWN]
        if len(errors) > MAX_ERRORS_SHOWN:
            shown.append(f"… and {len(errors) - MAX_ERRORS_SHOWN} more problems.")
        raise WatchListFileError(shown)
    if not rows:
        raise WatchListFileError([FILE_NO_ROWS])
    return rows


def watchlist_import(
    *, actor: AbstractBaseUser, file_name: str, content: bytes, complete: bool = False
) -> WatchListImport:
    """Import a watch-list CSV, all or nothing: any problem refuses the whole file
    and changes nothing. Entries are matched on (list name, reference); with
    `complete`, entries of the same lists missing from the file are
    deactivated. New and changed entries are screened against every customer
    by a task once the import commits."""
    with refusals_recorded(actor=actor, action="import watch list", target=file_name):
        names = set(actor.groups.values_list("name", flat=True))
        if roles.ADMINISTRATOR in names or not actor.has_perm("compliance.manage_watchlist"):
            raise NotAllowed(CANNOT_IMPORT)
    rows = watchlist_csv_parse(content)
    reason = f"watch-list import: {file_name}"[:100]
    now = timezone.now()
    with transaction.atomic():
        batch = WatchListImport.objects.create(
            file_name=file_name[:255], imported_by=actor, rows=len(rows)
        )
        lists = {row.list_name for row in rows}
        existing = {
            (entry.list_name, entry.reference): entry
            for entry in WatchListEntry.objects.filter(list_name__in=lists)
        }
        touched: list[int] = []
        for row in rows:
            values = {
                "name": row.name,
                "aliases": row.aliases,
                "date_of_birth": row.date_of_birth,
                "birth_year": row.birth_year,
                "country": row.country,
                "active": True,
            }
            entry = existing.pop((row.list_name, row.reference), None)
            if entry is None:
                entry = WatchListEntry(list_name=row.list_name, reference=row.reference, **values)
                batch.created += 1
            elif all(
                (str(getattr(entry, name) or "") if name == "country" else getattr(entry, name))
                == value
                for name, value in values.items()
            ):
                batch.unchanged += 1
                continue
            else:
                for name, value in values.items():
                    setattr(entry, name, value)
                batch.updated += 1
            entry.updated_at, entry.last_import = now, batch
            stamp(entry, actor=actor, reason=reason).save()
            touched.append(entry.pk)
        if complete:
            for entry in existing.values():
                if entry.active:
                    entry.active, entry.updated_at = False, now
                    stamp(entry, actor=actor, reason=f"not in {file_name}"[:100]).save()
                    batch.deactivated += 1
        watchlist_index_refresh(touched)
        batch.save()
        from .tasks import screening_watchlist_import

        screening_watchlist_import.delay_on_commit(batch.pk)
    return batch


def watchlist_import_screen(*, batch: WatchListImport, actor) -> int:
    """Screen the entries a list import created or changed against every customer."""
    raised = entries_screen(
        entries=WatchListEntry.objects.filter(last_import=batch, active=True).order_by("pk"),
        actor=actor,
        reason=system_reason(f"screening after watch-list import {batch.pk}")[:100],
    )
    WatchListImport.objects.filter(pk=batch.pk).update(hits_raised=raised)
    return raised
