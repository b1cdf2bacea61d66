"""Reading customer spreadsheets safely: CSV in any common encoding and
delimiter, and XLSX, streamed row by row so memory stays flat whatever the
file size. Every refusal says what is wrong with the file or which row.
"""

from __future__ import annotations

import codecs
import csv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from .xlsx import XlsxError, sheet_size, xlsx_rows

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
ROW_CELL_TOO_LARGE = "Row {row}: a cell is larger than {limit} characters."
ROW_UNREADABLE = "Row {row}: {reason}."


class FileRejected(Exception):
    """The whole file is refused; nothing is imported."""


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
    headers = [h.strip() for h in headers]
    if not any(headers):
        handle.close()
        raise FileRejected(FILE_NO_HEADER)

    def rows() -> Iterator[tuple[int, list[str]]]:
        # The reader raises only while advancing, so a csv.Error names the row
        # after the last one read. A blank line or a row of blank cells is skipped.
        number = 1
        with handle:
            try:
                for cells in reader:
                    number += 1
                    if "".join(cells).strip():
                        yield number, cells
            except csv.Error as error:
                raise FileRejected(_csv_error(error, number + 1)) from None

    return Sheet(headers=headers, encoding=encoding, delimiter=delimiter), rows()


def _csv_error(error: csv.Error, row: int) -> str:
    message = str(error)
    if "field larger than field limit" in message:
        return ROW_CELL_TOO_LARGE.format(row=row, limit=MAX_CELL_CHARS)
    if "unexpected end of data" in message or "EOF" in message:
        return ROW_UNTERMINATED.format(row=row)
    return ROW_UNREADABLE.format(row=row, reason=message)


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


class KeptSheet:
    """A sheet that python-calamine has loaded, kept by the whole-file check for
    the run that follows it in the same process (import_customers): loading is
    most of reading (1.3 of 2.1 s for 100k rows), and the run would otherwise
    load the sheet again, to the same memory, right after the check let it go.

    One sheet at most, taken by the next open of the same unchanged file; the
    run's process holds it while it reads the rows anyway.
    """

    key: tuple | None = None
    sheet = None

    @classmethod
    def put(cls, path: Path, sheet) -> None:
        cls.key, cls.sheet = cls._key(path), sheet

    @classmethod
    def take(cls, path: Path):
        sheet = cls.sheet if cls.key is not None and cls.key == cls._key(path) else None
        cls.drop()
        return sheet

    @classmethod
    def drop(cls) -> None:
        cls.key = cls.sheet = None

    @staticmethod
    def _key(path: Path) -> tuple:
        stat = path.stat()
        return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _calamine_rows(path: Path, *, keep: bool = False) -> Iterator[tuple[int, list[str]]]:
    from python_calamine import CalamineWorkbook

    sheet = KeptSheet.take(path)
    if sheet is None:
        try:
            sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
        except Exception as error:  # calamine's errors share no base class
            raise XlsxError(str(error)) from None
    if keep:
        KeptSheet.put(path, sheet)
    for number, cells in enumerate(sheet.iter_rows(), start=1):
        # Most cells are text already: converted without a call each (a third
        # of the time of reading a loaded sheet).
        yield number, [cell if cell.__class__ is str else _xlsx_cell(cell) for cell in cells]


def open_xlsx(
    path: Path, *, keep: bool = False, stream: bool = False
) -> tuple[Sheet, Iterator[tuple[int, list[str]]]]:
    """The first sheet's headers and an iterator of (row number, cells); `keep`
    keeps a sheet loaded in memory for the next open of the file (KeptSheet);
    `stream` streams the sheet whatever its size, where this reader finds its parts.

    python-calamine reads about 60,000 rows/s but holds the whole sheet in
    memory (about 1.7x its XML: 462 MB for a 300k-row sheet), so a sheet whose
    XML is larger than CIM_IMPORT_XLSX_IN_MEMORY_MB streams instead, at about
    a third of the speed, in constant memory (customers/imports/xlsx.py)."""
    check_xlsx(path)
    limit = int(getattr(settings, "CIM_IMPORT_XLSX_IN_MEMORY_MB", 100)) * 2**20
    try:
        streamed = stream or sheet_size(path) > limit
    except XlsxError:
        # Parts where this reader does not look for them: calamine reads what
        # it finds, and refuses what is broken.
        streamed = False
    try:
        try:
            rows = xlsx_rows(path) if streamed else _calamine_rows(path, keep=keep)
            _, headers = next(rows)
        except XlsxError:
            if not stream:
                raise
            rows = _calamine_rows(path, keep=keep)  # see above: calamine decides
            _, headers = next(rows)
        headers = [header.strip() for header in headers]
        if not any(headers):
            raise StopIteration
    except StopIteration:
        KeptSheet.drop()
        raise FileRejected(FILE_NO_HEADER) from None
    except XlsxError as error:
        raise FileRejected(XLSX_BROKEN.format(reason=str(error)[:200])) from None

    def data_rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for number, values in rows:
                if any(len(value) > MAX_CELL_CHARS for value in values):
                    raise FileRejected(ROW_CELL_TOO_LARGE.format(row=number, limit=MAX_CELL_CHARS))
                if any(value.strip() for value in values):
                    yield number, values
        except XlsxError as error:
            KeptSheet.drop()
            raise FileRejected(XLSX_BROKEN.format(reason=str(error)[:200])) from None
        except FileRejected:
            KeptSheet.drop()  # a refused file is not read again
            raise

    return Sheet(headers=headers, kind="xlsx"), data_rows()


def open_sheet(path: Path, *, keep: bool = False) -> tuple[Sheet, Iterator[tuple[int, list[str]]]]:
    """The file's headers and rows; `keep`: see open_xlsx."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        return open_csv(path)
    if suffix == ".xlsx":
        return open_xlsx(path, keep=keep)
    raise FileRejected(FILE_UNKNOWN_TYPE.format(suffix=suffix or "no extension"))


def sniff_headers(path: Path) -> Sheet:
    """The file's headers, reading as little of it as it can: a workbook's sheet
    is streamed to its first row rather than loaded whole (a 100k-row sheet:
    0.2 s and 4 MB against 1.9 s and 127 MB), as this runs in the upload's
    request. What is broken further on is refused when the file is read whole
    (the preview, or the command's check), before anything is written."""
    if path.suffix.lower() == ".xlsx":
        sheet, rows = open_xlsx(path, stream=True)
    else:
        sheet, rows = open_sheet(path)
    close = getattr(rows, "close", None)
    if close:
        close()
    return sheet


__all__ = ["FileRejected", "Sheet", "open_sheet", "sniff_headers"]
