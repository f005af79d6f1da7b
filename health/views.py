"""Admin page for key features: ``/o/<slug>/admin/features/`` (admins only)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.choices import Role
from cs_platform.pages import org_page

from .forms import KeyFeatureForm
from .models import EventType, KeyFeature, UsageEvent

admin_page = org_page(roles=[Role.ADMIN])
SEEN_DAYS = 30
MAX_NAMES = 300  # the page lists the busiest names; any other can still be flagged by typing it


def _seen_events(since) -> list[dict]:
    """Track event names seen since ``since``, busiest first: one grouped query."""
    return list(
        UsageEvent.objects.filter(type=EventType.TRACK, timestamp__gte=since)
        .exclude(event="")
        .values("event")
        .annotate(volume=Count("id"), accounts=Count("account", distinct=True))
        .order_by("-volume", "event")[:MAX_NAMES]
    )


@admin_page
@require_http_methods(["GET", "POST"])
def admin_key_features(request: HttpRequest) -> HttpResponse:
    """Event names seen in the last 30 days with their volume; flag one as a key feature (with a label)."""
    form = KeyFeatureForm()
    status = 200
    if request.method == "POST":
        form = KeyFeatureForm(request.POST)
        if form.is_valid():
            try:
                with transaction.atomic():
                    feature = KeyFeature.objects.create(
                        event_name=form.cleaned_data["event_name"], label=form.cleaned_data["label"]
                    )
            except IntegrityError:  # flagged by someone else between the check and the insert
                form.add_error("event_name", f"“{form.cleaned_data['event_name']}” is already flagged.")
            else:
                messages.success(
                    request,
                    f"“{feature.label}” is a key feature. Daily feature_users:{feature.event_name} counts start "
                    "with the next rollup; past days already rolled up are not recomputed.",
                )
                return redirect("admin-key-features", org_slug=request.organization.slug)
        status = 400
    features = {f.event_name: f for f in KeyFeature.objects.order_by("label", "event_name")}
    seen = _seen_events(timezone.now() - timedelta(days=SEEN_DAYS))
    rows = [{**row, "feature": features.get(row["event"])} for row in seen]
    seen_names = {row["event"] for row in seen}
    # Flagged names with no event in the window are listed too, so they can be unflagged.
    rows += [
        {"event": name, "volume": 0, "accounts": 0, "feature": f}
        for name, f in features.items()
        if name not in seen_names
    ]
    context = {
        "rows": rows,
        "features": list(features.values()),
        "form": form,
        "seen_days": SEEN_DAYS,
        "admin_tab": "features",
        "org": request.organization,
    }
    return render(request, "health/key_features.html", context, status=status)


@admin_page
@require_POST
def admin_unflag_key_feature(request: HttpRequest, feature_id: int) -> HttpResponse:
    """Stop computing a key feature; the daily rows already written are kept."""
    feature = get_object_or_404(KeyFeature.objects, pk=feature_id)
    feature.delete()
    messages.success(request, f"“{feature.label}” is no longer a key feature. Its past daily counts are kept.")
    return redirect("admin-key-features", org_slug=request.organization.slug)
