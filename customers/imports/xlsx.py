"""The first sheet of an XLSX workbook, row by row, in bounded memory.

Why by hand: python-calamine reads fast but loads a whole sheet when it opens
it (462 MB of memory for a 300k-row file, so a 1M-row file of 110 MB, under
the upload limit, would need 1.3 GB), and openpyxl's read-only mode streams at
about 6,000 rows/s. This reads the sheet's XML as a stream (about 10,000 rows
a second) through defusedxml, which refuses DTDs and entities anywhere in a
part. Only what an import needs: cell values as text, dates as ISO dates.
"""

from __future__ import annotations

import datetime
import posixpath
import re
import zipfile
from array import array
from collections.abc import Iterator

from defusedxml import ElementTree

MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
RELATIONSHIPS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
PACKAGE_RELATIONSHIPS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
SHARED_STRINGS_TYPE = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"
)
STYLES_TYPE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles"
# Number formats Excel numbers itself that show dates or times.
BUILTIN_DATE_FORMATS = {*range(14, 23), *range(27, 37), 45, 46, 47, *range(50, 59)}
# A custom format shows a date when, outside quoted text, escapes and [colour]
# sections, it has a day, month, year, hour or second part.
_FORMAT_NOISE = re.compile(r'"[^"]*"|\\.|\[[^\]]*\]')
_DATE_PARTS = re.compile(r"[dmyhs]", re.IGNORECASE)
_COLUMN = re.compile(r"[A-Z]+")
EPOCH_1900 = datetime.datetime(1899, 12, 30)  # Excel's day 0, past its 1900 leap-year bug
EPOCH_1904 = datetime.datetime(1904, 1, 1)


class XlsxError(Exception):
    """The workbook's parts are missing or are not the XML they should be."""


class CompactStrings:
    """The workbook's shared strings as UTF-8 in one buffer with offsets: a
    list of millions of str objects would cost five times the text."""

    def __init__(self) -> None:
        self.text = bytearray()
        self.starts = array("Q", [0])

    def append(self, value: str) -> None:
        self.text += value.encode()
        self.starts.append(len(self.text))

    def __getitem__(self, index: int) -> str:
        return self.text[self.starts[index] : self.starts[index + 1]].decode()

    def __len__(self) -> int:
        return len(self.starts) - 1


def _text_of(element) -> str:
    """The text of a shared or inline string: its <t>, or its runs' <t>s."""
    direct = element.find(f"{MAIN}t")
    if direct is not None:
        return direct.text or ""
    return "".join(t.text or "" for t in element.iterfind(f"{MAIN}r/{MAIN}t"))


def _parts(archive: zipfile.ZipFile) -> tuple[str, str | None, str | None, bool]:
    """(first sheet, shared strings, styles) paths and whether dates count from 1904."""
    workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"), forbid_dtd=True)
    sheet = workbook.find(f"{MAIN}sheets/{MAIN}sheet")
    if sheet is None:
        raise XlsxError("it has no sheet")
    properties = workbook.find(f"{MAIN}workbookPr")
    date1904 = properties is not None and properties.get("date1904") in ("1", "true")
    relationships = ElementTree.fromstring(
        archive.read("xl/_rels/workbook.xml.rels"), forbid_dtd=True
    )
    targets, by_type = {}, {}
    for relationship in relationships.iter(f"{PACKAGE_RELATIONSHIPS}Relationship"):
        target = relationship.get("Target", "")
        path = target[1:] if target.startswith("/") else posixpath.normpath("xl/" + target)
        targets[relationship.get("Id")] = path
        by_type[relationship.get("Type")] = path
    sheet_path = targets.get(sheet.get(f"{RELATIONSHIPS}id"))
    if sheet_path is None:
        raise XlsxError("its first sheet is missing")
    return sheet_path, by_type.get(SHARED_STRINGS_TYPE), by_type.get(STYLES_TYPE), date1904


def _shared_strings(archive: zipfile.ZipFile, path: str | None) -> CompactStrings:
    strings = CompactStrings()
    if path is None or path not in archive.NameToInfo:
        return strings
    with archive.open(path) as part:
        for _, element in ElementTree.iterparse(part, forbid_dtd=True):
            if element.tag == f"{MAIN}si":
                strings.append(_text_of(element))
                element.clear()
    return strings


