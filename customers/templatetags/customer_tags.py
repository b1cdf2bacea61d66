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
