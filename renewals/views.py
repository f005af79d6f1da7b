"""The Renewals screen (spec §7.4) and the renewal detail page with its forecast and outcome forms.

The Renewals page reads aggregates only: the pipeline is one grouped query, the upcoming list one
query with its account and owner, and the retention figures come from ``renewals.analytics`` (which
works set-based). The number of queries does not grow with the number of renewals or accounts.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import cached_property
from typing import Any

from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Case, Count, F, Q, Sum, Value, When
from django.db.models.functions import TruncMonth
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.choices import Role
from accounts.models import ContractLine, Membership, Product
from accounts.services import Actor
from accounts.templatetags.retain_ui import money_short
from cs_platform.pages import org_page
from health.explain import dragging_by_account

from . import analytics, services
from .charts import Series, diverging_bars, hbar_chart, heat_class, stacked_bars, waterfall
from .forms import LOSS_OUTCOMES, AddLineForm, ForecastForm, OutcomeForm, SuccessorLineFormSet, line_initial
from .models import ForecastCategory, Renewal, RenewalForecastChange, RenewalLineChange, RenewalOutcome, RenewalStage

ZERO = Decimal("0")
WINDOWS = (30, 60, 90, 120)
DEFAULT_WINDOW = 90
PERIODS = (("3", "3 months"), ("6", "6 months"), ("12", "12 months"), ("24", "24 months"))
DEFAULT_PERIOD_MONTHS = 12
PAGE_SIZE = 25  # upcoming renewals per page: the list comes first, the analytics stay in reach below it
CONFLICT_PAGE_SIZE = 10
HISTORY_LIMIT = 50

#: Display order and colours of the forecast categories: safest first, losses last.
CATEGORY_SERIES = [
    Series(ForecastCategory.COMMIT, "Commit", "#15803d"),
    Series(ForecastCategory.LIKELY, "Likely", "#4f46e5"),
    Series(ForecastCategory.UPSIDE, "Upside", "#0ea5e9"),
    Series(ForecastCategory.AT_RISK, "At risk", "#d97706"),
    Series(ForecastCategory.CHURN, "Churn", "#b42318"),
]
AVOIDABILITY_SERIES = [Series("avoidable", "Avoidable", "#b42318"), Series("unavoidable", "Unavoidable", "#98a2b3")]
BRIDGE_UP = [Series("new", "New", "#4f46e5"), Series("expansion", "Expansion", "#15803d")]
BRIDGE_DOWN = [Series("contraction", "Contraction", "#d97706"), Series("churn", "Churn", "#b42318")]


# --- Permissions ------------------------------------------------------------------------------------


def can_edit_renewal(actor: Actor, renewal: Renewal) -> bool:
    """Admins; leaders for their teams' accounts and renewals; a CSM for their own book (the service's rule)."""
    return services.can_write_renewal(actor, renewal)


def can_make_final_call(actor: Actor, renewal: Renewal) -> bool:
    """The final call is the leader's: leaders (their teams) and admins."""
    return actor.role in (Role.LEADER, Role.ADMIN) and can_edit_renewal(actor, renewal)


# --- Helpers ----------------------------------------------------------------------------------------


def _dec(value: Any) -> Decimal:
    return ZERO if value in (None, "") else Decimal(str(value))


def _ratio(value: Any) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


def _months_back(day: dt.date, months: int) -> dt.date:
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    last_day = ((dt.date(year, month + 1, 1) + dt.timedelta(days=31)).replace(day=1) - dt.timedelta(days=1)).day
    return dt.date(year, month + 1, min(day.day, last_day))


def _parse_date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _int_choice(value: str | None, choices: tuple[int, ...], default: int) -> int:
    return int(value) if value and value.isdigit() and int(value) in choices else default


# --- The Renewals page ------------------------------------------------------------------------------