def _date_styles(archive: zipfile.ZipFile, path: str | None) -> frozenset[int]:
    """The indexes of the cell styles that show a number as a date."""
    if path is None or path not in archive.NameToInfo:
        return frozenset()
    styles = ElementTree.fromstring(archive.read(path), forbid_dtd=True)
    date_formats = set(BUILTIN_DATE_FORMATS)
    for number_format in styles.iterfind(f"{MAIN}numFmts/{MAIN}numFmt"):
        code = _FORMAT_NOISE.sub("", number_format.get("formatCode", ""))
        if _DATE_PARTS.search(code.replace("General", "")):
            date_formats.add(int(number_format.get("numFmtId", "-1")))
    return frozenset(
        index
        for index, style in enumerate(styles.iterfind(f"{MAIN}cellXfs/{MAIN}xf"))
        if int(style.get("numFmtId", "0")) in date_formats
    )


def _column(reference: str) -> int:
    letters = _COLUMN.match(reference)
    index = 0
    for letter in letters.group() if letters else "":
        index = index * 26 + ord(letter) - 64
    return index - 1


def _number(text: str, *, is_date: bool, epoch: datetime.datetime) -> str:
    value = float(text)
    if is_date:
        moment = epoch + datetime.timedelta(days=value)
        moment = moment.replace(microsecond=0) if moment.microsecond < 500_000 else moment
        if moment.time() == datetime.time():
            return moment.date().isoformat()
        return moment.isoformat()
    return str(int(value)) if value.is_integer() else str(value)


def sheet_size(path) -> int:
    """The uncompressed size of the workbook's first sheet, in bytes."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.getinfo(_parts(archive)[0]).file_size
    except (zipfile.BadZipFile, KeyError, ValueError, ElementTree.ParseError) as error:
        raise XlsxError(str(error)) from None


def xlsx_rows(path) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells as text) of the first sheet, every row that has a cell;
    XlsxError for a workbook whose parts are missing or broken."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise XlsxError(str(error)) from None
    with archive:
        try:
            sheet_path, strings_path, styles_path, date1904 = _parts(archive)
            strings = _shared_strings(archive, strings_path)
            date_styles = _date_styles(archive, styles_path)
        except (KeyError, ValueError, ElementTree.ParseError) as error:
            raise XlsxError(str(error)) from None
        epoch = EPOCH_1904 if date1904 else EPOCH_1900
        cell_tag, row_tag, value_tag = f"{MAIN}c", f"{MAIN}row", f"{MAIN}v"
        try:
            with archive.open(sheet_path) as part:
                cells: dict[int, str] = {}
                last_row = 0
                parent = None
                for event, element in ElementTree.iterparse(
                    part, events=("start", "end"), forbid_dtd=True
                ):
                    if event == "start":
                        if element.tag == f"{MAIN}sheetData":
                            parent = element
                        continue
                    if element.tag == cell_tag:
                        reference = element.get("r")
                        column = _column(reference) if reference else len(cells)
                        kind = element.get("t", "n")
                        value = element.find(value_tag)
                        text = value.text if value is not None and value.text else ""
                        if kind == "s" and text:
                            cells[column] = strings[int(text)]
                        elif kind == "inlineStr":
                            inline = element.find(f"{MAIN}is")
                            cells[column] = _text_of(inline) if inline is not None else ""
                        elif kind == "b":
                            cells[column] = "True" if text == "1" else "False"
                        elif kind == "n" and text:
                            is_date = int(element.get("s", "0")) in date_styles
                            cells[column] = _number(text, is_date=is_date, epoch=epoch)
                        elif kind == "d" and text.endswith("T00:00:00"):
                            cells[column] = text[:10]
                        else:  # str (a formula's text), e (an error), d: as written
                            cells[column] = text
                    elif element.tag == row_tag:
                        reference = element.get("r")
                        last_row = int(reference) if reference else last_row + 1
                        if cells:
                            row = [""] * (max(cells) + 1)
                            for column, text in cells.items():
                                row[column] = text
                            yield last_row, row
                            cells = {}
                        if parent is not None:
                            parent.clear()  # the rows read so far: nothing keeps them
        except (KeyError, ValueError, IndexError, ElementTree.ParseError) as error:
            raise XlsxError(str(error)) from None
