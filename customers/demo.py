"""Demo data for a local run and for benchmarks: realistic, valid, deterministic and fast.

How it stays fast enough for 100,000 customers (and a million interactions):
- faker is slow per call, so each locale's names, streets and postcodes are drawn once
  into pools, which a seeded `random.Random` then combines;
- identifiers and phone numbers are computed with their check digits instead of
  generated and filtered;
- rows are written as tuples with COPY (PostgreSQL) or executemany (SQLite), not as
  model instances, and their history rows with one INSERT ... SELECT per table.

How it stays rerunnable and deterministic: customer number i (source "demo", external
id DEMO-000000i) is generated from its own `Random(seed, i)`, so a rerun only creates
the numbers that do not exist yet, and they are the customers a single larger run
would have created.
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import connection, models, transaction
from django.utils import timezone
from faker import Faker
from guardian.shortcuts import assign_perm
from phonenumbers import PhoneNumber, is_valid_number_for_region
from stdnum import ean, luhn
from stdnum.at import uid as at_uid
from stdnum.at import vnr as at_vnr
from stdnum.ch import uid as ch_uid
from stdnum.es import cif as es_cif
from stdnum.es import dni as es_dni
from stdnum.ie import vat as ie_vat
from stdnum.iso7064 import mod_11_10
from stdnum.it import codicefiscale

from cim.audit import system_actor, system_reason
from compliance import roles

from .models import (
    Customer,
    EmailAddress,
    Interaction,
    OrganizationContact,
    PostalAddress,
    SourceIdentifier,
)
from .models import (
    PhoneNumber as PhoneNumberModel,
)

DEMO_SOURCE = "demo"
LEGACY_SOURCE = "legacy"
JOB = "seed_demo"
BATCH_SIZE = 5000

# Shares of the generated population. Organisations link some of the persons
# generated just before them as their contacts.
ORGANIZATION_SHARE = 0.12
DUPLICATE_SHARE = 0.025
HOUSEHOLD_SHARE = 0.05
RESTRICTED_SHARE = 0.01
INACTIVE_SHARE = 0.03
WITH_INTERACTIONS_SHARE = 0.85
NATIONAL_ID_SHARE = 0.7

PERSON, ORGANIZATION, DUPLICATE, HOUSEHOLD = "person", "organization", "duplicate", "household"
# The first customers of every seed show each case, so even a tiny demo (or a test
# seeding 60 customers) has near-duplicates, households, organisations and
# restricted customers. A duplicate or household member is always generated
# right after the person it derives from.
SHOWCASE_ROLES = {
    1: PERSON,
    2: DUPLICATE,
    5: PERSON,
    6: HOUSEHOLD,
    9: ORGANIZATION,
    14: PERSON,
    15: DUPLICATE,
    20: ORGANIZATION,
    23: PERSON,
    24: HOUSEHOLD,
    31: ORGANIZATION,
}
SHOWCASE_RESTRICTED = frozenset({3, 11})

DEMO_USERS = (
    # username, role, first name, last name
    ("staff", roles.STAFF, "Sam", "Staff"),
    ("support", roles.SUPPORT_REP, "Sunita", "Support"),
    ("steward", roles.DATA_STEWARD, "Stefan", "Steward"),
    ("officer", roles.COMPLIANCE_OFFICER, "Olivia", "Officer"),
    ("officer2", roles.COMPLIANCE_OFFICER, "Oscar", "Officer"),
    ("auditor", roles.AUDITOR, "Aud", "Itor"),
    ("admin", roles.ADMINISTRATOR, "Ada", "Admin"),
)
OFFICER_RESTRICTED_GRANTS = 2


# --------------------------------------------------------------------------- identifiers
# Each returns the normalised (compact) form that customers.normalization stores,
# so a stored value is a fixed point of normalize_national_id / normalize_tax_id.


def _digits(rng: random.Random, count: int) -> str:
    return f"{rng.randrange(10**count):0{count}d}"


_NINO_FIRST, _NINO_SECOND = "ABCEGHJKLMNOPRSTWXYZ", "ABCEGHJKLMNPRSTWXYZ"
_NINO_UNUSED = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def _gb_nino(rng: random.Random, person: Profile) -> str:
    prefix = "ZZ"
    while prefix in _NINO_UNUSED:
        prefix = rng.choice(_NINO_FIRST) + rng.choice(_NINO_SECOND)
    return f"{prefix}{_digits(rng, 6)}{rng.choice('ABCD')}"


_SSN_REFUSED = frozenset({"078051120", "457555462", "219099999"})  # famously misused


def _us_ssn(rng: random.Random, person: Profile) -> str:
    while True:
        area = rng.choice((rng.randrange(1, 666), rng.randrange(667, 900)))
        number = f"{area:03d}{rng.randrange(1, 100):02d}{rng.randrange(1, 10000):04d}"
        if number not in _SSN_REFUSED:
            return number


def _de_idnr(rng: random.Random, person: Profile) -> str:
    # The first ten digits hold one digit twice and eight others once.
    digits = list("0123456789")
    rng.shuffle(digits)
    body = [*digits[:9], digits[0]]
    while body[0] == "0":
        rng.shuffle(body)
    number = "".join(body)
    return number + mod_11_10.calc_check_digit(number)


_FR_DEPARTMENTS = [f"{d:02d}" for d in range(1, 96) if d != 20]


def _fr_nir(rng: random.Random, person: Profile) -> str:
    dob = person.date_of_birth
    sex = "1" if person.gender == "M" else "2"
    body = (
        f"{sex}{dob.year % 100:02d}{dob.month:02d}{rng.choice(_FR_DEPARTMENTS)}"
        f"{rng.randrange(1, 990):03d}{rng.randrange(1, 1000):03d}"
    )
    return f"{body}{97 - int(body) % 97:02d}"


def _es_dni(rng: random.Random, person: Profile) -> str:
    number = f"{rng.randrange(10**6, 10**8):08d}"
    return number + es_dni.calc_check_digit(number)


_IT_MUNICIPALITIES = (
    "H501",
    "F205",
    "F839",
    "L219",
    "G273",
    "D612",
    "A944",
    "L736",
    "D969",
    "A662",
    "C351",
    "H224",
    "L424",
    "B157",
)
_IT_MONTHS = "ABCDEHLMPRST"


def _it_name_code(name: str, *, first_name: bool) -> str:
    letters = [c for c in _ascii(name).upper() if "A" <= c <= "Z"]
    consonants = [c for c in letters if c not in "AEIOU"]
    vowels = [c for c in letters if c in "AEIOU"]
    if first_name and len(consonants) >= 4:
        consonants = [consonants[0], consonants[2], consonants[3]]
    return ("".join(consonants + vowels) + "XXX")[:3]


def _it_codice_fiscale(rng: random.Random, person: Profile) -> str:
    dob = person.date_of_birth
    day = dob.day + (40 if person.gender == "F" else 0)
    body = (
        f"{_it_name_code(person.last_name, first_name=False)}"
        f"{_it_name_code(person.first_name, first_name=True)}"
        f"{dob.year % 100:02d}{_IT_MONTHS[dob.month - 1]}{day:02d}"
        f"{rng.choice(_IT_MUNICIPALITIES)}"
    )
    return body + codicefiscale.calc_check_digit(body)


def _nl_bsn(rng: random.Random, person: Profile | None = None) -> str:
    while True:
        body = f"{rng.randrange(10**7, 7 * 10**7):08d}"
        check = sum((9 - i) * int(c) for i, c in enumerate(body)) % 11
        if check < 10:
            return f"{body}{check}"


def _se_personnummer(rng: random.Random, person: Profile) -> str:
    dob = person.date_of_birth
    serial = rng.randrange(100) * 10 + rng.choice(
        (1, 3, 5, 7, 9) if person.gender == "M" else (0, 2, 4, 6, 8)
    )
    digits = f"{dob.year % 100:02d}{dob.month:02d}{dob.day:02d}{serial:03d}"
    return f"{digits[:6]}-{digits[6:]}{luhn.calc_check_digit(digits)}"


def _ie_pps(rng: random.Random, person: Profile | None = None) -> str:
    body = _digits(rng, 7)
    return body + ie_vat.calc_check_digit(body)


def _at_vnr(rng: random.Random, person: Profile) -> str:
    dob = person.date_of_birth
    born = f"{dob.day:02d}{dob.month:02d}{dob.year % 100:02d}"
    while True:
        serial = str(rng.randrange(100, 1000))
        check = at_vnr.calc_check_digit(f"{serial}0{born}")
        if len(check) == 1:
            return f"{serial}{check}{born}"


def _ch_ahv(rng: random.Random, person: Profile) -> str:
    body = "756" + _digits(rng, 9)
    return body + ean.calc_check_digit(body)


def _be_nn(rng: random.Random, person: Profile) -> str:
    dob = person.date_of_birth
    serial = rng.randrange(1, 499) * 2 - (1 if person.gender == "M" else 0)
    body = f"{dob.year % 100:02d}{dob.month:02d}{dob.day:02d}{serial:03d}"
    checked = int(("2" + body) if dob.year >= 2000 else body)
    return f"{body}{97 - checked % 97:02d}"


def _gb_vat(rng: random.Random) -> str:
    body = str(rng.randrange(10**6, 10**7))
    total = sum(w * int(c) for w, c in zip((8, 7, 6, 5, 4, 3, 2), body, strict=True))
    return f"{body}{-total % 97:02d}"


def _de_vat(rng: random.Random) -> str:
    body = str(rng.randrange(10**7, 10**8))
    return body + mod_11_10.calc_check_digit(body)


def _fr_siren(rng: random.Random) -> str:
    body = str(rng.randrange(10**7, 10**8))
    return body + luhn.calc_check_digit(body)


def _es_cif(rng: random.Random) -> str:
    body = f"{rng.choice('AB')}{rng.randrange(1, 53):02d}{_digits(rng, 5)}"
    return body + es_cif.calc_check_digits(body)[0]


def _it_iva(rng: random.Random) -> str:
    body = f"{rng.randrange(1, 10**7):07d}{rng.randrange(1, 101):03d}"
    return body + luhn.calc_check_digit(body)


def _se_orgnr(rng: random.Random) -> str:
    # The third digit is 2 or more, so no organisation number reads as a birth date.
    body = f"556{_digits(rng, 6)}"
    return body + luhn.calc_check_digit(body)


_EIN_PREFIXES = ("10", "12", "20", "26", "27", "30", "35", "45", "46", "47", "81", "84")


def _us_ein(rng: random.Random) -> str:
    return f"{rng.choice(_EIN_PREFIXES)}{rng.randrange(10**6, 10**7):07d}"


def _at_uid(rng: random.Random) -> str:
    body = f"U{_digits(rng, 7)}"
    return body + at_uid.calc_check_digit(body)


def _ch_uid(rng: random.Random) -> str:
    while True:
        body = str(rng.randrange(10**7, 10**8))
        check = ch_uid.calc_check_digit(body)
        if len(check) == 1:
            return f"CHE{body}{check}"


def _be_vat(rng: random.Random) -> str:
    body = f"0{rng.randrange(4 * 10**6, 9 * 10**6)}"
    return f"{body}{97 - int(body) % 97:02d}"


# --------------------------------------------------------------------------- countries


@dataclass(frozen=True)
class Country:
    code: str
    locale: str
    language: str
    currency: str
    rate: float  # amounts are drawn in EUR and converted, so prices look local
    weight: int
    calling_code: int
    # (national prefix, length of the national number); the rest is random digits.
    mobile: tuple[tuple[str, int], ...]
    landline: tuple[tuple[str, int], ...]
    mail_domains: tuple[str, ...]
    tld: str
    legal_forms: tuple[str, ...]
    sectors: tuple[str, ...]
    national_id: Callable[[random.Random, Profile], str] | None
    tax_id: Callable[[random.Random], str]
    house_number_first: bool = False
    # Real towns (with a US state) where the locale's faker invents town names.
    cities: tuple[tuple[str, str], ...] = ()
    flat: str = ""


def _prefixes(length: int, *prefixes: str) -> tuple[tuple[str, int], ...]:
    return tuple((prefix, length) for prefix in prefixes)


_EN_SECTORS = (
    "Logistics",
    "Consulting",
    "Engineering",
    "Foods",
    "Holdings",
    "Trading",
    "Software",
    "Construction",
    "Interiors",
    "Energy",
)

COUNTRIES: tuple[Country, ...] = (
    Country(
        "GB",
        "en_GB",
        "en-gb",
        "GBP",
        0.85,
        22,
        44,
        _prefixes(10, "74", "75", "77", "78", "79"),
        _prefixes(10, "207", "203", "161", "141", "151", "1223", "1865", "2920"),
        (
            "gmail.com",
            "outlook.com",
            "hotmail.co.uk",
            "yahoo.co.uk",
            "btinternet.com",
            "icloud.com",
            "sky.com",
        ),
        "co.uk",
        ("Ltd", "Ltd", "PLC", "LLP"),
        _EN_SECTORS,
        _gb_nino,
        _gb_vat,
        house_number_first=True,
        flat="Flat {n}",
        cities=tuple(
            (c, "")
            for c in (
                "London",
                "Manchester",
                "Birmingham",
                "Leeds",
                "Glasgow",
                "Edinburgh",
                "Bristol",
                "Liverpool",
                "Sheffield",
                "Cardiff",
                "Nottingham",
                "Leicester",
                "Brighton",
                "Oxford",
                "Cambridge",
                "York",
                "Newcastle upon Tyne",
                "Southampton",
                "Reading",
                "Norwich",
            )
        ),
    ),
    Country(
        "US",
        "en_US",
        "en",
        "USD",
        1.1,
        18,
        1,
        _prefixes(
            10,
            "212",
            "415",
            "312",
            "617",
            "206",
            "303",
            "512",
            "305",
            "404",
            "713",
            "646",
            "718",
            "310",
            "702",
            "503",
            "612",
        ),
        _prefixes(10, "212", "415", "312", "617", "206", "303", "512", "305", "404", "713"),
        (
            "gmail.com",
            "yahoo.com",
            "outlook.com",
            "icloud.com",
            "aol.com",
            "comcast.net",
            "hotmail.com",
        ),
        "com",
        ("Inc.", "LLC", "Corp.", "LLC"),
        _EN_SECTORS,
        _us_ssn,
        _us_ein,
        house_number_first=True,
        flat="Apt {n}",
        cities=(
            ("New York", "NY"),
            ("Los Angeles", "CA"),
            ("Chicago", "IL"),
            ("Houston", "TX"),
            ("Phoenix", "AZ"),
            ("Philadelphia", "PA"),
            ("San Antonio", "TX"),
            ("San Diego", "CA"),
            ("Dallas", "TX"),
            ("Austin", "TX"),
            ("Seattle", "WA"),
            ("Denver", "CO"),
            ("Boston", "MA"),
            ("Portland", "OR"),
            ("Atlanta", "GA"),
            ("Miami", "FL"),
            ("Minneapolis", "MN"),
            ("Nashville", "TN"),
            ("San Francisco", "CA"),
            ("Columbus", "OH"),
        ),
    ),
    Country(
        "DE",
        "de_DE",
        "de",
        "EUR",
        1.0,
        14,
        49,
        _prefixes(
            11,
            "151",
            "152",
            "157",
            "160",
            "162",
            "170",
            "171",
            "172",
            "173",
            "175",
            "176",
            "177",
            "178",
            "179",
        ),
        _prefixes(10, "30", "40", "89", "221", "69", "711", "211", "341"),
        ("gmx.de", "web.de", "t-online.de", "gmail.com", "posteo.de", "outlook.de"),
        "de",
        ("GmbH", "GmbH", "AG", "GmbH & Co. KG", "KG"),
        (
            "Logistik",
            "Bau",
            "Maschinenbau",
            "Immobilien",
            "Handel",
            "Software",
            "Elektro",
            "Metallbau",
        ),
        _de_idnr,
        _de_vat,
    ),
    Country(
        "FR",
        "fr_FR",
        "fr",
        "EUR",
        1.0,
        10,
        33,
        _prefixes(9, "6", "75", "76", "77", "78"),
        _prefixes(9, "1", "2", "3", "4", "5"),
        ("orange.fr", "free.fr", "gmail.com", "laposte.net", "sfr.fr", "outlook.fr"),
        "fr",
        ("SARL", "SAS", "SA"),
        ("Conseil", "Transports", "Bâtiment", "Distribution", "Services", "Informatique"),
        _fr_nir,
        _fr_siren,
        house_number_first=True,
        flat="Appartement {n}",
        cities=tuple(
            (c, "")
            for c in (
                "Paris",
                "Lyon",
                "Marseille",
                "Toulouse",
                "Nice",
                "Nantes",
                "Strasbourg",
                "Montpellier",
                "Bordeaux",
                "Lille",
                "Rennes",
                "Reims",
                "Grenoble",
                "Dijon",
                "Angers",
            )
        ),
    ),
    Country(
        "ES",
        "es_ES",
        "es",
        "EUR",
        1.0,
        7,
        34,
        _prefixes(9, "6"),
        _prefixes(9, "91", "93", "96", "95"),
        ("gmail.com", "hotmail.es", "yahoo.es", "telefonica.net", "outlook.es"),
        "es",
        ("S.L.", "S.L.", "S.A."),
        ("Construcciones", "Transportes", "Consultoría", "Distribuciones", "Inmobiliaria"),
        _es_dni,
        _es_cif,
    ),
    Country(
        "IT",
        "it_IT",
        "it",
        "EUR",
        1.0,
        7,
        39,
        _prefixes(10, "32", "33", "34", "36", "38", "39"),
        (),
        ("gmail.com", "libero.it", "virgilio.it", "alice.it", "tiscali.it", "outlook.it"),
        "it",
        ("S.r.l.", "S.r.l.", "S.p.A."),
        ("Costruzioni", "Trasporti", "Alimentari", "Meccanica", "Servizi", "Arredamenti"),
        _it_codice_fiscale,
        _it_iva,
    ),
    Country(
        "NL",
        "nl_NL",
        "nl",
        "EUR",
        1.0,
        6,
        31,
        _prefixes(9, "61", "62", "63", "64", "65"),
        _prefixes(9, "20", "10", "30", "70", "40"),
        ("gmail.com", "ziggo.nl", "kpnmail.nl", "hotmail.nl", "outlook.com", "xs4all.nl"),
        "nl",
        ("B.V.", "B.V.", "N.V."),
        ("Bouw", "Transport", "Installatietechniek", "Advies", "Handel", "Techniek"),
        _nl_bsn,
        lambda rng: _nl_bsn(rng) + "B01",
    ),
    Country(
        "SE",
        "sv_SE",
        "sv",
        "SEK",
        11.5,
        4,
        46,
        _prefixes(9, "70", "72", "73", "76", "79"),
        _prefixes(9, "8", "31", "40", "18"),
        ("gmail.com", "telia.com", "hotmail.se", "outlook.com", "bredband.net"),
        "se",
        ("AB",),
        ("Bygg", "Transport", "Konsult", "Fastigheter", "Data", "El"),
        _se_personnummer,
        _se_orgnr,
    ),
    Country(
        "IE",
        "en_IE",
        "en-gb",
        "EUR",
        1.0,
        3,
        353,
        _prefixes(9, "83", "85", "86", "87", "89"),
        (("1", 8), ("21", 9)),
        ("gmail.com", "eircom.net", "hotmail.com", "outlook.ie", "yahoo.ie"),
        "ie",
        ("Ltd", "Ltd", "DAC"),
        _EN_SECTORS,
        _ie_pps,
        _ie_pps,
        house_number_first=True,
        flat="Apartment {n}",
        cities=tuple(
            (c, "")
            for c in (
                "Dublin",
                "Cork",
                "Galway",
                "Limerick",
                "Waterford",
                "Kilkenny",
                "Drogheda",
                "Dundalk",
                "Sligo",
                "Athlone",
            )
        ),
    ),
    Country(
        "AT",
        "de_AT",
        "de",
        "EUR",
        1.0,
        3,
        43,
        (("664", 10), ("650", 10), ("660", 10), ("676", 10), ("699", 11)),
        _prefixes(9, "316", "732", "662"),
        ("gmx.at", "aon.at", "gmail.com", "chello.at"),
        "at",
        ("GmbH", "GmbH", "AG", "OG", "KG"),
        ("Bau", "Handel", "Tischlerei", "Elektro", "Transporte"),
        _at_vnr,
        _at_uid,
    ),
    Country(
        "CH",
        "de_CH",
        "de",
        "CHF",
        0.95,
        3,
        41,
        _prefixes(9, "76", "77", "78", "79"),
        _prefixes(9, "44", "22", "31", "61"),
        ("bluewin.ch", "gmx.ch", "gmail.com", "sunrise.ch"),
        "ch",
        ("AG", "GmbH", "AG"),
        ("Treuhand", "Bau", "Informatik", "Handel", "Technik"),
        _ch_ahv,
        _ch_uid,
    ),
    Country(
        "BE",
        "nl_BE",
        "nl",
        "EUR",
        1.0,
        3,
        32,
        _prefixes(9, "47", "48", "49"),
        _prefixes(8, "2", "3", "9"),
        ("telenet.be", "skynet.be", "gmail.com", "proximus.be"),
        "be",
        ("BV", "BV", "NV"),
        ("Bouw", "Transport", "Advies", "Handel", "Techniek"),
        _be_nn,
        _be_vat,
    ),
)
COUNTRY_BY_CODE = {country.code: country for country in COUNTRIES}
_COUNTRY_CUMULATIVE = []
for _country in COUNTRIES:
    _COUNTRY_CUMULATIVE.append(
        (_COUNTRY_CUMULATIVE[-1] if _COUNTRY_CUMULATIVE else 0) + _country.weight
    )


def phone_number(rng: random.Random, country: Country, *, mobile: bool) -> str:
    """A valid number in E.164: a real prefix of the country, random subscriber digits."""
    choices = country.mobile if mobile or not country.landline else country.landline
    while True:
        prefix, length = rng.choice(choices)
        national = prefix + _digits(rng, length - len(prefix))
        # A few subscriber ranges are unassigned (US exchanges starting 0 or 1, some
        # area codes): the check is cheap next to parsing, so draw again.
        number = PhoneNumber(country_code=country.calling_code, national_number=int(national))
        if is_valid_number_for_region(number, country.code):
            return f"+{country.calling_code}{national}"


# --------------------------------------------------------------------------- text helpers

_TRANSLITERATE = str.maketrans(
    {
        "ß": "ss",
        "ø": "o",
        "Ø": "O",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
    }
)
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})


@lru_cache(maxsize=65536)
def _ascii(text: str, umlauts: bool = False) -> str:
    if umlauts:
        text = text.translate(_UMLAUTS)
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATE))
    return decomposed.encode("ascii", "ignore").decode()


@lru_cache(maxsize=65536)
def _mail_part(text: str, umlauts: bool) -> str:
    """A name as it appears in an email address: lower-case ASCII letters and digits."""
    return "".join(c for c in _ascii(text, umlauts).lower() if c.isalnum()) or "mail"


@lru_cache(maxsize=65536)
def _domain_label(text: str) -> str:
    words = "".join(c if c.isalnum() else " " for c in _ascii(text, True).lower()).split()
    return "-".join(words)[:40].strip("-") or "company"


# --------------------------------------------------------------------------- pools


@dataclass
class _Pool:
    male: list[str]
    female: list[str]
    last: list[str]
    streets: list[str]
    cities: list[tuple[str, str]]
    postcodes: list[str]


def _clean(text: str) -> str:
    return " ".join(text.split())


def _pools(seed: int) -> dict[str, _Pool]:
    pools = {}
    for country in COUNTRIES:
        fake = Faker(country.locale)
        fake.seed_instance(seed)
        pools[country.code] = _Pool(
            male=[_clean(fake.first_name_male()) for _ in range(300)],
            female=[_clean(fake.first_name_female()) for _ in range(300)],
            last=[_clean(fake.last_name()) for _ in range(600)],
            streets=[_clean(fake.street_name()) for _ in range(500)],
            cities=list(country.cities) or [(_clean(fake.city()), "") for _ in range(150)],
            postcodes=[_clean(fake.postcode()).upper() for _ in range(800)],
        )
    return pools


# --------------------------------------------------------------------------- profiles

_NICKNAMES = {
    "William": "Bill",
    "Robert": "Bob",
    "Richard": "Rick",
    "Michael": "Mike",
    "James": "Jim",
    "Thomas": "Tom",
    "Elizabeth": "Liz",
    "Katherine": "Kate",
    "Margaret": "Maggie",
    "Alexander": "Alex",
    "Christopher": "Chris",
    "Jennifer": "Jen",
    "Daniel": "Dan",
    "Matthew": "Matt",
    "Joseph": "Joe",
    "Johannes": "Hannes",
    "Alexandra": "Alex",
    "Christina": "Tina",
    "Katharina": "Kathi",
    "Maximilian": "Max",
    "Giuseppe": "Beppe",
    "Francesco": "Franco",
    "Francisco": "Paco",
    "José": "Pepe",
    "Nicolas": "Nico",
    "Benjamin": "Ben",
    "Samuel": "Sam",
    "Patricia": "Patty",
    "Susan": "Sue",
}
_STREET_ABBREVIATIONS = (
    ("Street", "St"),
    ("Road", "Rd"),
    ("Avenue", "Ave"),
    ("straße", "str."),
    ("Straße", "Str."),
    ("strasse", "str."),
    ("gatan", "g."),
    ("weg", "wg."),
)
_CONTACT_ROLES = (
    "Finance director",
    "Procurement manager",
    "Managing director",
    "Office manager",
    "Accounts payable",
    "Head of operations",
    "IT manager",
    "Company secretary",
)


@dataclass(slots=True)
class Profile:
    """Everything about one demo customer except its database ids and interactions."""

    index: int
    rng: random.Random
    role: str
    country: Country
    restricted: bool = False
    status: str = Customer.Status.ACTIVE
    created_at: dt.datetime | None = None
    first_name: str = ""
    last_name: str = ""
    organization_name: str = ""
    gender: str = ""
    date_of_birth: dt.date | None = None
    language: str = ""
    national_id: str = ""
    tax_id: str = ""
    emails: list[tuple[str, str]] = field(default_factory=list)  # (email, label)
    phones: list[tuple[str, str]] = field(default_factory=list)  # (E.164, label)
    # (label, street, street2, city, postcode, region)
    addresses: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)
    legacy_id: str = ""
    contacts: list[tuple[int, str]] = field(default_factory=list)  # (person index, role)

    @property
    def kind(self) -> str:
        if self.role == ORGANIZATION:
            return Customer.Kind.ORGANIZATION
        return Customer.Kind.PERSON


class DemoGenerator:
    """Turns a customer number into a profile, the same one every time for a seed."""

    def __init__(self, *, seed: int, now: dt.datetime) -> None:
        self.seed = seed
        self.now = now
        self.pools = _pools(seed)

    def _head(self, index: int) -> tuple[random.Random, str, Country]:
        rng = random.Random((self.seed << 32) + index)
        draw, country_draw = rng.random(), rng.random()
        if index in SHOWCASE_ROLES:
            role = SHOWCASE_ROLES[index]
        elif draw < ORGANIZATION_SHARE:
            role = ORGANIZATION
        elif draw < ORGANIZATION_SHARE + DUPLICATE_SHARE:
            role = DUPLICATE
        elif draw < ORGANIZATION_SHARE + DUPLICATE_SHARE + HOUSEHOLD_SHARE:
            role = HOUSEHOLD
        else:
            role = PERSON
        position = bisect.bisect(_COUNTRY_CUMULATIVE, country_draw * _COUNTRY_CUMULATIVE[-1])
        return rng, role, COUNTRIES[position]

    def _raw_role(self, index: int) -> tuple[str, Country]:
        _, role, country = self._head(index)
        return role, country

    def profile(self, index: int) -> Profile:
        rng, role, country = self._head(index)
        if role in (DUPLICATE, HOUSEHOLD) and (
            index == 1 or self._raw_role(index - 1)[0] != PERSON
        ):
            role = PERSON
        restricted = index in SHOWCASE_RESTRICTED or rng.random() < RESTRICTED_SHARE
        inactive = rng.random() < INACTIVE_SHARE
        age_days = rng.randrange(30, 6 * 365)
        if role in (DUPLICATE, HOUSEHOLD):
            base = self.profile(index - 1)
            profile = Profile(index=index, rng=rng, role=role, country=base.country)
            if role == DUPLICATE:
                self._near_duplicate(profile, base)
            else:
                self._household_member(profile, base)
        else:
            profile = Profile(index=index, rng=rng, role=role, country=country)
            if role == ORGANIZATION:
                self._organization(profile)
            else:
                self._person(profile)
        profile.restricted = restricted
        profile.status = Customer.Status.INACTIVE if inactive else Customer.Status.ACTIVE
        profile.created_at = self.now - dt.timedelta(days=age_days, seconds=rng.randrange(86400))
        return profile

    # -- people

    def _language(self, rng: random.Random, country: Country) -> str:
        return (
            "en"
            if rng.random() < 0.04 and not country.language.startswith("en")
            else (country.language)
        )

    def _birth_date(self, rng: random.Random, *, low: int = 18, high: int = 92) -> dt.date:
        age_days = int(rng.triangular(low, high, 42) * 365.25) + rng.randrange(365)
        return (self.now - dt.timedelta(days=age_days)).date()

    def _person(self, profile: Profile) -> None:
        rng, country = profile.rng, profile.country
        pool = self.pools[country.code]
        profile.gender = "F" if rng.random() < 0.5 else "M"
        profile.first_name = rng.choice(pool.female if profile.gender == "F" else pool.male)
        profile.last_name = rng.choice(pool.last)
        profile.date_of_birth = self._birth_date(rng)
        profile.language = self._language(rng, country)
        if country.national_id and rng.random() < NATIONAL_ID_SHARE:
            profile.national_id = country.national_id(rng, profile)
        self._person_contact_points(profile)
        profile.addresses.append(self._address(rng, country, label=PostalAddress.Label.HOME))
        if rng.random() < 0.12:
            label = rng.choice((PostalAddress.Label.SHIPPING, PostalAddress.Label.BILLING))
            profile.addresses.append(self._address(rng, country, label=label))

    def _person_contact_points(self, profile: Profile) -> None:
        rng, country = profile.rng, profile.country
        umlauts = country.language == "de"
        first = _mail_part(profile.first_name, umlauts)
        last = _mail_part(profile.last_name, umlauts)
        count = 1 if rng.random() < 0.7 else (2 if rng.random() < 0.83 else 3)
        seen = set()
        for position in range(count):
            if position == 1 and rng.random() < 0.6:
                company = _domain_label(rng.choice(self.pools[country.code].last))
                email = f"{first}.{last}@{company}.{country.tld}"
                label = EmailAddress.Label.WORK
            else:
                email = f"{self._local_part(rng, first, last)}@{rng.choice(country.mail_domains)}"
                label = EmailAddress.Label.PERSONAL if position == 0 else (EmailAddress.Label.OTHER)
            if email not in seen:
                seen.add(email)
                profile.emails.append((email, label))
        profile.phones.append(
            (phone_number(rng, country, mobile=True), PhoneNumberModel.Label.MOBILE)
        )
        if country.landline and rng.random() < 0.3:
            profile.phones.append(
                (phone_number(rng, country, mobile=False), PhoneNumberModel.Label.HOME)
            )

    @staticmethod
    def _local_part(rng: random.Random, first: str, last: str) -> str:
        draw = rng.random()
        if draw < 0.3:
            return f"{first}.{last}"
        if draw < 0.45:
            return f"{first}{last}"
        if draw < 0.55:
            return f"{first[0]}.{last}"
        if draw < 0.65:
            return f"{first}_{last}"
        if draw < 0.72:
            return f"{last}.{first}"
        # Common names share addresses otherwise; people add a number, and so do we.
        return f"{first}.{last}{rng.randrange(1, 1000)}"

    def _address(
        self, rng: random.Random, country: Country, *, label: str, business: bool = False
    ) -> tuple[str, str, str, str, str, str]:
        pool = self.pools[country.code]
        street = rng.choice(pool.streets)
        number = str(
            min(int(rng.paretovariate(1.1)), 250) if rng.random() < 0.9 else rng.randrange(1, 400)
        )
        if country.house_number_first:
            line = f"{number} {street}"
        elif country.code == "ES":
            line = f"{street}, {number}"
        else:
            line = f"{street} {number}"
        street2 = ""
        if country.flat and rng.random() < 0.15:
            street2 = (
                f"Suite {rng.randrange(1, 9)}00"
                if business
                else country.flat.format(n=rng.randrange(1, 40))
            )
        city, region = rng.choice(pool.cities)
        return (label, line, street2, city, rng.choice(pool.postcodes), region)

    # -- organisations

    def _organization(self, profile: Profile) -> None:
        rng, country = profile.rng, profile.country
        pool = self.pools[country.code]
        draw, legal_form = rng.random(), rng.choice(country.legal_forms)
        name, partner = rng.choice(pool.last), rng.choice(pool.last)
        if draw < 0.4:
            profile.organization_name = f"{name} {rng.choice(country.sectors)} {legal_form}"
        elif draw < 0.65 and partner != name:
            profile.organization_name = f"{name} & {partner} {legal_form}"
        elif draw < 0.8:
            profile.organization_name = f"{rng.choice(country.sectors)} {name} {legal_form}"
        else:
            profile.organization_name = f"{name} {legal_form}"
        profile.language = self._language(rng, country)
        if rng.random() < 0.9:
            profile.tax_id = country.tax_id(rng)
        domain = f"{_domain_label(profile.organization_name.replace(legal_form, ''))}.{country.tld}"
        profile.emails.append((f"info@{domain}", EmailAddress.Label.WORK))
        if rng.random() < 0.5:
            profile.emails.append((f"accounts@{domain}", EmailAddress.Label.WORK))
        profile.phones.append(
            (phone_number(rng, country, mobile=False), PhoneNumberModel.Label.WORK)
        )
        registered = self._address(
            rng, country, label=PostalAddress.Label.REGISTERED, business=True
        )
        profile.addresses.append(registered)
        if rng.random() < 0.4:
            billing = self._address(rng, country, label=PostalAddress.Label.BILLING, business=True)
            profile.addresses.append(billing)
        self._organization_contacts(profile)

    def _organization_contacts(self, profile: Profile) -> None:
        """Link a few persons of the same country generated just before the organisation."""
        rng = profile.rng
        wanted = 1 if rng.random() < 0.5 else rng.choice((2, 2, 3))
        roles_left = list(_CONTACT_ROLES)
        for index in range(profile.index - 1, max(profile.index - 16, 0), -1):
            if len(profile.contacts) >= wanted:
                break
            role, country = self._raw_role(index)
            if role == PERSON and country is profile.country:
                profile.contacts.append((index, roles_left.pop(rng.randrange(len(roles_left)))))

    # -- near-duplicates and households

    def _near_duplicate(self, profile: Profile, base: Profile) -> None:
        """The same person entered again elsewhere, with the mistakes people make."""
        rng = profile.rng
        profile.gender, profile.language = base.gender, base.language
        first, last = base.first_name, base.last_name
        changes = rng.sample(("typo", "nickname", "swap", "email_case", "street"), k=2)
        if "typo" in changes:
            last = _typo(rng, last)
        if "nickname" in changes:
            first = _NICKNAMES.get(first) or f"{first[0]}."
        if "swap" in changes:
            first, last = last, first
        profile.first_name, profile.last_name = first, last
        profile.date_of_birth = base.date_of_birth if rng.random() < 0.8 else None
        profile.national_id = base.national_id if rng.random() < 0.5 else ""
        email, label = base.emails[0]
        local, domain = email.split("@")
        if "email_case" in changes:
            local = ".".join(part.capitalize() for part in local.split("."))
        elif rng.random() < 0.3:
            local = local.replace(".", "")
        profile.emails.append((f"{local}@{domain}", label))
        profile.phones.append(base.phones[0])
        address = base.addresses[0]
        if "street" in changes:
            street = address[1]
            for long, short in _STREET_ABBREVIATIONS:
                if long in street:
                    street = street.replace(long, short)
                    break
            address = (address[0], street, *address[2:])
        profile.addresses.append(address)
        profile.legacy_id = f"LEG-{profile.index:07d}"

    def _household_member(self, profile: Profile, base: Profile) -> None:
        """Someone living with the base person: same surname, same address."""
        rng, country = profile.rng, base.country
        pool = self.pools[country.code]
        profile.gender = rng.choice(("F", "M"))
        profile.first_name = rng.choice(pool.female if profile.gender == "F" else pool.male)
        profile.last_name = base.last_name
        if base.date_of_birth and rng.random() < 0.3:
            # An adult child of the base person, when old enough.
            born = base.date_of_birth + dt.timedelta(days=int(rng.uniform(22, 38) * 365.25))
            adult = (self.now.date() - born).days > 18 * 365.25
            profile.date_of_birth = born if adult else self._birth_date(rng)
        else:
            profile.date_of_birth = self._birth_date(rng, low=20, high=85)
        profile.language = base.language
        if country.national_id and rng.random() < NATIONAL_ID_SHARE:
            profile.national_id = country.national_id(rng, profile)
        self._person_contact_points(profile)
        for number, label in base.phones[1:]:
            if rng.random() < 0.5:
                profile.phones.append((number, label))  # the shared landline
        profile.addresses.append(base.addresses[0])


def _typo(rng: random.Random, text: str) -> str:
    if len(text) < 4:
        return text + text[-1]
    position = rng.randrange(1, len(text) - 1)
    kind = rng.random()
    if kind < 0.4:  # two letters swapped
        return text[:position] + text[position + 1] + text[position] + text[position + 2 :]
    if kind < 0.7:  # a letter dropped
        return text[:position] + text[position + 1 :]
    return text[:position] + text[position] + text[position:]  # a letter doubled


# --------------------------------------------------------------------------- interactions

_PRODUCTS = (
    "running shoes",
    "winter jacket",
    "coffee machine",
    "desk lamp",
    "office chair",
    "laptop sleeve",
    "wireless headphones",
    "garden hose",
    "kitchen knife set",
    "yoga mat",
    "phone case",
    "backpack",
    "printer toner",
    "standing desk",
    "espresso beans (1 kg)",
    "bed linen set",
    "electric kettle",
    "LED bulbs (6-pack)",
    "wool scarf",
    "travel adapter",
    "water bottle",
    "27-inch monitor",
    "keyboard",
    "wireless mouse",
    "gift card",
    "service plan",
    "extended warranty",
    "replacement filter",
    "umbrella",
    "rain boots",
)
_B2B_PRODUCTS = (
    "printer paper (20 boxes)",
    "office chairs (x12)",
    "maintenance contract",
    "software licences (25 seats)",
    "server rack",
    "cleaning supplies",
    "catering for 40",
    "safety shoes (x30)",
    "toner cartridges (x10)",
    "laptops (x8)",
    "meeting room screens",
    "annual support renewal",
)
_ISSUES = (
    "Delivery delayed",
    "Invoice query",
    "Damaged on arrival",
    "Cannot log in",
    "Refund request",
    "Warranty claim",
    "Wrong item delivered",
    "Address change request",
    "Missing parts",
    "Payment declined",
)
_RESOLUTIONS = (
    "resolved",
    "refund issued",
    "replacement sent",
    "escalated to second line",
    "closed after no reply",
    "waiting for customer",
)
_CALL_TOPICS = (
    "delivery times",
    "an invoice",
    "a product question",
    "account details",
    "a complaint",
    "contract renewal",
    "a payment plan",
    "an upcoming order",
    "opening hours",
)
_VISIT_PURPOSES = (
    "product demonstration",
    "returned an item",
    "collected an order",
    "annual review",
    "fitting appointment",
    "asked for advice",
)
_NOTES = (
    "Prefers contact by email.",
    "Asked not to be called before 10:00.",
    "Interested in the loyalty programme.",
    "Moved house recently.",
    "Long-standing customer, handle with care.",
    "Requested paper invoices.",
    "Asked about business terms.",
    "Complained about delivery times last year.",
    "Prefers to be addressed formally.",
    "Wants product news by post only.",
)
_ORDER_STATES = ("delivered", "shipped", "awaiting payment", "returned", "partly delivered")

# kind, channels, weight for persons, weight for organisations
_KINDS = (
    (Interaction.Kind.PURCHASE, ("store", "store", "web"), 35, 10),
    (Interaction.Kind.ORDER, ("web", "web", "email", "phone"), 15, 35),
    (Interaction.Kind.SUPPORT_TICKET, ("email", "web", "phone"), 15, 10),
    (Interaction.Kind.CALL, ("phone",), 15, 20),
    (Interaction.Kind.VISIT, ("store", "branch", "field"), 8, 15),
    (Interaction.Kind.NOTE, ("internal",), 12, 10),
)


def _cumulative(weights: Iterable[int]) -> list[int]:
    total, out = 0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


_PERSON_KIND_WEIGHTS = _cumulative(k[2] for k in _KINDS)
_ORG_KIND_WEIGHTS = _cumulative(k[3] for k in _KINDS)
_THREE_YEARS = dt.timedelta(days=3 * 365)


def interactions_for(profile: Profile, *, customer_id: int, now: dt.datetime) -> list[tuple]:
    """Rows for INTERACTION_COLUMNS: a heavy-tailed number (mean about 12) per customer."""
    rng = profile.rng
    if profile.role == DUPLICATE:
        count = rng.randrange(0, 4)  # a record re-entered elsewhere has little history
    elif rng.random() < WITH_INTERACTIONS_SHARE:
        mu = 2.2 if profile.role == ORGANIZATION else 1.8
        count = min(2 + int(rng.lognormvariate(mu, 1.1)), 400)
    else:
        count = 0
    if not count:
        return []
    is_org = profile.role == ORGANIZATION
    weights = _ORG_KIND_WEIGHTS if is_org else _PERSON_KIND_WEIGHTS
    total = weights[-1]
    products = _B2B_PRODUCTS if is_org else _PRODUCTS
    start = max(profile.created_at, now - _THREE_YEARS)
    span = (now - start).total_seconds()
    city = profile.addresses[0][3] if profile.addresses else ""
    currency, rate = profile.country.currency, profile.country.rate * (8 if is_org else 1)
    rows = []
    for number in range(1, count + 1):
        kind, channels, _, _ = _KINDS[bisect.bisect(weights, rng.random() * total)]
        channel = rng.choice(channels)
        occurred_at = start + dt.timedelta(seconds=rng.random() * span)
        amount = None
        reference = ""
        if kind == Interaction.Kind.PURCHASE:
            product = rng.choice(products)
            where = f"the {city} store" if channel == "store" else "the web shop"
            summary = f"Bought {product} in {where}"
            amount = Decimal(int(rng.lognormvariate(3.6, 0.8) * rate * 100)).scaleb(-2)
            reference = f"INV-{profile.index:07d}-{number:03d}"
        elif kind == Interaction.Kind.ORDER:
            quantity = rng.randrange(1, 5)
            summary = f"Order {rng.choice(_ORDER_STATES)}: {quantity} x {rng.choice(products)}"
            amount = Decimal(int(rng.lognormvariate(4.3, 0.9) * rate * quantity * 100)).scaleb(-2)
            reference = f"ORD-{profile.index:07d}-{number:03d}"
        elif kind == Interaction.Kind.SUPPORT_TICKET:
            summary = f"{rng.choice(_ISSUES)} ({rng.choice(products)}): {rng.choice(_RESOLUTIONS)}"
            reference = f"TCK-{profile.index:07d}-{number:03d}"
        elif kind == Interaction.Kind.CALL:
            direction = "Inbound" if rng.random() < 0.7 else "Outbound"
            summary = (
                f"{direction} call about {rng.choice(_CALL_TOPICS)}, {rng.randrange(1, 40)} min"
            )
        elif kind == Interaction.Kind.VISIT:
            place = "customer site" if channel == "field" else f"{city} {channel}"
            summary = f"Visit at the {place}: {rng.choice(_VISIT_PURPOSES)}"
        else:
            summary = rng.choice(_NOTES)
        rows.append(
            (
                customer_id,
                kind,
                occurred_at,
                channel,
                summary,
                amount,
                currency if amount is not None else "",
                reference,
                None,
            )
        )
    return rows


# --------------------------------------------------------------------------- writing

CUSTOMER_COLUMNS = (
    "id",
    "kind",
    "first_name",
    "last_name",
    "organization_name",
    "display_name",
    "date_of_birth",
    "country",
    "preferred_language",
    "national_id",
    "tax_id",
    "status",
    "restricted",
    "merged_into_id",
    "created_at",
    "updated_at",
)
CONTACT_POINT_COLUMNS = ("is_primary", "is_valid", "invalid_reason", "verified_at", "created_at")
EMAIL_COLUMNS = ("customer_id", "email", "label", *CONTACT_POINT_COLUMNS)
PHONE_COLUMNS = ("customer_id", "number", "label", *CONTACT_POINT_COLUMNS)
ADDRESS_COLUMNS = (
    "customer_id",
    "label",
    "street",
    "street2",
    "city",
    "postcode",
    "region",
    "country",
    *CONTACT_POINT_COLUMNS,
)
SOURCE_COLUMNS = ("customer_id", "source", "external_id", "created_at")
CONTACT_COLUMNS = ("organization_id", "person_id", "role", "is_primary_contact")
INTERACTION_COLUMNS = (
    "customer_id",
    "kind",
    "occurred_at",
    "channel",
    "summary",
    "amount",
    "currency",
    "reference",
    "created_by_id",
)
_HISTORY_FIELDS = frozenset(
    {"history_id", "history_date", "history_change_reason", "history_type", "history_user"}
)


def _id_runs(ids: Sequence[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for value in sorted(ids):
        if runs and value == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


class RowWriter:
    """Writes plain rows and their "+" history rows, bypassing the ORM for speed.

    COPY on PostgreSQL and executemany on SQLite are an order of magnitude faster
    than bulk_create for a million rows, and, unlike the ORM with DEBUG on, they do
    not keep every statement in memory. Column lists are checked against the models,
    so a renamed field fails loudly instead of writing a wrong column.
    """

    def __init__(self) -> None:
        self.vendor = connection.vendor
        if self.vendor not in ("postgresql", "sqlite"):
            raise NotImplementedError(
                f"seed_demo supports PostgreSQL and SQLite, not {self.vendor}"
            )
        self.quote = connection.ops.quote_name

    def _check(self, model: type[models.Model], columns: Sequence[str]) -> list[int]:
        known = {f.column: f for f in model._meta.concrete_fields}
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise ValueError(f"{model.__name__} has no columns {unknown}")
        return [i for i, c in enumerate(columns) if isinstance(known[c], models.DateTimeField)]

    def reserve_ids(self, model: type[models.Model], count: int) -> list[int]:
        """Primary keys for rows about to be inserted, so children can point to them.

        Must run inside the transaction that inserts them: on SQLite that transaction
        holds the write lock (transaction_mode IMMEDIATE), so nobody else takes the
        same ids, and the AUTOINCREMENT counter moves past them on insert.
        """
        table = model._meta.db_table
        with connection.cursor() as cursor:
            if self.vendor == "postgresql":
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                    [table, count],
                )
                return [row[0] for row in cursor.fetchall()]
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
            row = cursor.fetchone()
            cursor.execute(f"SELECT MAX(id) FROM {self.quote(table)}")  # noqa: S608
            start = max(row[0] if row else 0, cursor.fetchone()[0] or 0) + 1
            return list(range(start, start + count))

    def insert(self, model: type[models.Model], columns: Sequence[str], rows: list[tuple]) -> None:
        if not rows:
            return
        datetime_positions = self._check(model, columns)
        table = self.quote(model._meta.db_table)
        names = ", ".join(self.quote(c) for c in columns)
        with connection.cursor() as cursor:
            if self.vendor == "postgresql":
                with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                return
            if datetime_positions:
                # Stored the way the ORM stores them: naive UTC text.
                adapt = connection.ops.adapt_datetimefield_value
                rows = [
                    tuple(adapt(v) if i in datetime_positions else v for i, v in enumerate(row))
                    for row in rows
                ]
            placeholders = ", ".join(["%s"] * len(columns))
            cursor.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({placeholders})",  # noqa: S608
                rows,
            )

    def insert_history(
        self,
        model: type[models.Model],
        *,
        key: str,
        ids: Sequence[int],
        when: dt.datetime,
        user_id: int,
        reason: str,
    ) -> int:
        """Copy the rows whose `key` column is in `ids` into the model's history as "+"."""
        historical = model.history.model
        columns = [
            f.column for f in historical._meta.concrete_fields if f.name not in _HISTORY_FIELDS
        ]
        self._check(model, columns)
        names = ", ".join(self.quote(c) for c in columns)
        history_date = connection.ops.adapt_datetimefield_value(when)
        inserted = 0
        runs = _id_runs(ids)
        with connection.cursor() as cursor:
            for start in range(0, len(runs), 200):
                chunk = runs[start : start + 200]
                where = " OR ".join([f"{self.quote(key)} BETWEEN %s AND %s"] * len(chunk))
                cursor.execute(
                    f"INSERT INTO {self.quote(historical._meta.db_table)} "  # noqa: S608
                    f"({names}, history_date, history_change_reason, history_type, "
                    f"history_user_id) SELECT {names}, %s, %s, '+', %s "
                    f"FROM {self.quote(model._meta.db_table)} WHERE {where}",
                    [history_date, reason, user_id, *[v for run in chunk for v in run]],
                )
                inserted += cursor.rowcount
        return inserted


