"""bench dedupe: quality and speed of duplicate detection on generated customers.

The generator (faker name, street and town pools in eight locales, drawn with a
skew so common names are common) makes --records customers of which some are
corrupted copies of others, with the truth known:

- duplicates: typos (substitution, insertion, deletion, transposed letters),
  nicknames, swapped first and last names, missing e-mail, phone, birth date
  or address, e-mails in other letter cases or with Gmail dots, phones written
  in national format (normalised to E.164 on the way in, as the import does),
  abbreviated street types, changed surnames (with a new e-mail), birth-date
  typos and day/month swaps, moves (new address and phone);
- households (not duplicates): two to five people sharing a surname and an
  address, often a landline, sometimes a family e-mail, each with their own
  first name and birth date; some sons carry their father's first name.

The customers are loaded with COPY (cim.bulk.RowWriter), a full scan runs in
this process (duplicate_scan_run: the same chunks the workers run), and the
candidates at the default threshold are compared with the truth: pairwise
precision, recall and F1, the precision after joining candidates into
clusters (connected components, not through the pairs a scan held apart:
duplicates.clusters; held_apart counts those, held_apart_true the true pairs
among them), and the share of true pairs that share a
blocking key. Then 1,000 new customers (half of them duplicates of existing
ones) are added and an incremental scan runs, and the create-time check
(likely_matches) is timed on --checks records. peak_mb is this process's peak
resident memory.

The database's customers must be empty or bench data: it wipes them.
"""

from __future__ import annotations

import gc
import random
import resource
import string
import time
from argparse import ArgumentParser
from datetime import UTC, date, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.test.utils import override_settings

from .common import Log, bench_staff_user, peak_rss_mb, percentile

HELP = (
    "Duplicate detection: generate --records customers with known duplicates and "
    "households, run a full scan and an incremental one, report precision, recall, "
    "F1, blocking recall, pairs compared, timings and peak memory. Wipes the customers "
    "of the database, which must be empty or bench data."
)
SOURCE = "bench-dedupe"
BENCH_SOURCES = ("bench", "bench-import", "bench-xlsx", SOURCE)
FOREIGN_DATA = (
    "This database holds {count} customer(s) that are not bench data; the bench wipes "
    "customers, so it refuses to run here. Point DATABASE_URL at an empty database."
)
LOCALES = {
    "GB": ("en_GB", "+44", ("gmail.com", "yahoo.co.uk", "btinternet.com", "outlook.com")),
    "US": ("en_US", "+1", ("gmail.com", "yahoo.com", "hotmail.com", "aol.com")),
    "DE": ("de_DE", "+49", ("gmail.com", "web.de", "gmx.de", "t-online.de")),
    "FR": ("fr_FR", "+33", ("gmail.com", "orange.fr", "free.fr", "laposte.net")),
    "ES": ("es_ES", "+34", ("gmail.com", "hotmail.es", "yahoo.es", "telefonica.net")),
    "IT": ("it_IT", "+39", ("gmail.com", "libero.it", "virgilio.it", "tiscali.it")),
    "NL": ("nl_NL", "+31", ("gmail.com", "ziggo.nl", "kpnmail.nl", "hotmail.nl")),
    "PL": ("pl_PL", "+48", ("gmail.com", "wp.pl", "onet.pl", "interia.pl")),
}
# The generator's own short forms: partly the matcher's table, partly not
# (the matcher must cope with nicknames it does not know through fuzziness).
# A word table reads best packed, several pairs a line.
# fmt: off
GENERATOR_NICKNAMES = {
    "William": "Bill", "Robert": "Bob", "Elizabeth": "Liz", "Margaret": "Peggy",
    "James": "Jim", "Michael": "Mike", "Thomas": "Tom", "Richard": "Rick",
    "Katherine": "Kate", "Jennifer": "Jenny", "Joseph": "Joe", "Daniel": "Dan",
    "Christopher": "Chris", "Alexander": "Alex", "Nicholas": "Nick", "Patricia": "Trish",
    "Johannes": "Hans", "Giuseppe": "Beppe", "Francisco": "Paco", "Katarzyna": "Kasia",
    "Samantha": "Sam", "Benjamin": "Ben", "Matthew": "Matt", "Anthony": "Tony",
}
# fmt: on
STREET_ABBREVIATIONS = (
    ("Street", "St"),
    ("Road", "Rd"),
    ("Avenue", "Ave"),
    ("Lane", "Ln"),
    ("Drive", "Dr"),
    ("straße", "str."),
    ("Straße", "Str."),
    ("Place", "Pl"),
    ("Court", "Ct"),
)
POOL_FIRST, POOL_LAST, POOL_STREET, POOL_TOWN = 400, 1500, 1500, 1500
DUPLICATE_SHARE = 0.12  # of entities, that have one or more extra records
SECOND_DUPLICATE_SHARE = 0.2  # of those, that have two
HOUSEHOLD_SHARE = 0.25  # of entities, that live with others
INCREMENTAL_RECORDS = 1000


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--records", type=int, default=100_000, help="customers (100,000)")
    parser.add_argument("--checks", type=int, default=200, help="create-time checks timed")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="processes sharing the scan's chunks, as Celery workers would (2)",
    )
    parser.add_argument(
        "--profile",
        default="",
        help="write a cProfile of the full scan here (runs it in this process only)",
    )


