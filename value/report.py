"""The QBR / EBR value report of one account over a review period (issue 15, item 3).

:func:`build_report` assembles, in a fixed number of queries whatever the account's history, a plain
JSON-ready ``dict`` (dates as ISO strings, figures as numbers) — the shape of
``GET /api/v1/business-reviews/{id}/report/``, of the page and of the PDF, and what a closed review
freezes in ``BusinessReview.snapshot``. Sections, with their exact definitions:

``objectives``
    the success plan's objectives (title, the customer's measure, baseline, target, ``current`` reading
    and its date, progress %, status). Baseline/target/current are the customer's own words (text).
``usage``
    per calendar month overlapping the period: ``active_users`` = the peak daily ``active_users`` of
    the month (daily distinct counts cannot be summed; the same rule as health's adoption signal),
    ``events`` = Σ daily ``events``. ``seats`` = Σ ``seats`` of the contracts running on the period's
    last day (cancelled ones excluded); ``utilisation`` = peak daily active users of the period ÷ seats,
    in %, one place; ``key_features``: per key feature, the peak daily ``feature_users:<event>``.
``health``
    the explanation of :func:`health.explain.explain` when the report is built (score, colour, components,
    the component dragging the score) and ``trend``: the last snapshot score of each month of the period.
``support``
    tickets ``opened`` in the period, ``resolved`` in the period, ``p1`` opened in the period, and
    ``open_now``: tickets not solved or closed when the report is built.
``nps``
    :func:`feedback.analytics.nps_figures` of the account's ``nps`` responses in the period (org time zone).
``renewal``
    the open renewal due first (due date, forecast category, forecast ARR, probability, stage), else the
    account's next renewal date alone.
``previous``
    the last closed review before this one and the outcomes of the objectives it set (as they stand now).
``benchmark``
    the account against the **median of its peers**: the other live (not churned) accounts of its first
    segment (segment order), or of its touch model when it is in no segment. Measures: health score (now),
    events per seat over the period, NPS over the period, tickets opened per 100 seats over the period.
    No other customer is ever named: only the median and the count. The whole benchmark is hidden with
    fewer than :data:`MIN_PEERS` peers, and one measure's median is ``None`` when fewer than
    :data:`MIN_PEERS` peers have a value for it.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone

from accounts.models import Account, Contract, Objective, Organization, SegmentMembership
from feedback.analytics import nps_figures, period_bounds
from feedback.models import SurveyKind, SurveyResponse
from health.explain import explain
from health.models import HealthScore, HealthSnapshot, KeyFeature, Ticket, TicketPriority, TicketStatus, UsageMetric
from renewals.models import Renewal

from .choices import ReviewStatus
from .models import BusinessReview

__all__ = ["MIN_PEERS", "REPORT_VERSION", "build_report", "live_report", "review_report"]

#: Fewer peers than this and the benchmark is hidden (a median of 2 or 3 customers would nearly name them).
MIN_PEERS = 5
REPORT_VERSION = 1
ONE = Decimal("0.1")


def _round(value: Decimal | float | int | None, places: Decimal = ONE) -> float | None:
    """Half-up rounding to one place (0.05 → 0.1), ``None`` stays ``None``."""
    if value is None:
        return None
    return float(Decimal(str(value)).quantize(places, rounding=ROUND_HALF_UP))


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _months(start: dt.date, end: dt.date) -> list[dt.date]:
    """First days of the calendar months overlapping ``[start, end]``."""
    months, cursor = [], start.replace(day=1)
    while cursor <= end:
        months.append(cursor)
        if cursor.year == dt.MAXYEAR and cursor.month == 12:
            break  # the calendar's last month: no next one to step to
        cursor = (cursor + dt.timedelta(days=32)).replace(day=1)
    return months


def _month_key(day: dt.date) -> str:
    return day.strftime("%Y-%m")


def _seats(org_id: int, account_ids: list[int], on: dt.date) -> dict[int, int]:
    """Σ seats of the contracts running on ``on`` (cancelled excluded), per account."""
    rows = (
        Contract.all_orgs.filter(
            organization_id=org_id, account_id__in=account_ids, start_date__lte=on, end_date__gte=on
        )
        .exclude(status="cancelled")
        .order_by()
        .values("account_id")
        .annotate(seats=Sum("seats"))
        .values_list("account_id", "seats")
    )
    return {account_id: int(seats or 0) for account_id, seats in rows}


def _objective_row(objective: Objective) -> dict[str, Any]:
    return {
        "id": objective.pk,
        "title": objective.title,
        "measure": objective.customer_measure,
        "baseline": objective.baseline,
        "target": objective.target,
        "current": objective.current,
        "measured_on": _iso(objective.measured_on),
        "progress": objective.progress,
        "status": objective.status,
        "status_label": objective.get_status_display(),
        "due_date": _iso(objective.due_date),
    }


def _objectives(org_id: int, account: Account) -> list[dict[str, Any]]:
    rows = Objective.all_orgs.filter(organization_id=org_id, plan__account_id=account.pk).order_by("due_date", "pk")
    return [_objective_row(o) for o in rows]


def _usage(org_id: int, account: Account, start: dt.date, end: dt.date, seats: int) -> dict[str, Any]:
    features = {f.event_name: f.label for f in KeyFeature.all_orgs.filter(organization_id=org_id)}
    feature_metrics = [f"feature_users:{name}" for name in features]
    rows = (
        UsageMetric.all_orgs.filter(
            organization_id=org_id,
            account_id=account.pk,
            date__gte=start,
            date__lte=end,
            metric__in=["active_users", "events", *feature_metrics],
        )
        .order_by()
        .values_list("date", "metric", "value")
    )
    months = {
        _month_key(m): {"month": _month_key(m), "active_users": None, "events": None} for m in _months(start, end)
    }
    peak_users: Decimal | None = None
    feature_peak: dict[str, Decimal] = {}
    for day, metric, value in rows:
        month = months[_month_key(day)]
        if metric == "active_users":
            month["active_users"] = max(month["active_users"] or Decimal(0), value)
            peak_users = value if peak_users is None else max(peak_users, value)
        elif metric == "events":
            month["events"] = (month["events"] or Decimal(0)) + value
        else:
            name = metric.split(":", 1)[1]
            feature_peak[name] = max(feature_peak.get(name, Decimal(0)), value)
    trend = [
        {
            "month": m["month"],
            "active_users": None if m["active_users"] is None else int(m["active_users"]),
            "events": None if m["events"] is None else int(m["events"]),
        }
        for m in months.values()
    ]
    return {
        "months": trend,
        "seats": seats,
        "peak_active_users": None if peak_users is None else int(peak_users),
        "utilisation": _round(peak_users * 100 / seats) if peak_users is not None and seats else None,
        "events": sum((m["events"] or 0) for m in trend) if any(m["events"] is not None for m in trend) else None,
        "key_features": [
            {"label": label, "event": name, "peak_users": int(feature_peak[name]) if name in feature_peak else None}
            for name, label in sorted(features.items(), key=lambda item: (item[1], item[0]))
        ],
    }


def _health(org_id: int, account: Account, start: dt.date, end: dt.date, today: dt.date) -> dict[str, Any]:
    # The score and its explanation as they stand when the report is built (what the review discusses);
    # the period's own course is the monthly trend below.
    as_of = today
    explained = explain(account, today=as_of)
    snapshots = (
        HealthSnapshot.all_orgs.filter(organization_id=org_id, account_id=account.pk, date__gte=start, date__lte=end)
        .order_by("date")
        .values_list("date", "score", "color")
    )
    last: dict[str, tuple[Any, Any]] = {}
    for day, score, color in snapshots:
        last[_month_key(day)] = (score, color)  # ordered by date: the month's last snapshot wins
    trend = [
        {
            "month": _month_key(m),
            "score": _round(last[_month_key(m)][0]) if _month_key(m) in last else None,
            "color": last[_month_key(m)][1] if _month_key(m) in last else "",
        }
        for m in _months(start, end)
    ]
    dragging = explained.get("dragging")
    return {
        "as_of": _iso(as_of),
        "score": _round(explained.get("score")),
        "color": explained.get("color") or "",
        "components": [
            {"name": c["name"], "score": _round(c["score"]), "weight": _round((c["weight"] or 0) * 100)}
            for c in explained.get("components", [])
        ],
        "dragging": (
            {"name": dragging["name"], "score": _round(dragging["score"]), "lost_points": dragging["lost_points"]}
            if dragging
            else None
        ),
        "trend": trend,
    }


def _support(org_id: int, account: Account, since: dt.datetime, until: dt.datetime) -> dict[str, Any]:
    counts = Ticket.all_orgs.filter(organization_id=org_id, account_id=account.pk).aggregate(
        opened=Count("pk", filter=Q(opened_at__gte=since, opened_at__lte=until)),
        resolved=Count("pk", filter=Q(resolved_at__gte=since, resolved_at__lte=until)),
        p1=Count("pk", filter=Q(opened_at__gte=since, opened_at__lte=until, priority=TicketPriority.P1)),
        open_now=Count("pk", filter=Q(status__in=[TicketStatus.OPEN, TicketStatus.PENDING])),
    )
    return {key: int(value) for key, value in counts.items()}


def _nps(org_id: int, account: Account, since: dt.datetime, until: dt.datetime) -> dict[str, Any]:
    scores = list(
        SurveyResponse.all_orgs.filter(
            organization_id=org_id,
            account_id=account.pk,
            kind=SurveyKind.NPS,
            responded_at__gte=since,
            responded_at__lte=until,
        ).values_list("score", flat=True)
    )
    return nps_figures(scores)


def _renewal(org_id: int, account: Account) -> dict[str, Any] | None:
    renewal = (
        Renewal.all_orgs.filter(organization_id=org_id, account_id=account.pk, outcome="")
        .order_by("due_date", "pk")
        .first()
    )
    if renewal is None:
        if account.next_renewal_date is None:
            return None
        return {"due_date": _iso(account.next_renewal_date), "forecast_category": "", "forecast_category_label": ""}
    return {
        "due_date": _iso(renewal.due_date),
        "forecast_category": renewal.forecast_category,
        "forecast_category_label": renewal.get_forecast_category_display(),
        "current_arr": float(renewal.current_arr),
        "forecast_arr": float(renewal.forecast_arr),
        "probability": renewal.probability,
        "stage": renewal.get_stage_display(),
    }


def _previous(org_id: int, review: BusinessReview | None, account: Account, end: dt.date) -> dict[str, Any] | None:
    """The last closed review before this one and how the objectives it set stand now."""
    earlier = BusinessReview.all_orgs.filter(
        organization_id=org_id, account_id=account.pk, status=ReviewStatus.CLOSED, period_end__lte=end
    )
    if review is not None and review.pk:
        earlier = earlier.exclude(pk=review.pk)
    last = earlier.order_by("-period_end", "-closed_at", "-pk").first()
    if last is None:
        return None
    set_there = (last.snapshot or {}).get("next_objectives") or []
    ids = [row["id"] for row in set_there if row.get("id")]
    now = {o.pk: o for o in Objective.all_orgs.filter(organization_id=org_id, pk__in=ids)}
    outcomes = []
    for row in set_there:
        objective = now.get(row.get("id"))
        if objective is not None:
            outcomes.append(_objective_row(objective))
        else:  # removed from the plan since: what was set, without a reading
            outcomes.append({**row, "current": "", "progress": None, "status": "removed", "status_label": "Removed"})
    return {
        "id": last.pk,
        "kind": last.kind,
        "held_on": _iso(last.held_on),
        "period_start": _iso(last.period_start),
        "period_end": _iso(last.period_end),
        "summary": last.summary,
        "objectives": outcomes,
    }


def _peer_group(org_id: int, account: Account) -> tuple[str, str, list[int]]:
    """(kind, label, peer account ids): the account's first segment, else its touch model."""
    membership = (
        SegmentMembership.all_orgs.filter(organization_id=org_id, account_id=account.pk)
        .select_related("segment")
        .order_by("segment__position", "segment__name")
        .first()
    )
    live = Account.all_orgs.filter(organization_id=org_id, churned_at__isnull=True).exclude(pk=account.pk)
    if membership is not None:
        ids = SegmentMembership.all_orgs.filter(organization_id=org_id, segment_id=membership.segment_id).values(
            "account_id"
        )
        peers = live.filter(pk__in=ids)
        return "segment", membership.segment.name, list(peers.values_list("pk", flat=True))
    label = str(account.get_touch_model_display())
    return "touch_model", label, list(live.filter(touch_model=account.touch_model).values_list("pk", flat=True))


