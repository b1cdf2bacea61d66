"""bench pages: how fast staff get the pages they live in, at a million customers.

Measures, in-process with Django's test client logged in as a Staff user (so
the full middleware, visibility rules, templates and queries run, but no
network or web server), the server-side time of:

- the customer 360 page of a customer with 5,000 interactions and of one with
  10, and the number of queries each takes (they must be the same);
- "load more" on the large customer's timeline, following the next-page link
  each htmx partial carries;
- search by a misspelt name, an email in another case, a phone in national and
  in 00-international format, and a source external id, each with values taken
  from the seeded data;
- the customer list's first page and pages further on (`?after=`).

Each figure is the 50th/95th percentile of --runs requests after --warmup
unmeasured ones. See cim/bench/seed.py for the data and when it is reseeded.
"""

from __future__ import annotations

import html
import random
import re
from argparse import ArgumentParser
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.core.management.base import CommandError
from django.urls import reverse

from .common import Log, PageTimer, bench_client, bench_staff_user, ms, percentile, summary
from .seed import SOURCE, BenchData, bench_data_obtain

HELP = (
    "Customer 360, timeline, search and list timings at scale. Seeds --customers and "
    "--interactions bench rows (wiping the database's customer data, which must be empty "
    "or bench data), or with --reuse measures the bench data already there."
)
HTMX = {"HX-Request": "true"}
# What the pages must achieve (milliseconds, p95) at 1M customers / 10M interactions.
TARGET_C360_MS = 50
TARGET_C360_QUERIES = 20
TARGET_SEARCH_MS = 100
TARGET_LIST_MS = 50
SEARCH_TYPES = ("name_typo", "email", "phone", "phone_00", "external_id")
# A vowel swap keeps a word's metaphone key as long as the vowel is not the first letter.
_VOWEL_SWAP = str.maketrans("aeiouy", "eayoui")
_NEXT_PAGE = re.compile(r'hx-get="([^"]*\?before=[^"]*)"')


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--customers", type=int, default=1_000_000, help="default 1,000,000")
    parser.add_argument("--interactions", type=int, default=10_000_000, help="default 10,000,000")
    parser.add_argument("--runs", type=int, default=50, help="measured requests per figure")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured requests first")
    parser.add_argument("--seed", type=int, default=42, help="random seed of the data")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help=(
            "measure the bench data already in the database (--customers and --interactions "
            "are then ignored) instead of reseeding it; seeds if there is none"
        ),
    )


def run(*, options: dict[str, Any], log: Log) -> dict[str, Any]:
    runs, warmup = options["runs"], options["warmup"]
    if runs < 1 or warmup < 0:
        raise CommandError("--runs must be at least 1 and --warmup 0 or more.")
    data, seed_s = bench_data_obtain(options=options, log=log)
    rng = random.Random(options["seed"])
    queries = _search_queries(data=data, count=runs + warmup, rng=rng)
    after_cursors = _list_cursors(data=data, count=runs + warmup, rng=rng)
    user = bench_staff_user()
    figures: dict[str, Any] = {
        "customers": data.customers,
        "interactions": data.interactions,
        "large_interactions": data.large_interactions,
        "runs": runs,
        "reused": seed_s is None,
        "seed_s": seed_s,
    }
    with bench_client(user=user) as client:
        timer = PageTimer(client=client)
        figures |= _customer_360(timer=timer, data=data, runs=runs, warmup=warmup, log=log)
        figures |= _timeline(timer=timer, data=data, runs=runs, warmup=warmup, log=log)
        figures |= _search(timer=timer, queries=queries, warmup=warmup, log=log)
        figures |= _listing(timer=timer, cursors=after_cursors, runs=runs, warmup=warmup, log=log)
    figures["targets_missed"] = _targets_missed(figures)
    return figures


