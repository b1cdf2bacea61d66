"""Templates render against the documented context only; a template that does
not render is refused on save with the reason; versions stay in history."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from communications import rendering, services
from communications.models import MessageTemplate
from tests import factories

pytestmark = pytest.mark.django_db

FIELDS = {"name": "welcome", "channel": "email", "language": "en", "purpose": "service"}


def save(actor, template=None, **fields):
    return services.template_save(actor=actor, template=template, reason="matrix", **fields)


def test_admin_saves_a_template_and_its_versions_are_kept(admin):
    template = save(admin, subject="Welcome {{ customer.first_name }}", body="Hi", **FIELDS)
    save(admin, template, body="Hello {{ customer.name }}, from {{ company.name }}")
    versions = list(template.history.order_by("history_id").values_list("body", flat=True))
    assert versions == ["Hi", "Hello {{ customer.name }}, from {{ company.name }}"]
    assert template.history.first().history_user == admin


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{{ customer.password }}", "Unknown variable customer.password"),
        ("{{ settings.SECRET_KEY }}", "Unknown variable settings.SECRET_KEY"),
        ("{% load static %}", "The template does not compile"),
        ("{% include 'base.html' %}", "The template does not compile"),
        ("{% debug %}", "The template does not compile"),
        ("{{ customer.name|safe }}", "The template does not compile"),
        ("{% if %}", "The template does not compile"),
    ],
)
def test_a_template_that_fails_to_render_is_refused_on_save_with_the_reason(admin, body, reason):
    with pytest.raises(ValidationError) as refused:
        save(admin, subject="s", body=body, **FIELDS)
    assert reason in refused.value.message_dict["body"][0]
    assert not MessageTemplate.objects.filter(name="welcome").exists()


def test_the_refusal_shows_on_the_form(admin, client_for):
    response = client_for(admin).post(
        "/communications/templates/new/", {**FIELDS, "subject": "s", "body": "{{ user.email }}"}
    )
    assert response.status_code == 400
    assert "Unknown variable user.email" in response.content.decode()
    assert not MessageTemplate.objects.filter(name="welcome").exists()


def test_templates_cannot_reach_other_customers_or_models(admin):
    customer = factories.PersonFactory(first_name="Ada", last_name="Lovelace")
    factories.PersonFactory(first_name="Other", last_name="Person")
    context = rendering.build_context(customer=customer)
    # The context holds plain values, not model instances: no related managers.
    assert all(not hasattr(value, "_meta") for value in context["customer"].values())
    with pytest.raises(rendering.RenderError):
        rendering.render_text("{{ customer.merged_into }}", context)
    with pytest.raises(rendering.RenderError):
        rendering.render_text("{{ customer.emails.all }}", context)
    assert rendering.render_text("{{ customer.name|upper }}", context) == "ADA LOVELACE"


def test_preview_against_a_real_customer(admin, client_for):
    template = save(
        admin, subject="Hi {{ customer.first_name }}", body="B {{ customer.name }}", **FIELDS
    )
    customer = factories.PersonFactory(first_name="Grace", last_name="Hopper")
    page = (
        client_for(admin)
        .get(f"/communications/templates/{template.pk}/preview/?customer={customer.pk}")
        .content.decode()
    )
    assert "Hi Grace" in page and "B Grace Hopper" in page


def test_preview_of_a_restricted_customer_is_404(admin, client_for):
    template = save(admin, subject="Hi", body="B", **FIELDS)
    hidden = factories.PersonFactory(restricted=True)
    response = client_for(admin).get(
        f"/communications/templates/{template.pk}/preview/?customer={hidden.pk}"
    )
    assert response.status_code == 404


@pytest.mark.parametrize("username", ["staff", "support", "steward", "officer", "auditor"])
def test_only_administrators_write_templates(username, persona, client_for):
    user = persona(username)
    with pytest.raises(PermissionDenied):
        save(user, subject="s", body="b", **FIELDS)
    response = client_for(user).post("/communications/templates/new/", {**FIELDS, "body": "b"})
    assert response.status_code == 403
    assert not MessageTemplate.objects.filter(name="welcome").exists()