def _per_account_measures(
    org_id: int, account_ids: list[int], start: dt.date, end: dt.date, since: dt.datetime, until: dt.datetime
) -> dict[str, dict[int, float]]:
    """Each benchmark measure per account (accounts without a value are absent), in four queries."""
    seats = _seats(org_id, account_ids, end)
    health = dict(
        HealthScore.all_orgs.filter(
            organization_id=org_id, account_id__in=account_ids, score__isnull=False
        ).values_list("account_id", "score")
    )
    events = dict(
        UsageMetric.all_orgs.filter(
            organization_id=org_id, account_id__in=account_ids, metric="events", date__gte=start, date__lte=end
        )
        .order_by()
        .values("account_id")
        .annotate(total=Sum("value"))
        .values_list("account_id", "total")
    )
    tickets = dict(
        Ticket.all_orgs.filter(
            organization_id=org_id, account_id__in=account_ids, opened_at__gte=since, opened_at__lte=until
        )
        .order_by()
        .values("account_id")
        .annotate(n=Count("pk"))
        .values_list("account_id", "n")
    )
    scores: dict[int, list[int]] = defaultdict(list)
    for account_id, score in SurveyResponse.all_orgs.filter(
        organization_id=org_id,
        account_id__in=account_ids,
        kind=SurveyKind.NPS,
        responded_at__gte=since,
        responded_at__lte=until,
    ).values_list("account_id", "score"):
        scores[account_id].append(score)
    out: dict[str, dict[int, float]] = {
        "health_score": {},
        "events_per_seat": {},
        "nps": {},
        "tickets_per_100_seats": {},
    }
    for account_id in account_ids:
        if account_id in health:
            out["health_score"][account_id] = float(health[account_id])
        n = seats.get(account_id, 0)
        if n:
            # Usage per seat needs usage: an account that sends none is "not tracked", not zero.
            if account_id in events:
                out["events_per_seat"][account_id] = float(Decimal(events[account_id]) / n)
            out["tickets_per_100_seats"][account_id] = tickets.get(account_id, 0) * 100 / n
        if scores.get(account_id):
            out["nps"][account_id] = nps_figures(scores[account_id])["nps"]
    return out


