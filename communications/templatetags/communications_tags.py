from django import template

from communications.selectors import VIEW_CONSENTS, consent_states

register = template.Library()


@register.simple_tag(takes_context=True)
def consent_summary(context, customer):
    """The current consent per channel and purpose for the 360 page, or None when
    the user's role may not see consents (one query, shared with the timeline)."""
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    if user is None or not user.has_perm(VIEW_CONSENTS):
        return None
    states = consent_states(customer=customer)
    return {"states": states, "any": any(s.entry for s in states)}
