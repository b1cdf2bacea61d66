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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache

import phonenumbers
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from faker import Faker
from guardian.shortcuts import assign_perm
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
from cim.bulk import RowWriter
from compliance import roles

from .models import (
    Customer,
    CustomerSearchToken,
    EmailAddress,
    Interaction,
    OrganizationContact,
    PhoneNumber,
    PostalAddress,
    SourceIdentifier,
)
from .search import customer_tokens, search_words_add

DEMO_SOURCE = "demo"
LEGACY_SOURCE = "legacy"
JOB = "seed_demo"
BATCH_SIZE = 5000

# Shares of the generated population. Organisations link some of the persons
# generated just before them as their contacts.
ORGANIZATION_SHARE = 0.12
DUPLICATE_SHARE = 0.03
HOUSEHOLD_SHARE = 0.06
RESTRICTED_SHARE = 0.01
INACTIVE_SHARE = 0.03
WITH_INTERACTIONS_SHARE = 0.85
NATIONAL_ID_SHARE = 0.7

PERSON, ORGANIZATION, DUPLICATE, HOUSEHOLD = "person", "organization", "duplicate", "household"
# The first customers of every seed show each case, so even a tiny demo (or a test
# seeding 60 customers) has near-duplicates, households, organisations and
# restricted customers. A duplicate or household member always follows the
# person it derives from.
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


def _words(text: str) -> tuple[str, ...]:
    """Space-separated data, "|" where an item holds spaces: keeps the tables below short."""
    return tuple(item.strip() for item in text.split("|" if "|" in text else None))


# --------------------------------------------------------------------------- identifiers
# Each returns the compact form that customers.normalization stores, so a stored
# value is a fixed point of normalize_national_id / normalize_tax_id.


def _digits(rng: random.Random, count: int) -> str:
    return f"{rng.randrange(10**count):0{count}d}"


_NINO_FIRST, _NINO_SECOND = "ABCEGHJKLMNOPRSTWXYZ", "ABCEGHJKLMNPRSTWXYZ"
_NINO_UNUSED = frozenset(_words("BG GB KN NK NT TN ZZ"))


def _gb_nino(rng: random.Random, person: Profile) -> str:
    prefix = "ZZ"
    while prefix in _NINO_UNUSED:
        prefix = rng.choice(_NINO_FIRST) + rng.choice(_NINO_SECOND)
    return f"{prefix}{_digits(rng, 6)}{rng.choice('ABCD')}"


_SSN_REFUSED = frozenset(_words("078051120 457555462 219099999"))  # famously misused


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


_FR_DEPARTMENTS = tuple(f"{d:02d}" for d in range(1, 96) if d != 20)  # 20 is 2A/2B


def _fr_nir(rng: random.Random, person: Profile) -> str:
    dob = person.date_of_birth
    sex = "1" if person.gender == "M" else "2"
    place = f"{rng.choice(_FR_DEPARTMENTS)}{rng.randrange(1, 990):03d}"
    body = f"{sex}{dob.year % 100:02d}{dob.month:02d}{place}{rng.randrange(1, 1000):03d}"
    return f"{body}{97 - int(body) % 97:02d}"


def _es_dni(rng: random.Random, person: Profile) -> str:
    number = f"{rng.randrange(10**6, 10**8):08d}"
    return number + es_dni.calc_check_digit(number)


_IT_MUNICIPALITIES = _words("H501 F205 F839 L219 G273 D612 A944 L736 D969 A662 C351 H224 B157")
_IT_MONTHS = "ABCDEHLMPRST"


def _it_name_code(name: str, *, first_name: bool) -> str:
    letters = [c for c in _ascii(name).upper() if "A" <= c <= "Z"]
    consonants = [c for c in letters if c not in "AEIOU"]
    vowels = [c for c in letters if c in "AEIOU"]
    if first_name and len(consonants) >= 4:
        consonants = [consonants[0], consonants[2], consonants[3]]
    return ("".join(consonants + vowels) + "XXX")[:3]


def _it_codice_fiscale(rng: random.Random, person: Profile) -> str:
    """Derived from the name and birth date the way the Agenzia delle Entrate does."""
    dob = person.date_of_birth
    day = dob.day + (40 if person.gender == "F" else 0)
    names = _it_name_code(person.last_name, first_name=False) + _it_name_code(
        person.first_name, first_name=True
    )
    born = f"{dob.year % 100:02d}{_IT_MONTHS[dob.month - 1]}{day:02d}"
    body = f"{names}{born}{rng.choice(_IT_MUNICIPALITIES)}"
    return body + codicefiscale.calc_check_digit(body)


def _nl_bsn(rng: random.Random, person: Profile | None = None) -> str:
    while True:  # the "11-proof"; one draw in eleven has no valid last digit
        body = f"{rng.randrange(10**7, 7 * 10**7):08d}"
        check = sum((9 - i) * int(c) for i, c in enumerate(body)) % 11
        if check < 10:
            return f"{body}{check}"


