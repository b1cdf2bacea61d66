"""The segments page, the data-quality page and their drill-downs."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from cim.charts import bar_chart, percent_line_chart

from . import selectors, services
from .models import SegmentRun

VIEW = "customers.view_customer"
TIER_CLASSES = {"A": "bar-ok", "B": "bar-accent", "C": "bar-warn"}


@require_GET
@permission_required(VIEW, raise_exception=True)
def segments_home(request):
    overview = selectors.segments_overview(user=request.user)
    context = {
        "overview": overview,
        "pareto_chart": percent_line_chart(
            title="Pareto: cumulative revenue share by share of customers, best first",
            x_label="Customers (% of segmented, best first)",
            y_label="Cumulative revenue (%)",
            points=[
                (
                    p.customer_share,
                    p.revenue_share,
                    f"{p.customer_share:.0%} of customers make {p.revenue_share:.0%} of revenue",
                )
                for p in overview.pareto
            ],
            reference=0.8,
            reference_label="80% of revenue",
        ),
        "tier_chart": bar_chart(
            title="Customers per tier",
            items=[
                (f"Tier {row.tier}", row.customers, TIER_CLASSES[row.tier])
                for row in overview.tiers
            ],
            label_width=80,
        ),
        "window_choices": services.WINDOW_CHOICES,
        "default_window": overview.window_days or services.DEFAULT_WINDOW_DAYS,
        "may_recompute": request.user.has_perm(services.RECOMPUTE),
    }
    return render(request, "segments/home.html", context)


@require_GET
@permission_required(VIEW, raise_exception=True)
def segment_customer_list(request):
    """Kept for old links: the drill-down is the customer list, filtered by segment
    (where it combines with search and the list's paging)."""
    segment = selectors.SegmentFilter.from_params(request.GET)
    return redirect(f"{reverse('customers:list')}?{urlencode(segment.as_params())}")


@require_POST
def segments_recompute_request(request):
    try:
        window = int(request.POST.get("window_days", services.DEFAULT_WINDOW_DAYS))
    except ValueError:
        window = 0
    try:
        services.segment_run_request(actor=request.user, window_days=window)
    except ValueError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Recompute queued.")
    return redirect("segments:home")


@require_GET
@permission_required(VIEW, raise_exception=True)
def segment_run_status(request, pk: int):
    run = get_object_or_404(SegmentRun.objects.select_related("requested_by"), pk=pk)
    return render(request, "segments/partials/_run_status.html", {"run": run})


@require_GET
@permission_required(VIEW, raise_exception=True)
def quality_home(request):
    figures = selectors.quality_overview(user=request.user)
    trend_points = _trend_points(figures.trend)
    context = {
        "figures": figures,
        "trend_chart": percent_line_chart(
            title="Customers with a valid contact point, daily snapshots (unrestricted customers)",
            x_label="Day",
            y_label="Contactable (%)",
            points=trend_points,
            x_ticks=_trend_ticks(figures.trend),
        ),
    }
    return render(request, "segments/quality.html", context)


def _trend_ticks(snapshots) -> list[tuple[float, str]]:
    if not snapshots:
        return []
    first, last = snapshots[0].day, snapshots[-1].day
    if first == last:
        return [(0.0, f"{first:%d %b}")]
    return [(0.0, f"{first:%d %b}"), (1.0, f"{last:%d %b}")]


def _trend_points(snapshots) -> list[tuple[float, float, str]]:
    """(day's place between the first and last snapshot, contactable share, label)."""
    if not snapshots:
        return []
    first, span = snapshots[0].day, max((snapshots[-1].day - snapshots[0].day).days, 1)
    points = []
    for snapshot in snapshots:
        customers = snapshot.figures.get("customers", 0)
        contactable = snapshot.figures.get("contactable", 0)
        points.append(
            (
                (snapshot.day - first).days / span,
                contactable / customers if customers else 0.0,
                f"{snapshot.day:%d %b %Y}: {contactable} of {customers} contactable",
            )
        )
    return points


@require_GET
@permission_required(VIEW, raise_exception=True)
def quality_customer_list(request):
    page = selectors.quality_customers(
        user=request.user, gap=request.GET.get("gap", ""), after=request.GET.get("after", "")
    )
    if page is None:
        raise Http404("Unknown quality figure.")
    return render(request, "segments/customers.html", {"page": page, "back": "quality:home"})
