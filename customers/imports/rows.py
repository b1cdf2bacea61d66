"""One spreadsheet row to the customer it describes, through the same
normalisation functions the forms and the admin use (customers/normalization.py).

Blank cells mean "no information": they never erase a stored value.
"""

from __future__ import annotations

import datetime
import hashlib
import operator
import zlib
from array import array
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError

from cim.bulk import SEPARATOR, joined
from customers import normalization
from customers.models import Customer
from customers.services import CUSTOMER_EDITABLE_FIELDS

MISSING_EXTERNAL_ID = "external_id is required to identify the customer."
DUPLICATE_EXTERNAL_ID = "external_id '{value}' already appeared in row {first}."
ROW_SHIFTED = (
    "The row has {cells} cells and the header {width} columns: a value holding the "
    "delimiter without quotes moves the values after it into other columns. "
    "Nothing of the row was imported."
)
BAD_KIND = "'{value}' is not a kind: use person or organization."
PERSON_NEEDS_NAME = "A person needs a first_name or a last_name."
ORGANIZATION_NEEDS_NAME = "An organization needs an organization_name."
TOO_LONG = "Longer than {limit} characters."
BAD_DATE = "'{value}' is not a date in ISO 8601 form (YYYY-MM-DD, e.g. 1984-03-27)."
IMPLAUSIBLE_DATE = "'{value}' is not a plausible date of birth."
ADDRESS_INCOMPLETE = "An address needs street, city and country; it was left out."
BAD_LANGUAGE = "'{value}' is not a supported language code (e.g. en, de, fr)."
LEFT_OUT = "{reason} The value was left out (lenient import)."

KINDS = {
    "person": Customer.Kind.PERSON,
    "individual": Customer.Kind.PERSON,
    "p": Customer.Kind.PERSON,
    "private": Customer.Kind.PERSON,
    "organization": Customer.Kind.ORGANIZATION,
    "organisation": Customer.Kind.ORGANIZATION,
    "company": Customer.Kind.ORGANIZATION,
    "business": Customer.Kind.ORGANIZATION,
    "o": Customer.Kind.ORGANIZATION,
    "org": Customer.Kind.ORGANIZATION,
}
LANGUAGE_CODES = {code.lower(): code for code, _ in settings.LANGUAGES}
LIMITS = {
    "first_name": 100,
    "last_name": 100,
    "organization_name": 200,
    "street": 200,
    "street2": 200,
    "city": 100,
    "postcode": 20,
    "region": 100,
    "external_id": 100,
}
# The customer fields an import row may set: the ones the customer form edits.
CUSTOMER_FIELDS = CUSTOMER_EDITABLE_FIELDS
ADDRESS_FIELDS = ("street", "street2", "city", "postcode", "region", "country")


@dataclass
class Issue:
    field: str
    message: str
    optional: bool = False  # an invalid optional value: the lenient choice leaves it out


@dataclass
class ParsedRow:
    number: int
    cells: list[str]
    external_id: str
    fingerprint: str
    customer: dict = field(default_factory=dict)  # only the fields the row gives
    email: str = ""
    phone: str = ""
    address: dict | None = None
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    # (display name, search name, search tokens) of a new customer: the pipeline
    # derives them where it validates, beside the process that writes.
    names: tuple | None = None

    @property
    def rejected(self) -> bool:
        return bool(self.errors)


class Memo:
    """The outcomes of normalisation calls already made in one import.

    A spreadsheet repeats its countries, and often its phone numbers (a company's
    switchboard), on thousands of rows; each distinct value goes through the
    normalisation functions once. The functions depend only on their arguments
    and the settings, which do not change during an import; an Importer (or a
    validating worker process) holds one Memo for one run. Bounded, so memory
    stays flat whatever the file.
    """

    LIMIT = 50_000

    def __init__(self) -> None:
        self.outcomes: dict[tuple, tuple] = {}

    def __call__(self, function, *args) -> tuple[object, str]:
        key = (function, *args)
        outcome = self.outcomes.get(key)
        if outcome is None:
            if len(self.outcomes) >= self.LIMIT:
                self.outcomes.clear()
            outcome = self.outcomes[key] = outcome_of(function, *args)
        return outcome