def _se_personnummer(rng: random.Random, person: Profile) -> str:
    dob = person.date_of_birth
    sex_digit = rng.choice((1, 3, 5, 7, 9) if person.gender == "M" else (0, 2, 4, 6, 8))
    digits = f"{dob:%y%m%d}{rng.randrange(100) * 10 + sex_digit:03d}"
    return f"{digits[:6]}-{digits[6:]}{luhn.calc_check_digit(digits)}"


def _ie_pps(rng: random.Random, person: Profile | None = None) -> str:
    body = _digits(rng, 7)
    return body + ie_vat.calc_check_digit(body)


def _at_vnr(rng: random.Random, person: Profile) -> str:
    born = f"{person.date_of_birth:%d%m%y}"
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
    body = f"{dob:%y%m%d}{serial:03d}"
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


def _it_partita_iva(rng: random.Random) -> str:
    body = f"{rng.randrange(1, 10**7):07d}{rng.randrange(1, 101):03d}"
    return body + luhn.calc_check_digit(body)


def _nl_btw(rng: random.Random) -> str:
    return _nl_bsn(rng) + "B01"


def _se_orgnr(rng: random.Random) -> str:
    # The third digit is 2 or more, so no organisation number reads as a birth date.
    body = f"556{_digits(rng, 6)}"
    return body + luhn.calc_check_digit(body)


_EIN_PREFIXES = _words("10 12 20 26 27 30 35 45 46 47 81 84")


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
    language: str  # a code of settings.LANGUAGES
    currency: str
    rate: float  # amounts are drawn in EUR and converted, so prices look local
    weight: int
    calling_code: int
    # National prefixes and the length of the national number; the rest is random.
    mobile: tuple[str, ...]
    mobile_length: int
    landline: tuple[str, ...]
    landline_length: int
    mail_domains: tuple[str, ...]
    tld: str
    legal_forms: tuple[str, ...]
    sectors: tuple[str, ...]
    national_id: Callable[[random.Random, Profile], str]
    tax_id: Callable[[random.Random], str]
    house_number_first: bool = False
    flat: str = ""
    # Real towns ("Town/REGION") where the locale's faker invents town names.
    cities: tuple[str, ...] = ()
    # Street kinds, for locales whose faker streets read oddly ("Robert Divide").
    street_kinds: tuple[str, ...] = ()


_EN_SECTORS = _words(
    "Logistics Consulting Engineering Foods Holdings Trading Software Construction Energy"
)

