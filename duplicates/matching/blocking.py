"""Blocking: which pairs are compared at all.

Each record gets a few keys (below); two records are compared only when they
share a key, so a scan compares a few pairs per record instead of all N^2/2.
Keys are chosen so that a true duplicate keeps at least one of them under the
usual corruptions:

- ``n:`` the two name sounds, sorted, with the birth year: exact, misspelt
  (same sound) and swapped first/last names;
- ``d:`` surname sound with the full birth date (a first name changed beyond
  sound: a nickname not in the table, a typo in its first letters), and
  first-name sound with the full birth date (a changed surname after
  marriage, a misspelt one), in one namespace so swapped names meet too;
- ``e:`` normalised e-mail, ``p:`` E.164 phone, ``i:`` national id (tax id
  for organisations): the strong identifiers, whatever the names say;
- ``a:`` postcode with the house number and the street's initials (or the
  first initial when there is no number): a changed birth date and name with
  the same home;
- ``o:`` for organisations, the sorted sounds of the name's words.

Large blocks. A key shared by more than MAX_BLOCK records (a common name born
the same year, a company switchboard, a shared family e-mail) would cost
quadratic time, so such a block is sorted by (surname, first name, birth date)
and each record is compared with its WINDOW next neighbours only (the sorted
neighbourhood method). Records that are alike sort next to each other, so the
true pairs in such a block are kept while the pair count stays linear.

Records without a birth date. Their ``n:`` key has no year ("n:jn:smt:"), so
it meets only others without one, while a duplicate that lost its birth date
(and moved, and changed its e-mail) shares no key with its original. So a
record without a birth date is also compared with everyone of its name,
whatever their birth year: the ``n:`` keys of all years of a name fall into one
bucket, and a scan's chunk pairs the undated records of a name with the dated
ones (scanning._scored_blocks); lookups and incremental scans read the name's
keys of every year (lookup_blocks). That costs pairs only for records without
a birth date, and a large name's block is windowed as any other.

A pair that shares several keys is scored once: by the block of the smallest
(lexicographic) shared key that is not a large block, or, when every shared
key is large, by the smallest one.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

from .normalize import MatchRecord, given_name_canonical, name_phonetic

MAX_BLOCK = 50
WINDOW = 10
BUCKETS = 256
KEY_MAX = 120
NAME = "n:"
# The birth years a lookup reads for a record without a birth date.
NAME_YEARS = range(1880, 2100)


def record_keys(record: MatchRecord) -> list[str]:
    """The blocking keys of a record, without repeats, each at most KEY_MAX characters."""
    keys: list[str] = []
    if record.kind == "organization":
        words = sorted({name_phonetic(w) for w in record.last.split() if w})
        if words:
            keys.append("o:" + " ".join(words))
        if record.postcode and record.last:
            keys.append(f"a:{record.postcode}:{record.last[0]}")
    else:
        first, last, dob = record.first_key, record.last_key, record.dob
        if first and last:
            # The surname through the nickname table too, so that "Smith Bill"
            # (swapped) meets "Bill Smith" (first name read as William).
            surname = name_phonetic(given_name_canonical(record.last))
            pair = ":".join(sorted((first, surname)))
            keys.append(f"n:{pair}:{dob[:4]}")
        # One namespace for both sounds with the birth date: a swapped name
        # meets the original, a changed surname meets by first name, a changed
        # first name by surname.
        if last and dob:
            keys.append(f"d:{last}:{dob}")
        if first and dob:
            keys.append(f"d:{first}:{dob}")
        if record.postcode and (record.house or record.first):
            # The home: postcode, house number and the street's initials. Not
            # the postcode alone, whose blocks are whole streets of strangers,
            # nor postcode and number alone: where a postcode covers a town
            # (most of Europe, the US) that block is everyone with that number
            # on any of its streets.
            home = f"{record.house}:{street_initials(record.street)}" if record.house else ""
            keys.append(f"a:{record.postcode}:{home or record.first[0]}")
    keys.extend(f"e:{email}" for email in record.emails)
    keys.extend(f"p:{phone}" for phone in record.phones)
    if record.national_id:
        keys.append(f"i:{record.national_id}")
    return list(dict.fromkeys(key[:KEY_MAX] for key in keys))


def street_initials(street: str) -> str:
    """The first letters of a normalised street's words of three letters or more
    ("rue de la paix" -> "rp"): the street types are spelt out by then, so
    "High St" and "High Street" agree, and a typo past a word's first letter
    keeps them."""
    return "".join(word[0] for word in street.split() if len(word) >= 3)


def name_group(key: str) -> str | None:
    """The name of an ``n:`` key without its birth year ("n:jn:smt:1975" ->
    "n:jn:smt:", the key of the name's records without a birth date); None for
    other keys. (scanning._blocks says the same in SQL: keep the two alike.)"""
    if not key.startswith(NAME):
        return None
    return key if key.endswith(":") else key[:-4]


def key_bucket(key: str) -> int:
    """The chunk bucket of a key: stable across processes (unlike hash()). The
    keys of one name share a bucket whatever the birth year, so that a scan's
    chunk holds a name's undated records with its dated ones."""
    return zlib.crc32((name_group(key) or key).encode()) % BUCKETS


def lookup_blocks(keys: Iterable[str]) -> list[tuple[str, ...]]:
    """The blocks a record with these keys is compared with when it is looked up
    (a create-time check, an incremental scan), each as the stored keys whose
    customers form it: its own keys, and for its name either the records
    without a birth date (it has one) or those of every birth year (it has none)."""
    blocks = [(key,) for key in keys]
    for key in keys:
        group = name_group(key)
        if group is None:
            continue
        if key == group:
            blocks.append(tuple(f"{group}{year}" for year in NAME_YEARS))
        else:
            blocks.append((group,))
    return blocks


def blocked_together(a_keys: Iterable[str], b_keys: Iterable[str]) -> bool:
    """Whether a scan compares two records with these keys (windows aside): they
    share a key, or one has no birth date and they share a name."""
    a_keys, b_keys = set(a_keys), set(b_keys)
    if a_keys & b_keys:
        return True
    a_groups = {name_group(k): k for k in a_keys if k.startswith(NAME)}
    for key in b_keys:
        group = name_group(key)
        if group is not None and group in a_groups and group in (key, a_groups[group]):
            return True
    return False


def undated_pairs(
    groups: dict[str, tuple[list[MatchRecord], list[MatchRecord]]],
) -> Iterator[tuple[MatchRecord, MatchRecord]]:
    """For each name, (records without a birth date, records with one): each
    undated record with the dated ones of its name (their sorted neighbourhood
    when there are many), as (lower id, higher id)."""
    for undated, dated in groups.values():
        if not dated:
            continue
        for record in undated:
            for other in neighbours_of(record, dated):
                yield (record, other) if record.id < other.id else (other, record)


def _sort_key(record: MatchRecord) -> tuple[str, str, str, int]:
    return (record.last, record.first, record.dob, record.id)


def block_pairs(members: list[MatchRecord]) -> Iterator[tuple[MatchRecord, MatchRecord]]:
    """The pairs of one block to compare: all of them in a small block, the sorted
    neighbourhood (WINDOW) in a large one. Each pair is (lower id, higher id)."""
    if len(members) <= MAX_BLOCK:
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                yield (a, b) if a.id < b.id else (b, a)
        return
    ordered = sorted(members, key=_sort_key)
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 : i + 1 + WINDOW]:
            yield (a, b) if a.id < b.id else (b, a)


def neighbours_of(record: MatchRecord, members: list[MatchRecord]) -> Iterable[MatchRecord]:
    """The members of a block `record` is compared with (the whole block when small,
    its WINDOW neighbours on either side in sorted order when large)."""
    others = [m for m in members if m.id != record.id]
    if len(others) < MAX_BLOCK:
        return others
    ordered = sorted([*others, record], key=_sort_key)
    at = ordered.index(record)
    return ordered[max(0, at - WINDOW) : at] + ordered[at + 1 : at + 1 + WINDOW]


def pair_owner(shared: Iterable[str], large: set[str] | frozenset[str]) -> str:
    """The one shared key whose block scores the pair (see the module docstring)."""
    shared = sorted(shared)
    for key in shared:
        if key not in large:
            return key
    return shared[0]
