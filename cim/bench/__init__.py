"""Benchmarks behind `python manage.py bench NAME`, one module per NAME.

A bench module provides HELP, `add_arguments(parser)` for its options and
`run(*, options, log) -> dict` returning the figures the command prints as
one JSON object. To add a bench (import, dedupe, sends, segments), write the
module and list it here; cim.bench.common and cim.bench.seed hold what
benches share (PostgreSQL guard, logged-in client, timing, seeded data).
"""

from __future__ import annotations

import importlib
from argparse import ArgumentParser
from typing import Any, Protocol

from .common import Log

BENCHES: dict[str, str] = {
    "pages": "cim.bench.pages",
    "import": "cim.bench.imports",
    "segments": "cim.bench.segments",
    "sends": "cim.bench.sends",
    "dedupe": "cim.bench.dedupe",
}


class Bench(Protocol):
    HELP: str

    def add_arguments(self, parser: ArgumentParser) -> None: ...

    def run(self, *, options: dict[str, Any], log: Log) -> dict[str, Any]: ...


def bench_load(name: str) -> Bench:
    return importlib.import_module(BENCHES[name])  # type: ignore[return-value]