COUNTRIES: tuple[Country, ...] = (
    Country(
        code="GB",
        locale="en_GB",
        language="en-gb",
        currency="GBP",
        rate=0.85,
        weight=22,
        calling_code=44,
        mobile=_words("74 75 77 78 79"),
        mobile_length=10,
        landline=_words("207 203 161 141 151 1223 1865 2920"),
        landline_length=10,
        mail_domains=_words(
            "gmail.com outlook.com hotmail.co.uk yahoo.co.uk btinternet.com icloud.com sky.com"
        ),
        tld="co.uk",
        legal_forms=_words("Ltd Ltd PLC LLP"),
        sectors=_EN_SECTORS,
        national_id=_gb_nino,
        tax_id=_gb_vat,
        house_number_first=True,
        flat="Flat {n}",
        street_kinds=_words("Street Street Road Road Lane Avenue Close Drive Gardens Crescent Way"),
        cities=_words(
            "London|Manchester|Birmingham|Leeds|Glasgow|Edinburgh|Bristol|Liverpool|Sheffield|"
            "Cardiff|Nottingham|Leicester|Brighton|Oxford|Cambridge|York|Newcastle upon Tyne|"
            "Southampton|Reading|Norwich"
        ),
    ),
    Country(
        code="US",
        locale="en_US",
        language="en",
        currency="USD",
        rate=1.1,
        weight=18,
        calling_code=1,
        mobile=_words("212 415 312 617 206 303 512 305 404 713 646 718 310 702 503 612"),
        mobile_length=10,
        landline=_words("212 415 312 617 206 303 512 305 404 713"),
        landline_length=10,
        mail_domains=_words(
            "gmail.com yahoo.com outlook.com icloud.com aol.com comcast.net hotmail.com"
        ),
        tld="com",
        legal_forms=_words("Inc. LLC Corp. LLC"),
        sectors=_EN_SECTORS,
        national_id=_us_ssn,
        tax_id=_us_ein,
        house_number_first=True,
        flat="Apt {n}",
        street_kinds=_words("Street Street Avenue Avenue Road Drive Boulevard Lane Court Place"),
        cities=_words(
            "New York/NY|Los Angeles/CA|Chicago/IL|Houston/TX|Phoenix/AZ|Philadelphia/PA|"
            "San Antonio/TX|San Diego/CA|Dallas/TX|Austin/TX|Seattle/WA|Denver/CO|Boston/MA|"
            "Portland/OR|Atlanta/GA|Miami/FL|Minneapolis/MN|Nashville/TN|San Francisco/CA|"
            "Columbus/OH"
        ),
    ),
    Country(
        code="DE",
        locale="de_DE",
        language="de",
        currency="EUR",
        rate=1.0,
        weight=14,
        calling_code=49,
        mobile=_words("151 152 157 160 162 170 171 172 173 175 176 177 178 179"),
        mobile_length=11,
        landline=_words("30 40 89 221 69 711 211 341"),
        landline_length=10,
        mail_domains=_words("gmx.de web.de t-online.de gmail.com posteo.de outlook.de"),
        tld="de",
        legal_forms=_words("GmbH|GmbH|AG|GmbH & Co. KG|KG"),
        sectors=_words("Logistik Bau Maschinenbau Immobilien Handel Software Elektro Metallbau"),
        national_id=_de_idnr,
        tax_id=_de_vat,
    ),
    Country(
        code="FR",
        locale="fr_FR",
        language="fr",
        currency="EUR",
        rate=1.0,
        weight=10,
        calling_code=33,
        mobile=_words("6 75 76 77 78"),
        mobile_length=9,
        landline=_words("1 2 3 4 5"),
        landline_length=9,
        mail_domains=_words("orange.fr free.fr gmail.com laposte.net sfr.fr outlook.fr"),
        tld="fr",
        legal_forms=_words("SARL SAS SA"),
        sectors=_words("Conseil Transports Bâtiment Distribution Services Informatique"),
        national_id=_fr_nir,
        tax_id=_fr_siren,
        house_number_first=True,
        flat="Appartement {n}",
        cities=_words(
            "Paris|Lyon|Marseille|Toulouse|Nice|Nantes|Strasbourg|Montpellier|Bordeaux|Lille|"
            "Rennes|Reims|Grenoble|Dijon|Angers"
        ),
    ),
    Country(
        code="ES",
        locale="es_ES",
        language="es",
        currency="EUR",
        rate=1.0,
        weight=7,
        calling_code=34,
        mobile=_words("6"),
        mobile_length=9,
        landline=_words("91 93 96 95"),
        landline_length=9,
        mail_domains=_words("gmail.com hotmail.es yahoo.es telefonica.net outlook.es"),
        tld="es",
        legal_forms=_words("S.L. S.L. S.A."),
        sectors=_words("Construcciones Transportes Consultoría Distribuciones Inmobiliaria"),
        national_id=_es_dni,
        tax_id=_es_cif,
    ),
    Country(
        code="IT",
        locale="it_IT",
        language="it",
        currency="EUR",
        rate=1.0,
        weight=7,
        calling_code=39,
        mobile=_words("32 33 34 36 38 39"),
        mobile_length=10,
        # Italian landlines keep their leading zero in E.164; mobiles are enough.
        landline=(),
        landline_length=0,
        mail_domains=_words("gmail.com libero.it virgilio.it alice.it tiscali.it outlook.it"),
        tld="it",
        legal_forms=_words("S.r.l. S.r.l. S.p.A."),
        sectors=_words("Costruzioni Trasporti Alimentari Meccanica Servizi Arredamenti"),
        national_id=_it_codice_fiscale,
        tax_id=_it_partita_iva,
    ),
    Country(
        code="NL",
        locale="nl_NL",
        language="nl",
        currency="EUR",
        rate=1.0,
        weight=6,
        calling_code=31,
        mobile=_words("61 62 63 64 65"),
        mobile_length=9,
        landline=_words("20 10 30 70 40"),
        landline_length=9,
        mail_domains=_words("gmail.com ziggo.nl kpnmail.nl hotmail.nl outlook.com xs4all.nl"),
        tld="nl",
        legal_forms=_words("B.V. B.V. N.V."),
        sectors=_words("Bouw Transport Installatietechniek Advies Handel Techniek"),
        national_id=_nl_bsn,
        tax_id=_nl_btw,
    ),
    Country(
        code="SE",
        locale="sv_SE",
        language="sv",
        currency="SEK",
        rate=11.5,
        weight=4,
        calling_code=46,
        mobile=_words("70 72 73 76 79"),
        mobile_length=9,
        landline=_words("8 31 40 18"),
        landline_length=9,
        mail_domains=_words("gmail.com telia.com hotmail.se outlook.com bredband.net"),
        tld="se",
        legal_forms=("AB",),
        sectors=_words("Bygg Transport Konsult Fastigheter Data El"),
        national_id=_se_personnummer,
        tax_id=_se_orgnr,
    ),
    Country(
        code="IE",
        locale="en_IE",
        language="en-gb",
        currency="EUR",
        rate=1.0,
        weight=3,
        calling_code=353,
        mobile=_words("83 85 86 87 89"),
        mobile_length=9,
        landline=_words("21 61 51"),
        landline_length=9,
        mail_domains=_words("gmail.com eircom.net hotmail.com outlook.ie yahoo.ie"),
        tld="ie",
        legal_forms=_words("Ltd Ltd DAC"),
        sectors=_EN_SECTORS,
        national_id=_ie_pps,
        tax_id=_ie_pps,
        house_number_first=True,
        flat="Apartment {n}",
        street_kinds=_words("Street Street Road Road Avenue Park Terrace Lane Drive"),
        cities=_words(
            "Dublin|Cork|Galway|Limerick|Waterford|Kilkenny|Drogheda|Dundalk|Sligo|Athlone"
        ),
    ),
    Country(
        code="AT",
        locale="de_AT",
        language="de",
        currency="EUR",
        rate=1.0,
        weight=3,
        calling_code=43,
        mobile=_words("664 650 660 676"),
        mobile_length=10,
        landline=_words("316 732 662"),
        landline_length=9,
        mail_domains=_words("gmx.at aon.at gmail.com chello.at"),
        tld="at",
        legal_forms=_words("GmbH GmbH AG OG KG"),
        sectors=_words("Bau Handel Tischlerei Elektro Transporte"),
        national_id=_at_vnr,
        tax_id=_at_uid,
    ),
    Country(
        code="CH",
        locale="de_CH",
        language="de",
        currency="CHF",
        rate=0.95,
        weight=3,
        calling_code=41,
        mobile=_words("76 77 78 79"),
        mobile_length=9,
        landline=_words("44 22 31 61"),
        landline_length=9,
        mail_domains=_words("bluewin.ch gmx.ch gmail.com sunrise.ch"),
        tld="ch",
        legal_forms=_words("AG GmbH AG"),
        sectors=_words("Treuhand Bau Informatik Handel Technik"),
        national_id=_ch_ahv,
        tax_id=_ch_uid,
    ),
    Country(
        code="BE",
        locale="nl_BE",
        language="nl",
        currency="EUR",
        rate=1.0,
        weight=3,
        calling_code=32,
        mobile=_words("47 48 49"),
        mobile_length=9,
        landline=_words("2 3 9"),
        landline_length=8,
        mail_domains=_words("telenet.be skynet.be gmail.com proximus.be"),
        tld="be",
        legal_forms=_words("BV BV NV"),
        sectors=_words("Bouw Transport Advies Handel Techniek"),
        national_id=_be_nn,
        tax_id=_be_vat,
    ),
)
COUNTRY_BY_CODE = {country.code: country for country in COUNTRIES}