def _pipeline(queryset: Any, today: dt.date, fmt: Any) -> dict[str, Any]:
    """Open renewals by due month and forecast category: counts, ARR due and forecast ARR. One query."""
    rows = (
        queryset.annotate(month=TruncMonth("due_date"))
        .values("month", "forecast_category")
        .annotate(n=Count("id"), arr=Sum("current_arr"), forecast=Sum("forecast_arr"))
        .order_by("month", "forecast_category")
    )
    values: dict[tuple[str, str], Decimal] = {}
    counts: dict[tuple[str, str], int] = {}
    months: dict[str, dict[str, Any]] = {}
    for row in rows:
        month = row["month"]
        month = month.date() if isinstance(month, dt.datetime) else month
        overdue = month < today.replace(day=1)
        key = "overdue" if overdue else month.isoformat()
        label = "Overdue" if overdue else month.strftime("%b %Y")
        entry = months.setdefault(key, {"key": key, "label": label, "cells": {}, "n": 0, "arr": ZERO, "forecast": ZERO})
        cell = entry["cells"].setdefault(row["forecast_category"], {"n": 0, "arr": ZERO})
        cell["n"] += row["n"]
        cell["arr"] += row["arr"] or ZERO
        entry["n"] += row["n"]
        entry["arr"] += row["arr"] or ZERO
        entry["forecast"] += row["forecast"] or ZERO
        values[(key, row["forecast_category"])] = values.get((key, row["forecast_category"]), ZERO) + (
            row["arr"] or ZERO
        )
        counts[(key, row["forecast_category"])] = counts.get((key, row["forecast_category"]), 0) + row["n"]
    ordered = sorted(months.values(), key=lambda m: "" if m["key"] == "overdue" else m["key"])
    for entry in ordered:
        entry["row"] = [entry["cells"].get(s.key) for s in CATEGORY_SERIES]
    totals = {
        "n": sum(m["n"] for m in ordered),
        "arr": sum((m["arr"] for m in ordered), ZERO),
        "forecast": sum((m["forecast"] for m in ordered), ZERO),
        "by_category": [
            {
                "n": sum(counts.get((m["key"], s.key), 0) for m in ordered),
                "arr": sum((values.get((m["key"], s.key), ZERO) for m in ordered), ZERO),
            }
            for s in CATEGORY_SERIES
        ],
    }
    chart = None
    if ordered:
        chart = stacked_bars(
            [(m["key"], m["label"]) for m in ordered],
            CATEGORY_SERIES,
            values,
            counts=counts,
            fmt=fmt,
            y_label="ARR due",
            x_label="Due month",
            title="Renewal pipeline by month and forecast category",
            desc=f"ARR due of {totals['n']} open renewals by due month, stacked by forecast category; "
            f"{fmt(totals['arr'])} in total.",
        )
    return {"months": ordered, "totals": totals, "chart": chart}


CLOSED_SERIES = Series("closed", "Closed (new ARR)", "#64748b")


def _forecast(org: Any, today: dt.date, fmt: Any) -> dict[str, Any]:
    """This and next fiscal quarter against the target, drawn and tabulated from the same figures.

    One definition each (``docs/metrics.md``, "Forecast vs target"): **closed** = new ARR of the renewals
    due in the quarter that are already closed; **commit, likely, upside, at risk, churn** = the
    *expected* ARR of the open renewals forecast in that category (Σ forecast ARR × probability);
    **expected** = closed + the five categories. Each bar stacks exactly those six figures, so its top is
    the expected ARR the table prints, and the dashed mark is the target the table prints."""
    quarters = []
    for q in analytics.forecast(org, today=today)["quarters"]:
        rows = {row["category"]: row for row in q["by_category"]}
        figures = [
            {
                "quarter": q["quarter"],
                "key": CLOSED_SERIES.key,
                "label": CLOSED_SERIES.label,
                "value": _dec(q["closed"]["new_arr"]),
                "count": q["closed"]["count"],
                "forecast": None,
            }
        ]
        for s_ in CATEGORY_SERIES:
            row = rows.get(s_.key, {})
            figures.append(
                {
                    "quarter": q["quarter"],
                    "key": s_.key,
                    "label": s_.label,
                    "value": _dec(row.get("expected_arr")),
                    "count": row.get("count", 0),
                    "forecast": _dec(row.get("forecast_arr")),
                }
            )
        quarters.append(
            {
                "key": q["quarter"],
                "label": f"{q['quarter']} ({q['start']:%b}–{q['end']:%b %Y})",
                "short_label": q["quarter"],
                "renewals": q["renewals"],
                "arr_due": _dec(q["arr_due"]),
                "open_forecast": _dec(q["open"]["forecast_arr"]),
                "open_count": q["open"]["count"],
                "figures": figures,
                "expected_arr": _dec(q["expected_arr"]),
                "expected_grr": _ratio(q["expected_grr"]),
                "expected_nrr": _ratio(q["expected_nrr"]),
                "target_arr": None if q["target_arr"] is None else _dec(q["target_arr"]),
                "target_grr": _ratio(q["target_grr"]),
                "gap": None if q["gap_to_target"] is None else _dec(q["gap_to_target"]),
            }
        )
    values = {(q["key"], f["key"]): f["value"] for q in quarters for f in q["figures"]}
    counts = {(q["key"], f["key"]): f["count"] for q in quarters for f in q["figures"]}
    markers = {q["key"]: q["target_arr"] for q in quarters if q["target_arr"] is not None}
    series = [CLOSED_SERIES, *CATEGORY_SERIES]
    chart = stacked_bars(
        [(q["key"], q["short_label"]) for q in quarters],
        series,
        values,
        counts=counts,
        markers=markers,
        fmt=fmt,
        y_label=f"Expected ARR ({org.currency})",
        x_label="Fiscal quarter (renewals due in it)",
        title="Expected ARR against target, this quarter and next",
        desc="; ".join(
            f"{q['label']}: expected {fmt(q['expected_arr'])} = "
            + " + ".join(f"{f['label'].lower()} {fmt(f['value'])}" for f in q["figures"])
            + (f"; target {fmt(q['target_arr'])}" if q["target_arr"] is not None else "; no target set")
            for q in quarters
        ),
    )
    accuracy = [
        {"quarter": row["quarter"], "csm": row["csm_call"], "final": row["final_call"]}
        for row in analytics.forecast_accuracy(org, quarters=4, today=today)["quarters"]
    ]
    rows = [
        {"series": s_, "cells": [q["figures"][i] for q in quarters]}
        for i, s_ in enumerate(series)
    ]  # fmt: skip
    return {"quarters": quarters, "chart": chart, "accuracy": accuracy, "series": series, "rows": rows}


