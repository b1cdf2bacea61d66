"""Rendering message templates in a sandbox.

Templates are written by staff, so they are rendered by their own Engine:
no loaders (no {% include %} or {% extends %} of files), no {% load %}, no
{% debug %}, only the tags and filters listed below, and a context of plain
values built here. A template therefore cannot reach settings, the ORM, or
any customer but the one it is rendered for.

The documented context:

- customer: first_name, last_name, name, kind, country, language
- invoice: number, amount, currency, issue_date, due_date, status (or empty)
- company: name, email, phone, address, website (settings.CIM_COMPANY)
- unsubscribe_url: the link that withdraws consent for this message's purpose

A variable outside it is an error, not a blank: "{{ customer.password }}"
is refused on save with the name of the variable.
"""

from __future__ import annotations

from django.conf import settings
from django.template import (
    Context,
    Engine,
    Library,
    TemplateSyntaxError,
    defaultfilters,
    defaulttags,
)

ALLOWED_TAGS = ("if", "for", "with", "comment", "spaceless", "now", "filter", "firstof", "cycle")
ALLOWED_FILTERS = (
    "default",
    "default_if_none",
    "upper",
    "lower",
    "title",
    "capfirst",
    "date",
    "time",
    "floatformat",
    "length",
    "first",
    "last",
    "join",
    "yesno",
    "pluralize",
    "truncatechars",
    "truncatewords",
    "linebreaksbr",
    "wordwrap",
    "add",
    "cut",
    "slice",
    "stringformat",
)

library = Library()
for _name in ALLOWED_TAGS:
    library.tags[_name] = defaulttags.register.tags[_name]
for _name in ALLOWED_FILTERS:
    library.filters[_name] = defaultfilters.register.filters[_name]

_INVALID = "\x00INVALID:%s\x00"
register = library  # what Engine(builtins=[this module]) looks for


class SandboxEngine(Engine):
    # Engine always prepends its default builtins (include, load, debug, safe
    # ...); a sandbox starts from nothing and adds only the library above.
    default_builtins: list[str] = []


ENGINE = SandboxEngine(
    dirs=[],
    app_dirs=False,
    loaders=[],
    libraries={},
    builtins=["communications.rendering"],
    autoescape=False,  # plain-text email and SMS bodies
    string_if_invalid=_INVALID,
    debug=False,
)


class RenderError(Exception):
    pass


UNKNOWN_VARIABLE = (
    "Unknown variable {name}: templates may use customer, invoice, company "
    "and unsubscribe_url only."
)
SYNTAX = "The template does not compile: {error}"

CUSTOMER_FIELDS = ("first_name", "last_name", "name", "kind", "country", "language")


def customer_context(customer) -> dict:
    return {
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "name": customer.display_name or str(customer),
        "kind": customer.kind,
        "country": str(customer.country or ""),
        "language": customer.preferred_language,
    }


SAMPLE_CUSTOMER = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "name": "Ada Lovelace",
    "kind": "person",
    "country": "GB",
    "language": "en",
}
SAMPLE_INVOICE = {
    "number": "INV-0001",
    "amount": "120.00",
    "currency": "GBP",
    "issue_date": "2026-01-01",
    "due_date": "2026-01-31",
    "status": "open",
}


INVOICE_FIELDS = tuple(SAMPLE_INVOICE)


def invoice_context(invoice) -> dict:
    """The documented invoice fields, as plain text (amounts with their two decimals)."""
    return {
        "number": invoice.number,
        "amount": f"{invoice.amount:.2f}",
        "currency": invoice.currency,
        "issue_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "status": invoice.status,
    }


def company_context() -> dict:
    return dict(getattr(settings, "CIM_COMPANY", {}))


def compile_text(source: str):
    """A compiled template for rendering many times (bulk sends compile once)."""
    try:
        return ENGINE.from_string(source)
    except TemplateSyntaxError as error:
        raise RenderError(SYNTAX.format(error=error)) from None
    except Exception as error:
        raise RenderError(SYNTAX.format(error=error)) from None


def render_compiled(template, context: dict) -> str:
    try:
        output = template.render(Context(context, autoescape=False))
    except Exception as error:  # a filter that raises on a value
        raise RenderError(SYNTAX.format(error=error)) from None
    if "\x00INVALID:" in output:
        name = output.split("\x00INVALID:", 1)[1].split("\x00", 1)[0]
        raise RenderError(UNKNOWN_VARIABLE.format(name=name or "(empty)"))
    return output


def render_text(source: str, context: dict) -> str:
    """Render one template string against `context`; RenderError names what is wrong."""
    return render_compiled(compile_text(source), context)


def build_context(*, customer=None, invoice=None, unsubscribe_url: str = "") -> dict:
    return {
        "customer": customer_context(customer) if customer is not None else SAMPLE_CUSTOMER,
        "invoice": invoice or {},
        "company": company_context(),
        "unsubscribe_url": unsubscribe_url,
    }


def sample_context() -> dict:
    context = build_context(invoice=SAMPLE_INVOICE, unsubscribe_url="https://example.invalid/u/")
    return context
