"""phonenumbers' own example numbers: the corpus our phone checks are compared
with phonenumbers on."""

import phonenumbers
from phonenumbers import PhoneNumber, PhoneNumberType


def example_numbers() -> list[PhoneNumber]:
    """Every region's example number of every type, and every non-geographic
    code's."""
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
