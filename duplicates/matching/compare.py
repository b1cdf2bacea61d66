"""Pairwise comparison: for two records, one level per comparison.

A pair becomes a comparison vector (a "pattern"): one level index per
comparison, or MISSING when either side lacks the value. The model (model.py)
learns how likely each level is among duplicates (m) and among different
people (u); the levels themselves carry no weight.

The first name and the birth date form one joint comparison, not two: they
are what separates members of one household (same surname, address, landline,
family e-mail) from a duplicate, and they are strongly dependent in that
population (a household member differs in both), which an independent
Fellegi-Sunter model would double count.

Term frequencies. When two people's first names (first words) or surnames
agree, the pattern also carries the agreed values (Pattern.names): agreeing
on "john smith" is weaker evidence than agreeing on "xavier quennell", and
the model (model.py, MatchModel.score) weighs the agreement by how common the
value is in the data. A Pattern is equal to (and hashes as) the plain tuple
of its levels, so EM and every cache see only the levels.
"""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from .normalize import MatchRecord, given_name_canonical, name_phonetic

MISSING = -1
AGREED, FUZZY, DISAGREED = "agreed", "fuzzy", "disagreed"

# (comparison, [(label, category) per level]).
COMPARISONS: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "first_name_birth_date",
        [
            ("first name and birth date agree", AGREED),
            ("one agrees, the other is close (nickname, typo, day/month swap)", FUZZY),
            ("first name and birth date both close", FUZZY),
            ("first name agrees or is close, birth date missing", FUZZY),
            ("birth date agrees, first name differs", DISAGREED),
            ("first name agrees or is close, birth date differs", DISAGREED),
            ("first name differs, birth date close or missing", DISAGREED),
            ("first name and birth date both differ", DISAGREED),
            ("first name missing, birth date agrees or is close", FUZZY),
            ("first name missing, birth date differs", DISAGREED),
        ],
    ),
    (
        "last_name",
        [("agrees", AGREED), ("close (typo, sound, part of it)", FUZZY), ("differs", DISAGREED)],
    ),
    (
        "email",
        [("agrees", AGREED), ("close (typo, same mailbox name)", FUZZY), ("differs", DISAGREED)],
    ),
    ("phone", [("agrees", AGREED), ("one digit apart", FUZZY), ("differs", DISAGREED)]),
    (
        "address",
        [
            ("same postcode (or town), street and house number", AGREED),
            ("same postcode, or same street in the same city", FUZZY),
            ("differs", DISAGREED),
        ],
    ),
    ("national_id", [("agrees", AGREED), ("one character apart", FUZZY), ("differs", DISAGREED)]),
]
NAMES = [name for name, _ in COMPARISONS]
LEVEL_COUNTS = [len(levels) for _, levels in COMPARISONS]


class Pattern(tuple):
    """A comparison pattern (one level per comparison) that also carries the
    agreed name values for the term-frequency adjustment: names is (first
    word of the first name or "", surname or ""), "" where they do not agree
    exactly. Equal to, and hashed as, the plain tuple of levels."""

    names: tuple[str, str] = ("", "")


NAME_CLOSE = 0.88
SOUND_SPELLING = 0.8
SURNAME_CLOSE = 0.9
EMAIL_CLOSE = 0.93
STREET_CLOSE = 0.9
SWAP_MARGIN = 0.1

_jw = JaroWinkler.normalized_similarity
_dl = DamerauLevenshtein.distance


def _given_level(a: str, a_key: str, b: str, b_key: str) -> int | None:
    """0 agree, 1 close, 2 differ, None missing (keys: the first words' sounds)."""
    if not a or not b:
        return None
    if a == b:
        return 0
    a1, b1 = a.partition(" ")[0], b.partition(" ")[0]
    if a1 == b1:
        return 1  # "mary ann" and "mary"
    if len(a1) == 1 or len(b1) == 1:
        return 1 if a1[0] == b1[0] else 2  # an initial
    similarity = _jw(a1, b1)
    # Metaphone drops vowels ("John" and "Jane" are both JN), so sounding
    # alike counts only for names that are also spelt alike.
    if similarity >= NAME_CLOSE or (a_key == b_key and similarity >= SOUND_SPELLING):
        return 1
    shorter = min(len(a1), len(b1))
    if shorter >= 4 and _dl(a1, b1, score_cutoff=1) <= 1:
        return 1  # one letter mistyped in a short name ("Ande" for "Anne")
    if shorter >= 3 and (a1.startswith(b1) or b1.startswith(a1)):
        return 1  # a short form that is the name cut short ("Sam" for "Samantha")
    return 2


def _surname_level(a: str, a_key: str, b: str, b_key: str) -> int:
    if a == b:
        return 0
    if a_key == b_key or _jw(a, b) >= SURNAME_CLOSE:
        return 1
    wa, wb = set(a.split()), set(b.split())
    if len(wa) + len(wb) > 2 and wa & wb:
        return 1  # "garcia lopez" and "garcia"
    return 2


def dob_close(a: str, b: str) -> bool:
    """One digit mistyped, two adjacent digits transposed, day and month swapped
    (the American order read the other way, with or without one digit mistyped
    too), or one day apart (a birth time near midnight stored in another time
    zone)."""
    if len(a) != 10 or len(b) != 10:
        return False
    da, db = a.replace("-", ""), b.replace("-", "")
    if _dl(da, db, score_cutoff=1) <= 1:
        return True
    if _dl(da, f"{db[:4]}{db[6:8]}{db[4:6]}", score_cutoff=1) <= 1:
        return True
    if a[:4] != b[:4] and a[5:] != "12-31" and b[5:] != "12-31":
        return False  # one day apart is in one year, but for New Year's Eve
    try:
        return abs((date.fromisoformat(a) - date.fromisoformat(b)).days) == 1
    except ValueError:
        return False


