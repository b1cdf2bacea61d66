"""The first sheet of an XLSX workbook, row by row, in bounded memory.

Why by hand: python-calamine reads fast but loads a whole sheet when it opens
it (462 MB of memory for a 300k-row file, so a 1M-row file of 110 MB, under
the upload limit, would need 1.3 GB), and openpyxl's read-only mode streams at
about 6,000 rows/s. This feeds the sheet's XML to expat in blocks and builds no
elements (about 20,000 rows/s, twice ElementTree's iterparse), refusing DTDs
and entity declarations as defusedxml does; the small parts (workbook,
relationships, styles) go through defusedxml itself. Only what an import
needs: cell values as text, dates as ISO dates.
"""

from __future__ import annotations

import datetime
import posixpath
import re
import zipfile
from array import array
from collections.abc import Iterator
from xml.parsers import expat

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
BLOCK_BYTES = 1 << 20
# A part's first block: the upload reads a sheet only to its header row, and
# expat calls a handler for every element of a block (1 MB of a sheet: about
# 1,300 rows, 0.07 s); blocks double from here up to BLOCK_BYTES.
FIRST_BLOCK_BYTES = 1 << 14
LOCAL_NAMES_KEPT = 256
EPOCH_1900 = datetime.datetime(1899, 12, 30)  # Excel's day 0, past its 1900 leap-year bug
EPOCH_1904 = datetime.datetime(1904, 1, 1)


class XlsxError(Exception):
    """The workbook's parts are missing or are not the XML they should be."""


class SharedStrings:
    """The workbook's shared strings as UTF-8 in one buffer with offsets (a list
    of millions of str objects would cost five times the text), parsed from
    their part only as far as the cells read need them: `blocks` advances the
    parse by a block. Excel numbers them in the order it first meets them, so
    a header row needs the first few. Read whole beforehand, a 100k-row
    workbook's 460k strings kept the upload's request 1.2 s reading its
    headers; a million rows would keep it 12 s."""

    def __init__(self) -> None:
        self.text = bytearray()
        self.starts = array("Q", [0])
        self.blocks: Iterator[None] | None = None

    def append(self, value: str) -> None:
        self.text += value.encode()
        self.starts.append(len(self.text))

    def __getitem__(self, index: int) -> str:
        while True:
            try:
                return self.text[self.starts[index] : self.starts[index + 1]].decode()
            except IndexError:
                if self.blocks is None:
                    raise
                self._advance()

    def __len__(self) -> int:
        return len(self.starts) - 1

    def _advance(self) -> None:
        if next(self.blocks, _PARSED) is _PARSED:
            self.blocks = None

    def finish(self) -> None:
        """Parse the rest: a part broken past the strings the cells used is
        refused all the same when the whole sheet is read."""
        while self.blocks is not None:
            self._advance()

    def close(self) -> None:
        if self.blocks is not None:
            self.blocks.close()
            self.blocks = None


_PARSED = object()


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


def _refuse_dtd(*_) -> None:
    raise XlsxError("a part carries a DTD or entity declaration")


def _expat(start, end, text):
    """A namespace-blind expat parser with these handlers that refuses DTDs
    and entity declarations, as defusedxml does; no element is built."""
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    return parser


def _feed(part, parser) -> Iterator[None]:
    """Parse the part in blocks, pausing after each."""
    size = FIRST_BLOCK_BYTES
    while block := part.read(size):
        parser.Parse(block, False)
        yield
        size = min(2 * size, BLOCK_BYTES)
    parser.Parse(b"", True)
    yield


class _TextCollector:
    """expat handlers gathering the text of `tags` elements (not inside phonetic
    <rPh>) per `item` element, for `done`; `opened` and `closed` hear of the
    other elements.

    expat calls a handler for every element, most of a streamed sheet's
    reading time: names are taken from a table of those met (rather than
    split at the prefix on every call) and compared directly."""

    def __init__(self, item: str, done, tags: tuple[str, ...] = ("t",)) -> None:
        self.item, self.done, self.tags = item, done, frozenset(tags)
        self.parts: list[str] = []
        self.collecting = False
        self.phonetic = False
        self.local_names: dict[str, str] = {}

    def start(self, name: str, attributes: dict) -> None:
        name = self.local_names.get(name) or self._local(name)
        if name in self.tags:
            self.collecting = not self.phonetic
        elif name == self.item:
            self.parts = []
            self.opened(name, attributes)
        elif name == "rPh":
            self.phonetic = True
        else:
            self.opened(name, attributes)

    def end(self, name: str) -> None:
        name = self.local_names.get(name) or self._local(name)
        if name in self.tags:
            self.collecting = False
        elif name == self.item:
            self.done("".join(self.parts))
        elif name == "rPh":
            self.phonetic = False
        else:
            self.closed(name)

    def text(self, data: str) -> None:
        if self.collecting:
            self.parts.append(data)

    def _local(self, name: str) -> str:
        local = name.rpartition(":")[2]
        if len(self.local_names) < LOCAL_NAMES_KEPT:  # a hostile part may invent millions
            self.local_names[name] = local
        return local

    def opened(self, name: str, attributes: dict) -> None:
        pass

    def closed(self, name: str) -> None:
        pass


