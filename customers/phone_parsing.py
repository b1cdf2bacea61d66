"""Phone numbers written in plain international form, parsed as phonenumbers
parses them, faster.

phonenumbers.parse reads anything people type (letters for digits, extensions,
"tel:" URIs, full-width digits, a second number after a slash) and pays for it
on every number: about 11 us a number, the largest single cost of validating
an imported row. Most numbers that other systems export are plain
international ones: "+", or the "00" exit code where the number's region dials
abroad with it, then ASCII digits and separators. For such a number, parse's
steps come down to this module's: the country code is the shortest prefix that
is one; the rest is the national number as written, unless it starts with a
zero (Italy's leading zeros) or the country's national prefix for parsing
matches it (a "(0)" kept in a +44 number: parse may strip it). Those, and
every other shape, return None and go to phonenumbers.parse. About 2 us a
number, from phonenumbers' public metadata only.

Why by hand: as for phone_validity, no other Python library parses numbers.
tests/customers/test_phone_parsing.py checks that every number this parses
gets phonenumbers.parse's own answer (written every way for every region's
example numbers, their near misses and random digits), and that it does parse
most plain international numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    PhoneMetadata,
    PhoneNumber,
    region_code_for_country_code,
)

_PLAIN = re.compile(r"(\+|00)[0-9][0-9 ().\-]*[0-9]")
_SEPARATORS = str.maketrans("", "", " ().-")
# phonenumbers' bounds on a national number's digits (_MIN_LENGTH_FOR_NSN,
# _MAX_LENGTH_FOR_NSN) and a country code's (_MAX_LENGTH_COUNTRY_CODE).
_NSN_LENGTHS = range(2, 18)
_COUNTRY_CODE_LENGTHS = (1, 2, 3)
# parse refuses longer input (_MAX_INPUT_STRING_LENGTH), separators included.
_MAX_INPUT_LENGTH = 250


def _always(nsn: str) -> bool:
    return True


def _never(nsn: str) -> bool:
    return False


@cache
def _national_prefix(country_code: int) -> Callable[[str], object]:
    """Whether parse may strip a national prefix from the front of a national
    number with this country code (always, for a code without metadata: parse
    decides)."""
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(
        country_code, region_code_for_country_code(country_code)
    )
    if metadata is None:
        return _always
    prefix = metadata.national_prefix_for_parsing
    return re.compile(prefix).match if prefix else _never


@cache
def _dials_abroad_with_00(region: str | None) -> bool:
    """Whether parse reads a leading 00 as the exit code when numbers are read
    in `region`: that region's international prefix is exactly 00."""
    metadata = PhoneMetadata.metadata_for_region(region, None) if region else None
    return metadata is not None and metadata.international_prefix == "00"


def parse_plain(raw: str, region: str | None) -> PhoneNumber | None:
    """phonenumbers.parse(raw, region) for a plain international number; None
    where this cannot be sure of parse's answer (including its errors)."""
    if len(raw) > _MAX_INPUT_LENGTH or _PLAIN.fullmatch(raw) is None:
        return None
    digits = raw.translate(_SEPARATORS)
    if digits[0] == "+":
        digits = digits[1:]
    elif _dials_abroad_with_00(region):
        digits = digits[2:]
    else:
        return None
    if digits[0] == "0":
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
    if _national_prefix(country_code)(nsn):
        return None
    return PhoneNumber(country_code=country_code, national_number=int(nsn))
