import datetime
from decimal import Decimal

import factory
from django.utils import timezone

from customers.models import (
    Customer,
    EmailAddress,
    Interaction,
    OrganizationContact,
    PhoneNumber,
    PostalAddress,
    SourceIdentifier,
)
from customers.search import fold, search_index_refresh


class PersonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer
        skip_postgeneration_save = True

    kind = Customer.Kind.PERSON
    first_name = factory.Sequence(lambda n: f"Alex{n}")
    last_name = "Morgan"
    country = "GB"
    date_of_birth = datetime.date(1985, 4, 12)
    display_name = factory.LazyAttribute(lambda c: f"{c.first_name} {c.last_name}".strip())
    search_name = factory.LazyAttribute(lambda c: fold(c.display_name))

    @factory.post_generation
    def search_tokens(obj, create, extracted, **kwargs):
        if create:
            search_index_refresh([obj.pk])


class OrganizationFactory(PersonFactory):
    kind = Customer.Kind.ORGANIZATION
    first_name = ""
    last_name = ""
    date_of_birth = None
    organization_name = factory.Sequence(lambda n: f"Northwind Trading {n} Ltd")
    display_name = factory.LazyAttribute(lambda c: c.organization_name)


class EmailFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EmailAddress

    customer = factory.SubFactory(PersonFactory)
    email = factory.Sequence(lambda n: f"person{n}@example.com")
    is_primary = True


class PhoneFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PhoneNumber

    customer = factory.SubFactory(PersonFactory)
    number = "+442079460958"
    is_primary = True


class AddressFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PostalAddress

    customer = factory.SubFactory(PersonFactory)
    street = "10 Downing Street"
    city = "London"
    postcode = "SW1A 2AA"
    country = "GB"
    is_primary = True


class SourceIdentifierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SourceIdentifier

    customer = factory.SubFactory(PersonFactory)
    source = "crm"
    external_id = factory.Sequence(lambda n: f"CRM-{n:06d}")


class InteractionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Interaction

    customer = factory.SubFactory(PersonFactory)
    kind = Interaction.Kind.PURCHASE
    channel = Interaction.Channel.WEB
    occurred_at = factory.LazyFunction(timezone.now)
    summary = "Bought a kettle"
    amount = Decimal("49.90")
    currency = "GBP"


class OrganizationContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrganizationContact

    organization = factory.SubFactory(OrganizationFactory)
    person = factory.SubFactory(PersonFactory)
    role = "Finance director"
