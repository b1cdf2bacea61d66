"""Our fast parser of plainly written phone numbers gives phonenumbers.parse's
own answer whenever it gives one: for every region's example numbers written
every way people write them (E.164, spaced, dashed, dotted, bracketed, with a
"(0)", after an exit code, in national form), their near misses and random
digits, read in their own region and in regions with other exit codes and
national prefixes. And it does answer for most plainly written numbers, so
that the check is not passed by always declining."""

import random

import phonenumbers
import pytest
from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    PhoneNumber,
    PhoneNumberFormat,
)

from customers import normalization
from customers.phone_parsing import parse_plain, plain_parts

from .phone_examples import example_numbers

# Numbers written internationally are read in no region and in regions that
# dial abroad with 00 (GB) and 011 (US); numbers in national form, in their
# own region and in regions whose national prefix is 0 (GB), 1 (US) and 8 (RU).
REGIONS = (None, "GB", "US")
NATIONAL_REGIONS = ("GB", "US", "RU")


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


def _national_written(number: PhoneNumber) -> list[str]:
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    digits = "".join(ch for ch in national if ch.isdigit())
    half = len(digits) // 2
    return [
        national,
        digits,
        f"{digits[:half]} {digits[half:]}",
        f"({digits[:half]}) {digits[half:]}-",
        f"{digits[:half]}.{digits[half:]}",
        f"{digits[:2]}-{digits[2:]}",
    ]


def _corpus(rng: random.Random) -> list[tuple[str, str | None]]:
    """(written number, region it is read in) pairs."""
    international: set[str] = set()
    national: set[tuple[str, str | None]] = set()
    for example in example_numbers():
        region = phonenumbers.region_code_for_number(example)
        nsn = phonenumbers.national_significant_number(example)
        for digits in _near_misses(nsn):
            international.update(_written(example.country_code, digits))
            number = PhoneNumber(country_code=example.country_code, national_number=int(digits))
            for written in _national_written(number):
                national.update((written, read_in) for read_in in (region, *NATIONAL_REGIONS))
        international.add(phonenumbers.format_number(example, PhoneNumberFormat.INTERNATIONAL))
    for code in sorted(COUNTRY_CODE_TO_REGION_CODE):
        for _ in range(25):
            digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 19)))
            international.update((f"+{code}{digits}", f"00{code} {digits}", f"011{code}{digits}"))
    for _ in range(2000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 22)))
        international.update(("+" + digits, digits, f"{digits[:1]}-{digits[1:]}"))
    # National prefixes before every length of number, some dialled only locally.
    for prefix in "018":
        for length in range(1, 18):
            for _ in range(20):
                digits = prefix + "".join(rng.choice("0123456789") for _ in range(length))
                national.update((digits, region) for region in NATIONAL_REGIONS)
    pairs = {(written, region) for written in international for region in REGIONS}
    return sorted(pairs | national, key=str)


def _parsed(raw: str, region: str | None) -> phonenumbers.PhoneNumber | str:
    try:
        return phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as error:
        return f"refused: {error}"


def test_every_number_it_parses_gets_phonenumbers_answer_in_every_region():
    corpus = _corpus(random.Random(11))
    answered, disagreements = 0, []
    for raw, region in corpus:
        fast = parse_plain(raw, region)
        if fast is None:
            continue
        answered += 1
        if fast != (expected := _parsed(raw, region)):
            disagreements.append((raw, region, str(fast), str(expected)))
        elif "+{}{}".format(*plain_parts(raw, region)) != phonenumbers.format_number(
            expected, PhoneNumberFormat.E164
        ):
            disagreements.append((raw, region, "E.164", str(expected)))

    assert len(corpus) > 500_000
    assert answered > 250_000, "most plainly written numbers must be parsed here"
    assert disagreements[:20] == []


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("+44 20 7946 0958", None),
        ("0049 30 901820", "DE"),
        ("011 44 20 7946 0958", "US"),
        ("020 7946 0958", "GB"),
        ("(415) 555-0123", "US"),
        ("8 (912) 345-67-89", "RU"),
        ("+44 (0)20 7946 0958", "GB"),  # a national prefix: phonenumbers decides
        ("+39 06 6988 4321", "IT"),  # Italy's leading zero: phonenumbers keeps it
    ],
)
def test_normalize_phone_gives_the_same_number_whoever_parses_it(raw, region):
    expected = phonenumbers.format_number(phonenumbers.parse(raw, region), PhoneNumberFormat.E164)

    assert normalization.normalize_phone(raw, region) == expected


def test_it_parses_plain_international_and_national_numbers():
    london = phonenumbers.parse("+442079460958")
    assert parse_plain("+44 20 7946 0958", None) == london
    assert parse_plain("0044 20 7946 0958", "DE") == london
    assert parse_plain("011 44 20 7946 0958", "US") == london
    assert parse_plain("020 7946 0958", "GB") == london
    assert parse_plain("(020) 7946-0958", "GB") == london


def test_what_it_declines_it_leaves_to_phonenumbers():
    assert parse_plain("+44 (0)20 7946 0958", "GB") is None  # a national prefix kept
    assert parse_plain("0044 20 7946 0958", None) is None  # no region to exit from
    assert parse_plain("+39 06 6988 4321", "IT") is None  # Italy's leading zero
    assert parse_plain("44 20 7946 0958", "GB") is None  # the country code without "+"
    assert parse_plain("+44 20 7946 0958 ext. 12", None) is None
    assert parse_plain("020 7946 0958", None) is None  # national, but of no region
    assert parse_plain("9 15 123 45 67", "AR") is None  # a prefix rewritten, not stripped
