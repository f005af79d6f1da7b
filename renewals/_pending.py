"""TEMPORARY stand-ins for ``renewals.services`` and ``renewals.analytics`` (other branches), with the
same signatures, so the screens can be built and tested before those land. Deleted on merge."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Sum

from accounts.models import Account, Contract, ContractLine
from accounts.services import arr_at, refresh_current_arr

from .models import LineChangeKind, Renewal, RenewalLineChange, RenewalTarget

ZERO = Decimal("0")


def update_forecast(renewal: Renewal, *, by, **fields) -> Renewal:
    for name, value in fields.items():
        setattr(renewal, name, value)
    renewal.save()
    return renewal


@transaction.atomic
def close_renewal(
    renewal, *, outcome, lines=None, start_date=None, end_date=None, churn_reason=None, churn_notes="",
    closed_on=None, by,
):  # fmt: skip
    if outcome in ("contracted", "churned") and churn_reason is None:
        raise ValidationError({"churn_reason": "A churn reason is required for a loss."})
    old = {line.product_id: line for line in renewal.contract.lines.all()}
    lines = [] if outcome == "churned" else (lines or [])
    successor = None
    if lines:
        start = start_date or renewal.due_date + dt.timedelta(days=1)
        successor = Contract.objects.create(
            organization=renewal.organization, account=renewal.account, number=f"{renewal.contract.number}-R",
            start_date=start, end_date=end_date or start.replace(year=start.year + 1) - dt.timedelta(days=1),
        )  # fmt: skip
        for line in lines:
            ContractLine.objects.create(organization=renewal.organization, contract=successor, **line)
    new = {line.product_id: line for line in (successor.lines.all() if successor else [])}
    for product_id in set(old) | set(new):
        o, n = old.get(product_id), new.get(product_id)
        RenewalLineChange.objects.create(
            organization=renewal.organization, renewal=renewal, product_id=product_id,
            kind=(LineChangeKind.DROPPED if n is None else LineChangeKind.ADDED if o is None
                  else LineChangeKind.UNCHANGED),
            old_quantity=o.quantity if o else ZERO, new_quantity=n.quantity if n else ZERO,
            old_arr=o.arr if o else ZERO, new_arr=n.arr if n else ZERO,
            delta=(n.arr if n else ZERO) - (o.arr if o else ZERO),
        )  # fmt: skip
    renewal.outcome = outcome
    renewal.successor_contract = successor
    renewal.new_arr = sum((line.arr for line in new.values()), ZERO)
    renewal.churn_reason = churn_reason
    renewal.avoidable = churn_reason.avoidable if churn_reason else None
    renewal.churn_notes = churn_notes
    renewal.closed_on = closed_on or dt.date.today()
    renewal.closed_by = by
    renewal.stage = "lost" if outcome == "churned" else "won"
    renewal.save()
    refresh_current_arr(renewal.organization, account_ids=[renewal.account_id])
    return renewal


def retention(org, start, end, *, group_by=None, level="account") -> dict:
    a0, a1 = arr_at(org, start), arr_at(org, end)
    cohort = {a: v for a, v in a0.items() if v > 0}
    churn = sum((v for a, v in cohort.items() if a1.get(a, ZERO) <= 0), ZERO)
    contraction = sum((v - a1[a] for a, v in cohort.items() if ZERO < a1.get(a, ZERO) < v), ZERO)
    expansion = sum((a1[a] - v for a, v in cohort.items() if a1.get(a, ZERO) > v), ZERO)
    new = sum((v for a, v in a1.items() if a not in cohort and v > 0), ZERO)
    start_arr = sum(cohort.values(), ZERO)
    retained = sum(1 for a in cohort if a1.get(a, ZERO) > 0)
    ratio = (lambda x: round(x / start_arr, 4)) if start_arr else (lambda x: None)
    return {
        "start_arr": start_arr, "new": new, "reactivation": ZERO, "expansion": expansion,
        "contraction": contraction, "churn": churn, "end_arr": sum(a1.values(), ZERO),
        "grr": ratio(start_arr - churn - contraction), "nrr": ratio(start_arr - churn - contraction + expansion),
        "logo_retention": round(Decimal(retained) / len(cohort), 4) if cohort else None,
        "accounts_start": len(cohort), "accounts_retained": retained, "groups": [],
    }  # fmt: skip


def _month_starts(start, end):
    d = start.replace(day=1)
    while d <= end:
        yield d
        d = (d + dt.timedelta(days=32)).replace(day=1)


def arr_bridge(org, start, end) -> list[dict]:
    months = []
    for m in _month_starts(start, end):
        m_end = min((m + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1), end)
        r = retention(org, max(m, start) - dt.timedelta(days=1), m_end)
        months.append(
            {"month": m, **{k: r[k] for k in ("start_arr", "new", "expansion", "contraction", "churn", "end_arr")}}
        )
    return months


def churn_reasons(org, start, end, *, by="segment") -> dict:
    rows = (
        Renewal.objects.for_org(org)
        .filter(outcome__in=["churned", "contracted"], closed_on__range=(start, end))
        .values("churn_reason__label", "avoidable", "account__touch_model")
        .annotate(n=Count("id"), lost=Sum("current_arr") - Sum("new_arr", default=ZERO))
    )
    reasons: dict = {}
    groups: dict = defaultdict(lambda: defaultdict(lambda: ZERO))
    for r in rows:
        key = r["churn_reason__label"] or "Unspecified"
        item = reasons.setdefault(key, {"reason": key, "avoidable": r["avoidable"], "lost_arr": ZERO, "count": 0})
        item["lost_arr"] += r["lost"] or ZERO
        item["count"] += r["n"]
        groups[r["account__touch_model"]][key] += r["lost"] or ZERO
    return {"reasons": sorted(reasons.values(), key=lambda i: -i["lost_arr"]), "groups": groups}


def cohort_table(org, *, today=None) -> list[dict]:
    today = today or dt.date.today()
    years = list(range(today.year - 3, today.year + 1))
    ends = {y: min(dt.date(y, 12, 31), today) for y in years}
    arrs = {y: arr_at(org, d) for y, d in ends.items()}
    since = dict(Account.objects.for_org(org).exclude(customer_since=None).values_list("id", "customer_since__year"))
    rows = []
    for cy in years:
        members = [a for a, y in since.items() if y == cy]
        base = sum((arrs[cy].get(a, ZERO) for a in members), ZERO)
        cells = [
            (round(sum((arrs[y].get(a, ZERO) for a in members), ZERO) / base, 4) if base and y >= cy else None)
            for y in years
        ]
        rows.append({"cohort": str(cy), "accounts": len(members), "start_arr": base, "cells": cells})
    return {"columns": [str(y) for y in years], "rows": rows}


def forecast(org, *, today=None) -> list[dict]:
    today = today or dt.date.today()
    q0 = dt.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    out = []
    for i in range(2):
        qs = (q0 + dt.timedelta(days=95 * i)).replace(day=1)
        qe = (qs + dt.timedelta(days=95)).replace(day=1) - dt.timedelta(days=1)
        rows = (
            Renewal.objects.for_org(org)
            .filter(due_date__range=(qs, qe))
            .values("forecast_category")
            .annotate(due=Sum("current_arr"), fc=Sum("forecast_arr"))
        )
        by = {r["forecast_category"]: r["fc"] for r in rows}
        due = sum((r["due"] for r in rows), ZERO)
        fc = sum(by.values(), ZERO)
        target = RenewalTarget.objects.for_org(org).filter(quarter_start=qs).first()
        out.append({"quarter_start": qs, "quarter_end": qe, "arr_due": due, "by_category": by,
                    "forecast_arr": fc, "expected_grr": None, "expected_nrr": (round(fc / due, 4) if due else None),
                    "target_arr": target.target_arr if target else None})  # fmt: skip
    return out
