from django.urls import NoReverseMatch, reverse

from compliance.roles import ROLES

# (label, url name, permission needed or None). Entries whose page is not
# built yet are left out rather than linking to a 404.
NAVIGATION = (
    ("Dashboard", "dashboard", None),
    ("Customers", "customers:list", "customers.view_customer"),
    ("Imports", "imports:list", "customers.import_customers"),
    ("Duplicates", "duplicates:queue", "customers.merge_customer"),
    ("Merge confirmations", "duplicates:merge_requests", "duplicates.confirm_sensitive_merge"),
    ("KYC", "compliance:kyc_list", "customers.view_customer"),
    ("Communications", "communications:home", "customers.view_customer"),
    ("Segments", "segments:home", "customers.view_customer"),
    ("Quality", "quality:home", "customers.view_customer"),
)


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    items = []
    for label, url_name, perm in NAVIGATION:
        if perm and not user.has_perm(perm):
            continue
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        items.append(
            {
                "label": label,
                "url": url,
                "active": request.path == url or (url != "/" and request.path.startswith(url)),
            }
        )
    if user.is_staff:
        items.append({"label": "Admin", "url": reverse("admin:index"), "active": False})
    return {"nav_items": items, "user_roles": _role_names(request, user)}


def _role_names(request, user) -> list[str]:
    # Only a header label: kept in the session so no page pays a query for it.
    # Permission checks never read it; a role change shows after the next login.
    session = getattr(request, "session", None)
    cached = session.get("cim_roles") if session is not None else None
    if cached and cached.get("user") == user.pk:
        return cached["names"]
    names = [name for name in user.groups.values_list("name", flat=True) if name in ROLES]
    if session is not None:
        session["cim_roles"] = {"user": user.pk, "names": names}
    return names
