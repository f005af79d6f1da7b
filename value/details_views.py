"""The "Know the details" page (``/o/<slug>/reports/details/``): each of seed 004's questions as a heading,
its figure, a small chart beside a table of the same numbers, and links to the accounts behind each number
(``/o/<slug>/reports/details/<figure>/<drill>/``). Every member may read it, as the Renewals page and the
``/api/v1/metrics/`` figures."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.templatetags.retain_ui import money, money_short, percent
from cs_platform.pages import org_page
from renewals.charts import Series, hbar_chart

from .analytics_details import FIGURES, figure
from .details import PERIOD_PRESETS, Period, drill_accounts, resolve_period

DRILL_PAGE_SIZE = 100
BAR = Series("value", "Value", "#2f6f8f")


def _date(text: str | None) -> Any:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _period(request: HttpRequest) -> tuple[Period, str]:
    """The period asked for in the query string; a bad one falls back to the default with a message."""
    org, today = request.organization, timezone.localdate()
    start, end = _date(request.GET.get("start")), _date(request.GET.get("end"))
    preset = request.GET.get("period") or None
    try:
        return resolve_period(org, preset=preset, start=start, end=end, today=today), ""
    except ValueError as error:
        return resolve_period(org, today=today), f"{error.args[1]} Showing the last 12 months."


def _show(value: Any, unit: str, currency: str) -> str:
    """A figure's number as a person reads it (the API carries the exact value)."""
    if value is None:
        return "—"
    if unit == "money":
        return money(value, currency)
    if unit == "ratio":
        return percent(value)
    if unit == "pp":
        points = (Decimal(value) * 100).quantize(Decimal("0.01")).normalize()
        return f"{'+' if points > 0 else '−' if points < 0 else ''}{abs(points):f} pp"
    return str(value)


def _chart(result: dict[str, Any], currency: str) -> Any:
    """Horizontal bars of the figure's chart column, one per row (a chart only where there are 2+ rows with
    a positive value: bars cannot draw a negative growth, the table beside it shows every value)."""
    column = result["chart"]
    unit = next((c["unit"] for c in result["columns"] if c["key"] == column), "count")
    rows = [
        (f"{r['group']}: {r['label']}" if r["group"] else r["label"], {"value": r["values"].get(column) or 0}, "")
        for r in result["rows"]
        if r["values"].get(column) is not None
    ]
    if sum(1 for _label, values, _note in rows if values["value"] > 0) < 2:
        return None
    label = next(c["label"] for c in result["columns"] if c["key"] == column)
    fmt = (lambda v: percent(v)) if unit == "ratio" else (lambda v: money_short(Decimal(str(v)), currency)) if (
        unit == "money") else (lambda v: f"{v:,.0f}")  # fmt: skip
    return hbar_chart(rows[:20], [Series("value", label, BAR.color)], title=f"{label} by row", fmt=fmt,
                      desc="; ".join(f"{name}: {fmt(values['value'])}" for name, values, _n in rows[:20]))  # fmt: skip


def _section(result: dict[str, Any], title: str, currency: str) -> dict[str, Any]:
    columns = result["columns"]
    return {
        "key": result["key"],
        "title": title,
        "question": result["question"],
        "definition": result["definition"],
        "headline": [
            {
                **m,
                "shown": _show(m["value"], m["unit"], currency),
                "count": len(result["drill"].get(m["drill"] or "", [])),
            }
            for m in result["headline"]
        ],
        "columns": columns,
        "rows": [
            {
                **r,
                "cells": [_show(r["values"].get(c["key"]), c["unit"], currency) for c in columns],
                "count": len(result["drill"].get(r["drill"] or "", [])),
            }
            for r in result["rows"]
        ],  # fmt: skip
        "grouped": any(r["group"] for r in result["rows"]),
        "chart": _chart(result, currency),
    }


@org_page()
@require_GET
def details_page(request: HttpRequest) -> HttpResponse:
    """Every figure over the chosen period (default the last 12 months; presets and a custom range)."""
    org = request.organization
    period, problem = _period(request)
    sections = [
        _section(figure(org, key, period.start, period.end), title, org.currency)
        for key, (_function, title) in FIGURES.items()
    ]
    return render(request, "value/details.html", {
        "nav_current": "details", "period": period, "presets": PERIOD_PRESETS, "problem": problem,
        "sections": sections, "period_query": _period_query(period),
    })  # fmt: skip


def _period_query(period: Period) -> str:
    if period.preset == "custom":
        return f"start={period.start.isoformat()}&end={period.end.isoformat()}"
    return f"period={period.preset}"


@org_page()
@require_GET
def details_drill(request: HttpRequest, figure_key: str, drill: str) -> HttpResponse:
    """The accounts behind one number of a figure, in the figure's order, 100 a page."""
    if figure_key not in FIGURES:
        raise Http404("No such figure")
    org = request.organization
    period, problem = _period(request)
    result = figure(org, figure_key, period.start, period.end)
    if drill not in result["drill"]:
        raise Http404("No such drill-down")
    try:
        page = max(1, int(request.GET.get("page", "1")))
    except ValueError:
        page = 1
    listing = drill_accounts(org, result["drill"][drill], offset=(page - 1) * DRILL_PAGE_SIZE, limit=DRILL_PAGE_SIZE)
    pages = max(1, -(-listing["count"] // DRILL_PAGE_SIZE))
    return render(request, "value/details_drill.html", {
        "nav_current": "details", "period": period, "problem": problem, "figure_title": FIGURES[figure_key][1],
        "question": result["question"], "label": result["drill_labels"].get(drill, drill), "listing": listing,
        "page": page, "pages": pages, "period_query": _period_query(period), "figure_key": figure_key,
    })  # fmt: skip