def phones_normalised_first(rows, columns: dict[str, int], memo: Memo) -> None:
    """Normalise the phone numbers of a chunk's rows into `memo`, one after the
    other, before parse_row reads each from it.

    Why: phonenumbers is the costliest check of a row, and run number after
    number its code and tables stay in the processor's caches instead of being
    pushed out by the rest of each row's checks (the bench's rows: 43.5 against
    51.3 us a row validated). The keys are parse_row's own; a number this
    misses, parse_row normalises itself, so only the speed depends on it.
    `rows`: (row number, cells, ...) tuples.
    """
    phone_at, country_at = columns.get("phone"), columns.get("country")
    if phone_at is None:
        return
    # A row adds at most two outcomes (its country, its number): room for all
    # of them now, rather than the memo emptying itself amid the rows.
    if len(memo.outcomes) + 2 * len(rows) >= memo.LIMIT:
        memo.outcomes.clear()
    for _, cells, *_ in rows:
        phone = cells[phone_at].strip() if phone_at < len(cells) else ""
        if not phone:
            continue
        country = ""
        given = ""
        if country_at is not None and country_at < len(cells):
            given = cells[country_at].strip()
        if given:
            value, problem = memo(normalization.normalize_country, given)
            country = "" if problem else value
        memo(normalization.normalize_phone, phone, country or None)


def outcome_of(function, *args) -> tuple[object, str]:
    """(normalised value, "") or (None, why the value was refused)."""
    try:
        return function(*args), ""
    except ValidationError as error:
        return None, refusal(error)


def refusal(error: ValidationError) -> str:
    """Why a value was refused, with the error's tracebacks let go.

    A ValidationError refers to itself (its error_list), so only the garbage
    collector frees it; through its traceback it would hold every frame up to
    the chunk's, and with them the chunk's rows, until then. Without the
    tracebacks an import's rows are freed as soon as written (the collector
    took 7 to 16% of a writing process's time walking them: 1M rows, bench
    data with 5% of rows invalid).
    """
    message = error.messages[0]
    cause: BaseException | None = error
    while cause is not None:
        cause.__traceback__ = None
        cause = cause.__cause__ or cause.__context__
    return message


# Between the rows of a chunk in transit (PackedRows), as SEPARATOR is between cells.
ROWS_SEPARATOR = "\x1e"


class PackedRows(list):
    """A chunk's rows to validate, (row number, cells, fingerprint) tuples, that
    travel to a worker process as three flat values: the numbers, the cells in
    one text, the fingerprints in another. Pickled tuple by tuple they cost 1.8
    us a row to pickle and as much to unpickle (10,000 of the bench's rows);
    joined, the text is copied whole. Rows whose cells hold a separator (or a
    row of no cells) travel as the plain list they are. Unpickled, a plain list."""

    def __reduce__(self):
        if not self:
            return list, ()
        numbers, cells, fingerprints = zip(*self, strict=True)
        text = ROWS_SEPARATOR.join(map(SEPARATOR.join, cells))
        fingerprint_text = joined(fingerprints)
        if (
            fingerprint_text is None
            or not all(cells)
            or text.count(ROWS_SEPARATOR) != len(cells) - 1
            or text.count(SEPARATOR) != sum(map(len, cells)) - len(cells)
        ):
            return list, (list(self),)
        return _rows_unpacked, (array("q", numbers).tobytes(), text, fingerprint_text)


def _rows_unpacked(numbers: bytes, text: str, fingerprints: str) -> list:
    unpacked = array("q")
    unpacked.frombytes(numbers)
    return list(
        zip(
            unpacked,
            [row.split(SEPARATOR) for row in text.split(ROWS_SEPARATOR)],
            fingerprints.split(SEPARATOR),
            strict=True,
        )
    )


class RowKeys:
    """A row's external id and fingerprint, straight from its cells: what a
    re-import needs to skip an unchanged row without reading it further.

    The fingerprint hashes the mapped cells as the file gives them, with the
    mapping's field names and the lenient choice: the same row under the same
    mapping gives the same fingerprint. A row that differs only in spacing
    gets another one, so it is validated again and then found unchanged field
    by field: slower for that row, never wrong. Hashing the raw cells in one
    join takes about 1 us a row against 3 with each cell stripped first.
    """

    def __init__(self, columns: dict[str, int], lenient: bool) -> None:
        names = sorted(columns)
        self.indexes = [columns[name] for name in names]
        self.id_index = columns.get("external_id", -1)
        self.width = max(self.indexes, default=-1) + 1
        self.pick = operator.itemgetter(*self.indexes) if len(self.indexes) > 1 else None
        self.header = hashlib.blake2b(
            (SEPARATOR.join(names) + f"|{lenient}|").encode(), digest_size=16
        )

    def __call__(self, cells: list[str]) -> tuple[str, str]:
        if self.pick is not None and len(cells) >= self.width:
            values = self.pick(cells)
        else:
            values = [cells[index] if index < len(cells) else "" for index in self.indexes]
        payload = joined(values)
        if payload is None:
            # A cell holds the separator itself: each cell length-prefixed, so
            # no two different rows join to the same text.
            payload = "".join(f"{len(value)}:{value}" for value in values)
        digest = self.header.copy()
        digest.update(payload.encode())
        external_id = cells[self.id_index].strip() if 0 <= self.id_index < len(cells) else ""
        return external_id, digest.hexdigest()