def _retention(org: Any, start: dt.date, end: dt.date, fmt: Any) -> dict[str, Any]:
    figures = analytics.retention(org, start, end)
    r = {
        k: _dec(figures.get(k))
        for k in ("start_arr", "new", "reactivation", "expansion", "contraction", "churn", "end_arr")
    }
    r.update({k: _ratio(figures.get(k)) for k in ("grr", "nrr", "logo_retention")})
    r["accounts_start"] = figures.get("accounts_start") or 0
    r["accounts_retained"] = figures.get("accounts_retained") or 0
    steps = [
        ("Start", r["start_arr"], "total"),
        ("New", r["new"], "up"),
        ("Expansion", r["expansion"], "up"),
        ("Contraction", r["contraction"], "down"),
        ("Churn", r["churn"], "down"),
        ("End", r["end_arr"], "total"),
    ]
    r["chart"] = waterfall(
        steps,
        fmt=fmt,
        y_label="ARR",
        title=f"ARR bridge {start:%b %d, %Y} to {end:%b %d, %Y}",
        desc=", ".join(f"{label} {fmt(value)}" for label, value, _ in steps),
    )
    months = []
    for m in analytics.arr_bridge(org, start, end)["months"]:
        figures = {k: _dec(m.get(k)) for k in ("start_arr", "new", "expansion", "contraction", "churn", "end_arr")}
        months.append({"key": m["month"], "label": m["start"].strftime("%b %y"), **figures})
    values = {(m["key"], s.key): m[s.key] for m in months for s in (*BRIDGE_UP, *BRIDGE_DOWN)}
    r["months"] = months
    r["monthly_chart"] = (
        diverging_bars(
            [(m["key"], m["label"]) for m in months],
            BRIDGE_UP,
            BRIDGE_DOWN,
            values,
            fmt=fmt,
            y_label="ARR gained (above) and lost (below)",
            title="Monthly ARR bridge",
            desc="Per month, ARR gained (new, expansion) above the line and lost (contraction, churn) below.",
        )
        if months
        else None
    )
    return r


