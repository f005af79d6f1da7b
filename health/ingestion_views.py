"""The ingestion status page (admin): ``/o/<slug>/admin/ingestion/``. Figures from
:func:`health.ingest_status.ingestion_status`, the same as ``GET /api/v1/ingestion-status/``."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from accounts.choices import Role
from cs_platform.pages import org_page

from .ingest_status import COUNTERS, ingestion_status

#: The per-day table's columns (all counters are in the totals table above it).
DAILY_COLUMNS = ["accepted", "counted", "duplicates", "ignored", "unattributed", "refused_events"]


@org_page(roles=[Role.ADMIN])
@require_GET
def admin_ingestion(request: HttpRequest) -> HttpResponse:
    """What the tracking API received in the last 30 days, what was counted, and what was not and why."""
    status = ingestion_status(request.organization)
    totals = [
        {"name": name, "label": label, "meaning": meaning, "value": status["totals"].get(name, 0)}
        for name, (label, meaning) in COUNTERS.items()
    ]
    daily = [
        {"date": row["date"], "values": [row["counters"].get(name, 0) for name in DAILY_COLUMNS]}
        for row in status["daily"][:14]
    ]
    context = {
        "org": request.organization,
        "admin_tab": "ingestion",
        "status": status,
        "totals": totals,
        "daily_columns": [COUNTERS[name][0] for name in DAILY_COLUMNS],
        "daily": daily,
        "ingest_url": request.build_absolute_uri(reverse("ingest:batch")).removesuffix("batch"),
    }
    return render(request, "health/ingestion.html", context)
