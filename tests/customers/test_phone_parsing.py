"""Our fast parser of plain international numbers gives phonenumbers.parse's own
answer whenever it gives one: for every region's example numbers written every
way people write them (E.164, spaced, dashed, dotted, with a "(0)", after a
00 exit code), their near misses and random digits under every country code,
read in regions that do and do not dial abroad with 00. And it does answer for
most plain numbers, so that the check is not passed by always declining."""

import random

import phonenumbers
import pytest
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneNumberFormat, PhoneNumberType

from customers import normalization
from customers.phone_parsing import parse_plain

# No region; one that dials abroad with 00, and one with 011.
REGIONS = (None, "GB", "US")


def _example_numbers() -> list[phonenumbers.PhoneNumber]:
    examples = [
        phonenumbers.example_number_for_type(region, number_type)
        for region in sorted(phonenumbers.SUPPORTED_REGIONS)
        for number_type in PhoneNumberType.values()
    ]
    examples += [
        phonenumbers.example_number_for_non_geo_entity(code)
        for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)
    ]
    return [number for number in examples if number is not None]


def _near_misses(digits: str) -> set[str]:
    """National numbers a digit short, a digit too many, with another first
    digit (a national prefix among them) or with a leading zero."""
    misses = {digits, digits[:-1], digits + "7", "0" + digits, "00" + digits}
    misses |= {first + digits[1:] for first in "0123456789"}
    return {miss for miss in misses if miss}


def _written(country_code: int, nsn: str) -> list[str]:
    """How people write the number +<country code><nsn>, internationally."""
    code = str(country_code)
    half = len(nsn) // 2
    spaced = f"{nsn[:half]} {nsn[half:]}"
    return [
        f"+{code}{nsn}",
        f"+{code} {spaced}",
        f"+{code}-{nsn[:half]}-{nsn[half:]}",
        f"+{code}.{nsn[:half]}.{nsn[half:]}",
        f"+{code} ({nsn[:half]}) {nsn[half:]}",
        f"+{code} (0) {spaced}",
        f"+{code} (0){nsn}",
        f"+ {code} {spaced}",
        f"+{code}  --  {spaced}",
        f"00{code}{nsn}",
        f"00 {code} {spaced}",
        f"0{code} {spaced}",
        f"+{code}{nsn})",
        f"+{code} {nsn} ext. 12",
        f"+{code} {nsn[:half]}/{nsn[half:]}",
        f"+{code}{' ' * 250}{nsn}",
    ]


def _corpus(rng: random.Random) -> list[str]:
    written: set[str] = set()
    for example in _example_numbers():
        nsn = phonenumbers.national_significant_number(example)
        for digits in _near_misses(nsn):
            written.update(_written(example.country_code, digits))
        written.add(phonenumbers.format_number(example, PhoneNumberFormat.INTERNATIONAL))
        written.add(phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL))
    for code in sorted(COUNTRY_CODE_TO_REGION_CODE):
        for _ in range(25):
            digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 19)))
            written.update((f"+{code}{digits}", f"00{code} {digits}"))
    for _ in range(2000):
        written.add("+" + "".join(rng.choice("0123456789") for _ in range(rng.randint(2, 22))))
    return sorted(written)


def _parsed(raw: str, region: str | None) -> phonenumbers.PhoneNumber | str:
    try:
        return phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as error:
        return f"refused: {error}"


def test_every_number_it_parses_gets_phonenumbers_answer_in_every_region():
    corpus = _corpus(random.Random(11))
    answered, disagreements = 0, []
    for raw in corpus:
        for region in REGIONS:
            fast = parse_plain(raw, region)
            if fast is None:
                continue
            answered += 1
            if fast != (expected := _parsed(raw, region)):
                disagreements.append((raw, region, str(fast), str(expected)))

    assert len(corpus) > 100_000
    assert answered > 150_000, "most plain international numbers must be parsed here"
    assert disagreements[:20] == []


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("+44 20 7946 0958", None),
        ("+44 (0)20 7946 0958", "GB"),  # a national prefix: phonenumbers decides
        ("0049 30 901820", "DE"),
        ("011 44 20 7946 0958", "US"),  # not 00: phonenumbers reads it
        ("020 7946 0958", "GB"),  # national: phonenumbers reads it
        ("+39 06 6988 4321", "IT"),  # Italy's leading zero: phonenumbers keeps it
    ],
)
def test_normalize_phone_gives_the_same_number_whoever_parses_it(raw, region):
    expected = phonenumbers.format_number(phonenumbers.parse(raw, region), PhoneNumberFormat.E164)

    assert normalization.normalize_phone(raw, region) == expected


def test_what_it_declines_it_leaves_to_phonenumbers():
    assert parse_plain("+44 (0)20 7946 0958", "GB") is None
    assert parse_plain("0044 20 7946 0958", None) is None  # no region to exit from
    assert parse_plain("011 44 20 7946 0958", "US") is None
    assert parse_plain("+39 06 6988 4321", "IT") is None
    assert parse_plain("+44 20 7946 0958 ext. 12", None) is None
    assert parse_plain("+44 20 7946 0958", None) == phonenumbers.parse("+442079460958")
