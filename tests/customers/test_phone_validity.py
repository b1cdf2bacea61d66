"""Our faster phone validity check gives phonenumbers' own answer: for every
region's example number of every type, their near misses (a digit short, a
digit too many, another first or last digit, leading zeros kept as Italy
writes them) and random numbers of every length under every country code."""

import random

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneNumber

from customers import normalization
from customers.phone_validity import is_valid_number

from .phone_examples import example_numbers


def _near_misses(number: PhoneNumber) -> list[PhoneNumber]:
    nsn = phonenumbers.national_significant_number(number)
    written = {nsn, nsn[:-1], nsn[1:], nsn + "5"}
    for digit in "0123456789":
        written |= {digit + nsn[1:], nsn[:-1] + digit, nsn[:2] + digit + nsn[3:]}
    misses = []
    for digits in sorted(value for value in written if value):
        miss = PhoneNumber(country_code=number.country_code, national_number=int(digits))
        zeros = len(digits) - len(digits.lstrip("0"))
        if zeros:
            miss.italian_leading_zero = True
            miss.number_of_leading_zeros = zeros
        misses.append(miss)
    return misses


def _random_numbers(rng: random.Random) -> list[PhoneNumber]:
    numbers = []
    for code in sorted(COUNTRY_CODE_TO_REGION_CODE):
        for _ in range(120):
            length = rng.randint(3, 17)
            national = rng.randrange(10 ** (length - 1), 10**length)
            numbers.append(PhoneNumber(country_code=code, national_number=national))
    unknown_codes = (0, 42, 999, 1000)
    return numbers + [
        PhoneNumber(country_code=code, national_number=2079460958) for code in unknown_codes
    ]


def test_every_example_number_its_near_misses_and_random_numbers_get_phonenumbers_answer():
    numbers = [miss for example in example_numbers() for miss in _near_misses(example)]
    numbers += _random_numbers(random.Random(7))

    disagreements = [
        (phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), expected)
        for number in numbers
        if is_valid_number(number) != (expected := phonenumbers.is_valid_number(number))
    ]

    valid = sum(map(phonenumbers.is_valid_number, numbers))
    assert len(numbers) > 50_000
    assert valid > 20_000, "the corpus must hold many valid numbers, not only misses"
    assert disagreements == []


def test_numbers_of_regions_sharing_a_country_code_are_told_apart():
    # +1 is shared by the US, Canada and twenty more; +44 by the UK, Jersey,
    # Guernsey and the Isle of Man; +7 by Russia and Kazakhstan.
    for written in ("+1 416 555 0199", "+1 212 555 0100", "+44 1534 456789", "+7 701 123 4567"):
        number = phonenumbers.parse(written)
        assert is_valid_number(number) == phonenumbers.is_valid_number(number), written
    assert normalization.normalize_phone("+1 201 555 0123") == "+12015550123"
