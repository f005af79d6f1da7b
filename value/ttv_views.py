"""The time-to-value report (``/o/<slug>/reports/time-to-value/``) and its section on Portfolio.

Every member may read both (spec §1: viewers read dashboards; Portfolio is every member's): the figures
are :func:`value.analytics.time_to_value`'s, the same as ``GET /api/v1/metrics/time-to-value/``. Each chart
sits beside a table of the same numbers, and every figure links to the accounts behind it (``?show=…``: a
drill-down list under the figures).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from accounts.models import Membership, Segment
from cs_platform.choices import Role
from cs_platform.pages import org_page
from health.filtersets import local_today
from renewals.charts import Series, hbar_chart, stacked_bars

from .analytics import RISK_REASONS, default_period, portfolio_summary, time_to_value

__all__ = ["portfolio_section", "time_to_value_report"]

RISK_LABELS = {
    "stalled": "A milestone stalled",
    "late_milestone": "A milestone past its due date",
    "past_target": "Past the target go-live",
    "red": "Health red",
}
GO_LIVE = Series("median", "Median days to go-live", "#2f6fde")
FIRST_VALUE = Series("median", "Median days to first value", "#7a4cc2")


class TimeToValueFilters(forms.Form):
    """The report's filters: the kickoff period, a segment, a CSM (account owner)."""

    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Kickoff from")
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="to")
    segment = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Segment")
    owner = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="CSM")
    show = forms.CharField(required=False, max_length=80, widget=forms.HiddenInput)

    def __init__(self, *args: Any, organization: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        segments = Segment.objects.for_org(organization).order_by("position", "name").values_list("pk", "name")
        self.fields["segment"].choices = [("", "All accounts"), *segments]
        members = (
            Membership.objects.for_org(organization)
            .exclude(role=Role.VIEWER)
            .select_related("user")
            .order_by("user__first_name", "user__last_name", "user__email")
        )
        self.fields["owner"].choices = [
            ("", "Anyone"),
            *((m.user_id, m.user.get_full_name() or m.user.email) for m in members),
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and end < start:
            self.add_error("end", "The end date must not be before the start date.")
        return data


def _days(value: Any) -> str:
    return "—" if value is None else f"{value:g} d"


def _drill(result: dict[str, Any], show: str) -> tuple[str, list[dict[str, Any]]] | None:
    """The projects behind one figure: ``show`` is ``kind`` or ``kind:key`` (see the template's links)."""
    kind, _, key = show.partition(":")
    rows = result["projects"]
    period = [r for r in rows if r["in_period"]]
    opened = [r for r in rows if r["open"]]
    choices: dict[str, tuple[str, list[dict[str, Any]]]] = {
        "period": ("Projects kicked off in the period", period),
        "live": ("Go-lives reached (kicked off in the period)", [r for r in period if r["go_live_days"] is not None]),
        "on_time": ("On-time go-lives", [r for r in period if r["on_time"] is True]),
        "late": ("Late go-lives", [r for r in period if r["on_time"] is False]),
        "overdue": ("Not live yet and past the target", [r for r in period if "past_target" in r["risk_reasons"]]),
        "running": ("Clocks still running", [r for r in period if r["open"] and r["go_live_days"] is None]),
        "onboarding": ("Onboarding accounts (open project)", opened),
        "at_risk": ("Onboarding accounts at risk", [r for r in opened if r["at_risk"]]),
    }
    if kind in choices and not key:
        return choices[kind]
    if kind == "risk" and key in RISK_REASONS:
        return f"At risk: {RISK_LABELS[key].lower()}", [r for r in opened if key in r["risk_reasons"]]
    if kind == "segment" and key.isdigit():
        label = next((g["label"] for g in result["by_segment"] if g["key"] == key), "segment")
        return f"Segment {label}", [r for r in period if int(key) in r["segments"]]
    if kind == "csm":
        label = next((g["label"] for g in result["by_csm"] if g["key"] == key), "—")
        return f"CSM {label}", [r for r in period if str(r["owner"] or "") == key]
    if kind == "cohort":
        return f"Cohort {key} (kicked off in the quarter)", [r for r in period if r["cohort"] == key]
    if kind == "golive":
        return f"Go-lives in {key}", [r for r in rows if r["go_live_on"] and _quarter(r["go_live_on"]) == key
                                      and result["start"] <= r["go_live_on"] <= result["end"]]  # fmt: skip
    return None


def _quarter(day: dt.date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def _group_chart(groups: list[dict[str, Any]], title: str, noun: str) -> Any:
    if not any(g["go_live"]["median"] is not None for g in groups):
        return None
    rows = [
        (g["label"], {"median": g["go_live"]["median"] or 0}, f"n = {g['go_live']['n']}")
        for g in groups
        if g["go_live"]["median"] is not None
    ]
    return hbar_chart(rows, [GO_LIVE], title=title, desc=f"Median days from kickoff to go-live per {noun}; the "
                      "table beside it has the same figures.", fmt=_days)  # fmt: skip


@org_page()
@require_GET
def time_to_value_report(request: HttpRequest) -> HttpResponse:
    """Time to go-live and to first value: distributions per segment, CSM and cohort, the trend by quarter,
    on-time rate against target, the share of onboarding accounts at risk, each with its accounts."""
    org = request.organization
    form = TimeToValueFilters(request.GET or None, organization=org)
    today = local_today(org)
    params: dict[str, Any] = {}
    if form.is_bound and form.is_valid():
        params = {k: form.cleaned_data.get(k) for k in ("start", "end", "segment", "owner")}
    start, end = default_period(today)
    params["start"] = params.get("start") or start
    params["end"] = params.get("end") or (today if params["start"] <= today else params["start"])
    result = time_to_value(org, today=today, **params)
    show = (form.cleaned_data.get("show") if form.is_bound and form.is_valid() else "") or ""
    drill = _drill(result, show) if show else None
    trend = result["trend"]
    trend_chart = stacked_bars(
        [(t["quarter"], t["quarter"]) for t in trend],
        [GO_LIVE],
        {(t["quarter"], "median"): t["median_go_live_days"] or 0 for t in trend},
        title="Median days to go-live, by quarter of go-live",
        desc="One bar per quarter: the median days from kickoff to go-live of the go-lives reached in it; the "
        "table beside it has the same figures with the on-time rate and first value.",
        fmt=_days,
        counts={(t["quarter"], "median"): t["go_lives"] for t in trend},
        y_label="Days",
        noun="go-live",
    )
    by_cohort_chart = _group_chart(result["by_cohort"], "Median days to go-live by cohort", "cohort")
    by_csm_chart = _group_chart(result["by_csm"], "Median days to go-live by CSM", "CSM")
    by_segment_chart = _group_chart(result["by_segment"], "Median days to go-live by segment", "segment")
    context = {
        "form": form,
        "result": result,
        "overall": result["overall"],
        "at_risk": result["at_risk"],
        "risk_rows": [(reason, RISK_LABELS[reason], result["at_risk"][reason]) for reason in RISK_REASONS],
        "trend": trend,
        "trend_chart": trend_chart,
        "groups": [
            ("cohort", "By cohort", "Quarter of the kickoff", result["by_cohort"], by_cohort_chart),
            ("csm", "By CSM", "The account's owner", result["by_csm"], by_csm_chart),
            ("segment", "By segment", "An account may sit in several segments", result["by_segment"], by_segment_chart),
        ],
        "show": show,
        "drill": drill,
        "filter_query": {k: v for k, v in request.GET.items() if k in ("start", "end", "segment", "owner") and v},
    }
    return render(request, "value/ttv_report.html", context)


def portfolio_section(request: HttpRequest) -> dict[str, Any]:
    """Portfolio's onboarding section (``accounts.composition`` page panel ``portfolio``): onboarding
    accounts, median time to go-live and on-time rate of the last four quarters' kickoffs, the share at
    risk; three queries (:func:`value.analytics.portfolio_summary`)."""
    org = request.organization
    summary = portfolio_summary(org, today=local_today(org))
    return {"onboarding": {**summary, "url": reverse("time-to-value", args=[org.slug])}}