def _churn_reasons(org: Any, start: dt.date, end: dt.date, fmt: Any) -> dict[str, Any]:
    """Losses of the renewals due in the period, by reason (avoidable / unavoidable) and by segment."""
    data = analytics.churn_reasons(org, start, end, by="segment")
    reasons = [
        {"key": r["reason"], "label": r["label"], "avoidable": r["avoidable"], "count": r["count"],
         "churned": r["churned"], "contracted": r["contracted"], "lost_arr": _dec(r["lost_arr"])}
        for r in data["reasons"]
    ]  # fmt: skip
    reasons.sort(key=lambda r: -r["lost_arr"])
    rows = [
        (
            r["label"],
            {"avoidable" if r["avoidable"] is not False else "unavoidable": r["lost_arr"]},
            f"{r['count']} loss{'es' if r['count'] != 1 else ''}",
        )
        for r in reasons
    ]
    chart = (
        hbar_chart(
            rows,
            AVOIDABILITY_SERIES,
            fmt=fmt,
            title="Churn reasons by lost ARR",
            desc="; ".join(f"{label}: {fmt(sum(v.values()))}, {note}" for label, v, note in rows),
        )
        if rows
        else None
    )
    groups = []
    for g in data["groups"]:
        lost = {r["reason"]: _dec(r["lost_arr"]) for r in g["reasons"]}
        groups.append(
            {
                "label": g["key"] if g["key"] is not None else "No segment",
                "lost_arr": _dec(g["lost_arr"]),
                "count": g["count"],
                "avoidable": _dec(g["avoidable"]["lost_arr"]),
                "unavoidable": _dec(g["unavoidable"]["lost_arr"]),
                "cells": [lost.get(r["key"]) for r in reasons],
            }
        )
    group_chart = (
        hbar_chart(
            [
                (
                    g["label"],
                    {"avoidable": g["avoidable"], "unavoidable": g["unavoidable"]},
                    f"{g['count']} loss{'es' if g['count'] != 1 else ''}",
                )
                for g in groups
            ],
            AVOIDABILITY_SERIES,
            fmt=fmt,
            title="Lost ARR by segment",
            desc="; ".join(f"{g['label']}: {fmt(g['lost_arr'])}" for g in groups)
            + ". Segments may overlap, so an account can count in several.",
        )  # fmt: skip
        if groups
        else None
    )
    return {
        "reasons": reasons,
        "chart": chart,
        "count": data["count"],
        "lost_arr": _dec(data["lost_arr"]),
        "avoidable": _dec(data["avoidable"]["lost_arr"]),
        "unavoidable": _dec(data["unavoidable"]["lost_arr"]),
        "unclassified": _dec(data["unclassified"]["lost_arr"]),
        "groups": groups,
        "group_chart": group_chart,
    }


#: Quarters after joining shown on the Renewals page. Terms are mostly annual, so ARR barely moves
#: inside a year: the columns are the half-year and yearly marks, not every quarter.
COHORT_COLUMNS = (2, 4, 6, 8, 12)


def _cohorts(org: Any, today: dt.date) -> dict[str, Any]:
    """Customer-since quarter cohorts × quarters since: net ARR retained, as a heat map."""
    table = analytics.cohort_table(org, periods=max(COHORT_COLUMNS), today=today)
    rows = []
    for cohort in table["cohorts"]:
        cells = []
        for k in COHORT_COLUMNS:
            period = cohort["periods"][k] if k < len(cohort["periods"]) else None
            ratio = _ratio(period["arr_pct"]) if period else None
            cells.append(
                {
                    "ratio": ratio,
                    "logo": _ratio(period["logo_pct"]) if period else None,
                    "accounts": period["accounts"] if period else None,
                    "heat": heat_class(ratio),
                }
            )
        rows.append(
            {"cohort": cohort["cohort"], "accounts": cohort["accounts"], "start_arr": _dec(cohort["start_arr"]),
             "cells": cells}
        )  # fmt: skip
    labels = {2: "6 months", 4: "1 year", 6: "18 months", 8: "2 years", 12: "3 years"}
    return {"columns": [labels.get(k, f"Q+{k}") for k in COHORT_COLUMNS], "rows": rows}


#: ``?ordering=`` of the upcoming renewals: public key → model fields (``None``: sorted in Python).
UPCOMING_ORDERINGS: dict[str, tuple[Any, ...] | None] = {
    "account": ("account__name",),
    "due": ("due_date",),
    "arr": ("current_arr",),
    "forecast": ("forecast_arr",),
    "category": (
        Case(*[When(forecast_category=s.key, then=Value(i)) for i, s in enumerate(CATEGORY_SERIES)], default=Value(99)),
    ),  # fmt: skip
    "probability": ("probability",),
    "health": ("account__health__score",),
    "trend": ("account__health__delta_7",),
    "dragging": None,  # the component dragging the score down: from the newest snapshot, sorted in Python
    "stage": (
        Case(*[When(stage=v, then=Value(i)) for i, (v, _l) in enumerate(RenewalStage.choices)], default=Value(99)),
    ),
    "owner": ("owner__first_name", "owner__last_name", "owner__email"),
}
DEFAULT_UPCOMING_ORDERING = "due"
#: Forecasts that disagree with health: a red account called commit/likely, a green one called churn.
CONFLICTS = Q(
    account__health__color="red", forecast_category__in=[ForecastCategory.COMMIT, ForecastCategory.LIKELY]
) | Q(account__health__color="green", forecast_category=ForecastCategory.CHURN)


def _health_of(renewal: Renewal) -> Any:
    try:
        return renewal.account.health
    except ObjectDoesNotExist:  # never scored
        return None


