"""Compliance pages, split by area: cases, documents, screening and watch
lists, the country risk list, the dashboard and the audit log."""

from django.shortcuts import render

from compliance.services import Refusal


def refused(request, refusal: Refusal, *, case=None, back_url: str = ""):
    """The page a refused action answers with: the rule that said no, with the
    refusal's own status (403 for who may not, 409 for a case in the wrong state)."""
    context = {"message": str(refusal), "case": case, "back_url": back_url}
    return render(request, "compliance/refused.html", context, status=refusal.status_code)


def page_number(request) -> int:
    raw = request.GET.get("page", "")
    return int(raw) if raw.isdigit() else 1
