from django import template

from compliance.selectors import kyc_customer_summary

register = template.Library()


@register.simple_tag(takes_context=True)
def kyc_summary(context, customer):
    """The customer's KYC at a glance for the 360 page (one query)."""
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    if user is None:
        return None
    return kyc_customer_summary(customer=customer, user=user)


@register.filter
def risk_class(level: str) -> str:
    return f"risk-{level}" if level else "risk-none"