def _upcoming(queryset: Any, org: Any, ordering: str, page: int) -> tuple[str, list[Renewal]]:
    """Page ``page`` (:data:`PAGE_SIZE` rows) of ``queryset`` in ``ordering`` (any column of the table),
    each renewal with its account's health and the component dragging it down. Two queries (sorting by
    the dragging component, which is not a column, reads it for every renewal of the filters: three)."""
    key = ordering.lstrip("-")
    if key not in UPCOMING_ORDERINGS:
        ordering, key = DEFAULT_UPCOMING_ORDERING, DEFAULT_UPCOMING_ORDERING
    descending = ordering.startswith("-")
    start = (page - 1) * PAGE_SIZE
    rows = queryset.select_related("account", "owner", "account__health")
    fields = UPCOMING_ORDERINGS[key]
    if fields is None:
        pairs = list(queryset.order_by("due_date", "id").values_list("id", "account_id"))
        dragging = dragging_by_account(org.pk, {a for _, a in pairs})
        named = [p for p in pairs if p[1] in dragging]
        named.sort(key=lambda p: (dragging[p[1]]["name"].lower(), -dragging[p[1]]["lost_points"]), reverse=descending)
        ids = [p[0] for p in named + [p for p in pairs if p[1] not in dragging]][start : start + PAGE_SIZE]
        by_id = rows.in_bulk(ids)
        upcoming = [by_id[i] for i in ids if i in by_id]
    else:
        order_by = [
            (F(f) if isinstance(f, str) else f).desc(nulls_last=True)
            if descending
            else (F(f) if isinstance(f, str) else f).asc(nulls_last=True)
            for f in fields
        ]
        upcoming = list(rows.order_by(*order_by, "due_date", "id")[start : start + PAGE_SIZE])
        dragging = dragging_by_account(org.pk, {r.account_id for r in upcoming})
    for r in upcoming:
        r.health = _health_of(r)
        r.dragging = dragging.get(r.account_id)
    return ordering, upcoming


