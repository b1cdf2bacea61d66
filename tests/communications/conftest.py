import pytest

from communications import sms
from communications.models import Channel, Purpose
from tests import factories

WEBHOOK_SECRET = "test-webhook-secret"


@pytest.fixture(autouse=True)
def comms_settings(settings):
    settings.CIM_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.CIM_SMS_BACKEND = "communications.sms.LocmemBackend"
    settings.CIM_BASE_URL = "https://cim.example.com"
    sms.outbox.clear()
    yield settings
    sms.outbox.clear()


@pytest.fixture
def reachable(db):
    """A customer with a valid primary email and mobile number."""
    customer = factories.PersonFactory(first_name="Ada", last_name="Lovelace")
    factories.EmailFactory(customer=customer, email="ada@example.com")
    factories.PhoneFactory(customer=customer, number="+447700900123")
    return customer


def grant(customer, actor, channel=Channel.EMAIL, purpose=Purpose.MARKETING, granted=True):
    from communications import services

    return services.consent_record(
        actor=actor,
        customer=customer,
        channel=channel,
        purpose=purpose,
        granted=granted,
        source="call",
        reason="customer asked on the phone",
    )