MEASURES = (
    ("health_score", "Health score", "points"),
    ("events_per_seat", "Usage: events per seat", "events"),
    ("nps", "NPS", "NPS"),
    ("tickets_per_100_seats", "Tickets per 100 seats", "tickets"),
)


def _benchmark(
    org_id: int, account: Account, start: dt.date, end: dt.date, since: dt.datetime, until: dt.datetime
) -> dict[str, Any]:
    kind, label, peers = _peer_group(org_id, account)
    result: dict[str, Any] = {"group_kind": kind, "group": label, "peers": len(peers), "min_peers": MIN_PEERS}
    if len(peers) < MIN_PEERS:
        return {**result, "shown": False, "measures": []}
    values = _per_account_measures(org_id, [account.pk, *peers], start, end, since, until)
    measures = []
    for key, name, unit in MEASURES:
        peer_values = [values[key][p] for p in peers if p in values[key]]
        median = statistics.median(peer_values) if len(peer_values) >= MIN_PEERS else None
        mine = values[key].get(account.pk)
        measures.append(
            {
                "key": key,
                "label": name,
                "unit": unit,
                "account": _round(mine),
                "median": _round(median),
                "peers_with_data": len(peer_values),
            }
        )
    return {**result, "shown": True, "measures": measures}


def build_report(
    organization: Organization,
    account: Account,
    *,
    period_start: dt.date,
    period_end: dt.date,
    kind: str = "qbr",
    review: BusinessReview | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The value report of ``account`` over ``[period_start, period_end]``, computed live (see module doc)."""
    if account.organization_id != organization.pk:
        raise ValueError("The account is not in this organization.")
    org_id = organization.pk
    now = now or timezone.now()
    today = timezone.localdate(now)
    since, until = period_bounds(organization, period_start, period_end)
    seats = _seats(org_id, [account.pk], period_end).get(account.pk, 0)
    owner = account.owner
    return {
        "version": REPORT_VERSION,
        "generated_at": now.isoformat(),
        "kind": kind,
        "kind_label": kind.upper(),
        "account": {
            "id": account.pk,
            "name": account.name,
            "external_id": account.external_id,
            "touch_model": account.touch_model,
            "owner": (owner.get_full_name() or owner.email) if owner else None,
            "arr": float(account.arr),
            "currency": organization.currency,
        },
        "period": {"start": _iso(period_start), "end": _iso(period_end)},
        "objectives": _objectives(org_id, account),
        "usage": _usage(org_id, account, period_start, period_end, seats),
        "health": _health(org_id, account, period_start, period_end, today),
        "support": _support(org_id, account, since, until),
        "nps": _nps(org_id, account, since, until),
        "renewal": _renewal(org_id, account),
        "previous": _previous(org_id, review, account, period_end),
        "benchmark": _benchmark(org_id, account, period_start, period_end, since, until),
    }


def review_report(organization: Organization, review: BusinessReview, *, now: dt.datetime | None = None) -> dict:
    """The report of a review: frozen in ``snapshot`` once closed, computed live while open."""
    if review.organization_id != organization.pk:
        raise ValueError("The review is not in this organization.")
    if review.status == ReviewStatus.CLOSED and review.snapshot.get("report"):
        return review.snapshot["report"]
    return live_report(organization, review, now=now)


def live_report(organization: Organization, review: BusinessReview, *, now: dt.datetime | None = None) -> dict:
    """The review's report computed from today's data, whatever its status: what closing freezes."""
    return build_report(
        organization,
        review.account,
        period_start=review.period_start,
        period_end=review.period_end,
        kind=review.kind,
        review=review,
        now=now,
    )
