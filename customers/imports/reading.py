"""Reading customer spreadsheets safely: CSV in any common encoding and
delimiter, and XLSX, streamed row by row so memory stays flat whatever the
file size. Every refusal says what is wrong with the file or which row.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import shutil
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from django.conf import settings

from cim.forking import in_forked_process

from .xlsx import XlsxError, first_sheet, sheet_size, xlsx_rows

SAMPLE_BYTES = 64 * 1024
MAX_CELL_CHARS = 32 * 1024  # a 1 MB "cell" is a broken or hostile file, not data
XLSX_MAX_RATIO = 100  # uncompressed/compressed: real workbooks stay far below this

FILE_EMPTY = "The file is empty."
FILE_TOO_LARGE = "The file is {size} MB; the limit is {limit} MB."
FILE_BINARY = "This is not a text spreadsheet: it contains binary data. Upload CSV or XLSX."
FILE_NO_HEADER = "The file has no header row."
FILE_UNKNOWN_TYPE = "Only .csv and .xlsx files can be imported, not '{suffix}'."
XLSX_BROKEN = "This .xlsx file cannot be opened: {reason}."
XLSX_BOMB = (
    "This .xlsx file would expand to {size} MB ({ratio}x its size); it is refused as a zip bomb."
)
XLSX_DTD = "This .xlsx file carries a DTD or external entity ({part}); it is refused."
ROW_UNTERMINATED = "Row {row}: a quoted value is never closed (unterminated quote)."
HEADER_REPEATED = (
    "The header names two columns '{name}' (columns {first} and {second}): give each "
    "column its own name, or delete one, and upload the file again."
)
ROW_CELL_TOO_LARGE = "Row {row}: a cell is larger than {limit} characters."
ROW_UNREADABLE = "Row {row}: {reason}."
# The first cell of a workbook's rows copy (open_sheet).
ROWS_COPY_MARK = "cim-rows-copy-1"
# Where a sheet's rows begin, with the namespace prefix some writers give tags.
_SHEET_DATA_OPENED = re.compile(rb"<([A-Za-z_][\w.-]*:)?sheetData>")
_WORKSHEET_OPENED = re.compile(rb"<([A-Za-z_][\w.-]*:)?worksheet\b")
# A sheet's XML is cut in halves this many bytes at a time.
_SPLIT_BLOCK = 1 << 20


def _split_check_bytes() -> float:
    """From this size on, a CSV file or a workbook's sheet XML is checked in halves."""
    return float(settings.CIM_IMPORT_SPLIT_CHECK_MB) * 2**20


def _streamed(sheet_bytes: int) -> bool:
    """Whether a sheet of this much XML is streamed rather than loaded (open_xlsx)."""
    return sheet_bytes > int(getattr(settings, "CIM_IMPORT_XLSX_IN_MEMORY_MB", 100)) * 2**20


class FileRejected(Exception):
    """The whole file is refused; nothing is imported."""


def headers_checked(headers: list[str]) -> list[str]:
    """The header's names, stripped; the file is refused when they are all blank,
    or when one names two columns: columns are mapped by name (and the mapping
    remembered by name for the source), so the second would go unread, silently.
    Columns without a name may repeat: they are only ever ignored."""
    headers = [header.strip() for header in headers]
    if not any(headers):
        raise FileRejected(FILE_NO_HEADER)
    first_of: dict[str, int] = {}
    for number, name in enumerate(headers, start=1):
        if name and first_of.setdefault(name, number) != number:
            raise FileRejected(
                HEADER_REPEATED.format(name=name, first=first_of[name], second=number)
            )
    return headers


@dataclass
class Sheet:
    headers: list[str]
    encoding: str = ""
    delimiter: str = ""
    kind: str = "csv"


def max_upload_bytes() -> int:
    return int(getattr(settings, "CIM_IMPORT_MAX_MB", 200)) * 1024 * 1024


