"""Loading a customer for a user: 404 when they may not see it, 403 when they may
see it but not do what they asked."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from .models import Customer
from .selectors import customers_visible_to


def customer_for_user(user, pk, *, perm: str | None = None) -> Customer:
    try:
        customer = customers_visible_to(user).get(pk=pk)
    except (Customer.DoesNotExist, ValueError, TypeError):
        # Not 403: a restricted customer's existence is itself confidential.
        raise Http404("No such customer.") from None
    if perm and not user.has_perm(perm):
        raise PermissionDenied
    return customer
