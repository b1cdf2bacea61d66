"""Which spreadsheet column feeds which customer field.

Only the fields in IMPORT_FIELDS can ever be written by an import: a column
called is_staff, restricted or kyc_status maps to nothing, whatever the user
or a saved mapping says.
"""

from __future__ import annotations

import re

IMPORT_FIELDS: dict[str, str] = {
    "external_id": "External id",
    "kind": "Kind (person or organization)",
    "first_name": "First name",
    "last_name": "Last name",
    "organization_name": "Organisation name",
    "email": "Email",
    "phone": "Phone",
    "date_of_birth": "Date of birth (YYYY-MM-DD)",
    "national_id": "National id",
    "tax_id": "Tax id",
    "street": "Street",
    "street2": "Street, second line",
    "city": "City",
    "postcode": "Postcode",
    "region": "Region",
    "country": "Country",
    "preferred_language": "Preferred language",
}

SYNONYMS: dict[str, tuple[str, ...]] = {
    "external_id": (
        "id",
        "externalid",
        "customerid",
        "customerno",
        "customernumber",
        "accountnumber",
        "accountno",
        "account",
        "clientid",
        "reference",
        "ref",
    ),
    "kind": ("type", "customertype", "entitytype", "partytype"),
    "first_name": ("firstname", "forename", "givenname", "given", "first"),
    "last_name": ("lastname", "surname", "familyname", "family", "last", "name2"),
    "organization_name": (
        "organizationname",
        "organisationname",
        "organization",
        "organisation",
        "company",
        "companyname",
        "business",
        "businessname",
        "employer",
    ),
    "email": ("email", "emailaddress", "mail", "e_mail"),
    "phone": (
        "phone",
        "phonenumber",
        "telephone",
        "tel",
        "mobile",
        "mobilephone",
        "cell",
        "cellphone",
        "contactnumber",
    ),
    "date_of_birth": ("dateofbirth", "dob", "birthdate", "birthday", "born"),
    "national_id": (
        "nationalid",
        "nationalidentifier",
        "ssn",
        "nin",
        "nino",
        "personalid",
        "idnumber",
        "socialsecuritynumber",
        "bsn",
        "personnummer",
    ),
    "tax_id": ("taxid", "tin", "taxnumber", "vat", "vatnumber", "vatid"),
    "street": ("street", "address", "address1", "addressline1", "streetaddress", "line1"),
    "street2": ("street2", "address2", "addressline2", "line2"),
    "city": ("city", "town", "locality"),
    "postcode": ("postcode", "postalcode", "zip", "zipcode", "plz"),
    "region": ("region", "state", "county", "province"),
    "country": ("country", "countrycode", "nation"),
    "preferred_language": ("preferredlanguage", "language", "lang", "locale"),
}

_HEADER_KEY = re.compile(r"[^a-z0-9]")


def header_key(header: str) -> str:
    """'E-mail Address' -> 'emailaddress': compare headers without case or punctuation."""
    return _HEADER_KEY.sub("", header.lower())


_BY_KEY = {header_key(field): field for field in IMPORT_FIELDS}
for _field, _names in SYNONYMS.items():
    for _name in _names:
        _BY_KEY.setdefault(header_key(_name), _field)


def auto_map(headers: list[str], saved: dict[str, str] | None = None) -> dict[str, str]:
    """Map each header to a field ("" = ignored): a saved choice first, then the
    name or a synonym. A field is fed by one column only: the first that claims it."""
    saved = saved or {}
    requested = {
        header: saved[header] if header in saved else _BY_KEY.get(header_key(header), "")
        for header in headers
    }
    return clean_mapping(headers, requested)


def clean_mapping(headers: list[str], requested: dict[str, str]) -> dict[str, str]:
    """A user's mapping, with anything outside the allow-list dropped. A column
    without a name feeds nothing: a mapping is kept by the columns' names, and
    a file may have several without one (reading.headers_checked)."""
    mapping, taken = {}, set()
    for header in headers:
        field = requested.get(header, "") if header else ""
        if field not in IMPORT_FIELDS or field in taken:
            field = ""
        mapping[header] = field
        if field:
            taken.add(field)
    return mapping
