from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from customers.selectors import customers_visible_to

from . import health


@require_GET
@never_cache
@login_not_required
def healthz(request):
    checks = {"database": health.database_status(), "broker": health.broker_status()}
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503
    )


def dashboard(request):
    visible = customers_visible_to(request.user)
    context = {
        "customer_count": visible.count(),
        "recent_customers": visible.order_by("-updated_at", "-id").only(
            "id", "display_name", "kind", "updated_at", "restricted"
        )[:10],
    }
    return render(request, "dashboard.html", context)