# -- generation ------------------------------------------------------------------


class Pools:
    def __init__(self, rng: random.Random) -> None:
        from faker import Faker

        self.by_country: dict[str, dict[str, list]] = {}
        for country, (locale, _, _) in LOCALES.items():
            fake = Faker(locale)
            fake.seed_instance(rng.randrange(1 << 30))
            self.by_country[country] = {
                "male": _unique(fake.first_name_male, POOL_FIRST),
                "female": _unique(fake.first_name_female, POOL_FIRST),
                "last": _unique(fake.last_name, POOL_LAST),
                "street": _unique(fake.street_name, POOL_STREET),
                "town": [(fake.city(), fake.postcode()) for _ in range(POOL_TOWN)],
            }
        self.countries = list(LOCALES)
        self.weights = [30, 20, 12, 10, 8, 8, 6, 6]
        # The mailboxes handed out so far (as the matcher normalises them): a
        # provider gives a mailbox to one owner, so a second John Smith gets
        # john.smith7@..., and two Smith families two family mailboxes.
        self.mailboxes: set[str] = set()


def _unique(make, count: int) -> list[str]:
    seen: dict[str, None] = {}
    for _ in range(count * 4):
        seen.setdefault(make(), None)
        if len(seen) >= count:
            break
    return list(seen)


def _skewed(rng: random.Random, values: list):
    """A draw where the first values are much commoner (a Zipf-like skew)."""
    return values[min(len(values) - 1, int(len(values) * rng.random() ** 2.2))]


def _ascii(text: str) -> str:
    from anyascii import anyascii

    return "".join(ch for ch in anyascii(text).lower() if ch.isalnum())


def _phone(rng: random.Random, prefix: str, landline: bool = False) -> str:
    if prefix == "+1":
        return "+1" + str(rng.randint(201, 989)) + f"{rng.randrange(10**7):07d}"
    lead = {
        "+44": "20" if landline else "7",
        "+49": "30" if landline else "15",
        "+33": "1" if landline else "6",
    }.get(prefix, "2" if landline else "3")
    return prefix + lead + "".join(rng.choice(string.digits) for _ in range(9 - len(lead) + 1))


def _dob(rng: random.Random, low: int = 1940, high: int = 2005) -> date:
    return date(rng.randint(low, high), rng.randint(1, 12), rng.randint(1, 28))


def _street(rng: random.Random, country: str, name: str) -> str:
    number = rng.randint(1, 250)
    if country in ("DE", "NL", "PL", "IT", "ES"):
        return f"{name} {number}"
    if country == "FR":
        return f"{number} {name}"
    suffix = rng.choice(("Street", "Road", "Avenue", "Lane", "Drive", "Close"))
    if name.split()[-1] in (
        "Street",
        "Road",
        "Avenue",
        "Lane",
        "Drive",
        "Close",
        "Cliffs",
        "Way",
        "Square",
        "Place",
        "Court",
        "Mews",
        "Green",
    ):
        return f"{number} {name}"
    return f"{number} {name} {suffix}"