def _pager(number: int, count: int, size: int, param: str) -> dict[str, Any]:
    """What a template needs for a simple previous/next pager over ``count`` rows."""
    pages = max(1, -(-count // size))
    first = (number - 1) * size + 1 if count else 0
    return {"number": number, "pages": pages, "param": param, "first": first, "last": min(number * size, count),
            "count": count, "previous": number - 1 if number > 1 else None,
            "next": number + 1 if number < pages else None}  # fmt: skip


def _page_number(value: str | None, count: int, size: int) -> int:
    pages = max(1, -(-count // size))
    return min(int(value), pages) if value and value.isdigit() and int(value) > 0 else 1


@org_page()
@require_GET
def renewals_page(request: HttpRequest) -> HttpResponse:
    """Upcoming renewals first (health beside each forecast, sortable by every column), the forecasts that
    disagree with health, then the pipeline by month and category, forecast vs target, retention and
    bridge, churn reasons and customer-since cohorts. Every role may read it."""
    org = request.organization
    currency = org.currency
    fmt = lambda v: money_short(Decimal(str(v)), currency)  # noqa: E731
    today = timezone.localdate()
    window = _int_choice(request.GET.get("window"), WINDOWS, DEFAULT_WINDOW)
    period_end = _parse_date(request.GET.get("to")) or today
    months_param = request.GET.get("period", "")
    period_start = _parse_date(request.GET.get("from"))
    if period_start is None or period_start >= period_end:
        months = int(months_param) if months_param in dict(PERIODS) else DEFAULT_PERIOD_MONTHS
        period_start = _months_back(period_end, months)
        months_param = str(months)
    else:
        months_param = ""

    open_renewals = Renewal.objects.filter(outcome="", due_date__lte=today + dt.timedelta(days=window))
    all_open = Renewal.objects.filter(outcome="")
    category = request.GET.get("category", "")
    stage = request.GET.get("stage", "")
    owner = request.GET.get("owner", "")
    if category in ForecastCategory.values:
        open_renewals = open_renewals.filter(forecast_category=category)
    if stage in RenewalStage.values:
        open_renewals = open_renewals.filter(stage=stage)
    if owner == "me":
        open_renewals = open_renewals.filter(owner=request.user)
        all_open = all_open.filter(owner=request.user)
    elif owner.isdigit():
        open_renewals = open_renewals.filter(owner_id=int(owner))
        all_open = all_open.filter(owner_id=int(owner))
    pipeline = _pipeline(open_renewals, today, fmt)
    count = pipeline["totals"]["n"]
    page = _page_number(request.GET.get("page"), count, PAGE_SIZE)
    ordering, upcoming = _upcoming(open_renewals, org, request.GET.get("ordering", DEFAULT_UPCOMING_ORDERING), page)
    conflicting = all_open.filter(CONFLICTS)
    conflict_count = conflicting.count()
    conflict_page = _page_number(request.GET.get("cpage"), conflict_count, CONFLICT_PAGE_SIZE)
    offset = (conflict_page - 1) * CONFLICT_PAGE_SIZE
    conflicts = list(
        conflicting.select_related("account", "owner", "account__health").order_by("due_date", "id")[
            offset : offset + CONFLICT_PAGE_SIZE
        ]
    )
    for r in conflicts:
        r.health = _health_of(r)

    context = {
        "today": today,
        "window": window,
        "windows": WINDOWS,
        "periods": PERIODS,
        "period": months_param,
        "period_start": period_start,
        "period_end": period_end,
        "filters": {"category": category, "stage": stage, "owner": owner},
        "categories": CATEGORY_SERIES,
        "stages": RenewalStage.choices[:3],
        "owners": Membership.objects.select_related("user").exclude(role=Role.VIEWER),
        "pipeline": pipeline,
        "upcoming": upcoming,
        "ordering": ordering,
        "page": _pager(page, count, PAGE_SIZE, "page"),
        "conflicts": conflicts,
        "conflict_count": conflict_count,
        "conflict_page": _pager(conflict_page, conflict_count, CONFLICT_PAGE_SIZE, "cpage"),
        "forecast": _forecast(org, today, fmt),
        "retention": _retention(org, period_start, period_end, fmt),
        "churn": _churn_reasons(org, period_start, period_end, fmt),
        "cohorts": _cohorts(org, today),
    }
    return render(request, "renewals/renewals.html", context)


# --- Renewal detail --------------------------------------------------------------------------------


def _get_renewal(renewal_id: int) -> Renewal:
    # ``Renewal.objects`` is narrowed to the page's organization by org_page: another org's id is a 404.
    return get_object_or_404(
        Renewal.objects.select_related(
            "account",
            "account__owner",
            "account__health",
            "contract",
            "owner",
            "churn_reason",
            "successor_contract",
            "closed_by",
        ),
        pk=renewal_id,
    )


def _lines(contract: Any) -> list[ContractLine]:
    if contract is None:
        return []
    return list(ContractLine.objects.filter(contract=contract).select_related("product").order_by("id"))


def _detail_context(
    request: HttpRequest,
    renewal: Renewal,
    *,
    forecast_form: ForecastForm | None = None,
    outcome_form: OutcomeForm | None = None,
    line_formset: Any = None,
    add_form: AddLineForm | None = None,
) -> dict[str, Any]:
    actor = request.actor
    can_edit = can_edit_renewal(actor, renewal) and renewal.is_open
    final_call = can_make_final_call(actor, renewal)
    lines = _lines(renewal.contract)
    products = {line.product_id: line.product for line in lines}
    context: dict[str, Any] = {
        "renewal": renewal,
        "account": renewal.account,
        "lines": lines,
        "lines_arr": sum((line.arr for line in lines), ZERO),
        "can_edit": can_edit,
        "can_final_call": final_call,
        "days_to_go": (renewal.due_date - timezone.localdate()).days,
        "loss_outcomes": [o.value for o in LOSS_OUTCOMES],
    }
    if can_edit:
        context["forecast_form"] = forecast_form or ForecastForm(
            instance=renewal, can_final_call=final_call, org=request.organization
        )
        context["outcome_form"] = outcome_form or OutcomeForm(renewal=renewal)
        context["add_form"] = add_form or AddLineForm(prefix="add", renewal=renewal)
        formset = line_formset or SuccessorLineFormSet(initial=line_initial(lines), prefix="lines")
        context["line_rows"] = [(form, products.get(_form_product_id(form))) for form in formset.forms]
        context["line_formset"] = formset
    context["history"] = _history(
        RenewalForecastChange.objects.filter(renewal=renewal)
        .select_related("changed_by")
        .order_by("-changed_at", "-id")[:HISTORY_LIMIT],
        request.organization.currency,
    )
    if renewal.is_open:
        from health.views import health_summary  # the health app's pages import renewals for Account 360

        context.update(health_summary(request, renewal.account))
        # The score's 7-day change as every list shows it (HealthScore.delta_7, read with the renewal).
        context["health_delta_7"] = getattr(_health_of(renewal), "delta_7", None)
    if not renewal.is_open:
        changes = list(
            RenewalLineChange.objects.filter(renewal=renewal).select_related("product").order_by("-old_arr", "product")
        )
        context["line_changes"] = changes
        context["successor_lines"] = _lines(renewal.successor_contract)
        context["arr_change"] = (renewal.new_arr or ZERO) - renewal.current_arr
    return context


#: How the forecast history names each audited field, and how it shows their values.
HISTORY_FIELDS: dict[str, tuple[str, str]] = {
    "forecast_category": ("Forecast category", "category"),
    "forecast_arr": ("Forecast ARR", "money"),
    "probability": ("Probability", "percent"),
    "stage": ("Stage", "stage"),
    "csm_call": ("CSM call", "category"),
    "csm_call_arr": ("CSM call ARR", "money"),
    "final_call": ("Final call", "category"),
    "final_call_arr": ("Final call ARR", "money"),
    "owner": ("Owner", "text"),
    "notes": ("Notes", "text"),
    "outcome": ("Outcome", "outcome"),
}


def _display_value(value: str, kind: str, currency: str) -> str:
    """A stored audit value ("2842215.00", "at_risk") as the page says it ("$2,842,215", "At risk")."""
    from accounts.templatetags.retain_ui import money

    if value in (None, ""):
        return "—"
    try:
        if kind == "money":
            return money(Decimal(value), currency)
        if kind == "percent":
            return f"{Decimal(value).normalize():f}%"
    except ArithmeticError:
        return value
    labels = {
        "category": dict(ForecastCategory.choices),
        "stage": dict(RenewalStage.choices),
        "outcome": dict(RenewalOutcome.choices),
    }.get(kind, {})
    return str(labels.get(value, value))


def _history(changes: Any, currency: str) -> list[RenewalForecastChange]:
    """Forecast changes with their field's name and both values in words (labels, money, percent)."""
    rows = list(changes)
    for change in rows:
        label, kind = HISTORY_FIELDS.get(change.field, (change.field.replace("_", " ").capitalize(), "text"))
        change.label = label
        change.old_display = _display_value(change.old_value, kind, currency)
        change.new_display = _display_value(change.new_value, kind, currency)
    return rows


def _form_product_id(form: Any) -> int | None:
    value = form.data.get(form.add_prefix("product_id")) if form.is_bound else form.initial.get("product_id")
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@org_page()
@require_GET
def renewal_detail(request: HttpRequest, renewal_id: int) -> HttpResponse:
    """One renewal: account, contract and lines, forecast, and (for who may) the forecast and outcome forms."""
    renewal = _get_renewal(renewal_id)
    return render(request, "renewals/renewal_detail.html", _detail_context(request, renewal))


def _editable(request: HttpRequest, renewal_id: int) -> Renewal:
    renewal = _get_renewal(renewal_id)
    if not can_edit_renewal(request.actor, renewal):
        raise PermissionDenied("Only the account's CSM, their team lead or an admin can change this renewal.")
    return renewal


@org_page()
@require_POST
def renewal_forecast(request: HttpRequest, renewal_id: int) -> HttpResponse:
    """Save the forecast (category, ARR, probability, stage, CSM call; final call and owner for leaders)."""
    renewal = _editable(request, renewal_id)
    if not renewal.is_open:
        raise PermissionDenied("This renewal is closed; its forecast is history.")
    form = ForecastForm(
        request.POST,
        instance=renewal,
        can_final_call=can_make_final_call(request.actor, renewal),
        org=request.organization,
    )
    if form.is_valid():
        changes = form.changes()
        try:
            with transaction.atomic():
                # The form wrote its values on ``renewal``; the service reads the row again, under lock.
                written = services.update_forecast(renewal, by=request.actor, **changes)
        except ValidationError as error:
            _add_service_errors(form, error)
        else:
            messages.success(request, "Forecast saved." if written else "Nothing changed.")
            return redirect(reverse("renewal-detail", args=[request.organization.slug, renewal.pk]))
    renewal = _get_renewal(renewal_id)
    context = _detail_context(request, renewal, forecast_form=form)
    return render(request, "renewals/renewal_detail.html", context, status=400)


def _add_service_errors(form: Any, error: ValidationError, line_forms: list[Any] | None = None) -> None:
    """A service's ValidationError, shown on the matching fields: ``lines.<i>.<field>`` on that line of
    the successor (``line_forms[i]``), a field of ``form`` on it, anything else above the form."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for key, errors in error.error_dict.items():
        parts = key.split(".")
        if parts[0] == "lines" and len(parts) == 3 and parts[1].isdigit() and line_forms is not None:
            index, name = int(parts[1]), parts[2]
            if index < len(line_forms):
                target = line_forms[index]
                target.add_error(name if name in target.fields else None, errors)
                continue
        form.add_error(key if key in form.fields else None, errors)


@org_page()
@require_POST
def renewal_close(request: HttpRequest, renewal_id: int) -> HttpResponse:
    """Close the renewal with its outcome, the successor lines and (for a loss) the churn reason."""
    renewal = _editable(request, renewal_id)
    if not renewal.is_open:
        messages.error(request, "This renewal is already closed.")
        return redirect(reverse("renewal-detail", args=[request.organization.slug, renewal.pk]))
    form = OutcomeForm(request.POST, renewal=renewal)
    formset = SuccessorLineFormSet(request.POST, prefix="lines")
    add_form = AddLineForm(request.POST, prefix="add", renewal=renewal)
    valid = all([form.is_valid(), formset.is_valid(), add_form.is_valid()])  # every form validated: all errors
    outcome = form.cleaned_data.get("outcome") if valid else None
    own_products = set(ContractLine.objects.filter(contract=renewal.contract).values_list("product_id", flat=True))
    kept_forms = [f for f in formset.forms if f.cleaned_data.get("keep")] if valid else []
    line_forms = [*kept_forms, *([add_form] if valid and add_form.cleaned_data.get("product") else [])]
    if valid and outcome != RenewalOutcome.CHURNED:
        if any(f.cleaned_data["product_id"] not in own_products for f in kept_forms):
            form.add_error(None, "A line names a product that is not on this contract.")
            valid = False
        elif not line_forms:
            form.add_error("outcome", "Keep at least one product, or record the renewal as churned.")
            valid = False
    if valid:
        data = form.cleaned_data
        kwargs: dict[str, Any] = {
            "outcome": outcome,
            "churn_reason": data["churn_reason"] if outcome in LOSS_OUTCOMES else None,
            "churn_notes": data.get("churn_notes") or "",
            "closed_on": data.get("closed_on"),
            "by": request.actor,
        }
        if outcome != RenewalOutcome.CHURNED:  # a churned renewal has no successor: no lines, no dates
            products = Product.objects.in_bulk(own_products)
            lines = [
                {
                    "product": products.get(f.cleaned_data["product_id"])
                    if f is not add_form
                    else f.cleaned_data["product"],
                    "quantity": f.cleaned_data["quantity"],
                    "annual_unit_price": f.cleaned_data["annual_unit_price"],
                    "discount": (f.cleaned_data["discount"] / 100).quantize(Decimal("0.0001")),
                }
                for f in line_forms
            ]
            kwargs.update(lines=lines, start_date=data.get("start_date"), end_date=data.get("end_date"))
        try:
            with transaction.atomic():
                services.close_renewal(renewal, **kwargs)
        except ValidationError as error:
            _add_service_errors(form, error, line_forms)
        else:
            messages.success(request, f"Renewal closed as {RenewalOutcome(outcome).label.lower()}.")
            return redirect(reverse("renewal-detail", args=[request.organization.slug, renewal.pk]) + "#outcome")
    renewal = _get_renewal(renewal_id)
    context = _detail_context(request, renewal, outcome_form=form, line_formset=formset, add_form=add_form)
    return render(request, "renewals/renewal_detail.html", context, status=400)


def account_renewals(account: Any) -> dict[str, Any]:
    """Account 360's renewals block: the open renewal and past outcomes (one query)."""
    rows = list(
        Renewal.objects.filter(account=account).select_related("churn_reason").order_by("-due_date", "-id")[:12]
    )
    open_renewals = [r for r in rows if r.is_open]
    return {
        "open_renewal": min(open_renewals, key=lambda r: r.due_date) if open_renewals else None,
        "past_renewals": [r for r in rows if not r.is_open],
    }


__all__ = [
    "account_renewals",
    "can_edit_renewal",
    "can_make_final_call",
    "renewal_close",
    "renewal_detail",
    "renewal_forecast",
    "renewals_page",
]


class MyRenewals:
    """My book's panel: the open renewals of the member's accounts due in the next 90 days, soonest first.
    Lazy: one query, only when the page shows the panel (on the member's own book)."""

    WINDOW_DAYS = 90
    LIMIT = 10

    def __init__(self, request: HttpRequest) -> None:
        self.user = request.user
        self.today = timezone.localdate()

    @cached_property
    def rows(self) -> list[Renewal]:
        end = self.today + dt.timedelta(days=self.WINDOW_DAYS)
        return list(
            Renewal.objects.filter(account__owner=self.user, outcome="", due_date__range=(self.today, end))
            .select_related("account")
            .order_by("due_date", "pk")
        )

    @property
    def shown(self) -> list[Renewal]:
        return self.rows[: self.LIMIT]

    @property
    def total_arr(self) -> Any:
        return sum((r.current_arr for r in self.rows), Decimal("0"))