def _shared_strings(archive: zipfile.ZipFile, path: str | None) -> SharedStrings:
    """The workbook's shared strings, parsed as the cells read need them."""
    strings = SharedStrings()
    if path is not None and path in archive.NameToInfo:
        strings.blocks = _shared_string_blocks(archive, path, strings)
    return strings


def _shared_string_blocks(
    archive: zipfile.ZipFile, path: str, strings: SharedStrings
) -> Iterator[None]:
    collector = _TextCollector("si", strings.append)
    with archive.open(path) as part:
        yield from _feed(part, _expat(collector.start, collector.end, collector.text))


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


_ROW_DIGITS = "0123456789"
# Column letters met, with their index: at most Excel's 16,384 (A to XFD).
_COLUMNS: dict[str, int] = {}


def _column(reference: str) -> int:
    """The column index of a cell reference ("C12": 2); -1 without letters."""
    letters = reference.rstrip(_ROW_DIGITS)
    index = _COLUMNS.get(letters)
    if index is None:
        found = _COLUMN.match(letters)
        index = -1
        for letter in found.group() if found else "":
            index = (index + 1) * 26 + ord(letter) - 65
        if len(letters) <= 3:
            _COLUMNS[letters] = index
    return index


def _number(text: str, *, is_date: bool, epoch: datetime.datetime) -> str:
    value = float(text)
    if is_date:
        moment = epoch + datetime.timedelta(days=value)
        moment = moment.replace(microsecond=0) if moment.microsecond < 500_000 else moment
        if moment.time() == datetime.time():
            return moment.date().isoformat()
        return moment.isoformat()
    return str(int(value)) if value.is_integer() else str(value)


def first_sheet(archive: zipfile.ZipFile) -> str:
    """The path of the workbook's first sheet in its archive."""
    try:
        return _parts(archive)[0]
    except (KeyError, ValueError, ElementTree.ParseError) as error:
        raise XlsxError(str(error)) from None


def sheet_size(path) -> int:
    """The uncompressed size of the workbook's first sheet, in bytes."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.getinfo(first_sheet(archive)).file_size
    except (zipfile.BadZipFile, KeyError) as error:
        raise XlsxError(str(error)) from None


class _SheetRows(_TextCollector):
    """expat handlers that turn a sheet's XML into (row number, cells) rows: a
    cell's text is its <v>, or its inline string's <t>s. The collector's
    handlers, written out for the sheet's few elements: a sheet has tens of
    them a row (measured: 33 against 43 us a row read)."""

    def __init__(self, strings: SharedStrings, date_styles: frozenset[int], epoch) -> None:
        super().__init__("c", None, tags=("v", "t"))
        self.strings, self.date_styles, self.epoch = strings, date_styles, epoch
        self.ready: list[tuple[int, list[str]]] = []
        self.cells: dict[int, str] = {}
        self.row_number = 0
        self.cell: tuple[int, str, str] = (0, "n", "0")  # column, type, style

    def start(self, name: str, attributes: dict) -> None:
        name = self.local_names.get(name) or self._local(name)
        if name == "c":
            reference = attributes.get("r")
            column = _column(reference) if reference else len(self.cells)
            self.cell = (column, attributes.get("t", "n"), attributes.get("s", "0"))
            self.parts = []
        elif name == "v" or name == "t":
            self.collecting = not self.phonetic
        elif name == "row":
            reference = attributes.get("r")
            self.row_number = int(reference) if reference else self.row_number + 1
            self.cells = {}
        elif name == "rPh":
            self.phonetic = True

    def end(self, name: str) -> None:
        name = self.local_names.get(name) or self._local(name)
        if name == "c":
            column, kind, style = self.cell
            self.cells[column] = self._value(kind, style, "".join(self.parts))
        elif name == "v" or name == "t":
            self.collecting = False
        elif name == "row":
            if self.cells:
                row = [""] * (max(self.cells) + 1)
                for column, text in self.cells.items():
                    row[column] = text
                self.ready.append((self.row_number, row))
        elif name == "rPh":
            self.phonetic = False

    def _value(self, kind: str, style: str, text: str) -> str:
        if kind == "s":
            return self.strings[int(text)] if text else ""
        if kind == "n":
            if not text:
                return ""
            is_date = int(style) in self.date_styles
            return _number(text, is_date=is_date, epoch=self.epoch)
        if kind == "b":
            return "True" if text == "1" else "False"
        if kind == "d" and text.endswith("T00:00:00"):
            return text[:10]
        return text  # inlineStr, str (a formula's text), e (an error), d


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
            sheet = _SheetRows(strings, date_styles, EPOCH_1904 if date1904 else EPOCH_1900)
            try:
                with archive.open(sheet_path) as part:
                    for _ in _feed(part, _expat(sheet.start, sheet.end, sheet.text)):
                        yield from sheet.ready
                        sheet.ready.clear()
                strings.finish()
            finally:
                strings.close()
        except (KeyError, ValueError, IndexError, expat.ExpatError, ElementTree.ParseError) as e:
            raise XlsxError(str(e)) from None