def _person(rng: random.Random, pools: Pools, *, country: str | None = None) -> dict:
    country = country or rng.choices(pools.countries, pools.weights)[0]
    pool = pools.by_country[country]
    _, prefix, domains = LOCALES[country]
    gender = rng.choice(("male", "female"))
    first = _skewed(rng, pool[gender])
    last = _skewed(rng, pool["last"])
    town, postcode = rng.choice(pool["town"])
    record = {
        "country": country,
        "gender": gender,
        "first_name": first,
        "last_name": last,
        "date_of_birth": _dob(rng),
        "street": _street(rng, country, rng.choice(pool["street"])),
        "city": town,
        "postcode": postcode,
        "email": "",
        "phone": "",
        "national_id": "",
    }
    if rng.random() < 0.8:
        record["email"] = _email(rng, pools, first, last, domains)
    if rng.random() < 0.85:
        record["phone"] = _phone(rng, prefix)
    if rng.random() < 0.3:
        record["national_id"] = "".join(
            rng.choice(string.ascii_uppercase + string.digits) for _ in range(9)
        )
    return record


def _email(rng: random.Random, pools: Pools, first: str, last: str, domains) -> str:
    style = rng.randrange(4)
    f, last_ascii = _ascii(first), _ascii(last)
    local = (
        f"{f}.{last_ascii}",
        f"{f[0]}{last_ascii}",
        f"{f}{last_ascii}{rng.randint(1, 99)}",
        f"{last_ascii}.{f}{rng.randint(1, 999)}",
    )[style]
    return _mailbox(rng, pools, local, rng.choice(domains))


def _mailbox(rng: random.Random, pools: Pools, local: str, domain: str) -> str:
    """local@domain, or with a number added when that mailbox is someone else's."""
    from duplicates.matching.normalize import email_normal

    address = f"{local}@{domain}"
    while (taken := email_normal(address)) in pools.mailboxes:
        address = f"{local}{rng.randint(1, 9999)}@{domain}"
    pools.mailboxes.add(taken)
    return address


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 3:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(4)
    letter = rng.choice(string.ascii_lowercase)
    if kind == 0:
        return word[:i] + letter + word[i + 1 :]
    if kind == 1:
        return word[:i] + letter + word[i:]
    if kind == 2:
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def _corrupt(rng: random.Random, pools: Pools, original: dict) -> dict:
    """A duplicate: the same person as entered again, somewhere else, differently."""
    r = dict(original)
    domains = LOCALES[r["country"]][2]
    corruptions = rng.sample(
        [
            "typo_first",
            "typo_last",
            "nickname",
            "swap",
            "drop_email",
            "drop_phone",
            "drop_dob",
            "drop_address",
            "email_case",
            "new_email",
            "phone_format",
            "abbreviate",
            "surname_change",
            "dob_typo",
            "dob_swap",
            "move",
            "case",
        ],
        k=rng.choice((1, 2, 2, 3)),
    )
    # The truth about what was done, for the bench's breakdown of misses.
    r["corruptions"] = tuple(sorted(corruptions))
    for corruption in corruptions:
        if corruption == "typo_first":
            r["first_name"] = _typo(rng, r["first_name"])
        elif corruption == "typo_last":
            r["last_name"] = _typo(rng, r["last_name"])
        elif corruption == "nickname":
            r["first_name"] = GENERATOR_NICKNAMES.get(r["first_name"], _typo(rng, r["first_name"]))
        elif corruption == "swap":
            r["first_name"], r["last_name"] = r["last_name"], r["first_name"]
        elif corruption == "drop_email":
            r["email"] = ""
        elif corruption == "drop_phone":
            r["phone"] = ""
        elif corruption == "drop_dob":
            r["date_of_birth"] = None
        elif corruption == "drop_address":
            r["street"] = r["postcode"] = r["city"] = ""
        elif corruption == "email_case" and r["email"]:
            local, _, domain = r["email"].partition("@")
            if domain == "gmail.com" and "." in local:
                r["email"] = local.replace(".", "") + "@googlemail.com"
            else:
                r["email"] = local.capitalize() + "@" + domain.upper()
        elif corruption == "new_email":
            r["email"] = _email(rng, pools, r["first_name"], r["last_name"], domains)
        elif corruption == "phone_format" and r["phone"]:
            r["phone_input"] = _national_format(r["phone"], r["country"])
        elif corruption == "abbreviate" and r["street"]:
            for long, short in STREET_ABBREVIATIONS:
                r["street"] = r["street"].replace(long, short)
            r["postcode"] = r["postcode"].replace(" ", "").lower()
        elif corruption == "surname_change":
            r["last_name"] = _skewed(rng, pools.by_country[r["country"]]["last"])
            if r["email"] and rng.random() < 0.5:
                r["email"] = _email(rng, pools, r["first_name"], r["last_name"], domains)
        elif corruption == "dob_typo" and r["date_of_birth"]:
            d = r["date_of_birth"]
            r["date_of_birth"] = d.replace(day=min(28, max(1, d.day + rng.choice((-1, 1, 10)))))
        elif corruption == "dob_swap" and r["date_of_birth"]:
            d = r["date_of_birth"]
            if d.day <= 12:
                r["date_of_birth"] = d.replace(month=d.day, day=d.month)
        elif corruption == "move":
            other = _person(rng, pools, country=r["country"])
            r.update({k: other[k] for k in ("street", "city", "postcode", "phone")})
        elif corruption == "case":
            r["first_name"], r["last_name"] = r["first_name"].upper(), r["last_name"].upper()
    return r