def _dob_level(a: str, b: str) -> int | None:
    if not a or not b:
        return None
    if a == b:
        return 0
    return 1 if dob_close(a, b) else 2


def _person_level(first: int | None, dob: int | None) -> int:
    if first is None:
        if dob is None:
            return MISSING
        return 8 if dob < 2 else 9
    if first < 2:
        if dob is None:
            return 3
        if dob == 2:
            return 5
        if first == 0 and dob == 0:
            return 0
        if first == 1 and dob == 1:
            return 2
        return 1
    if dob == 0:
        return 4
    return 7 if dob == 2 else 6


def _set_level(
    a: tuple[str, ...], b: tuple[str, ...], close, common: frozenset[str] = frozenset()
) -> int:
    if not a or not b:
        return MISSING
    shared = set(a).intersection(b)
    if shared:
        # Sharing only a value that very many customers share (a company
        # switchboard, a family or office mailbox) says nothing about whether
        # these two are one person: no evidence either way.
        return MISSING if common and shared <= common else 0
    for x in a:
        for y in b:
            if close(x, y):
                return 1
    return 2


def _email_close(x: str, y: str) -> bool:
    return x.partition("@")[0] == y.partition("@")[0] or _jw(x, y) >= EMAIL_CLOSE


def _phone_close(x: str, y: str) -> bool:
    return len(x) == len(y) and _dl(x, y) <= 1


def _address_level(a: MatchRecord, b: MatchRecord) -> int:
    if not (a.postcode or a.street) or not (b.postcode or b.street):
        return MISSING
    same_postcode = bool(a.postcode) and a.postcode == b.postcode
    same_house = bool(a.house) and a.house == b.house
    street_close = bool(a.street and b.street) and (
        a.street == b.street or _jw(a.street, b.street) >= STREET_CLOSE
    )
    same_city = bool(a.city) and a.city == b.city
    # The same number on another street of the postcode is not the same home
    # where a postcode covers a whole town (a house number implies a street).
    if same_house and street_close and (same_postcode or same_city):
        return 0
    if same_postcode or (street_close and same_city):
        return 1
    return 2


def _id_level(a: str, b: str) -> int:
    if not a or not b:
        return MISSING
    if a == b:
        return 0
    return 1 if _dl(a, b) <= 1 else 2


def names_swapped(a: MatchRecord, b: MatchRecord) -> bool:
    """Whether b's first and last names are a's the other way round ("Smith John")."""
    if not (a.first and a.last and b.first and b.last) or a.kind != "person":
        return False
    if a.first_key == b.first_key or a.last_key == b.last_key:
        return False  # the straight reading already pairs one name
    straight = _jw(a.first, b.first) + _jw(a.last, b.last)
    swapped = _jw(a.first, given_name_canonical(b.last)) + _jw(a.last, b.first)
    return swapped > straight + SWAP_MARGIN and swapped >= 2 * NAME_CLOSE


class Common(NamedTuple):
    """The e-mails and phone numbers shared by so many customers (more than a
    blocking block holds) that sharing one is no evidence: a full scan finds
    them and its model keeps them (MatchModel.common)."""

    emails: frozenset[str] = frozenset()
    phones: frozenset[str] = frozenset()

    @classmethod
    def from_keys(cls, keys) -> Common:
        """From blocking keys ("e:...", "p:...", others ignored)."""
        keys = list(keys)
        return cls(
            frozenset(k[2:] for k in keys if k.startswith("e:")),
            frozenset(k[2:] for k in keys if k.startswith("p:")),
        )


NO_COMMON = Common()


def compare(a: MatchRecord, b: MatchRecord, common: Common = NO_COMMON) -> tuple[int, ...] | None:
    """The comparison pattern of a pair, or None when they cannot be the same
    customer at all (a person and an organisation); a shared e-mail or phone
    in `common` counts as missing."""
    if a.kind != b.kind:
        return None
    b_first, b_last, b_first_key, b_last_key = b.first, b.last, b.first_key, b.last_key
    if names_swapped(a, b):
        b_first, b_last = given_name_canonical(b.last), b.first
        b_first_key = name_phonetic(b_first.partition(" ")[0])
        b_last_key = b.first_key
    last = _surname_level(a.last, a.last_key, b_last, b_last_key) if a.last and b_last else MISSING
    pattern = Pattern(
        (
            _person_level(
                _given_level(a.first, a.first_key, b_first, b_first_key), _dob_level(a.dob, b.dob)
            ),
            last,
            _set_level(a.emails, b.emails, _email_close, common.emails),
            _set_level(a.phones, b.phones, _phone_close, common.phones),
            _address_level(a, b),
            _id_level(a.national_id, b.national_id),
        )
    )
    if a.kind == "person":
        first_word = a.first.partition(" ")[0]
        same_first = first_word if first_word and first_word == b_first.partition(" ")[0] else ""
        same_last = a.last if last == 0 else ""
        if same_first or same_last:
            pattern.names = (same_first, same_last)
    return pattern


def mask_identifier(value: str) -> str:
    return ("•" * max(0, len(value) - 3)) + value[-3:] if value else ""


def shown_values(name: str, record: MatchRecord) -> str:
    """What the explanation shows of one side for one comparison."""
    if name == "first_name_birth_date":
        return " · ".join(v for v in (record.first_shown, record.dob) if v)
    if name == "last_name":
        return record.last_shown
    if name == "email":
        return ", ".join(record.emails)
    if name == "phone":
        return ", ".join(record.phones)
    if name == "address":
        street = " ".join(v for v in (record.house, record.street) if v)
        return ", ".join(v for v in (street, record.postcode, record.city) if v)
    return mask_identifier(record.national_id)
