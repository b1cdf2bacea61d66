from django import template

register = template.Library()

MASK = "\u2022\u2022\u2022\u2022"


@register.filter
def masked(value) -> str:
    """Show only the last four characters of a sensitive identifier."""
    value = str(value or "")
    if not value:
        return ""
    visible = value[-4:] if len(value) > 6 else ""
    return f"{MASK}{visible}"


@register.simple_tag(takes_context=True)
def identifier(context, value) -> str:
    """A sensitive identifier as the current user may see it."""
    perms = context.get("perms")
    if perms and perms["customers"]["view_sensitive_identifiers"]:
        return str(value or "")
    return masked(value)