class FirstRows:
    """The row where each external id of a file first appeared, in 16 bytes a
    slot, 21 to 43 bytes an id (32 MB for a million): a dict of the ids took
    about 150 (a job's process grew by 158 MB over a 1M-row file).

    An open-addressing table in three arrays holds 96 bits of each id (its
    64-bit str hash and its CRC-32, independent functions) and the row: two
    ids of one file share those bits with odds of about n²/2^97 (6e-16 for
    ten million rows). By hand because the standard library has no compact
    hash table; the str hash is salted per process, which is all it needs,
    as a resumed job rebuilds the table from the file.
    """

    EMPTY = 0  # no row of a file is numbered 0: row 1 is the header

    def __init__(self, expected: int = 0) -> None:
        """Room for `expected` ids (the file's rows, when known) without growing."""
        capacity = 1 << 16
        while capacity * 3 < expected * 4:
            capacity *= 2
        self._allocate(capacity)
        self.count = 0

    def _allocate(self, capacity: int) -> None:
        self.mask = capacity - 1
        self.high = array("q", bytes(8 * capacity))
        self.low = array("I", bytes(4 * capacity))
        self.rows = array("i", bytes(4 * capacity))

    def __len__(self) -> int:
        return self.count

    def setdefault(self, external_id: str, number: int) -> int:
        """The row where `external_id` first appeared, `number` if here first."""
        return self._place(hash(external_id), zlib.crc32(external_id.encode()), number)

    def _place(self, high: int, low: int, number: int) -> int:
        mask, highs, lows, rows = self.mask, self.high, self.low, self.rows
        slot = high & mask
        while True:
            row = rows[slot]
            if row == self.EMPTY:
                highs[slot], lows[slot], rows[slot] = high, low, number
                self.count += 1
                if self.count * 4 > mask * 3:  # three quarters full: double
                    self._grow()
                return number
            if highs[slot] == high and lows[slot] == low:
                return row
            slot = (slot + 1) & mask

    def _grow(self) -> None:
        old = (self.high, self.low, self.rows)
        self._allocate(2 * (self.mask + 1))
        mask, highs, lows, rows = self.mask, self.high, self.low, self.rows
        # _place's probe without its comparison: the ids moved are all distinct.
        for high, low, row in zip(*old, strict=True):
            if row != self.EMPTY:
                slot = high & mask
                while rows[slot] != self.EMPTY:
                    slot = (slot + 1) & mask
                highs[slot], lows[slot], rows[slot] = high, low, row


EARLIEST_BIRTH = datetime.date(1900, 1, 1)


class _Today:
    """A day known to have come: date.today() costs half a microsecond, about
    2% of validating a row, and a date of birth is nearly always long past,
    so the clock is read again only for a date later than the day known."""

    known = datetime.date.today()

    @classmethod
    def reached(cls, day: datetime.date) -> bool:
        if day > cls.known:
            cls.known = datetime.date.today()
        return day <= cls.known


def parse_date(value: str) -> datetime.date:
    try:
        parsed = datetime.date.fromisoformat(value[:10] if "T" in value else value)
    except ValueError:
        raise ValidationError(BAD_DATE.format(value=value)) from None
    if parsed < EARLIEST_BIRTH or not _Today.reached(parsed):
        raise ValidationError(IMPLAUSIBLE_DATE.format(value=value))
    return parsed


def row_values(cells: list[str], columns: dict[str, int]) -> dict[str, str]:
    """The row's cells by field name. `columns` maps each field to its cell index."""
    return {
        name: (cells[index].strip() if index < len(cells) else "")
        for name, index in columns.items()
    }


