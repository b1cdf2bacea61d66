"""Loading communications objects for a user: 403 when their role may not read
them, 404 when the customer behind the object is not visible to them."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from customers.selectors import customers_visible_to

from .models import Invoice, Message, MessageTemplate
from .selectors import VIEW_INVOICES, VIEW_MESSAGES, VIEW_TEMPLATES, messages_visible_to


def message_for_user(user, pk) -> Message:
    if not user.has_perm(VIEW_MESSAGES):
        raise PermissionDenied
    try:
        return (
            messages_visible_to(user)
            .select_related("customer", "template", "created_by")
            .get(pk=pk)
        )
    except (Message.DoesNotExist, ValueError, TypeError):
        raise Http404("No such message.") from None


def template_for_user(user, pk) -> MessageTemplate:
    if not user.has_perm(VIEW_TEMPLATES):
        raise PermissionDenied
    try:
        return MessageTemplate.objects.get(pk=pk)
    except (MessageTemplate.DoesNotExist, ValueError, TypeError):
        raise Http404("No such template.") from None


def invoice_for_user(user, pk) -> Invoice:
    if not user.has_perm(VIEW_INVOICES):
        raise PermissionDenied
    try:
        return Invoice.objects.select_related("customer").get(
            pk=pk, customer__in=customers_visible_to(user).values("pk")
        )
    except (Invoice.DoesNotExist, ValueError, TypeError):
        raise Http404("No such invoice.") from None