def _national_format(e164: str, country: str) -> str:
    import phonenumbers

    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def _household(rng: random.Random, pools: Pools, head: dict) -> list[dict]:
    """Other people at the head's address: same surname, own first name and birth date."""
    _, prefix, domains = LOCALES[head["country"]]
    landline = _phone(rng, prefix, landline=True) if rng.random() < 0.5 else ""
    family_email = (
        _mailbox(rng, pools, f"{_ascii(head['last_name'])}.family", rng.choice(domains))
        if rng.random() < 0.3
        else ""
    )
    if landline:
        head["phone"] = landline if rng.random() < 0.5 else head["phone"]
    if family_email and rng.random() < 0.5:
        head["email"] = family_email
    members = []
    used = {head["first_name"]}
    for _ in range(rng.choice((1, 1, 2, 3, 4))):
        member = _person(rng, pools, country=head["country"])
        junior = rng.random() < 0.05 and head["gender"] == "male"
        if junior:
            member["first_name"], member["gender"] = head["first_name"], "male"
        else:
            while member["first_name"] in used:
                member["first_name"] = _skewed(
                    rng, pools.by_country[head["country"]][member["gender"]]
                )
        used.add(member["first_name"])
        hy = head["date_of_birth"].year
        member["date_of_birth"] = _dob(rng, max(1930, hy - 40), min(2015, hy + 40))
        member.update(
            last_name=head["last_name"],
            street=head["street"],
            city=head["city"],
            postcode=head["postcode"],
        )
        if landline and rng.random() < 0.7:
            member["phone"] = landline
        if family_email and rng.random() < 0.6:
            member["email"] = family_email
        members.append(member)
    return members


