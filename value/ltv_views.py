"""The lifetime value report, ``/o/<slug>/reports/lifetime-value/`` (issue 15, item 4).

Per segment (and the organization's total): LTV, CAC, LTV:CAC and payback months; ``?segment=<id>`` drills
down to the accounts behind a segment's row; product vs account wallet retention by quarter as an SVG chart
beside a table of the same numbers; ``?export=csv`` (``&rows=accounts`` for the account rows) downloads the
figures with formulas neutralised (``cs_platform.exports``).

Every member may open it, like Portfolio and Renewals: the API serves the same figures to every role
(metrics are read by viewers too), and cost rows are readable by every member, so hiding the page from CSMs
and viewers would hide nothing. Writing costs stays with admins and leaders (API, CSV import).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.filtersets import MAX_ID
from accounts.models import Segment
from cs_platform.exports import csv_response
from cs_platform.pages import org_page

from .analytics_ltv import (
    FIRST_DAY,
    LAST_DAY,
    MAX_LIFETIME_YEARS,
    MIN_COHORT,
    lifetime_value,
    product_retention,
    trailing_start,
)
from .ltv_charts import retention_bars

__all__ = ["lifetime_value_page"]

SEGMENT_COLUMNS = [
    ("segment", "name"), ("accounts", "accounts"), ("accounts_with_cost", "accounts_with_cost"),
    ("arr", "arr"), ("lifetime_revenue", "lifetime_revenue"), ("annual_logo_churn", "annual_logo_churn"),
    ("expected_lifetime_years", "expected_lifetime_years"), ("lifetime_source", "lifetime_source"),
    ("ltv", "ltv"), ("ltv_per_account", "ltv_per_account"), ("cac", "cac"), ("cac_per_account", "cac_per_account"),
    ("ltv_net_of_cac", "ltv_net_of_cac"), ("ltv_to_cac", "ltv_to_cac"), ("payback_months", "payback_months"),
    ("accounts_recovered", "accounts_recovered"),
]  # fmt: skip
ACCOUNT_COLUMNS = [
    ("account_id", "account_id"), ("external_id", "external_id"), ("name", "name"),
    ("home_segment", "home_segment"), ("customer_since", "customer_since"),
    ("months_as_customer", "months_as_customer"), ("arr", "arr"), ("mrr", "mrr"),
    ("lifetime_revenue", "lifetime_revenue"), ("annual_logo_churn", "annual_logo_churn"),
    ("expected_lifetime_years", "expected_lifetime_years"), ("ltv", "ltv"), ("acquisition_cost", "acquisition_cost"),
    ("onboarding_cost", "onboarding_cost"), ("cac", "cac"), ("cost_source", "cost_source"),
    ("ltv_net_of_cac", "ltv_net_of_cac"), ("ltv_to_cac", "ltv_to_cac"), ("payback_months", "payback_months"),
    ("cac_recovered", "cac_recovered"), ("months_to_recover", "months_to_recover"),
]  # fmt: skip


def _as_of(value: str | None) -> dt.date:
    """The asked day, or today when it is missing, not a date, or out of the API's range (a year of history
    before it must still be a date)."""
    if value:
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            day = None
        if day is not None and FIRST_DAY <= day <= LAST_DAY:
            return day
    return timezone.localdate()


def _segment(org: Any, value: str | None) -> Segment | None:
    if not value:
        return None
    if not value.isdigit() or int(value) > MAX_ID:
        raise Http404("No such segment")
    segment = Segment.objects.for_org(org).filter(pk=int(value)).first()
    if segment is None:
        raise Http404("No such segment")  # another organization's segment is a missing one
    return segment


def _export(org: Any, result: Any, segment: Segment | None, rows: str) -> HttpResponse:
    if rows == "accounts":
        data = result.account_rows(segment.pk if segment else None)
        columns = ACCOUNT_COLUMNS
        name = f"lifetime-value-accounts-{result.as_of:%Y-%m-%d}.csv"
    else:
        total = {**result.total(), "name": "All accounts"}
        data = [*({**row, "name": row["name"] or "In no segment"} for row in result.segment_rows()), total]
        columns = SEGMENT_COLUMNS
        name = f"lifetime-value-segments-{result.as_of:%Y-%m-%d}.csv"
    header = [column for column, _key in columns]
    return csv_response(name, header, lambda: ([row[key] for _c, key in columns] for row in data), organization=org)


def _wallet(org: Any, as_of: dt.date) -> dict[str, Any]:
    """Product vs account wallet retention, four quarters to ``as_of``: the table and the chart of the last."""
    data = product_retention(org, end=as_of, periods=4, period="quarter")
    periods = data["periods"]
    last = periods[-1]
    rows = [("All accounts (wallet)", last["account"]["grr"], last["account"]["nrr"], False)]
    rows += [(_short(p["name"]), p["grr"], p["nrr"], p["masked"]) for p in last["products"]]
    chart = retention_bars(
        rows,
        title=f"Product vs account wallet retention, {last['start']:%b %d, %Y} to {last['end']:%b %d, %Y}",
        desc="; ".join(
            f"{label}: GRR {'—' if g is None else f'{g * 100:.1f}%'}, NRR {'—' if n is None else f'{n * 100:.1f}%'}"
            for label, g, n, _m in rows
        ),
    )
    masked = sorted({p["name"] for period in periods for p in period["products"] if p["masked"]})
    # The table: one line per wallet (the accounts', then each product ever held), a GRR and NRR pair per period.
    skus: dict[str, str] = {}
    for period in periods:
        skus.update({p["sku"]: p["name"] for p in period["products"]})
    table = [{"label": "All accounts", "sku": "", "cells": [period["account"] for period in periods]}]
    for sku, name in sorted(skus.items()):  # by SKU, as the chart (retention's groups) lists them
        cells = [next((p for p in period["products"] if p["sku"] == sku), None) for period in periods]
        table.append({"label": name, "sku": sku, "cells": cells})
    return {"periods": periods, "last": last, "chart": chart, "masked": masked, "table": table}


def _short(name: str, limit: int = 26) -> str:
    """A chart label that fits its column (the table beside the chart has the full name)."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


@org_page()
@require_GET
def lifetime_value_page(request: HttpRequest) -> HttpResponse:
    """The report; every member reads it (see the module docstring)."""
    org = request.organization
    as_of = _as_of(request.GET.get("as_of"))
    segment = _segment(org, request.GET.get("segment"))
    result = lifetime_value(org, as_of)
    if request.GET.get("export") == "csv":
        return _export(org, result, segment, request.GET.get("rows", "segments"))
    context = {
        "as_of": as_of,
        "window_start": trailing_start(as_of),
        "segment": segment,
        "segments": result.segment_rows(),
        "total": result.total(),
        "drill": result.account_rows(segment.pk) if segment else None,
        "drill_total": result.total(segment.pk) if segment else None,
        "wallet": _wallet(org, as_of),
        "max_lifetime": MAX_LIFETIME_YEARS,
        "min_cohort": MIN_COHORT,
        "gross_margin": result.gross_margin,
    }
    return render(request, "value/lifetime_value.html", context)