# --------------------------------------------------------------------------- the job


@dataclass
class _Rows:
    customers: list[tuple] = field(default_factory=list)
    emails: list[tuple] = field(default_factory=list)
    phones: list[tuple] = field(default_factory=list)
    addresses: list[tuple] = field(default_factory=list)
    sources: list[tuple] = field(default_factory=list)
    contacts: list[tuple] = field(default_factory=list)
    interactions: list[tuple] = field(default_factory=list)


def demo_external_id(index: int) -> str:
    return f"DEMO-{index:07d}"


def _demo_index(external_id: str) -> int | None:
    number = external_id.removeprefix("DEMO-")
    return int(number) if number != external_id and number.isdigit() else None


def _add_rows(
    rows: _Rows,
    profile: Profile,
    *,
    customer_id: int,
    ids: dict[int, int],
    now: dt.datetime,
    counts: dict[str, int],
) -> None:
    created = profile.created_at
    customer = Customer(
        kind=profile.kind,
        first_name=profile.first_name,
        last_name=profile.last_name,
        organization_name=profile.organization_name,
    )
    rows.customers.append(
        (
            customer_id,
            profile.kind,
            profile.first_name,
            profile.last_name,
            profile.organization_name,
            customer.compose_display_name(),
            profile.date_of_birth,
            profile.country.code,
            profile.language,
            profile.national_id,
            profile.tax_id,
            profile.status,
            profile.restricted,
            None,
            created,
            now,
        )
    )
    rng = profile.rng
    for position, (email, label) in enumerate(profile.emails):
        verified = created + dt.timedelta(hours=rng.randrange(1, 720))
        verified_at = verified if position == 0 and verified < now and rng.random() < 0.6 else None
        rows.emails.append(
            (customer_id, email, label, position == 0, True, "", verified_at, created)
        )
    for position, (number, label) in enumerate(profile.phones):
        rows.phones.append((customer_id, number, label, position == 0, True, "", None, created))
    for position, address in enumerate(profile.addresses):
        label, street, street2, city, postcode, region = address
        rows.addresses.append(
            (
                customer_id,
                label,
                street,
                street2,
                city,
                postcode,
                region,
                profile.country.code,
                position == 0,
                True,
                "",
                None,
                created,
            )
        )
    rows.sources.append((customer_id, DEMO_SOURCE, demo_external_id(profile.index), created))
    if profile.legacy_id:
        rows.sources.append((customer_id, LEGACY_SOURCE, profile.legacy_id, created))
    for position, (person_index, role) in enumerate(profile.contacts):
        if person_index in ids:
            rows.contacts.append((customer_id, ids[person_index], role, position == 0))
    interactions = interactions_for(profile, customer_id=customer_id, now=now)
    rows.interactions.extend(interactions)
    counts[profile.role] += 1
    counts["restricted"] += profile.restricted


