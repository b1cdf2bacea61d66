"""What every benchmark shares: the PostgreSQL guard, a logged-in client, timing and figures."""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

NOT_POSTGRESQL = (
    "The benchmarks run on PostgreSQL only (their targets are for PostgreSQL); "
    "this database is {vendor}. Set DATABASE_URL=postgres://... and migrate first."
)
NO_STAFF_GROUP = "The Staff group is missing: run `python manage.py migrate` first."
BENCH_USERNAME = "bench-staff"

Log = Callable[[str], None]


def cpu_seconds() -> float:
    """User and system CPU seconds of this process and its finished children."""
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    )


def peak_rss_mb(*who: int) -> float:
    """The largest peak resident memory (MB) of these (default: this process):
    resource.RUSAGE_CHILDREN is the largest of its finished children."""
    # Linux reports ru_maxrss in kilobytes.
    usages = who or (resource.RUSAGE_SELF,)
    return round(max(resource.getrusage(w).ru_maxrss for w in usages) / 1024, 1)


def postgresql_require() -> None:
    if connection.vendor != "postgresql":
        raise CommandError(NOT_POSTGRESQL.format(vendor=connection.vendor))


# The server settings a bench's figures depend on most: the same code is a
# fifth faster or slower with another version, cache or WAL size, and a
# figure without them cannot be compared with another run's.
SERVER_SETTINGS = (
    "server_version",
    "shared_buffers",
    "max_wal_size",
    "checkpoint_timeout",
    "wal_buffers",
    "synchronous_commit",
)


def database_described() -> dict[str, str]:
    """The server's version and the settings above, as SHOW prints them, and the
    database's collation."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT name, current_setting(name) FROM unnest(%s::text[]) AS name",
            [list(SERVER_SETTINGS)],
        )
        described = dict(cur.fetchall())
        # ICU as a database's default collation came with PostgreSQL 15.
        icu = "datlocprovider = 'i'" if connection.pg_version >= 150000 else "false"
        cur.execute(
            f"SELECT CASE WHEN {icu} THEN 'icu ' || daticulocale ELSE datcollate END "  # noqa: S608
            "FROM pg_database WHERE datname = current_database()"
        )
        described["collation"] = cur.fetchone()[0]
    return described


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100), as numpy's default computes it."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(value: float) -> float:
    return round(value * 1000, 2)


def bench_staff_user() -> AbstractBaseUser:
    """A plain Staff user: what most people opening these pages are, with no superuser
    shortcut around the visibility rules."""
    group = Group.objects.filter(name="Staff").first()
    if group is None:
        raise CommandError(NO_STAFF_GROUP)
    user, created = get_user_model().objects.get_or_create(
        username=BENCH_USERNAME, defaults={"first_name": "Bench"}
    )
    if created:
        # force_login needs no password; an unusable one keeps the account closed.
        user.set_unusable_password()
        user.save(update_fields=["password"])
    user.groups.add(group)
    return user


@contextmanager
def bench_client(*, user: AbstractBaseUser) -> Iterator[Client]:
    """A test client logged in as `user`, run in-process against the configured database.

    The production settings stay as they are except what an in-process client
    cannot satisfy: its host name, and plain HTTP (SSL redirects). DEBUG is
    forced off so Django does not keep a log of every query, as in production.
    """
    hosts = [*settings.ALLOWED_HOSTS, "testserver"]
    with override_settings(ALLOWED_HOSTS=hosts, SECURE_SSL_REDIRECT=False, DEBUG=False):
        client = Client()
        client.force_login(user)
        yield client


class PageTimer:
    """Times GET requests server-side (perf_counter around the in-process request)."""

    def __init__(self, *, client: Client) -> None:
        self.client = client

    def get(self, path: str, *, headers: dict[str, str] | None = None) -> tuple[float, bytes]:
        start = time.perf_counter()
        response = self.client.get(path, headers=headers)
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise CommandError(f"GET {path} answered {response.status_code}, not 200.")
        return elapsed, response.content

    def run(
        self,
        paths: Sequence[str],
        *,
        warmup: Sequence[str],
        headers: dict[str, str] | None = None,
    ) -> list[float]:
        """Request each path once, after the unmeasured `warmup` paths; the seconds each took.

        Warm-up paths are other pages of the same kind, so the code paths,
        templates and indexes' upper levels are warm as on a server that has been
        up a while, without the measured rows themselves being cached.
        """
        for path in warmup:
            self.get(path, headers=headers)
        return [self.get(path, headers=headers)[0] for path in paths]

    def queries(self, path: str, *, headers: dict[str, str] | None = None) -> int:
        with CaptureQueriesContext(connection) as captured:
            self.get(path, headers=headers)
        return len(captured.captured_queries)


def summary(samples: Sequence[float]) -> dict[str, float]:
    return {"p50": ms(percentile(samples, 50)), "p95": ms(percentile(samples, 95))}
