"""The one place where customer input is validated and normalised.

Model `clean()` methods call these functions, so ModelForms, the admin, the
import pipeline (which runs `full_clean`) and any API all accept and store
exactly the same values. Each function returns the normalised value or raises
`ValidationError` whose message says why the value was refused.
"""

from __future__ import annotations

import functools
import importlib
import re

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django_countries import countries
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
)
from stdnum.exceptions import (
    ValidationError as StdnumValidationError,
)

from . import phone_parsing, phone_validity

EMAIL_MISSING_AT = (
    "'{value}' is not an email address: it needs exactly one '@' between a name and a domain."
)
EMAIL_INVALID = "'{value}' is not a valid email address."
PHONE_UNPARSEABLE = "'{value}' is not a phone number."
PHONE_INVALID = "'{value}' is not a valid phone number for {region}."
PHONE_INVALID_INTERNATIONAL = "'{value}' is not a valid phone number."
COUNTRY_UNKNOWN = "'{value}' is not an ISO 3166 country code or country name."
ID_INVALID_CHECKSUM = "{label} '{value}' fails its check digit ({scheme})."
ID_INVALID_LENGTH = "{label} '{value}' has the wrong length for {scheme}."
ID_INVALID_FORMAT = "{label} '{value}' is not in the format of {scheme}."
ID_INVALID = "{label} '{value}' is not a valid {scheme}."

# python-stdnum modules that check a country's personal identification number.
# A country absent here has no checker: its identifiers are only compacted.
NATIONAL_ID_SCHEMES: dict[str, tuple[str, ...]] = {
    "AT": ("at.vnr",),
    "BE": ("be.nn", "be.bis"),
    "BR": ("br.cpf",),
    "CH": ("ch.ssn",),
    "CN": ("cn.ric",),
    "DE": ("de.idnr",),
    "DK": ("dk.cpr",),
    "ES": ("es.dni", "es.nie"),
    "FI": ("fi.hetu",),
    "FR": ("fr.nir",),
    "IE": ("ie.pps",),
    "IN": ("in_.aadhaar",),
    "IT": ("it.codicefiscale",),
    "NL": ("nl.bsn",),
    "NO": ("no.fodselsnummer",),
    "PL": ("pl.pesel",),
    "PT": ("pt.cc",),
    "SE": ("se.personnummer",),
    "US": ("us.ssn",),
}

# Tax identifiers: personal and business numbers and VAT numbers.
TAX_ID_SCHEMES: dict[str, tuple[str, ...]] = {
    "AT": ("at.tin", "at.uid"),
    "BE": ("be.vat", "be.nn"),
    "CH": ("ch.uid", "ch.vat"),
    "DE": ("de.idnr", "de.stnr", "de.vat"),
    "DK": ("dk.cpr", "dk.cvr"),
    "ES": ("es.nif",),
    "FI": ("fi.veronumero", "fi.ytunnus", "fi.alv"),
    "FR": ("fr.nif", "fr.siren", "fr.tva"),
    "GB": ("gb.utr", "gb.vat"),
    "IE": ("ie.pps", "ie.vat"),
    "IT": ("it.codicefiscale", "it.iva"),
    "NL": ("nl.bsn", "nl.btw"),
    "NO": ("no.orgnr", "no.mva", "no.fodselsnummer"),
    "PL": ("pl.nip", "pl.pesel"),
    "PT": ("pt.nif",),
    "SE": ("se.personnummer", "se.orgnr", "se.vat"),
    "US": ("us.tin",),
}


@functools.lru_cache(maxsize=8192)
def _email_domain_valid(domain_part: str) -> bool:
    return EmailValidator().validate_domain_part(domain_part)


class _EmailValidator(EmailValidator):
    """Django's EmailValidator, remembering its verdict on each domain part.

    That verdict depends on nothing but the domain's text (regular expressions
    and an IP check), and a million imported addresses share a few thousand
    domains; every other check runs as Django's. Its user-part pattern is the
    same one compiled up front: Django's lazy wrapper costs more per address
    (an AttributeError on each access) than the match itself.
    """

    user_regex = re.compile(EmailValidator.user_regex.pattern, EmailValidator.user_regex.flags)

    def validate_domain_part(self, domain_part):
        return _email_domain_valid(domain_part)