def parse_row(
    number: int,
    cells: list[str],
    columns: dict[str, int],
    *,
    lenient: bool,
    values: dict[str, str] | None = None,
    row_fingerprint: str = "",
    memo: Memo | None = None,
) -> ParsedRow:
    """Validate and normalise one row. `memo` remembers the outcome of each
    distinct value across the rows of one import."""
    check = memo or outcome_of
    values = row_values(cells, columns) if values is None else values
    get = values.get
    row = ParsedRow(
        number=number,
        cells=cells,
        external_id=get("external_id", ""),
        fingerprint=row_fingerprint or RowKeys(columns, lenient)(cells)[1],
    )
    if not row.external_id:
        row.errors.append(Issue("external_id", MISSING_EXTERNAL_ID))
        return row

    def optional(name: str, message: str) -> None:
        # An invalid optional value rejects the row, or with lenient is left out.
        if lenient:
            row.warnings.append(Issue(name, LEFT_OUT.format(reason=message), optional=True))
        else:
            row.errors.append(Issue(name, message, optional=True))

    for name, limit in LIMITS.items():
        if len(get(name, "")) > limit:
            row.errors.append(Issue(name, TOO_LONG.format(limit=limit)))
    if row.errors:
        return row

    kind_value = get("kind", "").lower()
    if kind_value:
        kind = KINDS.get(kind_value)
        if kind is None:
            row.errors.append(Issue("kind", BAD_KIND.format(value=values["kind"])))
            return row
    elif get("organization_name") and not (get("first_name") or get("last_name")):
        kind = Customer.Kind.ORGANIZATION
    else:
        kind = Customer.Kind.PERSON
    customer = row.customer
    customer["kind"] = kind
    for name in ("first_name", "last_name", "organization_name"):
        if get(name):
            customer[name] = " ".join(values[name].split())
    if kind == Customer.Kind.PERSON and not (
        customer.get("first_name") or customer.get("last_name")
    ):
        row.errors.append(Issue("last_name", PERSON_NEEDS_NAME))
    if kind == Customer.Kind.ORGANIZATION and not customer.get("organization_name"):
        row.errors.append(Issue("organization_name", ORGANIZATION_NEEDS_NAME))

    country = ""
    if get("country"):
        value, problem = check(normalization.normalize_country, values["country"])
        if problem:
            optional("country", problem)
        else:
            country = customer["country"] = value
    if get("date_of_birth"):
        try:
            customer["date_of_birth"] = parse_date(values["date_of_birth"])
        except ValidationError as error:
            optional("date_of_birth", refusal(error))
    for name, normalize in (
        ("national_id", normalization.normalize_national_id),
        ("tax_id", normalization.normalize_tax_id),
    ):
        if get(name):
            # Each customer's own: remembered, they would only crowd out of the
            # memo the values that do repeat (phones, countries).
            value, problem = outcome_of(normalize, values[name], country)
            if problem:
                optional(name, problem)
            else:
                customer[name] = value
    if get("preferred_language"):
        code = LANGUAGE_CODES.get(values["preferred_language"].lower().replace("_", "-"))
        if code:
            customer["preferred_language"] = code
        else:
            optional("preferred_language", BAD_LANGUAGE.format(value=values["preferred_language"]))
    if get("email"):
        # Addresses rarely repeat: validated each time (the validator keeps its domains).
        value, problem = outcome_of(normalization.normalize_email, values["email"])
        if problem:
            optional("email", problem)
        else:
            row.email = value
    if get("phone"):
        value, problem = check(normalization.normalize_phone, values["phone"], country or None)
        if problem:
            optional("phone", problem)
        else:
            row.phone = value
    # Most rows give an address: one test of its cells rather than of a dict built first.
    if get("street") or get("street2") or get("city") or get("postcode") or get("region"):
        address = {name: " ".join(get(name, "").split()) for name in ADDRESS_FIELDS}
        address["country"] = country
        address["postcode"] = address["postcode"].upper()
        if address["street"] and address["city"] and address["country"]:
            row.address = address
        else:
            optional("street", ADDRESS_INCOMPLETE)
    return row


WARM_UP_ROW = {
    "external_id": "W-1",
    "first_name": "Ann",
    "last_name": "Lee",
    "email": "ann.lee@example.com",
    "phone": "+44 20 7946 0958",
    "date_of_birth": "1985-04-12",
    "country": "GB",
    "preferred_language": "en",
    "street": "1 High St",
    "city": "London",
    "postcode": "SW1A 1AA",
}


def validators_warmed() -> None:
    """Validate one row, so what the validators build on first use (Django's
    email patterns, phonenumbers' metadata) exists before processes fork: each
    forked process would otherwise compile it again for itself."""
    names = list(WARM_UP_ROW)
    parse_row(
        1,
        list(WARM_UP_ROW.values()),
        {name: index for index, name in enumerate(names)},
        lenient=False,
        row_fingerprint="-",
    )
