"""Before an import writes anything it reads the whole file, so that a file
broken halfway is refused whole. A large CSV or workbook is read in two halves
at once; whatever the file, the count of rows, the rows copied and the row a
refusal names are those of reading it from start to end."""

import datetime
import re

import pytest
from django.core.management.base import CommandError
from django.test import override_settings

from customers.imports import reading
from customers.imports.reading import (
    FileRejected,
    csv_rows_counted,
    open_csv,
    workbook_rows_counted,
)
from customers.models import Customer, SourceIdentifier
from tests.customers.test_imports import (
    GOOD,
    HEADER,
    SHEET,
    _part_changed,
    _workbook,
    run_import,
    write,
)

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


# -- workbooks ------------------------------------------------------------------

WORKBOOK_HEADER = ["external_id", "first_name", "last_name", "date_of_birth", "national_id"]


def people(count: int, *, start: int = 0) -> list[list]:
    return [
        [f"W-{i}", "Émile", f"Zoë {i}", datetime.date(1980, 1, 1 + i % 28), 75000 + i]
        for i in range(start, start + count)
    ]


def write_only_workbook(path, rows: list[list]):
    """Text as inline strings, as openpyxl's write-only mode and the bench write it."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("people")
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def sheet_changed(path, change):
    return _part_changed(path, SHEET, change)


def workbook_read(path, *, halves: bool, streamed: bool = False) -> tuple[int | str, str | None]:
    """(rows, or the refusal; the copy's text, or None without one). `streamed`:
    the sheet read as one too large to load is read."""
    copy = path.with_name(f"{path.name}.{'halves' if halves else 'turn'}.csv")
    try:
        with override_settings(
            CIM_IMPORT_SPLIT_CHECK_MB=0 if halves else 10_000,
            CIM_IMPORT_XLSX_IN_MEMORY_MB=0 if streamed else 100,
        ):
            counted = workbook_rows_counted(path, copy=copy)
    except FileRejected as error:
        counted = str(error)
    return counted, copy.read_text(encoding="utf-8") if copy.exists() else None


@pytest.fixture
def cells_of_at_most_1000(monkeypatch):
    # Below Excel's own limit (32,767 characters a cell), which calamine applies.
    monkeypatch.setattr(reading, "MAX_CELL_CHARS", 1000)


@pytest.fixture
def read_again_in_turn(monkeypatch):
    """The workbooks read again in turn after an attempt in halves."""
    again = []
    open_sheet = reading.open_sheet

    def counted(path, **kwargs):
        again.append(path)
        return open_sheet(path, **kwargs)

    monkeypatch.setattr(reading, "open_sheet", counted)
    return again


@pytest.mark.parametrize(
    "make",
    [
        lambda path: write_only_workbook(path, [WORKBOOK_HEADER, *people(80)]),
        # Text in the shared table; dates and numbers as cells.
        lambda path: _workbook(path, [WORKBOOK_HEADER, *people(80)]),
        # Rows without a value on both sides of the middle, a row of spaces too.
        lambda path: _workbook(
            path,
            [WORKBOOK_HEADER, *people(40), [], [" ", None], *people(40, start=40), [None, "  "]],
        ),
        # Elements named with a namespace prefix.
        lambda path: sheet_changed(
            _workbook(path, [WORKBOOK_HEADER, *people(80)]),
            lambda xml: re.sub(rb"<(/?)(\w+)\b", rb"<\1x:\2", xml.split(b"?>", 1)[-1]).replace(
                b' xmlns="', b' xmlns:x="'
            ),
        ),
    ],
)
@pytest.mark.parametrize(
    ("block", "streamed"), [(reading._SPLIT_BLOCK, False), (64, False), (64, True)]
)
def test_a_workbook_read_in_halves_copies_the_rows_read_in_turn(
    tmp_path, monkeypatch, forks, read_again_in_turn, make, block, streamed
):
    path = make(tmp_path / "people.xlsx")
    in_turn = workbook_read(path, halves=False, streamed=streamed)
    read_again_in_turn.clear()
    # The sheet's XML cut in blocks that end inside tags, too.
    monkeypatch.setattr(reading, "_SPLIT_BLOCK", block)

    assert workbook_read(path, halves=True, streamed=streamed) == in_turn
    assert len(forks) == 1
    assert read_again_in_turn == []


@pytest.mark.parametrize(
    "make",
    [
        # The last column is filled in the first half only: the halves' rows
        # would not be as wide as the whole sheet's.
        lambda path: _workbook(
            path, [WORKBOOK_HEADER, *people(10), *(row[:3] for row in people(200, start=10))]
        ),
        # Rows without their numbers: calamine counts them from the top.
        lambda path: sheet_changed(
            _workbook(path, [WORKBOOK_HEADER, *people(80)]),
            lambda xml: re.sub(rb'(<row\b[^>]*?) r="\d+"', rb"\1", xml),
        ),
    ],
)
def test_a_workbook_whose_halves_would_read_otherwise_is_read_again_in_turn(
    tmp_path, read_again_in_turn, make
):
    path = make(tmp_path / "people.xlsx")
    in_turn = workbook_read(path, halves=False)
    read_again_in_turn.clear()

    assert workbook_read(path, halves=True) == in_turn
    assert read_again_in_turn == [path]


@pytest.mark.parametrize(
    ("make", "read_again"),
    [
        # A cell larger than the limit, in the second half, then in the first:
        # the half that reads it names its row.
        (
            lambda path: _workbook(
                path, [WORKBOOK_HEADER, *people(60), ["W-99", "x" * 2000], *people(5, start=100)]
            ),
            False,
        ),
        (
            lambda path: _workbook(
                path, [WORKBOOK_HEADER, *people(5), ["W-99", "x" * 2000], *people(60, start=100)]
            ),
            False,
        ),
        # XML that breaks in the second half, and that ends in its middle:
        # calamine's own words, as it says them of the whole sheet.
        (
            lambda path: sheet_changed(
                _workbook(path, [WORKBOOK_HEADER, *people(80)]),
                lambda xml: xml.replace(b'<c r="A70"', b'<c r="A70"><c'),
            ),
            True,
        ),
        (
            lambda path: sheet_changed(
                _workbook(path, [WORKBOOK_HEADER, *people(80)]),
                lambda xml: xml[: len(xml) // 2],
            ),
            True,
        ),
    ],
)
@pytest.mark.parametrize("streamed", [False, True])
def test_a_broken_workbook_is_refused_as_reading_in_turn_refuses_it_and_leaves_no_copy(
    tmp_path, cells_of_at_most_1000, read_again_in_turn, make, read_again, streamed
):
    path = make(tmp_path / "people.xlsx")
    refusal, copy = workbook_read(path, halves=False, streamed=streamed)
    assert isinstance(refusal, str) and copy is None
    read_again_in_turn.clear()

    assert workbook_read(path, halves=True, streamed=streamed) == (refusal, None)
    assert read_again_in_turn == ([path] if read_again else [])
    assert not list(tmp_path.glob("*.partial*"))


@split_always
def test_a_workbook_broken_in_its_second_half_changes_nothing_stored(
    tmp_path, cells_of_at_most_1000
):
    run_import(write(tmp_path, "\n".join([HEADER, *GOOD]), "first.csv"))
    before = (Customer.objects.count(), Customer.history.count(), SourceIdentifier.objects.count())
    broken = _workbook(
        tmp_path / "broken.xlsx",
        [WORKBOOK_HEADER, *people(200), ["W-999", "x" * 2000]],
    )
    with pytest.raises(CommandError, match="Row 202: a cell is larger"):
        run_import(broken)
    after = (Customer.objects.count(), Customer.history.count(), SourceIdentifier.objects.count())
    assert after == before


@split_always
def test_a_large_workbook_checked_in_halves_imports_every_row(tmp_path, forks):
    summary = run_import(
        write_only_workbook(tmp_path / "people.xlsx", [WORKBOOK_HEADER, *people(300)])
    )
    assert len(forks) == 1
    assert summary["created"] == 300
    assert set(SourceIdentifier.objects.values_list("external_id", flat=True)) == {
        f"W-{i}" for i in range(300)
    }


def test_a_workbook_whose_second_process_fails_is_read_in_turn(
    tmp_path, monkeypatch, read_again_in_turn
):
    path = write_only_workbook(tmp_path / "people.xlsx", [WORKBOOK_HEADER, *people(80)])
    in_turn = workbook_read(path, halves=False)
    read_again_in_turn.clear()
    # The process for the second half ends without an answer (killed, out of memory).
    monkeypatch.setattr(reading, "in_forked_process", lambda *args: lambda **kwargs: None)

    assert workbook_read(path, halves=True) == in_turn
    assert read_again_in_turn == [path]
    assert not list(tmp_path.glob("*.partial*"))