def _cumulative(weights: Iterable[int]) -> list[int]:
    total, out = 0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


_COUNTRY_WEIGHTS = _cumulative(country.weight for country in COUNTRIES)


def phone_number(rng: random.Random, country: Country, *, mobile: bool) -> str:
    """A valid number in E.164: a real prefix of the country, random subscriber digits."""
    if mobile or not country.landline:
        prefixes, length = country.mobile, country.mobile_length
    else:
        prefixes, length = country.landline, country.landline_length
    while True:
        prefix = rng.choice(prefixes)
        national = prefix + _digits(rng, length - len(prefix))
        # Some subscriber ranges are unassigned (US exchanges starting 0 or 1, for
        # one): checking the number object is cheap next to parsing, so draw again.
        number = phonenumbers.PhoneNumber(
            country_code=country.calling_code, national_number=int(national)
        )
        if phonenumbers.is_valid_number_for_region(number, country.code):
            return f"+{country.calling_code}{national}"


# --------------------------------------------------------------------------- text helpers

_TRANSLITERATE = str.maketrans(
    {"ß": "ss", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ł": "l"}
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
    cities: list[tuple[str, str]]  # (town, region)
    postcodes: list[str]


def _clean(text: str) -> str:
    return " ".join(text.split())


def _street(fake: Faker, country: Country) -> str:
    if country.street_kinds:
        return f"{_clean(fake.last_name())} {fake.random_element(country.street_kinds)}"
    return _clean(fake.street_name())


@lru_cache(maxsize=4)  # read-only; a process seeding twice draws them once
def _pools(seed: int) -> dict[str, _Pool]:
    pools = {}
    for country in COUNTRIES:
        fake = Faker(country.locale)
        fake.seed_instance(seed)
        towns = [tuple([*town.split("/"), ""][:2]) for town in country.cities]
        pools[country.code] = _Pool(
            male=[_clean(fake.first_name_male()) for _ in range(300)],
            female=[_clean(fake.first_name_female()) for _ in range(300)],
            last=[_clean(fake.last_name()) for _ in range(600)],
            streets=[_street(fake, country) for _ in range(500)],
            cities=towns or [(_clean(fake.city()), "") for _ in range(150)],
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
_CONTACT_ROLES = _words(
    "Finance director|Procurement manager|Managing director|Office manager|Accounts payable|"
    "Head of operations|IT manager|Company secretary"
)
Address = tuple[str, str, str, str, str, str]  # label, street, street2, city, postcode, region


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
    addresses: list[Address] = field(default_factory=list)
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
        position = bisect.bisect(_COUNTRY_WEIGHTS, country_draw * _COUNTRY_WEIGHTS[-1])
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
        age = dt.timedelta(days=rng.randrange(30, 6 * 365), seconds=rng.randrange(86400))
        if role in (DUPLICATE, HOUSEHOLD):
            base = self.profile(index - 1)  # a plain person, so this recurses once
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
        profile.created_at = self.now - age
        return profile

    # -- people

    def _language(self, rng: random.Random, country: Country) -> str:
        if not country.language.startswith("en") and rng.random() < 0.04:
            return "en"  # expatriates and international clients
        return country.language

    def _birth_date(self, rng: random.Random, *, low: int = 18, high: int = 92) -> dt.date:
        age_days = int(rng.triangular(low, high, 42) * 365.25)
        return (self.now - dt.timedelta(days=age_days)).date()

    def _person(self, profile: Profile) -> None:
        rng, country = profile.rng, profile.country
        pool = self.pools[country.code]
        profile.gender = "F" if rng.random() < 0.5 else "M"
        profile.first_name = rng.choice(pool.female if profile.gender == "F" else pool.male)
        profile.last_name = rng.choice(pool.last)
        profile.date_of_birth = self._birth_date(rng)
        profile.language = self._language(rng, country)
        if rng.random() < NATIONAL_ID_SHARE:
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
        for position in range(count):
            if position == 1 and rng.random() < 0.6:
                company = _domain_label(rng.choice(self.pools[country.code].last))
                email = f"{first}.{last}@{company}.{country.tld}"
                label = EmailAddress.Label.WORK
            else:
                email = f"{self._local_part(rng, first, last)}@{rng.choice(country.mail_domains)}"
                label = EmailAddress.Label.OTHER if position else EmailAddress.Label.PERSONAL
            if all(email != known for known, _ in profile.emails):
                profile.emails.append((email, label))
        mobile = phone_number(rng, country, mobile=True)
        profile.phones.append((mobile, PhoneNumber.Label.MOBILE))
        if country.landline and rng.random() < 0.3:
            home = phone_number(rng, country, mobile=False)
            profile.phones.append((home, PhoneNumber.Label.HOME))

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
        # Common names would share addresses; people add a number, and so do we.
        return f"{first}.{last}{rng.randrange(1, 1000)}"

    def _address(
        self, rng: random.Random, country: Country, *, label: str, business: bool = False
    ) -> Address:
        pool = self.pools[country.code]
        street = rng.choice(pool.streets)
        number = min(1 + int(rng.expovariate(0.04)), 400)  # most streets are short
        if country.house_number_first:
            line = f"{number} {street}"
        elif country.code == "ES":
            line = f"{street}, {number}"
        else:
            line = f"{street} {number}"
        street2 = ""
        if country.flat and rng.random() < 0.15:
            if business:
                street2 = f"Suite {rng.randrange(1, 9)}00"
            else:
                street2 = country.flat.format(n=rng.randrange(1, 40))
        city, region = rng.choice(pool.cities)
        return (label, line, street2, city, rng.choice(pool.postcodes), region)

    # -- organisations

    def _organization(self, profile: Profile) -> None:
        rng, country = profile.rng, profile.country
        pool = self.pools[country.code]
        draw, legal_form = rng.random(), rng.choice(country.legal_forms)
        name, partner, sector = rng.choice(pool.last), rng.choice(pool.last), ""
        if draw < 0.4:
            sector = rng.choice(country.sectors)
            profile.organization_name = f"{name} {sector} {legal_form}"
        elif draw < 0.65 and partner != name:
            profile.organization_name = f"{name} & {partner} {legal_form}"
        elif draw < 0.8:
            sector = rng.choice(country.sectors)
            profile.organization_name = f"{sector} {name} {legal_form}"
        else:
            profile.organization_name = f"{name} {legal_form}"
        profile.language = self._language(rng, country)
        if rng.random() < 0.9:
            profile.tax_id = country.tax_id(rng)
        domain = f"{_domain_label(f'{name} {sector}')}.{country.tld}"
        profile.emails.append((f"info@{domain}", EmailAddress.Label.WORK))
        if rng.random() < 0.5:
            profile.emails.append((f"accounts@{domain}", EmailAddress.Label.WORK))
        office = phone_number(rng, country, mobile=False)
        profile.phones.append((office, PhoneNumber.Label.WORK))
        registered = PostalAddress.Label.REGISTERED
        profile.addresses.append(self._address(rng, country, label=registered, business=True))
        if rng.random() < 0.4:
            billing = PostalAddress.Label.BILLING
            profile.addresses.append(self._address(rng, country, label=billing, business=True))
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
        """The same person entered again in another system, with the usual mistakes."""
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
        child = base.date_of_birth + dt.timedelta(days=int(rng.uniform(22, 38) * 365.25))
        if rng.random() < 0.3 and (self.now.date() - child).days > 18 * 366:
            profile.date_of_birth = child  # a grown-up child
        else:
            profile.date_of_birth = self._birth_date(rng, low=20, high=85)
        profile.language = base.language
        if rng.random() < NATIONAL_ID_SHARE:
            profile.national_id = country.national_id(rng, profile)
        self._person_contact_points(profile)
        for number, label in base.phones[1:]:
            if rng.random() < 0.5:
                profile.phones.append((number, label))  # the shared landline
        profile.addresses.append(base.addresses[0])


def _typo(rng: random.Random, text: str) -> str:
    if len(text) < 4:
        return text + text[-1]
    at = rng.randrange(1, len(text) - 1)
    kind = rng.random()
    if kind < 0.4:  # two letters swapped
        return text[:at] + text[at + 1] + text[at] + text[at + 2 :]
    if kind < 0.7:  # a letter dropped
        return text[:at] + text[at + 1 :]
    return text[:at] + text[at] + text[at:]  # a letter doubled


# --------------------------------------------------------------------------- interactions

_PRODUCTS = _words(
    "running shoes|winter jacket|coffee machine|desk lamp|office chair|laptop sleeve|"
    "wireless headphones|garden hose|kitchen knife set|yoga mat|phone case|backpack|"
    "printer toner|standing desk|espresso beans (1 kg)|bed linen set|electric kettle|"
    "LED bulbs (6-pack)|wool scarf|travel adapter|water bottle|27-inch monitor|keyboard|"
    "wireless mouse|gift card|service plan|extended warranty|replacement filter|umbrella"
)
_B2B_PRODUCTS = _words(
    "printer paper (20 boxes)|office chairs (x12)|maintenance contract|"
    "software licences (25 seats)|server rack|cleaning supplies|catering for 40|"
    "safety shoes (x30)|toner cartridges (x10)|laptops (x8)|meeting room screens|"
    "annual support renewal"
)
_ISSUES = _words(
    "Delivery delayed|Invoice query|Damaged on arrival|Cannot log in|Refund request|"
    "Warranty claim|Wrong item delivered|Address change request|Missing parts|Payment declined"
)
_RESOLUTIONS = _words(
    "resolved|refund issued|replacement sent|escalated to second line|closed after no reply|"
    "waiting for customer"
)
_CALL_TOPICS = _words(
    "delivery times|an invoice|a product question|account details|a complaint|"
    "contract renewal|a payment plan|an upcoming order|opening hours"
)
_VISIT_PURPOSES = _words(
    "product demonstration|returned an item|collected an order|annual review|"
    "fitting appointment|asked for advice"
)
_NOTES = _words(
    "Prefers contact by email.|Asked not to be called before 10:00.|"
    "Interested in the loyalty programme.|Moved house recently.|"
    "Long-standing customer, handle with care.|Requested paper invoices.|"
    "Asked about business terms.|Complained about delivery times last year.|"
    "Prefers to be addressed formally.|Wants product news by post only."
)
_ORDER_STATES = _words("delivered|shipped|awaiting payment|returned|partly delivered")

# kind, channels, weight for persons, weight for organisations
_KINDS = (
    (Interaction.Kind.PURCHASE, _words("store store web"), 35, 10),
    (Interaction.Kind.ORDER, _words("web web email phone"), 15, 35),
    (Interaction.Kind.SUPPORT_TICKET, _words("email web phone"), 15, 10),
    (Interaction.Kind.CALL, _words("phone"), 15, 20),
    (Interaction.Kind.VISIT, _words("store branch field"), 8, 15),
    (Interaction.Kind.NOTE, _words("internal"), 12, 10),
)
_PERSON_KIND_WEIGHTS = _cumulative(k[2] for k in _KINDS)
_ORG_KIND_WEIGHTS = _cumulative(k[3] for k in _KINDS)
_HISTORY_SPAN = dt.timedelta(days=3 * 365)


def _amount(rng: random.Random, *, mu: float, sigma: float, factor: float) -> Decimal:
    return Decimal(int(rng.lognormvariate(mu, sigma) * factor * 100)).scaleb(-2)


def interactions_for(profile: Profile, *, customer_id: int, now: dt.datetime) -> list[tuple]:
    """Rows for INTERACTION_COLUMNS: a heavy-tailed number per customer (mean about 12)."""
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
    start = max(profile.created_at, now - _HISTORY_SPAN)
    span = (now - start).total_seconds()
    city = profile.addresses[0][3]
    currency, rate = profile.country.currency, profile.country.rate * (8 if is_org else 1)
    rows = []
    for number in range(1, count + 1):
        kind, channels, _, _ = _KINDS[bisect.bisect(weights, rng.random() * total)]
        channel = rng.choice(channels)
        occurred_at = start + dt.timedelta(seconds=rng.random() * span)
        amount = None
        reference = ""
        if kind == Interaction.Kind.PURCHASE:
            if channel == "web":
                where = "the web shop"
            else:
                where = f"the {city} trade counter" if is_org else f"the {city} store"
            summary = f"Bought {rng.choice(products)} in {where}"
            amount = _amount(rng, mu=3.6, sigma=0.8, factor=rate)
            reference = f"INV-{profile.index:07d}-{number:03d}"
        elif kind == Interaction.Kind.ORDER:
            quantity = rng.randrange(1, 5)
            state = rng.choice(_ORDER_STATES)
            summary = f"Order {state}: {quantity} x {rng.choice(products)}"
            amount = _amount(rng, mu=4.3, sigma=0.9, factor=rate * quantity)
            reference = f"ORD-{profile.index:07d}-{number:03d}"
        elif kind == Interaction.Kind.SUPPORT_TICKET:
            issue, product = rng.choice(_ISSUES), rng.choice(products)
            summary = f"{issue} ({product}): {rng.choice(_RESOLUTIONS)}"
            reference = f"TCK-{profile.index:07d}-{number:03d}"
        elif kind == Interaction.Kind.CALL:
            direction = "Inbound" if rng.random() < 0.7 else "Outbound"
            minutes = rng.randrange(1, 40)
            summary = f"{direction} call about {rng.choice(_CALL_TOPICS)}, {minutes} min"
        elif kind == Interaction.Kind.VISIT:
            place = "customer site" if channel == "field" else f"{city} {channel}"
            summary = f"Visit at the {place}: {rng.choice(_VISIT_PURPOSES)}"
        else:
            summary = rng.choice(_NOTES)
        money = currency if amount is not None else ""
        rows.append(
            (customer_id, kind, occurred_at, channel, summary, amount, money, reference, None)
        )
    return rows


# --------------------------------------------------------------------------- writing

CONTACT_POINT_COLUMNS = ("is_primary", "is_valid", "invalid_reason", "verified_at", "created_at")
EMAIL_COLUMNS = ("customer_id", "email", "label", *CONTACT_POINT_COLUMNS)
PHONE_COLUMNS = ("customer_id", "number", "label", *CONTACT_POINT_COLUMNS)
ADDRESS_COLUMNS = (
    *_words("customer_id label street street2 city postcode region country"),
    *CONTACT_POINT_COLUMNS,
)
SOURCE_COLUMNS = _words("customer_id source external_id created_at")
CONTACT_COLUMNS = _words("organization_id person_id role is_primary_contact")
INTERACTION_COLUMNS = _words(
    "customer_id kind occurred_at channel summary amount currency reference created_by_id"
)
TOKEN_COLUMNS = _words("customer_id token")


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
    tokens: list[tuple] = field(default_factory=list)
    # word -> phonetic key, for SearchWord
    words: dict[str, str] = field(default_factory=dict)


# Customer rows come from model instances (about 15 µs each), so every field,
# including one added later with a default, is written as the model would.
_CUSTOMER_FIELDS = tuple(Customer._meta.concrete_fields)
CUSTOMER_COLUMNS = tuple(f.column for f in _CUSTOMER_FIELDS)
_CUSTOMER_ATTNAMES = tuple(f.attname for f in _CUSTOMER_FIELDS)

# (rows attribute, model, columns, history selected by, summary key)
_TABLES = (
    ("customers", Customer, CUSTOMER_COLUMNS, "id", None),
    ("emails", EmailAddress, EMAIL_COLUMNS, "customer_id", "emails"),
    ("phones", PhoneNumber, PHONE_COLUMNS, "customer_id", "phones"),
    ("addresses", PostalAddress, ADDRESS_COLUMNS, "customer_id", "addresses"),
    ("sources", SourceIdentifier, SOURCE_COLUMNS, "customer_id", "source_identifiers"),
    ("contacts", OrganizationContact, CONTACT_COLUMNS, "organization_id", "organization_contacts"),
    ("interactions", Interaction, INTERACTION_COLUMNS, "customer_id", "interactions"),
    # A derived index without history of its own (see customers.search).
    ("tokens", CustomerSearchToken, TOKEN_COLUMNS, None, None),
)


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
) -> None:
    created = profile.created_at
    customer = Customer(
        id=customer_id,
        kind=profile.kind,
        first_name=profile.first_name,
        last_name=profile.last_name,
        organization_name=profile.organization_name,
        date_of_birth=profile.date_of_birth,
        country=profile.country.code,
        preferred_language=profile.language,
        national_id=profile.national_id,
        tax_id=profile.tax_id,
        status=profile.status,
        restricted=profile.restricted,
        created_at=created,
        updated_at=now,
    )
    customer.refresh_names()  # display_name from compose_display_name(), search_name
    values = customer.__dict__
    rows.customers.append(tuple(values[attname] for attname in _CUSTOMER_ATTNAMES))
    for token, key in customer_tokens(customer.display_name):
        rows.tokens.append((customer_id, token))
        rows.words[token] = key
    rng = profile.rng
    for position, (email, label) in enumerate(profile.emails):
        verified = created + dt.timedelta(hours=rng.randrange(1, 720))
        verified_at = verified if position == 0 and verified < now and rng.random() < 0.6 else None
        rows.emails.append(
            (customer_id, email, label, not position, True, "", verified_at, created)
        )
    for position, (number, label) in enumerate(profile.phones):
        rows.phones.append((customer_id, number, label, not position, True, "", None, created))
    for position, (label, *lines) in enumerate(profile.addresses):
        rows.addresses.append(
            (
                customer_id,
                label,
                *lines,
                profile.country.code,
                not position,
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
            rows.contacts.append((customer_id, ids[person_index], role, not position))
    rows.interactions.extend(interactions_for(profile, customer_id=customer_id, now=now))


def demo_data_seed(
    *,
    customers: int,
    seed: int,
    with_users: bool,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Create the demo customers 1..`customers` that do not exist yet, with history.

    Guarantees: every stored email, phone and identifier passes customers.normalization
    unchanged; every created row of a model with history has one "+" history row by
    the system actor with the reason "system: seed_demo"; each batch is one
    transaction, so an interrupted run leaves whole customers and can be run again.
    """
    started = time.perf_counter()
    now = timezone.now()
    actor = system_actor()
    reason = system_reason(JOB)
    users_created = demo_users_ensure(password=settings.CIM_DEMO_PASSWORD) if with_users else 0

    ids: dict[int, int] = {}
    existing_sources = SourceIdentifier.objects.filter(
        source=DEMO_SOURCE, external_id__startswith="DEMO-"
    ).values_list("external_id", "customer_id")
    for external_id, customer_id in existing_sources.iterator(chunk_size=10000):
        index = _demo_index(external_id)
        if index is not None:
            ids[index] = customer_id
    missing = [index for index in range(1, customers + 1) if index not in ids]

    generator = DemoGenerator(seed=seed, now=now)
    writer = RowWriter()
    counts = dict.fromkeys((key for *_, key in _TABLES if key), 0)
    roles_created = dict.fromkeys((PERSON, ORGANIZATION, DUPLICATE, HOUSEHOLD), 0)
    restricted = history_rows = 0
    for start in range(0, len(missing), batch_size):
        batch = missing[start : start + batch_size]
        with transaction.atomic():
            customer_ids = writer.reserve_ids(Customer, len(batch))
            ids.update(zip(batch, customer_ids, strict=True))
            rows = _Rows()
            for index, customer_id in zip(batch, customer_ids, strict=True):
                profile = generator.profile(index)
                _add_rows(rows, profile, customer_id=customer_id, ids=ids, now=now)
                roles_created[profile.role] += 1
                restricted += profile.restricted
            search_words_add(rows.words.items())
            for attribute, model, columns, key, counter in _TABLES:
                table_rows = getattr(rows, attribute)
                writer.insert(model, columns, table_rows)
                if counter:
                    counts[counter] += len(table_rows)
                if key and table_rows:
                    history_rows += writer.insert_history(
                        model, key=key, ids=customer_ids, when=now, user_id=actor.pk, reason=reason
                    )
        if progress:
            elapsed = time.perf_counter() - started
            progress(f"{start + len(batch)}/{len(missing)} customers in {elapsed:.1f} s")

    kyc: dict = {}
    if with_users:
        officer_restricted_access_grant()
        # KYC cases need the demo users; the seeder of the compliance app
        # builds them on the first demo customers (it skips itself on reruns).
        from compliance.demo import seed_kyc_demo

        users = {u.username: u for u in get_user_model().objects.filter(is_active=True)}
        showcase = [ids[i] for i in range(1, min(customers, 300) + 1) if i in ids]
        kyc = seed_kyc_demo(
            users=users,
            customers=list(Customer.objects.filter(pk__in=showcase).order_by("pk")),
            rng=random.Random(seed),
        )
    return {
        "customers_created": len(missing),
        "customers_existing": customers - len(missing),
        "organizations": roles_created[ORGANIZATION],
        "near_duplicates": roles_created[DUPLICATE],
        "household_members": roles_created[HOUSEHOLD],
        "restricted": restricted,
        **counts,
        "history_rows": history_rows,
        "users_created": users_created,
        "demo_users": "ensured" if with_users else "skipped: DEBUG is off",
        **kyc,
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 2),
    }


# --------------------------------------------------------------------------- users


def demo_users_ensure(*, password: str) -> int:
    """One user per role (two compliance officers, so one can check the other's work).

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
                "email": f"{username}@demo.invalid",
                "is_staff": role == roles.ADMINISTRATOR,
                "password": password_hash,
            },
        )
        created_count += created
        user.groups.add(Group.objects.get(name=role))
    return created_count


def officer_restricted_access_grant() -> list[Customer]:
    """Give the demo officer (not officer2) access to the first restricted demo customers."""
    officer = get_user_model().objects.filter(username="officer").first()
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
