"""One place validates and normalises customer input; forms, admin and imports
all go through it, and a refusal names the field and the reason."""

import pytest
from django.core.exceptions import ValidationError

from customers import normalization
from customers.forms import CustomerForm, PhoneNumberForm
from customers.models import Customer, EmailAddress, PhoneNumber
from tests import factories


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+44 20 7946 0958", None, "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("00442079460958", "GB", "+442079460958"),
        ("(020) 7946-0958", "GB", "+442079460958"),
        ("+1 (415) 555-2671", None, "+14155552671"),
        ("030 123456", "DE", "+4930123456"),
        ("01 42 68 53 00", "FR", "+33142685300"),
    ],
)
def test_phone_numbers_in_any_format_become_e164(raw, region, expected):
    assert normalization.normalize_phone(raw, region) == expected


def test_phone_without_prefix_uses_configured_default_region(settings):
    settings.CIM_DEFAULT_PHONE_REGION = "US"
    assert normalization.normalize_phone("(415) 555-2671") == "+14155552671"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("not a phone", "is not a phone number"),
        ("12", "is not a valid phone number for United Kingdom"),
        ("020 7946 095", "is not a valid phone number for United Kingdom"),
        ("+44 20 7946 09589999", "is not a valid phone number"),
    ],
)
def test_bad_phone_numbers_are_refused_with_the_reason(raw, reason):
    with pytest.raises(ValidationError) as caught:
        normalization.normalize_phone(raw, "GB")
    assert reason in caught.value.messages[0]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Jane.Doe@Example.COM", "Jane.Doe@example.com"),
        ("  ops@Mail.Example.org ", "ops@mail.example.org"),
    ],
)
def test_email_domain_is_lower_cased_and_local_part_kept(raw, expected):
    assert normalization.normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("jane.example.com", "needs exactly one '@'"),
        ("jane@@example.com", "needs exactly one '@'"),
        ("jane@example", "is not a valid email address"),
        ("jane doe@example.com", "is not a valid email address"),
    ],
)
def test_bad_emails_are_refused_with_the_reason(raw, reason):
    with pytest.raises(ValidationError) as caught:
        normalization.normalize_email(raw)
    assert reason in caught.value.messages[0]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("gb", "GB"),
        ("DEU", "DE"),
        ("250", "FR"),
        ("Spain", "ES"),
        ("united kingdom", "GB"),
        ("", ""),
    ],
)
def test_countries_become_iso_3166_alpha2(raw, expected):
    assert normalization.normalize_country(raw) == expected


def test_unknown_country_is_refused():
    with pytest.raises(ValidationError, match="not an ISO 3166 country"):
        normalization.normalize_country("Atlantis")


@pytest.mark.parametrize(
    ("value", "country", "expected"),
    [
        ("536-90-4399", "US", "536904399"),
        ("111 222 333", "NL", "111222333"),
        ("12345678Z", "ES", "12345678Z"),
        ("811228 9874", "SE", "811228-9874"),  # the separator is significant
        ("AB 12 34 56 C", "GB", "AB123456C"),  # no checker for the UK: kept, compacted
    ],
)
def test_national_ids_are_checked_by_country(value, country, expected):
    assert normalization.normalize_national_id(value, country) == expected


@pytest.mark.parametrize(
    ("value", "country", "reason"),
    [
        ("111 222 334", "NL", "fails its check digit"),
        ("12345678A", "ES", "fails its check digit"),
        ("000-12-3456", "US", "is not in the format of SSN"),
        ("1234", "SE", "wrong length"),
    ],
)
def test_bad_national_ids_are_refused_naming_the_scheme(value, country, reason):
    with pytest.raises(ValidationError) as caught:
        normalization.normalize_national_id(value, country)
    assert reason in caught.value.messages[0]
    assert "National id" in caught.value.messages[0]


def test_tax_ids_accept_any_of_the_country_schemes():
    assert normalization.normalize_tax_id("GB 980 7806 84", "GB") == "980780684"
    assert normalization.normalize_tax_id("DE 136 695 976", "DE") == "136695976"
    with pytest.raises(ValidationError, match="Tax id"):
        normalization.normalize_tax_id("GB 980 7806 85", "GB")


@pytest.mark.django_db
def test_customer_form_error_names_the_field_and_reason():
    form = CustomerForm(
        data={
            "kind": "person",
            "first_name": "Ann",
            "last_name": "Lee",
            "country": "NL",
            "national_id": "111 222 334",
        }
    )
    assert not form.is_valid()
    assert "fails its check digit" in form.errors["national_id"][0]


@pytest.mark.django_db
def test_person_without_a_name_and_organisation_without_its_name_are_refused():
    person = CustomerForm(data={"kind": "person"})
    organisation = CustomerForm(data={"kind": "organization", "first_name": "x"})
    assert not person.is_valid()
    assert not organisation.is_valid()
    assert person.errors["last_name"] == ["A person needs a first or last name."]
    assert organisation.errors["organization_name"] == ["An organisation needs its name."]


@pytest.mark.django_db
def test_phone_form_reads_local_numbers_in_the_customers_country():
    customer = factories.PersonFactory(country="FR")
    form = PhoneNumberForm(
        data={"number": "01 42 68 53 00", "label": "home"}, instance=PhoneNumber(customer=customer)
    )
    assert form.is_valid(), form.errors
    assert form.instance.number == "+33142685300"


@pytest.mark.django_db
def test_support_rep_adding_a_bad_phone_sees_the_reason_and_nothing_is_stored(
    support, customer, client_for
):
    response = client_for(support).post(
        f"/customers/{customer.pk}/phone/new/", {"number": "12345", "label": "mobile"}
    )
    assert response.status_code == 200
    assert "is not a valid phone number for United Kingdom" in response.content.decode()
    assert not PhoneNumber.objects.filter(customer=customer).exists()


@pytest.mark.django_db
def test_support_rep_adds_an_email_which_is_stored_normalised(support, customer, client_for):
    response = client_for(support).post(
        f"/customers/{customer.pk}/email/new/", {"email": "Ann.Lee@Example.COM", "label": "work"}
    )
    assert response.status_code == 302
    stored = EmailAddress.objects.get(customer=customer)
    assert stored.email == "Ann.Lee@example.com"
    assert stored.is_primary  # the first email of a customer becomes primary


@pytest.mark.django_db
def test_model_full_clean_is_the_path_imports_use():
    customer = Customer(kind="person", last_name="Lee", country="US", national_id="536-90-4399")
    customer.full_clean()
    assert customer.national_id == "536904399"
    assert customer.display_name == "Lee"