def _customer_360(
    *, timer: PageTimer, data: BenchData, runs: int, warmup: int, log: Log
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for label, pk, prefix in (
        ("large", data.large_id, "c360"),
        ("small", data.small_id, "c360_small"),
    ):
        path = reverse("customers:detail", args=[pk])
        samples = timer.run([path] * runs, warmup=[path] * warmup)
        figures[f"{prefix}_p50_ms"] = ms(percentile(samples, 50))
        figures[f"{prefix}_p95_ms"] = ms(percentile(samples, 95))
        figures[f"c360_queries_{label}"] = timer.queries(path)
        log(
            f"360 {label}: p50 {figures[f'{prefix}_p50_ms']} ms, "
            f"p95 {figures[f'{prefix}_p95_ms']} ms, {figures[f'c360_queries_{label}']} queries"
        )
    return figures


def _next_page(content: bytes) -> str | None:
    found = _NEXT_PAGE.search(content.decode())
    return html.unescape(found.group(1)) if found else None


def _timeline(
    *, timer: PageTimer, data: BenchData, runs: int, warmup: int, log: Log
) -> dict[str, Any]:
    """Load more, page after page, down the large customer's timeline, as htmx would:
    each request is the next-page link of the partial before it."""
    _, content = timer.get(reverse("customers:detail", args=[data.large_id]))
    path = _next_page(content)
    samples: list[float] = []
    query_count = None
    for number in range(warmup + runs):
        if path is None:
            break
        elapsed, content = timer.get(path, headers=HTMX)
        if number >= warmup:
            samples.append(elapsed)
        if query_count is None and number >= warmup:
            query_count = timer.queries(path, headers=HTMX)
        path = _next_page(content)
    if not samples:
        raise CommandError("The large customer's timeline has no second page to load.")
    log(
        f"timeline load more: {len(samples)} pages, p50 {ms(percentile(samples, 50))} ms, "
        f"p95 {ms(percentile(samples, 95))} ms, {query_count} queries"
    )
    return {
        "timeline_p50_ms": ms(percentile(samples, 50)),
        "timeline_p95_ms": ms(percentile(samples, 95)),
        "timeline_pages": len(samples),
        "timeline_queries": query_count,
    }


@dataclass(frozen=True)
class _Query:
    text: str
    customer_id: int


def _typo(word: str) -> str | None:
    """The word with one inner vowel swapped ("Smith" -> "Smyth"), if that keeps its
    sound, so the phonetic search is what must find it."""
    from customers.search import fold, phonetic_key

    folded = fold(word)
    for position in range(1, len(word)):
        swapped = word[position].translate(_VOWEL_SWAP)
        if swapped == word[position]:
            continue
        candidate = word[:position] + swapped + word[position + 1 :]
        if fold(candidate) != folded and phonetic_key(fold(candidate)) == phonetic_key(folded):
            return candidate
    return None


def _name_typo(first_name: str, last_name: str) -> str | None:
    """ "Jon Smyth"-style: the longest word of the surname misspelt, and the first
    name too where a sound-alike spelling exists."""
    surname = last_name.split()
    longest = max(range(len(surname)), key=lambda i: len(surname[i]))
    misspelt = _typo(surname[longest])
    if misspelt is None:
        return None
    surname[longest] = misspelt
    given = first_name.split()
    given[0] = _typo(given[0]) or given[0]
    return " ".join([*given, *surname])


def _sample_ids(*, data: BenchData, count: int, rng: random.Random) -> list[int]:
    # Bench customers have consecutive ids from the small one on.
    last = data.small_id + data.customers - 1
    return rng.sample(range(data.small_id + 2, last + 1), min(count, data.customers - 2))


def _search_queries(*, data: BenchData, count: int, rng: random.Random) -> dict[str, list[_Query]]:
    """`count` queries per search type, each built from a different visible customer."""
    import phonenumbers

    from customers.models import Customer, EmailAddress, PhoneNumber, SourceIdentifier

    ids = _sample_ids(data=data, count=count * 12, rng=rng)
    people = list(
        Customer.objects.filter(pk__in=ids, restricted=False, kind=Customer.Kind.PERSON)
        .order_by("pk")
        .values_list("pk", "first_name", "last_name", "country")
    )
    rng.shuffle(people)
    emails = dict(
        EmailAddress.objects.filter(customer_id__in=ids).values_list("customer_id", "email")
    )
    phones = dict(
        PhoneNumber.objects.filter(customer_id__in=ids).values_list("customer_id", "number")
    )
    external_ids = dict(
        SourceIdentifier.objects.filter(customer_id__in=ids, source=SOURCE).values_list(
            "customer_id", "external_id"
        )
    )
    queries: dict[str, list[_Query]] = {kind: [] for kind in SEARCH_TYPES}

    def add(kind: str, text: str | None, pk: int) -> None:
        if text and len(queries[kind]) < count:
            queries[kind].append(_Query(text=text, customer_id=pk))

    for pk, first_name, last_name, country in people:
        add("name_typo", _name_typo(first_name, last_name), pk)
        email = emails.get(pk, "")
        # Another case than stored: what someone reading it off a form types.
        add("email", email.upper() if email != email.upper() else email.lower(), pk)
        number = phones.get(pk)
        if number:
            parsed = phonenumbers.parse(number)
            if country == "GB":
                # "020 7946 0958": how a UK caller says their own number.
                national = phonenumbers.format_number(
                    parsed, phonenumbers.PhoneNumberFormat.NATIONAL
                )
                add("phone", national, pk)
            else:
                international = phonenumbers.format_number(
                    parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL
                )
                add("phone_00", "00" + international.removeprefix("+"), pk)
        add("external_id", external_ids.get(pk), pk)
    short = [kind for kind, found in queries.items() if not found]
    if short:
        raise CommandError(f"No seeded customer to build a {', '.join(short)} search from.")
    return queries


def _list_cursors(*, data: BenchData, count: int, rng: random.Random) -> list[str]:
    """`?after=` cursors at random places in the A-Z list, as "Next" links carry them."""
    from customers.models import Customer

    ids = _sample_ids(data=data, count=count * 2, rng=rng)
    rows = Customer.objects.filter(pk__in=ids, restricted=False).values_list("search_name", "pk")
    return [f"{name}|{pk}" for name, pk in rows][:count]


def _search(
    *, timer: PageTimer, queries: dict[str, list[_Query]], warmup: int, log: Log
) -> dict[str, Any]:
    list_path = reverse("customers:list")
    p50, p95, query_counts, found = {}, {}, {}, {}
    for kind, planned in queries.items():
        paths = [f"{list_path}?{urlencode({'q': query.text})}" for query in planned]
        measured = planned[warmup:] or planned
        for path in paths[:warmup]:
            timer.get(path)
        responses = [timer.get(path) for path in paths[-len(measured) :]]
        stats = summary([elapsed for elapsed, _ in responses])
        p50[kind], p95[kind] = stats["p50"], stats["p95"]
        query_counts[kind] = timer.queries(paths[-1])
        # Whether the customer the query was built from is on the first result page:
        # a timing of a search that finds nothing would flatter the page.
        hits = sum(
            f'href="{reverse("customers:detail", args=[query.customer_id])}"' in content.decode()
            for query, (_, content) in zip(measured, responses, strict=True)
        )
        found[kind] = round(hits / len(measured), 2)
        log(
            f"search {kind} (e.g. {planned[-1].text!r}): p50 {p50[kind]} ms, p95 {p95[kind]} ms, "
            f"{query_counts[kind]} queries, target on page 1 for {found[kind]:.0%}"
        )
    return {
        "search_p50_ms": p50,
        "search_p95_ms": p95,
        "search_queries": query_counts,
        "search_found": found,
    }


def _listing(
    *, timer: PageTimer, cursors: list[str], runs: int, warmup: int, log: Log
) -> dict[str, Any]:
    list_path = reverse("customers:list")
    first = timer.run([list_path] * runs, warmup=[list_path] * warmup)
    paths = [f"{list_path}?{urlencode({'after': cursor})}" for cursor in cursors]
    after = timer.run(paths[warmup:] or paths, warmup=paths[:warmup])
    figures = {
        "list_first_p95_ms": ms(percentile(first, 95)),
        "list_after_p95_ms": ms(percentile(after, 95)),
        # The list target holds for every page, so the figure is the worse of the two.
        "list_p50_ms": max(ms(percentile(first, 50)), ms(percentile(after, 50))),
        "list_p95_ms": max(ms(percentile(first, 95)), ms(percentile(after, 95))),
        "list_queries": timer.queries(paths[-1]),
    }
    log(
        f"list: first page p95 {figures['list_first_p95_ms']} ms, ?after= pages p95 "
        f"{figures['list_after_p95_ms']} ms, {figures['list_queries']} queries"
    )
    return figures


def _targets_missed(figures: dict[str, Any]) -> list[str]:
    missed = []
    if max(figures["c360_p95_ms"], figures["c360_small_p95_ms"]) > TARGET_C360_MS:
        missed.append(f"c360 p95 > {TARGET_C360_MS} ms")
    small, large = figures["c360_queries_small"], figures["c360_queries_large"]
    if small != large or large > TARGET_C360_QUERIES:
        missed.append(f"c360 queries small {small} / large {large} (same, <= 20)")
    missed += [
        f"search {kind} p95 > {TARGET_SEARCH_MS} ms"
        for kind, value in figures["search_p95_ms"].items()
        if value > TARGET_SEARCH_MS
    ]
    if figures["list_p95_ms"] > TARGET_LIST_MS:
        missed.append(f"list p95 > {TARGET_LIST_MS} ms")
    return missed
