"""Phone numbers written plainly, parsed as phonenumbers parses them, faster.

phonenumbers.parse reads anything people type (letters for digits, extensions,
"tel:" URIs, full-width digits, a second number after a slash) and pays for it
on every number: 11 to 15 us a number, the largest single cost of validating
an imported row. Most numbers in files from other systems are written plainly:
ASCII digits and separators (spaces, dashes, dots, brackets), after a "+" or
an exit code ("00" in most of the world), or in national form read in the
customer's country. For such a number, parse's steps come down to this
module's, about 2 us a number:

- international: the country code is the shortest prefix that is one; the
  national number is the rest as written;
- national: the national prefix ("0" in "020 7946 0958") is stripped as parse
  strips it (phonenumbers' _maybe_strip_national_prefix_carrier_code and
  _test_number_length: kept when stripping it would leave no valid national
  number or a length the region does not dial).

Whatever else parse might read differently is left to it (None): a national
prefix in an international number ("+44 (0)20"), leading zeros (Italy), a
national number that starts with the region's country code or exit code, and
regions whose prefix is rewritten rather than stripped (Argentina, Brazil).

Why by hand: as for phone_validity, no other Python library parses numbers.
This reads only phonenumbers' public metadata, and
tests/customers/test_phone_parsing.py checks that every number it parses gets
parse's own answer (every region's example numbers, written every way, their
near misses and random digits, read in several regions), and that it does parse
most plainly written numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import NamedTuple

from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    PhoneMetadata,
    PhoneNumber,
    region_code_for_country_code,
)

_PLAIN = re.compile(r"(?:\+[0-9]|[0-9(])[0-9 ().\-]*[0-9]")
_SEPARATORS = str.maketrans("", "", " ().-")
# phonenumbers' bounds: a national number's digits (_MIN_LENGTH_FOR_NSN,
# _MAX_LENGTH_FOR_NSN), a country code's (_MAX_LENGTH_COUNTRY_CODE) and the
# input's characters, separators included (_MAX_INPUT_STRING_LENGTH).
_NSN_LENGTHS = range(2, 18)
_COUNTRY_CODE_LENGTHS = (1, 2, 3)
_MAX_INPUT_LENGTH = 250
# Fewer digits than parse's viable number has, with separators between them.
_MIN_DIGITS = 3


class _Region(NamedTuple):
    """What parse reads a number by when it reads it in a region."""

    country_code: int
    exit_code: Callable[[str], re.Match | None]
    national_prefix: Callable[[str], re.Match | None]
    # The prefix is rewritten, not stripped: parse decides.
    prefix_rewritten: bool
    general: Callable[[str], re.Match | None]
    lengths: frozenset[int]
    shortest: int
    longest: int
    local_only_lengths: frozenset[int]


def _no_match(digits: str) -> None:
    return None


def _reading(metadata) -> _Region | None:
    general = metadata.general_desc if metadata is not None else None
    lengths = general.possible_length if general is not None else ()
    if not lengths:
        return None
    return _Region(
        country_code=metadata.country_code,
        exit_code=re.compile(metadata.international_prefix).match
        if metadata.international_prefix
        else _no_match,
        national_prefix=re.compile(metadata.national_prefix_for_parsing).match
        if metadata.national_prefix_for_parsing
        else _no_match,
        prefix_rewritten=bool(metadata.national_prefix_transform_rule),
        general=re.compile(general.national_number_pattern).fullmatch
        if general.national_number_pattern
        else _no_match,
        lengths=frozenset(lengths),
        shortest=lengths[0],
        longest=lengths[-1],
        local_only_lengths=frozenset(general.possible_length_local_only),
    )


@cache
def _region(region: str | None) -> _Region | None:
    """How parse reads numbers in `region` (None: it has no metadata)."""
    return _reading(PhoneMetadata.metadata_for_region(region, None) if region else None)


@cache
def _country(country_code: int) -> _Region | None:
    """How parse reads the national part of numbers with this country code:
    by its main region's metadata (None: it has none)."""
    return _reading(
        PhoneMetadata.metadata_for_region_or_calling_code(
            country_code, region_code_for_country_code(country_code)
        )
    )


def parse_plain(raw: str, region: str | None) -> PhoneNumber | None:
    """phonenumbers.parse(raw, region) for a plainly written number; None where
    this cannot be sure of parse's answer (including its errors)."""
    parts = plain_parts(raw, region)
    if parts is None:
        return None
    return PhoneNumber(country_code=parts[0], national_number=int(parts[1]))


def plain_parts(raw: str, region: str | None) -> tuple[int, str] | None:
    """parse_plain's number as its country code and national significant number
    (never starting with 0, so its E.164 form is "+" and the two): what
    validating and formatting need, without building the PhoneNumber (which,
    with reading its national number back and formatting it, took 1.6 us)."""
    if len(raw) > _MAX_INPUT_LENGTH or _PLAIN.fullmatch(raw) is None:
        return None
    digits = raw.translate(_SEPARATORS)
    if len(digits) < _MIN_DIGITS:
        return None
    if digits[0] == "+":
        return _international(digits[1:])
    read_in = _region(region)
    if read_in is None:
        return None
    exit_code = read_in.exit_code(digits)
    if exit_code is not None:
        return _international(digits[exit_code.end() :])
    return _national(digits, read_in)


def _international(digits: str) -> tuple[int, str] | None:
    """The number after "+" or an exit code (none starts with 0: parse reads an
    exit code followed by 0 as the start of a national number)."""
    if digits[:1] in ("", "0"):
        return None
    for size in _COUNTRY_CODE_LENGTHS:
        country_code = int(digits[:size])
        if country_code in COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    nsn = digits[size:]
    if len(nsn) not in _NSN_LENGTHS or nsn[0] == "0":
        return None
    country = _country(country_code)
    if country is None or country.national_prefix(nsn):
        # parse may strip a national prefix here ("+44 (0)20"): it decides.
        return None
    return country_code, nsn


def _national(digits: str, region: _Region) -> tuple[int, str] | None:
    """A number in national form, read in `region`."""
    if digits.startswith(str(region.country_code)):
        # parse may take these digits for the country code written without "+".
        return None
    nsn = digits
    prefix = region.national_prefix(digits)
    if prefix is not None:
        if region.prefix_rewritten:
            return None
        stripped = digits[prefix.end() :]
        # Kept when only the whole number is a valid national number, or when
        # what remains is a length parse does not take for a number (too short,
        # dialled only locally, or none of the region's lengths). No region's
        # local-only lengths lie beyond its longest today, which is the only
        # place where that check is not implied by the others.
        length = len(stripped)
        if (
            not (region.general(digits) and not region.general(stripped))
            and length not in region.local_only_lengths
            and length >= region.shortest
            and (length > region.longest or length in region.lengths)
        ):
            nsn = stripped
    if len(nsn) not in _NSN_LENGTHS or nsn[0] == "0":
        return None
    return region.country_code, nsn