def generate(
    *,
    count: int,
    rng: random.Random,
    pools: Pools,
    start_entity: int = 0,
    sources: list[dict] | None = None,
) -> list[dict]:
    """`count` records, each with "entity" (the truth: same entity = same person)."""
    records: list[dict] = []
    entity = start_entity
    while len(records) < count:
        if sources and rng.random() < 0.5:
            original = rng.choice(sources)
            duplicate = _corrupt(rng, pools, original)
            duplicate["entity"] = original["entity"]
            records.append(duplicate)
            continue
        head = _person(rng, pools)
        head["entity"] = entity
        entity += 1
        group = [head]
        if rng.random() < HOUSEHOLD_SHARE:
            for member in _household(rng, pools, head):
                member["entity"] = entity
                entity += 1
                group.append(member)
        for person in list(group):
            records.append(person)
            if rng.random() < DUPLICATE_SHARE:
                copies = 2 if rng.random() < SECOND_DUPLICATE_SHARE else 1
                for _ in range(copies):
                    records.append(_corrupt(rng, pools, person))
    rng.shuffle(records)
    return records[:count]


# -- loading ---------------------------------------------------------------------


def _wipe() -> None:
    from customers.models import Customer, SourceIdentifier

    foreign = Customer.objects.filter(
        ~Exists(SourceIdentifier.objects.filter(customer=OuterRef("pk"), source__in=BENCH_SOURCES))
    ).count()
    if foreign:
        raise CommandError(FOREIGN_DATA.format(count=foreign))
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE customers_customer, customers_historicalcustomer, "
            "duplicates_duplicatescan, duplicates_historicalduplicatecandidate CASCADE"
        )


def load(records: list[dict], *, offset: int) -> list[int]:
    """COPY the records in as customers with their contact points; their ids."""
    from cim.bulk import RowWriter
    from customers.models import (
        Customer,
        EmailAddress,
        PhoneNumber,
        PostalAddress,
        SourceIdentifier,
    )
    from customers.normalization import normalize_phone
    from customers.search import fold

    writer = RowWriter()
    now = datetime.now(UTC)
    with transaction.atomic():
        ids = writer.reserve_ids(Customer, len(records))
        customers, emails, phones, addresses, sources = [], [], [], [], []
        for index, (customer_id, r) in enumerate(zip(ids, records, strict=True)):
            display = f"{r['first_name']} {r['last_name']}".strip()
            customers.append(
                (
                    customer_id,
                    "person",
                    r["first_name"],
                    r["last_name"],
                    display,
                    fold(display),
                    r["date_of_birth"],
                    r["country"],
                    r["national_id"],
                    now,
                    now,
                )
            )
            if r["email"]:
                local, _, domain = r["email"].partition("@")
                emails.append((customer_id, f"{local}@{domain.lower()}", True, now))
            phone = r["phone"]
            if r.get("phone_input"):
                try:
                    phone = normalize_phone(r["phone_input"], r["country"])
                except ValidationError:  # a generated number the parser rejects
                    phone = r["phone"]
            if phone:
                phones.append((customer_id, phone, True, now))
            if r["street"]:
                addresses.append(
                    (customer_id, r["street"], r["city"], r["postcode"], r["country"], True, now)
                )
            sources.append((customer_id, SOURCE, f"D-{offset + index + 1:08d}", now))
        writer.insert(
            Customer,
            [
                "id",
                "kind",
                "first_name",
                "last_name",
                "display_name",
                "search_name",
                "date_of_birth",
                "country",
                "national_id",
                "created_at",
                "updated_at",
            ],
            customers,
        )
        writer.insert(EmailAddress, ["customer_id", "email", "is_primary", "created_at"], emails)
        writer.insert(PhoneNumber, ["customer_id", "number", "is_primary", "created_at"], phones)
        writer.insert(
            PostalAddress,
            ["customer_id", "street", "city", "postcode", "country", "is_primary", "created_at"],
            addresses,
        )
        writer.insert(
            SourceIdentifier, ["customer_id", "source", "external_id", "created_at"], sources
        )
        writer.insert_history(
            Customer, key="id", ids=ids, when=now, user_id=None, reason="system: bench dedupe"
        )
    return ids


# -- measuring -------------------------------------------------------------------


def _true_pairs(entity_of: dict[int, int]) -> set[tuple[int, int]]:
    by_entity: dict[int, list[int]] = {}
    for customer_id, entity in entity_of.items():
        by_entity.setdefault(entity, []).append(customer_id)
    pairs = set()
    for ids in by_entity.values():
        ids.sort()
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                pairs.add((a, b))
    return pairs