def check_size(path: Path) -> None:
    size = path.stat().st_size
    if size == 0:
        raise FileRejected(FILE_EMPTY)
    if size > max_upload_bytes():
        raise FileRejected(
            FILE_TOO_LARGE.format(size=round(size / 2**20), limit=max_upload_bytes() // 2**20)
        )


def detect_encoding(sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in sample:
        raise FileRejected(FILE_BINARY)
    try:
        # A sample may end inside a multi-byte character: decode incrementally.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        # Not UTF-8: spreadsheets saved on Windows are cp1252; it decodes any
        # byte but five, which latin-1 then takes.
        try:
            sample.decode("cp1252")
        except UnicodeDecodeError:
            return "latin-1"
        return "cp1252"
    return "utf-8"


def detect_delimiter(text_sample: str) -> str:
    first_lines = "\n".join(text_sample.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(first_lines, delimiters=",;\t|").delimiter
    except csv.Error:
        header = text_sample.splitlines()[0] if text_sample else ""
        return max(",;\t", key=header.count)


def _control_characters(text: str) -> bool:
    return any(ord(ch) < 9 or 13 < ord(ch) < 32 for ch in text)


def open_csv(path: Path) -> tuple[Sheet, Iterator[tuple[int, list[str]]]]:
    """The sheet's headers and an iterator of (row number, cells); row 1 is the header."""
    check_size(path)
    with path.open("rb") as raw:
        sample = raw.read(SAMPLE_BYTES)
    encoding = detect_encoding(sample)
    text_sample = sample.decode(encoding, errors="ignore")
    if _control_characters(text_sample[:4096]):
        raise FileRejected(FILE_BINARY)
    delimiter = detect_delimiter(text_sample)
    handle = path.open(encoding=encoding, newline="", errors="replace")
    reader = csv.reader(handle, delimiter=delimiter, strict=True)
    csv.field_size_limit(MAX_CELL_CHARS)
    try:
        headers = next(reader)
    except StopIteration:
        handle.close()
        raise FileRejected(FILE_NO_HEADER) from None
    except csv.Error as error:
        handle.close()
        raise FileRejected(_csv_error(error, 1)) from None
    try:
        headers = headers_checked(headers)
    except FileRejected:
        handle.close()
        raise

    def rows() -> Iterator[tuple[int, list[str]]]:
        # The reader raises only while advancing, so a csv.Error names the row
        # after the last one read. A blank line or a row of blank cells is skipped.
        number = 1
        with handle:
            try:
                for cells in reader:
                    number += 1
                    if _has_values(cells):
                        yield number, cells
            except csv.Error as error:
                raise FileRejected(_csv_error(error, number + 1)) from None

    return Sheet(headers=headers, encoding=encoding, delimiter=delimiter), rows()


def _has_values(cells: list[str]) -> bool:
    # The first cell alone tells for nearly every row, at a fraction of the
    # cost of joining them all.
    return bool((cells and cells[0].strip()) or "".join(cells).strip())


def _ends_inside_quotes(message: str) -> bool:
    """Whether a csv.Error's message says the data ended inside a quoted value."""
    return "unexpected end of data" in message or "EOF" in message


def _csv_error(error: csv.Error | str, row: int) -> str:
    message = str(error)
    if "field larger than field limit" in message:
        return ROW_CELL_TOO_LARGE.format(row=row, limit=MAX_CELL_CHARS)
    if _ends_inside_quotes(message):
        return ROW_UNTERMINATED.format(row=row)
    return ROW_UNREADABLE.format(row=row, reason=message)


# Encodings in which a newline byte always ends a line, so that the second half
# of a file can be decoded from its first line on its own, in the encoding each
# maps to (only the first half starts with the byte-order mark).
SPLITTABLE_ENCODINGS = {
    "utf-8": "utf-8",
    "utf-8-sig": "utf-8",
    "cp1252": "cp1252",
    "latin-1": "latin-1",
}


def csv_rows_counted(path: Path) -> int:
    """The rows open_csv gives, the whole file read: FileRejected names the
    first row that cannot be read, as reading the rows in turn would.

    A file of CIM_IMPORT_SPLIT_CHECK_MB or more is read in two halves at once,
    the second in a forked process: this whole-file check comes before an
    import writes anything, with the machine's other cores idle (a million
    rows: 1.5 s on one core). The second half starts after the first newline
    past the middle, which is where a row starts unless the middle falls
    inside a quoted value that holds line breaks: then the first half ends
    inside that value, its reading says so, and the file is read again in turn.
    """
    sheet, rows = open_csv(path)
    size = path.stat().st_size
    second_encoding = SPLITTABLE_ENCODINGS.get(sheet.encoding)
    splits = second_encoding and size >= _split_check_bytes()
    middle = _row_start_after(path, size // 2, size) if splits else None
    if middle is None:
        return sum(1 for _ in rows)
    rows.close()
    second = in_forked_process(
        _records_counted, path, middle, size, second_encoding, sheet.delimiter
    )
    try:
        first_rows, first_records, error = _records_counted(
            path, 0, middle, sheet.encoding, sheet.delimiter
        )
    except BaseException:
        second(cancel=True)
        raise
    if error is not None:
        second(cancel=True)
        if _ends_inside_quotes(error):
            # The first half ends inside a quoted value (or the file breaks
            # there): only reading on from the start tells which.
            return sum(1 for _ in open_csv(path)[1])
        raise FileRejected(_csv_error(error, first_records + 1))
    outcome = second()
    if outcome is None:  # the process failed: read the second half here
        outcome = _records_counted(path, middle, size, second_encoding, sheet.delimiter)
    second_rows, second_records, error = outcome
    if error is not None:
        raise FileRejected(_csv_error(error, first_records + second_records + 1))
    # The first half's first record is the header.
    return first_rows - 1 + second_rows


def _row_start_after(path: Path, offset: int, size: int) -> int | None:
    """The offset just after the first newline at or past `offset`; None if none
    comes before the file's end (`size`)."""
    with path.open("rb") as handle:
        handle.seek(offset)
        block = handle.read(SAMPLE_BYTES)
    at = block.find(b"\n")
    if at < 0 or offset + at + 1 >= size:
        return None
    return offset + at + 1


class _ByteRange(io.RawIOBase):
    """Bytes [start, end) of a file."""

    def __init__(self, path: Path, start: int, end: int) -> None:
        self._file = path.open("rb")
        self._file.seek(start)
        self._left = end - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._left <= 0:
            return 0
        read = self._file.readinto(memoryview(buffer)[: min(len(buffer), self._left)])
        self._left -= read
        return read

    def close(self) -> None:
        self._file.close()
        super().close()


def _records_counted(
    path: Path, start: int, end: int, encoding: str, delimiter: str
) -> tuple[int, int, str | None]:
    """(rows, records, error) of bytes [start, end) of a CSV file: the rows
    open_csv would give, the records read (blank ones too), and the error that
    stopped the reading, if one did."""
    handle = io.TextIOWrapper(
        io.BufferedReader(_ByteRange(path, start, end), 1 << 20),
        encoding=encoding,
        errors="replace",
        newline="",
    )
    rows = records = 0
    with handle:
        try:
            for cells in csv.reader(handle, delimiter=delimiter, strict=True):
                records += 1
                if _has_values(cells):
                    rows += 1
        except csv.Error as error:
            return rows, records, str(error)
    return rows, records, None


def check_xlsx(path: Path) -> None:
    """Refuse zip bombs and XML with DTDs or entities before any parser sees them."""
    check_size(path)
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise FileRejected(XLSX_BROKEN.format(reason="it is not a valid .xlsx archive")) from None
    with archive:
        members = archive.infolist()
        expanded = sum(member.file_size for member in members)
        compressed = max(1, path.stat().st_size)
        if expanded > max_upload_bytes() * 5 or expanded / compressed > XLSX_MAX_RATIO:
            raise FileRejected(
                XLSX_BOMB.format(size=round(expanded / 2**20), ratio=round(expanded / compressed))
            )
        for member in members:
            if not member.filename.endswith((".xml", ".rels")):
                continue
            with archive.open(member) as part:
                head = part.read(4096).upper()
            if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
                raise FileRejected(XLSX_DTD.format(part=member.filename))


def _xlsx_cell(value) -> str:
    import datetime

    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return value.date().isoformat() if value.time() == datetime.time() else value.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _calamine_sheet(workbook: Path):
    """The workbook's first sheet, loaded whole by python-calamine."""
    from python_calamine import CalamineWorkbook

    try:
        return CalamineWorkbook.from_path(str(workbook)).get_sheet_by_index(0)
    except Exception as error:  # calamine's errors share no base class
        raise XlsxError(str(error)) from None


def _sheet_rows(sheet, first: int = 0) -> Iterator[tuple[int, list[str]]]:
    """A loaded sheet's rows from its row index `first` on, each numbered as
    in the spreadsheet: calamine gives every row from the sheet's top, the
    empty ones above its data too, and each from the sheet's first used column."""
    for number, cells in enumerate(islice(sheet.iter_rows(), first, None), start=first + 1):
        try:
            # Most rows are all text: "".join finds that in C, where testing
            # each cell took most of the time of reading a loaded sheet (a
            # 100k-row sheet: 0.4 s); it refuses any cell that is not text.
            "".join(cells)
        except TypeError:
            cells = [cell if cell.__class__ is str else _xlsx_cell(cell) for cell in cells]
        yield number, cells


def _calamine_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    yield from _sheet_rows(_calamine_sheet(path))


def _data_rows(rows: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
    """A workbook's rows that hold a value; FileRejected at a cell over the limit."""
    for number, values in rows:
        # The row's cells joined answer both questions in C, where testing each
        # cell took a third of the time of copying a loaded sheet's rows: no
        # cell is over the limit if all of them together are not, and a row
        # holds a value if its cells hold something other than whitespace.
        text = "".join(values)
        if len(text) > MAX_CELL_CHARS and any(len(value) > MAX_CELL_CHARS for value in values):
            raise FileRejected(ROW_CELL_TOO_LARGE.format(row=number, limit=MAX_CELL_CHARS))
        if text and not text.isspace():
            yield number, values


def open_xlsx(path: Path, *, stream: bool = False) -> tuple[Sheet, Iterator[tuple[int, list[str]]]]:
    """The first sheet's headers and an iterator of (row number, cells);
    `stream` streams the sheet whatever its size, where this reader finds its parts.

    python-calamine reads about 60,000 rows/s but holds the whole sheet in
    memory (about 1.7x its XML: 462 MB for a 300k-row sheet), so a sheet whose
    XML is larger than CIM_IMPORT_XLSX_IN_MEMORY_MB streams instead, at about
    a third of the speed, in constant memory (customers/imports/xlsx.py)."""
    check_xlsx(path)
    try:
        streamed = stream or _streamed(sheet_size(path))
    except XlsxError:
        # Parts where this reader does not look for them: calamine reads what
        # it finds, and refuses what is broken.
        streamed = False
    try:
        try:
            rows = xlsx_rows(path) if streamed else _calamine_rows(path)
            _, headers = next(rows)
        except XlsxError:
            if not stream:
                raise
            rows = _calamine_rows(path)  # see above: calamine decides
            _, headers = next(rows)
        headers = headers_checked(headers)
    except StopIteration:
        raise FileRejected(FILE_NO_HEADER) from None
    except XlsxError as error:
        raise FileRejected(XLSX_BROKEN.format(reason=str(error)[:200])) from None

    def data_rows() -> Iterator[tuple[int, list[str]]]:
        try:
            yield from _data_rows(rows)
        except XlsxError as error:
            raise FileRejected(XLSX_BROKEN.format(reason=str(error)[:200])) from None

    return Sheet(headers=headers, kind="xlsx"), data_rows()


def open_sheet(
    path: Path, *, copy: Path | None = None
) -> tuple[Sheet, Iterator[tuple[int, list[str]]]]:
    """The file's headers and rows.

    `copy`: where a workbook's rows are kept as CSV once they have all been read
    (by the whole-file check or the preview), for every later reading of the
    file (the run, a resumed run) to read instead of the workbook: a workbook
    is read at 20,000 (streamed) to 75,000 rows/s, in the job's process beside
    the writing, and CSV at about 700,000.
    """
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        return open_csv(path)
    if suffix != ".xlsx":
        raise FileRejected(FILE_UNKNOWN_TYPE.format(suffix=suffix or "no extension"))
    if copy is not None:
        kept = _open_rows_copy(copy, path)
        if kept is not None:
            return kept
    sheet, rows = open_xlsx(path)
    if copy is not None:
        rows = _rows_copied(rows, sheet.headers, copy, path)
    return sheet, rows


def _copy_heading(writer, source: Path, headers: list[str]) -> None:
    """A rows copy's first two rows: its stamp, then the headers; each row
    after them is the row's number, then its cells."""
    writer.writerow(_copy_stamp(source))
    writer.writerow(["", *headers])


def _copy_stamp(source: Path) -> list[str]:
    """The first row of a copy: which file, at which size and time, it copies."""
    stat = source.stat()
    return [ROWS_COPY_MARK, str(source.resolve()), str(stat.st_size), str(stat.st_mtime_ns)]


def _rows_copied(
    rows: Iterator[tuple[int, list[str]]], headers: list[str], copy: Path, source: Path
) -> Iterator[tuple[int, list[str]]]:
    """The rows, written to `copy` as they pass: each row's number, then its
    cells. The copy appears only once every row has been read: a file refused
    halfway, or a reading stopped early, leaves none; two readings at once
    (a run resumed beside one thought dead) each write their own."""
    partial = copy.with_name(f"{copy.name}.{os.getpid()}.{threading.get_ident()}.partial")
    copy.parent.mkdir(parents=True, exist_ok=True)
    complete = False
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            _copy_heading(writer, source, headers)
            for number, cells in rows:
                writer.writerow([number, *cells])
                yield number, cells
        partial.replace(copy)
        complete = True
    finally:
        if not complete:
            partial.unlink(missing_ok=True)


def _open_rows_copy(
    copy: Path, source: Path
) -> tuple[Sheet, Iterator[tuple[int, list[str]]]] | None:
    """The workbook's headers and rows from its copy; None without a copy of
    the file as it is now."""
    try:
        handle = copy.open(encoding="utf-8", newline="")
    except FileNotFoundError:
        return None
    reader = csv.reader(handle)
    csv.field_size_limit(MAX_CELL_CHARS)
    if next(reader, None) != _copy_stamp(source):
        handle.close()
        return None
    headers = next(reader)[1:]

    def rows() -> Iterator[tuple[int, list[str]]]:
        with handle:
            for number, *cells in reader:
                yield int(number), cells

    return Sheet(headers=headers, kind="xlsx"), rows()


def workbook_rows_counted(path: Path, *, copy: Path) -> int:
    """The rows a workbook's first sheet gives (open_sheet), the whole sheet
    read and copied to `copy` for the run: FileRejected names the first row
    that cannot be read, as reading the rows in turn would.

    A sheet whose XML is CIM_IMPORT_SPLIT_CHECK_MB or more is read in two
    halves at once, the second in a forked process, as a large CSV is: this
    check comes before an import writes anything, and calamine loads a sheet
    on one core (a 100k-row sheet: 0.95 s and 149 MB at most, against 1.6 s
    and 213 MB), as the streaming reader reads one (xlsx.py), for a sheet too
    large to load. Each half is a workbook of its own on disk, the file's parts
    with the sheet's rows up to a row near the middle of its XML, or from it
    on. Where the halves would not give what the whole sheet gives (a half is
    refused by its reader, their columns differ, the rows carry no numbers),
    the sheet is read in turn.
    """
    kept = _open_rows_copy(copy, path)
    if kept is None:
        counted = _workbook_halves_copied(path, copy)
        if counted is not None:
            return counted
        kept = open_sheet(path, copy=copy)
    return sum(1 for _ in kept[1])


def _workbook_halves_copied(path: Path, copy: Path) -> int | None:
    """The rows of the sheet read in halves and copied; None where it is not."""
    check_xlsx(path)
    try:
        size = sheet_size(path)
    except XlsxError:
        return None
    if size < _split_check_bytes():
        return None
    # Read as reading in turn reads it: loaded by calamine, or streamed.
    streamed = _streamed(size)
    partial = copy.with_name(f"{copy.name}.{os.getpid()}.{threading.get_ident()}.partial")
    second_part = partial.with_name(f"{partial.name}-second")
    copy.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Each process cuts its own half from the file: the sheet's XML is
        # inflated in both at once (0.2 s for a 100k-row sheet).
        second = in_forked_process(_half_copied, path, second_part, True, streamed)
        try:
            first = _half_copied(path, partial, False, streamed)
        except BaseException:
            second(cancel=True)
            raise
        if first["broken"] or first["refused"]:
            second(cancel=True)
            if first["broken"]:
                return None
            raise FileRejected(first["refused"])
        outcome = second()
        if (
            outcome is None
            or outcome["broken"]
            # Columns counted from another first column, or up to another last:
            # each half's rows are as wide as its own cells go.
            or (outcome["columns"] and outcome["columns"] != first["columns"])
        ):
            return None
        if outcome["refused"]:
            raise FileRejected(outcome["refused"])
        with partial.open("ab") as whole, second_part.open("rb") as rest:
            shutil.copyfileobj(rest, whole)
        partial.replace(copy)
        return first["rows"] + outcome["rows"]
    finally:
        # With the second half's workbook, should its process have been stopped.
        for left in (partial, second_part, _half_workbook_path(second_part)):
            left.unlink(missing_ok=True)


def _workbook_half(path: Path, second: bool, into: Path) -> bool:
    """Write to `into` a workbook with every part of the file but its first
    sheet's rows, of which it holds those before a row near the middle of the
    sheet's XML, or (`second`) the rest; False where the sheet's XML is not
    laid out as a split expects. Stored, not compressed, on disk: calamine
    loads it from there at once."""
    with zipfile.ZipFile(path) as archive:
        try:
            sheet_path = first_sheet(archive)
        except XlsxError:
            return False
        size = archive.getinfo(sheet_path).file_size
        with zipfile.ZipFile(into, "w", zipfile.ZIP_STORED) as halved:
            for info in archive.infolist():
                if info.filename != sheet_path:
                    halved.writestr(info.filename, archive.read(info))
            with (
                archive.open(sheet_path) as xml,
                halved.open(sheet_path, "w", force_zip64=size >= zipfile.ZIP64_LIMIT) as part,
            ):
                return _sheet_half_written(xml, part, size, second)


def _sheet_half_written(xml, out, size: int, second: bool) -> bool:
    """Write one half of a sheet's XML, `size` bytes read from `xml`, to `out`
    (see _workbook_half), a few blocks of it in memory at a time; False where
    it is not laid out as a split expects. The row split at carries its number,
    as calamine would otherwise count the second half's rows from its top."""
    blocks = iter(lambda: xml.read(_SPLIT_BLOCK), b"")
    text, opened = b"", None
    for block in blocks:
        text += block
        opened = _SHEET_DATA_OPENED.search(text)
        if opened is not None:
            break
    if opened is None:
        return False
    tag = opened.group(1) or b""
    closing = b"</" + tag + b"sheetData>"
    root = _WORKSHEET_OPENED.search(text, 0, opened.start())
    # XML text holds no "<": this is a row's tag.
    numbered_row = re.compile(rb"<" + re.escape(tag) + rb"row\b[^>]*?\br=\"\d+\"")
    out.write(text[: opened.end()])
    text, at = text[opened.end() :], opened.end()  # at: where text begins in the XML
    middle = (at + size) // 2
    # The rows before the middle: the first half's; the second leaves them out.
    while True:
        row = numbered_row.search(text, max(0, middle - at))
        ends = text.find(closing)
        if ends >= 0 and (row is None or ends < row.start()):
            return False  # the rows end before the middle
        if row is not None:
            break
        block = next(blocks, None)
        if block is None:
            return False
        # Passed on: what lies before the middle, where no row is split at.
        done = min(len(text), max(0, middle - at))
        if not second:
            out.write(text[:done])
        text, at = text[done:] + block, at + done
    if second:
        out.write(text[row.start() :])
    else:
        out.write(text[: row.start()])
        if root is not None:
            # Closed here: what follows the rows (merged cells, print settings)
            # changes no cell a half reads, so the rest of the sheet is not
            # inflated for it (a 16 MB sheet: 17 ms), and the second half, which
            # reads to the end, refuses a sheet broken there.
            out.write(closing + b"</" + (root.group(1) or b"") + b"worksheet>")
            return True
        # After the rows, only what closes the sheet.
        text = text[row.start() :]
        while (ends := text.find(closing)) < 0:
            block = next(blocks, None)
            if block is None:
                return False
            text = text[-len(closing) :] + block
        out.write(text[ends:])
    for block in blocks:
        out.write(block)
    return True


def _half_workbook_path(part: Path) -> Path:
    return part.with_name(f"{part.name}.xlsx")


def _half_copied(path: Path, part: Path, second: bool, streamed: bool) -> dict:
    """Read one half of a workbook (_workbook_half) and write its rows to
    `part` as _rows_copied writes them: with the copy's stamp and the header
    first for the first half, its rows only for the second. `streamed`: read
    by this module's streaming reader (xlsx.py), as a sheet too large to load
    is read in turn. What a process reading the second half returns, as JSON:
    rows: the rows written; columns: the sheet's first and last column (loaded
    by calamine); refused: why a row was refused; broken: the half could not
    be cut, or its reader refused it."""
    workbook = _half_workbook_path(part)
    outcome = {"rows": 0, "columns": None, "refused": None, "broken": True}
    rows: Iterator[tuple[int, list[str]]] = iter(())
    try:
        if not _workbook_half(path, second, workbook):
            return outcome
        if streamed:
            # Each row numbered and as wide as its own cells: the halves' rows
            # are those of the whole sheet.
            rows = xlsx_rows(workbook)
        else:
            sheet = _calamine_sheet(workbook)
            start, end = sheet.start, sheet.end
            outcome["columns"] = [start[1], end[1]] if start and end else None
            rows = _sheet_rows(sheet, (start or (0,))[0] if second else 0)
        with part.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            if not second:
                _, headers = next(rows, (0, None))
                if headers is None:
                    raise FileRejected(FILE_NO_HEADER)
                _copy_heading(writer, path, headers_checked(headers))
            try:
                for number, cells in _data_rows(rows):
                    writer.writerow([number, *cells])
                    outcome["rows"] += 1
            except FileRejected as error:
                outcome["refused"] = str(error)
    except XlsxError:
        return outcome
    finally:
        if hasattr(rows, "close"):
            rows.close()  # the streaming reader's hold on the half's file
        workbook.unlink(missing_ok=True)
    outcome["broken"] = False
    return outcome


def sniff_headers(path: Path) -> Sheet:
    """The file's headers, reading as little of it as it can: a workbook's sheet
    is streamed to its first row rather than loaded whole, and its shared
    strings parsed only as far as that row needs (a 100k-row sheet: 2 to 6 ms,
    against 1.2 s with 460k shared strings read first, and 1.9 s and 127 MB
    loaded), as this runs in the upload's request. What is broken further on
    is refused when the file is read whole (the preview, or the command's
    check), before anything is written."""
    if path.suffix.lower() == ".xlsx":
        sheet, rows = open_xlsx(path, stream=True)
    else:
        sheet, rows = open_sheet(path)
    close = getattr(rows, "close", None)
    if close:
        close()
    return sheet


__all__ = [
    "FileRejected",
    "Sheet",
    "csv_rows_counted",
    "open_sheet",
    "sniff_headers",
    "workbook_rows_counted",
]