_validate_email = _EmailValidator()


def normalize_email(value: str) -> str:
    """Trim, validate and lower-case the domain (the local part is the owner's)."""
    value = (value or "").strip()
    if value.count("@") != 1:
        raise ValidationError(EMAIL_MISSING_AT.format(value=value), code="invalid_email")
    local, domain = value.split("@")
    candidate = f"{local}@{domain.lower()}"
    try:
        _validate_email(candidate)
    except ValidationError:
        raise ValidationError(EMAIL_INVALID.format(value=value), code="invalid_email") from None
    return candidate


def normalize_phone(value: str, region: str | None = None) -> str:
    """Parse a phone number written in any common format and return it in E.164.

    A number without an international prefix is read in `region` (the
    customer's country) or, failing that, CIM_DEFAULT_PHONE_REGION.
    """
    raw = (value or "").strip()
    region = (region or settings.CIM_DEFAULT_PHONE_REGION or "").upper() or None
    # Plainly written numbers without phonenumbers' general parser: the same
    # answer, five to seven times faster (phone_parsing).
    parts = phone_parsing.plain_parts(raw, region)
    if parts is not None:
        country_code, national = parts
        valid = phone_validity.is_valid_parts(country_code, national)
        # format_number's E.164 form: no national number read here starts with 0.
        e164 = f"+{country_code}{national}"
    else:
        try:
            number = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            raise ValidationError(
                PHONE_UNPARSEABLE.format(value=raw), code="invalid_phone"
            ) from None
        valid = phone_validity.is_valid_number(number)
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not valid:
        if raw.startswith(("+", "00")) or not region:
            message = PHONE_INVALID_INTERNATIONAL.format(value=raw)
        else:
            message = PHONE_INVALID.format(value=raw, region=countries.name(region) or region)
        raise ValidationError(message, code="invalid_phone")
    return e164


def normalize_country(value: str) -> str:
    """Accept an ISO 3166 alpha-2, alpha-3 or numeric code or an English name."""
    raw = (value or "").strip()
    if not raw:
        return ""
    code = countries.alpha2(raw.upper()) or countries.by_name(raw, insensitive=True)
    if not code:
        raise ValidationError(COUNTRY_UNKNOWN.format(value=raw), code="invalid_country")
    return code


@functools.cache
def _scheme_modules(paths: tuple[str, ...]) -> tuple:
    """The python-stdnum modules of a country's schemes, imported once."""
    return tuple(importlib.import_module(f"stdnum.{path}") for path in paths)


def _normalize_identifier(value: str, country: str, schemes, label: str) -> str:
    raw = (value or "").strip()
    if not raw:
        return ""
    modules = _scheme_modules(schemes.get((country or "").upper(), ()))
    if not modules:
        # No checker for this country: keep the identifier, compacted, as given.
        return "".join(raw.split()).replace("-", "").upper()
    first_error: tuple[StdnumValidationError, object] | None = None
    for module in modules:
        try:
            # validate() returns the compact form (python-stdnum's common
            # interface): compacting it again cost a third of the check
            # (an import's national ids: 15.7 against 11.0 us each).
            return module.validate(raw)
        except StdnumValidationError as error:
            first_error = first_error or (error, module)
    error, module = first_error
    scheme = getattr(module, "__doc__", "").strip().splitlines()[0].rstrip(".") or module.__name__
    template = {
        InvalidChecksum: ID_INVALID_CHECKSUM,
        InvalidLength: ID_INVALID_LENGTH,
        InvalidFormat: ID_INVALID_FORMAT,
        InvalidComponent: ID_INVALID_FORMAT,
    }.get(type(error), ID_INVALID)
    raise ValidationError(
        template.format(label=label, value=raw, scheme=scheme), code="invalid_identifier"
    )


def normalize_national_id(value: str, country: str) -> str:
    """Validate a personal identification number with the country's python-stdnum scheme."""
    return _normalize_identifier(value, country, NATIONAL_ID_SCHEMES, "National id")


def normalize_tax_id(value: str, country: str) -> str:
    """Validate a tax or VAT number with the country's python-stdnum schemes."""
    return _normalize_identifier(value, country, TAX_ID_SCHEMES, "Tax id")