def _quality(entity_of: dict[int, int], threshold: float) -> dict[str, Any]:
    from duplicates.clusters import cluster_roots
    from duplicates.models import DuplicateCandidate

    rows = DuplicateCandidate.objects.filter(score__gte=threshold).values_list(
        "customer_a_id", "customer_b_id", "conflict"
    )
    found = {(a, b) for a, b, _ in rows}
    held = {(a, b) for a, b, conflict in rows if conflict}
    truth = _true_pairs(entity_of)
    hits = len(found & truth)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    # Clusters: connected components of the candidate pairs, as the review
    # page chains them: not through a pair held apart (duplicates.clusters),
    # which is reviewed as a pair of its own.
    members: dict[int, list[int]] = {}
    for x, root in cluster_roots(found - held).items():
        members.setdefault(root, []).append(x)
    cluster_pairs = cluster_true = 0
    for ids in [*members.values(), *(list(pair) for pair in held)]:
        cluster_pairs += len(ids) * (len(ids) - 1) // 2
        counts: dict[int, int] = {}
        for x in ids:
            counts[entity_of[x]] = counts.get(entity_of[x], 0) + 1
        cluster_true += sum(c * (c - 1) // 2 for c in counts.values())
    misses = truth - found
    false = found - truth
    return {
        "true_pairs": len(truth),
        "candidates": len(found),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "cluster_precision": round(cluster_true / cluster_pairs, 4) if cluster_pairs else 1.0,
        "held_apart": len(held),
        "held_apart_true": len(held & truth),
        "false_positives": len(false),
        "missed": len(misses),
        "_misses": misses,
        "_false": false,
    }


def _blocking_recall(entity_of: dict[int, int]) -> float:
    from duplicates.matching.blocking import blocked_together, record_keys
    from duplicates.matching.engine import profiles_load

    truth = _true_pairs(entity_of)
    ids = {i for pair in truth for i in pair}
    keys = {i: record_keys(r) for i, r in profiles_load(ids).items()}
    kept = sum(1 for a, b in truth if blocked_together(keys.get(a, ()), keys.get(b, ())))
    return round(kept / len(truth), 4) if truth else 1.0


def run(*, options: dict[str, Any], log: Log) -> dict[str, Any]:
    count = options["records"]
    if count < 100:
        raise CommandError("--records must be at least 100.")
    with override_settings(DEBUG=False):
        return _run(
            count=count,
            checks=options["checks"],
            seed=options["seed"],
            profile=options.get("profile") or "",
            workers=options["workers"],
            log=log,
        )


def _run(
    *, count: int, checks: int, seed: int, profile: str, workers: int, log: Log
) -> dict[str, Any]:
    from cim.audit import system_actor
    from duplicates.matching import DEFAULT_THRESHOLD, likely_matches
    from duplicates.models import DuplicateScan
    from duplicates.scanning import duplicate_scan_run

    rng = random.Random(seed)
    started = time.perf_counter()
    pools = Pools(rng)
    records = generate(count=count, rng=rng, pools=pools)
    generate_s = time.perf_counter() - started
    log(f"generated {len(records)} records in {generate_s:.1f} s")
    _wipe()
    system_actor()
    started = time.perf_counter()
    ids = load(records, offset=0)
    load_s = time.perf_counter() - started
    log(f"loaded in {load_s:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    entity_of = {customer_id: r["entity"] for customer_id, r in zip(ids, records, strict=True)}
    corrupted = {
        customer_id: r["corruptions"]
        for customer_id, r in zip(ids, records, strict=True)
        if r.get("corruptions")
    }
    # The scan's workers are forked from this process: they must not inherit
    # (and, by touching it, copy) the generated data. Only what the later
    # steps need is kept.
    count = len(records)
    next_entity = max(r["entity"] for r in records) + 1
    keep = set(rng.sample(range(count), min(count, INCREMENTAL_RECORDS + checks)))
    kept = {ids[i]: records[i] for i in keep}
    del records
    gc.collect()

    scan = DuplicateScan.objects.create(kind=DuplicateScan.Kind.FULL)
    started = time.perf_counter()
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        summary = profiler.runcall(duplicate_scan_run, scan)
        profiler.dump_stats(profile)
    else:
        summary = duplicate_scan_run(scan, workers=workers)
    scan_s = time.perf_counter() - started
    if summary["status"] != "completed":
        raise CommandError(f"The full scan ended {summary['status']}: {summary['error']}")
    log(f"full scan in {scan_s:.1f} s: {summary}")
    phases = scan_phases(scan.pk)
    log(f"phases {phases}")
    # Each forked worker is one worker (the figure to keep under 2 GB); this
    # process's own peak includes the generator's data.
    scan_peak = peak_rss_mb(resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    workers_peak = peak_rss_mb(resource.RUSAGE_CHILDREN)
    quality = _quality(entity_of, DEFAULT_THRESHOLD)
    blocking = _blocking_recall(entity_of)
    log(f"quality { ({k: v for k, v in quality.items() if not k.startswith('_')}) }")
    _log_examples(quality, log)
    misses = misses_explained(quality["_misses"], corrupted, scan.pk)
    log(f"misses {misses}")

    # Incremental: 1,000 new customers, half of them copies of existing ones.
    samples_kept = list(kept.values())
    known = [dict(r) for r in samples_kept[:INCREMENTAL_RECORDS]]
    new = generate(
        count=INCREMENTAL_RECORDS, rng=rng, pools=pools, start_entity=next_entity, sources=known
    )
    new_ids = load(new, offset=count)
    entity_of.update({i: r["entity"] for i, r in zip(new_ids, new, strict=True)})
    incremental = DuplicateScan.objects.create(kind=DuplicateScan.Kind.INCREMENTAL)
    started = time.perf_counter()
    incremental_summary = duplicate_scan_run(incremental, workers=workers)
    incremental_s = time.perf_counter() - started
    log(f"incremental scan in {incremental_s:.1f} s: {incremental_summary}")
    after = _quality(entity_of, DEFAULT_THRESHOLD)

    # The create-time check: a corrupted copy of an existing customer, typed in.
    user = bench_staff_user()
    samples = []
    for original in samples_kept[INCREMENTAL_RECORDS:] or samples_kept[:checks]:
        data = _corrupt(rng, pools, original)
        data["date_of_birth"] = (data["date_of_birth"] or "") and data["date_of_birth"].isoformat()
        started = time.perf_counter()
        likely_matches(user=user, data=data)
        samples.append(time.perf_counter() - started)
    return {
        "records": count,
        "true_pairs": quality["true_pairs"],
        "candidates": quality["candidates"],
        "precision": quality["precision"],
        "recall": quality["recall"],
        "f1": quality["f1"],
        "cluster_precision": quality["cluster_precision"],
        "held_apart": quality["held_apart"],
        "held_apart_true": quality["held_apart_true"],
        "blocking_recall": blocking,
        "misses": misses,
        "pairs_compared": summary["pairs_compared"],
        "generate_s": round(generate_s, 1),
        "load_s": round(load_s, 1),
        "scan_s": round(scan_s, 2),
        "scan_phases_s": phases,
        "workers": workers if not profile else 1,
        "scan_peak_mb": scan_peak,
        "scan_workers_peak_mb": workers_peak,
        "incremental_records": INCREMENTAL_RECORDS,
        "incremental_s": round(incremental_s, 2),
        "incremental_pairs_compared": incremental_summary["pairs_compared"],
        "after_incremental": {k: after[k] for k in ("precision", "recall", "f1")},
        "create_check_ms": {
            "p50": round(percentile(samples, 50) * 1000, 2),
            "p95": round(percentile(samples, 95) * 1000, 2),
        },
        "model": {
            "prior": round(scan.__class__.objects.get(pk=scan.pk).model["prior"], 4),
            "iterations": scan.__class__.objects.get(pk=scan.pk).model["iterations"],
        },
        "peak_mb": peak_rss_mb(resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN),
    }


def scan_phases(scan_id: int) -> dict[str, float]:
    """Wall seconds of a finished scan's phases, from its chunks' times: keys (the
    key index rebuilt), learn (from the last keys chunk to the first pairs chunk:
    the indexes built and EM), score (the pairs chunks, candidates stored)."""
    from django.db.models import Max, Min

    from duplicates.models import DuplicateScan, DuplicateScanChunk

    scan = DuplicateScan.objects.get(pk=scan_id)
    times = {
        row["phase"]: row
        for row in DuplicateScanChunk.objects.filter(scan_id=scan_id)
        .values("phase")
        .annotate(first=Min("claimed_at"), last=Max("finished_at"))
    }
    keys, pairs = times.get("keys"), times.get("pairs")
    if not (keys and pairs and scan.started_at and scan.finished_at):
        return {}
    return {
        "keys": round((keys["last"] - scan.started_at).total_seconds(), 2),
        "learn": round((pairs["first"] - keys["last"]).total_seconds(), 2),
        "score": round((scan.finished_at - pairs["first"]).total_seconds(), 2),
    }


def misses_explained(
    misses: set[tuple[int, int]], corrupted: dict[int, tuple], scan_id: int
) -> dict[str, Any]:
    """Why the true pairs were missed: no shared blocking key ("blocked"), a
    shared key but never compared (a large block's window: "windowed", seen
    as a pair that would score at or above the threshold), or compared and
    scored below it ("scored"), each by the
    corruptions the generator applied to the pair's two records (the
    commonest ten)."""
    from collections import Counter

    from duplicates.matching.blocking import blocked_together
    from duplicates.matching.compare import compare
    from duplicates.matching.engine import profiles_load
    from duplicates.matching.model import MatchModel
    from duplicates.models import DuplicateScan

    model = MatchModel.from_json(DuplicateScan.objects.get(pk=scan_id).model)
    profiles = profiles_load({i for pair in misses for i in pair})
    blocked: Counter = Counter()
    windowed: Counter = Counter()
    scored: Counter = Counter()
    patterns: Counter = Counter()
    for a, b in misses:
        ra, rb = profiles.get(a), profiles.get(b)
        if ra is None or rb is None:
            continue
        kind = "+".join(sorted({*corrupted.get(a, ()), *corrupted.get(b, ())})) or "none"
        if blocked_together(ra.keys, rb.keys):
            pattern = (
                (compare(ra, rb, model.common) if ra.id < rb.id else compare(rb, ra, model.common))
                if model is not None
                else None
            )
            if pattern is not None and model is not None:
                if model.score(pattern)[0] >= model.threshold:
                    windowed[kind] += 1
                    continue
                patterns[str(tuple(pattern))] += 1
            scored[kind] += 1
        else:
            blocked[kind] += 1
    return {
        "blocked": sum(blocked.values()),
        "windowed": sum(windowed.values()),
        "scored": sum(scored.values()),
        "blocked_by": dict(blocked.most_common(10)),
        "windowed_by": dict(windowed.most_common(10)),
        "scored_by": dict(scored.most_common(10)),
        "scored_patterns": dict(patterns.most_common(10)),
    }


def _log_examples(quality: dict, log: Log) -> None:
    """A few misses and false positives as the matcher saw them, for whoever tunes it."""
    from duplicates.matching.engine import profiles_load

    fields = (
        "first_shown",
        "last_shown",
        "dob",
        "emails",
        "phones",
        "house",
        "street",
        "postcode",
        "national_id",
    )
    for label, pairs in (("missed", quality["_misses"]), ("false", quality["_false"])):
        chosen = sorted(pairs)[:6]
        profiles = profiles_load({i for pair in chosen for i in pair})
        for a, b in chosen:
            ra, rb = profiles.get(a), profiles.get(b)
            if ra and rb:
                log(
                    f"{label}: "
                    + " | ".join(
                        f"{getattr(ra, f)} / {getattr(rb, f)}"
                        for f in fields
                        if getattr(ra, f) or getattr(rb, f)
                    )
                )