def demo_data_seed(
    *,
    customers: int,
    seed: int,
    with_users: bool,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Create demo customers 1..`customers` that do not exist yet, with history.

    Guarantees: every stored email, phone and identifier passes customers.normalization
    unchanged; every created row has one "+" history row by the system actor with the
    reason "system: seed_demo"; each batch is one transaction, so an interrupted run
    leaves whole customers and can simply be run again.
    """
    started = time.perf_counter()
    now = timezone.now()
    actor = system_actor()
    reason = system_reason(JOB)
    users_created = demo_users_ensure(password=settings.CIM_DEMO_PASSWORD) if with_users else 0

    ids: dict[int, int] = {}
    for external_id, customer_id in SourceIdentifier.objects.filter(
        source=DEMO_SOURCE, external_id__startswith="DEMO-"
    ).values_list("external_id", "customer_id"):
        index = _demo_index(external_id)
        if index is not None:
            ids[index] = customer_id
    missing = [index for index in range(1, customers + 1) if index not in ids]
    existing = customers - len(missing)

    generator = DemoGenerator(seed=seed, now=now)
    writer = RowWriter()
    counts = dict.fromkeys(
        (
            "emails",
            "phones",
            "addresses",
            "source_identifiers",
            "organization_contacts",
            "interactions",
            "history_rows",
            PERSON,
            ORGANIZATION,
            DUPLICATE,
            HOUSEHOLD,
            "restricted",
        ),
        0,
    )
    tables = (
        ("customers", Customer, CUSTOMER_COLUMNS, "id", None),
        ("emails", EmailAddress, EMAIL_COLUMNS, "customer_id", "emails"),
        ("phones", PhoneNumberModel, PHONE_COLUMNS, "customer_id", "phones"),
        ("addresses", PostalAddress, ADDRESS_COLUMNS, "customer_id", "addresses"),
        ("sources", SourceIdentifier, SOURCE_COLUMNS, "customer_id", "source_identifiers"),
        (
            "contacts",
            OrganizationContact,
            CONTACT_COLUMNS,
            "organization_id",
            "organization_contacts",
        ),
        ("interactions", Interaction, INTERACTION_COLUMNS, "customer_id", "interactions"),
    )
    for start in range(0, len(missing), batch_size):
        batch = missing[start : start + batch_size]
        with transaction.atomic():
            customer_ids = writer.reserve_ids(Customer, len(batch))
            ids.update(zip(batch, customer_ids, strict=True))
            rows = _Rows()
            for index, customer_id in zip(batch, customer_ids, strict=True):
                profile = generator.profile(index)
                _add_rows(rows, profile, customer_id=customer_id, ids=ids, now=now, counts=counts)
            for attribute, model, columns, key, counter in tables:
                table_rows = getattr(rows, attribute)
                writer.insert(model, columns, table_rows)
                if counter:
                    counts[counter] += len(table_rows)
                if table_rows:
                    counts["history_rows"] += writer.insert_history(
                        model,
                        key=key,
                        ids=customer_ids,
                        when=now,
                        user_id=actor.pk,
                        reason=reason,
                    )
        if progress:
            done = start + len(batch)
            progress(f"{done}/{len(missing)} customers, {time.perf_counter() - started:.1f} s")

    if with_users:
        officer_restricted_access_grant()
    return {
        "customers_created": len(missing),
        "customers_existing": existing,
        "persons": counts[PERSON] + counts[HOUSEHOLD] + counts[DUPLICATE],
        "organizations": counts[ORGANIZATION],
        "near_duplicates": counts[DUPLICATE],
        "household_members": counts[HOUSEHOLD],
        "restricted": counts["restricted"],
        "emails": counts["emails"],
        "phones": counts["phones"],
        "addresses": counts["addresses"],
        "source_identifiers": counts["source_identifiers"],
        "organization_contacts": counts["organization_contacts"],
        "interactions": counts["interactions"],
        "history_rows": counts["history_rows"],
        "users_created": users_created,
        "demo_users": "ensured" if with_users else "skipped: DEBUG is off",
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 2),
    }


# --------------------------------------------------------------------------- users


def demo_users_ensure(*, password: str) -> int:
    """One user per role (two compliance officers, so one can review the other's work).

    Existing users keep their password; returns how many were created.
    """
    user_model = get_user_model()
    # One hash for all: the demo users share a published password anyway, and
    # hashing it seven times costs seconds with the production hasher.
    password_hash = make_password(password)
    created_count = 0
    for username, role, first_name, last_name in DEMO_USERS:
        user, created = user_model.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first_name,
                "last_name": last_name,
                "email": f"{username}@demo.cim.invalid",
                "is_staff": role == roles.ADMINISTRATOR,
                "password": password_hash,
            },
        )
        created_count += created
        user.groups.add(Group.objects.get(name=role))
    return created_count


def officer_restricted_access_grant() -> list[Customer]:
    """Give the demo officer (not officer2) access to the first restricted demo customers."""
    officer: AbstractBaseUser | None = get_user_model().objects.filter(username="officer").first()
    if officer is None:
        return []
    restricted = list(
        Customer.objects.filter(restricted=True, source_identifiers__source=DEMO_SOURCE).order_by(
            "id"
        )[:OFFICER_RESTRICTED_GRANTS]
    )
    for customer in restricted:
        assign_perm("customers.view_customer", officer, customer)
    return restricted
