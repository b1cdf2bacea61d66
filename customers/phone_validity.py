"""Whether a parsed phone number is valid: phonenumbers' answer, computed faster.

phonenumbers.is_valid_number tests a number against up to eleven patterns of
its region (the general one, then premium rate, toll free, ..., fixed line,
mobile), looking each pattern up in the `re` module's cache on every call. On
an import of a million customers, nearly every one with a phone number of
their own, that is a third of the time spent on phone numbers: no other
Python library validates numbers (the one Rust port, rphonenumbers, is at
0.1.0), so this module answers the same question from the same metadata with
the patterns compiled once: per country code and per length of the national
number, one pattern that matches any number type.

It mirrors phonenumbers' own logic (is_valid_number, region_code_for_number,
_number_type_helper, _is_number_matching_desc) and nothing more;
tests/customers/test_phone_validity.py checks that it agrees with
phonenumbers on every region's example numbers and their near misses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    PhoneMetadata,
    PhoneNumber,
    national_significant_number,
)
from phonenumbers.phonenumberutil import REGION_CODE_FOR_NON_GEO_ENTITY

# The descriptions that make a number valid when it matches one of them, in
# phonenumbers' _number_type_helper; mobile only counts when its pattern is not
# the fixed-line one (there, a fixed-line miss is final).
_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
)


def _pattern(desc) -> str | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return desc.national_number_pattern


def _admits(desc, length: int) -> bool:
    lengths = desc.possible_length
    return not lengths or length in lengths


class _RegionCheck:
    """Whether a national significant number has one of a region's types."""

    def __init__(self, metadata) -> None:
        descs = [getattr(metadata, name) for name in _TYPES]
        if not metadata.same_mobile_and_fixed_line_pattern:
            descs.append(metadata.mobile)
        self.general = metadata.general_desc
        general = _pattern(self.general)
        self.general_pattern = re.compile(general) if general else None
        self.descs = [desc for desc in descs if _pattern(desc)]
        self.by_length: dict[int, re.Pattern | None] = {}

    def _any_type(self, length: int) -> re.Pattern | None:
        patterns = [desc.national_number_pattern for desc in self.descs if _admits(desc, length)]
        return re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None

    def __call__(self, nsn: str) -> bool:
        length = len(nsn)
        if self.general_pattern is None or not _admits(self.general, length):
            return False
        if not self.general_pattern.fullmatch(nsn):
            return False
        try:
            any_type = self.by_length[length]
        except KeyError:
            any_type = self.by_length[length] = self._any_type(length)
        return any_type is not None and any_type.fullmatch(nsn) is not None


def _never(nsn: str) -> bool:
    return False


@cache
def _country_check(country_code: int) -> Callable[[str], bool]:
    """The check of numbers with this country code, after finding their region as
    phonenumbers' region_code_for_number does."""
    regions = COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    if len(regions) == 1:
        # The code's only region (or "001", a non-geographic code) is the number's.
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, regions[0])
        if metadata is None or (
            regions[0] != REGION_CODE_FOR_NON_GEO_ENTITY and metadata.country_code != country_code
        ):
            return _never
        return _RegionCheck(metadata)
    candidates = []
    for region in regions:
        metadata = PhoneMetadata.metadata_for_region(region, None)
        if metadata is None:
            continue
        leading = re.compile(metadata.leading_digits) if metadata.leading_digits else None
        same_code = metadata.country_code == country_code
        candidates.append((leading, _RegionCheck(metadata), same_code))

    def check(nsn: str) -> bool:
        for leading, has_a_type, same_code in candidates:
            if leading.match(nsn) if leading is not None else has_a_type(nsn):
                # The number's region: valid if it has one of the region's types.
                return same_code and has_a_type(nsn)
        return False

    return check


def is_valid_number(number: PhoneNumber) -> bool:
    """phonenumbers.is_valid_number(number), with the patterns compiled once."""
    return is_valid_parts(number.country_code, national_significant_number(number))


def is_valid_parts(country_code: int, national_significant: str) -> bool:
    """is_valid_number of the number with this country code and national
    significant number."""
    return _country_check(country_code)(national_significant)
