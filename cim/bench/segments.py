"""bench segments: recomputing the value segments and rendering the two dashboards.

Seeds (or with --reuse keeps) the pages bench data (cim/bench/seed.py: customers,
contact points and interactions, about 70% of them priced purchases spread over
ten years), then measures:

- recompute_s: segments.services.segments_recompute over --window-days, the
  set-based INSERT ... SELECT the nightly task and the page's button run;
- snapshot_s: taking the daily quality snapshot;
- the server-side time of /, /segments/ and /quality/ as a plain Staff user
  (visibility rules applied), p50/p95 over --runs requests after --warmup;
  dashboard_p95_ms is the worst of the three pages;
- the same pages for a Data Steward granted GRANTED_CUSTOMERS restricted
  customers (guardian object permissions), the figures that must add those
  customers exactly: granted_<page>_p95_ms, and dashboard_granted_p95_ms the
  worst of them.
"""

from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import CommandError
from django.db import connection

from .common import Log, PageTimer, bench_client, bench_staff_user, ms, percentile
from .seed import bench_data_obtain

HELP = (
    "Segment recompute time and the /segments/ and /quality/ render times at scale. "
    "Seeds --customers and --interactions bench rows like `bench pages` (wiping the "
    "database's customer data, which must be empty or bench data), or with --reuse "
    "measures the bench data already there."
)
TARGET_RECOMPUTE_S = 60
TARGET_DASHBOARD_MS = 200
PAGES = (("home", "/"), ("segments", "/segments/"), ("quality", "/quality/"))
GRANTED_USERNAME = "bench-granted"
GRANTED_CUSTOMERS = 5


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--customers", type=int, default=1_000_000, help="default 1,000,000")
    parser.add_argument("--interactions", type=int, default=10_000_000, help="default 10,000,000")
    parser.add_argument("--window-days", type=int, default=365, help="revenue window, days")
    parser.add_argument("--runs", type=int, default=20, help="measured requests per page")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured requests first")
    parser.add_argument("--seed", type=int, default=42, help="random seed of the data")
    parser.add_argument(
        "--reuse", action="store_true", help="measure the bench data already in the database"
    )


def run(*, options: dict[str, Any], log: Log) -> dict[str, Any]:
    from cim.audit import system_actor
    from segments import services
    from segments.models import CustomerSegment

    runs, warmup = options["runs"], options["warmup"]
    if runs < 1 or warmup < 0:
        raise CommandError("--runs must be at least 1 and --warmup 0 or more.")
    if options["window_days"] < 1:
        raise CommandError("--window-days must be at least 1.")
    data, seed_s = bench_data_obtain(options=options, log=log)

    started = time.perf_counter()
    segmented = services.segments_recompute(
        actor=system_actor(), window_days=options["window_days"]
    )
    recompute_s = round(time.perf_counter() - started, 2)
    log(f"recompute: {segmented:,} customers in {recompute_s}s")
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {CustomerSegment._meta.db_table}")
    started = time.perf_counter()
    services.quality_snapshot_take()
    snapshot_s = round(time.perf_counter() - started, 2)
    log(f"quality snapshot in {snapshot_s}s")
    tiers = dict(CustomerSegment.objects.values_list("tier").annotate(n=_count()).order_by("tier"))

    figures: dict[str, Any] = {
        "customers": data.customers,
        "interactions": data.interactions,
        "window_days": options["window_days"],
        "reused": seed_s is None,
        "seed_s": seed_s,
        "recompute_s": recompute_s,
        "segmented": segmented,
        "tiers": tiers,
        "snapshot_s": snapshot_s,
        "runs": runs,
    }
    _pages_measure(figures, user=bench_staff_user(), prefix="", runs=runs, warmup=warmup, log=log)
    _pages_measure(
        figures, user=_granted_user(), prefix="granted_", runs=runs, warmup=warmup, log=log
    )
    figures["dashboard_p95_ms"] = max(figures[f"{name}_p95_ms"] for name, _ in PAGES)
    figures["dashboard_granted_p95_ms"] = max(
        figures[f"granted_{name}_p95_ms"] for name, _ in PAGES
    )
    missed = []
    if recompute_s > TARGET_RECOMPUTE_S:
        missed.append(f"recompute > {TARGET_RECOMPUTE_S} s")
    for prefix in ("", "granted_"):
        for name, _ in PAGES:
            if figures[f"{prefix}{name}_p95_ms"] > TARGET_DASHBOARD_MS:
                missed.append(f"{prefix}{name} p95 > {TARGET_DASHBOARD_MS} ms")
    figures["targets_missed"] = missed
    return figures


def _pages_measure(figures: dict, *, user, prefix: str, runs: int, warmup: int, log: Log) -> None:
    with bench_client(user=user) as client:
        timer = PageTimer(client=client)
        for name, path in PAGES:
            key = f"{prefix}{name}"
            samples = timer.run([path] * runs, warmup=[path] * warmup)
            figures[f"{key}_p50_ms"] = ms(percentile(samples, 50))
            figures[f"{key}_p95_ms"] = ms(percentile(samples, 95))
            figures[f"{key}_queries"] = timer.queries(path)
            log(
                f"{user.username} {path}: p50 {figures[f'{key}_p50_ms']} ms, "
                f"p95 {figures[f'{key}_p95_ms']} ms, {figures[f'{key}_queries']} queries"
            )


def _granted_user():
    """A Data Steward (so / shows the duplicate queue) granted the first
    GRANTED_CUSTOMERS restricted bench customers: a private-banking adviser."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from guardian.shortcuts import assign_perm

    from compliance.roles import DATA_STEWARD, STAFF
    from customers.models import Customer

    user, created = get_user_model().objects.get_or_create(
        username=GRANTED_USERNAME, defaults={"first_name": "Granted"}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    user.groups.add(*Group.objects.filter(name__in=(STAFF, DATA_STEWARD)))
    restricted = Customer.objects.filter(restricted=True).order_by("pk")[:GRANTED_CUSTOMERS]
    for customer in restricted:
        assign_perm("customers.view_customer", user, customer)
    if not restricted:
        raise CommandError("No restricted bench customer to grant: seed more customers.")
    return user


def _count():
    from django.db.models import Count

    return Count("pk")
