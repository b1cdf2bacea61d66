"""Before an import writes anything it reads the whole file, so that a file
broken halfway is refused whole. A large CSV is read in two halves at once;
whatever the file, the count of rows and the row a refusal names are those of
reading it from start to end."""

import pytest
from django.core.management.base import CommandError
from django.test import override_settings

from customers.imports import reading
from customers.imports.reading import FileRejected, csv_rows_counted, open_csv
from customers.models import Customer, SourceIdentifier
from tests.customers.test_imports import GOOD, HEADER, run_import, write

pytestmark = pytest.mark.django_db

# Every file is split, however small.
split_always = override_settings(CIM_IMPORT_SPLIT_CHECK_MB=0)


def rows(count: int, *, start: int = 0) -> list[str]:
    return [
        f"S-{i},Émile,Zoë {i},e{i}@example.com,,1980-01-02,FR,Paris,1 rue Haute,75001"
        for i in range(start, start + count)
    ]


def read_in_turn(path) -> int | str:
    try:
        return sum(1 for _ in open_csv(path)[1])
    except FileRejected as error:
        return str(error)


def read_in_halves(path) -> int | str:
    try:
        with split_always:
            return csv_rows_counted(path)
    except FileRejected as error:
        return str(error)


@pytest.fixture
def forks(monkeypatch):
    """How many times the check forked a process for the second half."""
    started = []
    in_forked_process = reading.in_forked_process

    def counted(*args):
        started.append(args)
        return in_forked_process(*args)

    monkeypatch.setattr(reading, "in_forked_process", counted)
    return started


QUOTED_LINES = '"' + "line\n" * 400 + '"'


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("\n".join([HEADER, *rows(60)]) + "\n", "utf-8"),
        ("\ufeff" + "\n".join([HEADER, *rows(60)]) + "\n", "utf-8"),
        ("\n".join([HEADER, *rows(60)]) + "\n", "cp1252"),
        ("\r\n".join([HEADER, *rows(60)]) + "\r\n", "utf-8"),
        ("\n".join([HEADER.replace(",", ";"), *(r.replace(",", ";") for r in rows(60))]), "utf-8"),
        # Blank lines and rows of blank cells are skipped, on both sides of the middle.
        ("\n".join([HEADER, *rows(30), "", ",,,", *rows(30, start=30), "", ""]), "utf-8"),
        # Quoted values holding line breaks, before and after the middle.
        (
            "\n".join([HEADER, f'Q-1,Ann,{QUOTED_LINES[:60]}"', *rows(60), 'Q-2,"a\nb",Lee']),
            "utf-8",
        ),
    ],
)
def test_a_file_read_in_halves_counts_the_rows_read_in_turn(tmp_path, forks, text, encoding):
    path = write(tmp_path, text, encoding=encoding)
    assert read_in_halves(path) == read_in_turn(path)
    assert len(forks) == 1


def test_a_middle_inside_a_quoted_value_is_read_again_in_turn(tmp_path, forks):
    # The first newline past the middle is inside the value: no row starts there.
    path = write(tmp_path, "\n".join([HEADER, *rows(3), f"Q-1,Ann,{QUOTED_LINES}", *rows(3)]))
    assert read_in_turn(path) == 7
    assert read_in_halves(path) == 7
    assert len(forks) == 1


@pytest.mark.parametrize(
    "broken",
    [
        # An unterminated quote at the end, in the second half.
        lambda: [HEADER, *rows(60), 'S-99,"Ann,Lee'],
        # A cell larger than the limit, in the second half, then in the first.
        lambda: [HEADER, *rows(60), "S-99," + "x" * 40_000, *rows(5, start=100)],
        lambda: [HEADER, *rows(5), "S-99," + "x" * 40_000, *rows(60, start=100)],
        # Text after a quoted value's closing quote, in the second half.
        lambda: [HEADER, *rows(60), 'S-99,"Ann"x', *rows(5, start=100)],
        # A blank line before the broken row, which still counts in its number.
        lambda: [HEADER, *rows(40), "", *rows(20, start=40), 'S-99,"Ann,Lee'],
    ],
)
def test_a_broken_row_in_either_half_is_named_as_reading_in_turn_names_it(tmp_path, broken):
    path = write(tmp_path, "\n".join(broken()) + "\n")
    refusal = read_in_turn(path)
    assert isinstance(refusal, str) and refusal.startswith("Row ")
    assert read_in_halves(path) == refusal


@split_always
def test_a_file_broken_in_its_second_half_changes_nothing_stored(tmp_path):
    run_import(write(tmp_path, "\n".join([HEADER, *GOOD]), "first.csv"))
    before = (Customer.objects.count(), Customer.history.count(), SourceIdentifier.objects.count())
    broken = write(tmp_path, "\n".join([HEADER, *rows(200), 'S-999,"Ann,Lee']) + "\n")
    with pytest.raises(CommandError, match="Row 202: "):
        run_import(broken)
    after = (Customer.objects.count(), Customer.history.count(), SourceIdentifier.objects.count())
    assert after == before


@split_always
def test_a_large_file_checked_in_halves_imports_every_row(tmp_path):
    summary = run_import(write(tmp_path, "\n".join([HEADER, *rows(300)]) + "\n"))
    assert summary["created"] == 300
    assert Customer.objects.count() == 300
