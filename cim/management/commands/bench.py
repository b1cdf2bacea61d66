"""python manage.py bench NAME [options]: benchmarks on the configured PostgreSQL database."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from cim.bench import BENCHES, bench_load
from cim.bench.common import database_described, postgresql_require


class Command(BaseCommand):
    help = (
        "Run a benchmark on the configured database (PostgreSQL only). Progress goes to "
        "stderr; the last line of stdout is one JSON object of figures. Benchmarks that "
        "need data seed it, and only in a database whose customers are empty or bench data."
    )

    def add_arguments(self, parser) -> None:
        benches = parser.add_subparsers(
            dest="bench", metavar="NAME", required=True, title="benchmarks"
        )
        for name in BENCHES:
            bench = bench_load(name)
            bench.add_arguments(benches.add_parser(name, help=bench.HELP, description=bench.HELP))

    def handle(self, *args, bench: str, **options) -> None:
        postgresql_require()

        def log(line: str) -> None:
            if options["verbosity"] >= 1:
                # Plain, not the error colour Django gives stderr: this is progress.
                self.stderr.write(line, style_func=lambda text: text)
                self.stderr.flush()

        figures = {
            "bench": bench,
            "database": database_described(),
            **bench_load(bench).run(options=options, log=log),
        }
        self.stdout.write(json.dumps(figures))
