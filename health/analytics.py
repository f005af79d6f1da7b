"""Set-based loading of health signals and vectorised scoring (spec §3).

:func:`load_signals` reads every signal of an organization's accounts (or of a subset) **as of a
date** with a fixed number of aggregated queries — one per source table (accounts, usage metrics,
contracts, tickets, invoices, NPS responses, activities, contacts, CSM pulses), each a ``GROUP BY
account`` with conditional ``COUNT``/``SUM``/``MAX``/``MIN`` — whatever the number of accounts. Raw
usage rows never reach Python. The result is a pandas DataFrame indexed by account id.

**Point in time.** Nothing dated after the as-of day is read: windows are "the last N days including
the as-of day" (``[as_of − (N−1), as_of]``; days end at midnight in the organization's time zone),
a ticket counts as open at the as-of day when it was opened by then and not resolved by then, an
invoice as unpaid when it was not paid by then, a contact as active unless it departed by then,
a contract by its dates (not its current status, except ``cancelled``). Two limits, documented in
``docs/metrics.md``: contacts carry no "joined" date (a contact added later counts in the past too),
and invoices no issue date (an invoice counts once its due date has passed or is the as-of day).

Exact signal definitions (the columns):

``adoption``
    peak daily ``active_users`` over the last 30 days ÷ licensed seats (Σ ``seats`` of the contracts
    running on the as-of day, cancelled ones excluded). Daily distinct-user counts cannot be summed
    into a 30-day distinct count, so the peak day is used: a lower bound of the 30-day active users
    (exact when the same people use the product every day). Missing without seats or without any
    ``active_users``/``events`` row in the last 60 days (usage not tracked for the account).
``usage_trend``
    ``events`` of the last 30 days vs the 30 days before, in % (``(cur − prev) / prev × 100``).
    Missing when the previous 30 days have no events (no baseline).
``support`` / ``open_p1_tickets``
    tickets opened in the last 90 days / P1 tickets open at the end of the as-of day. Missing when
    the account has never had a ticket (no helpdesk data: "none needed" and "not connected" look
    the same); ``open_p1_tickets`` is 0 then.
``nps``
    NPS of the account's ``nps`` survey responses of the last 180 days: % promoters (9–10) − %
    detractors (0–6), −100…100. Missing without responses.
``engagement``
    days since the last customer touch (an Activity that is not a ``note``; the as-of day minus the
    touch's local day) ÷ the touch model's cadence (``organization.touch_cadence_days``). Never
    touched: days since ``customer_since``. Missing for tech touch (cadence ``null``) or without a date.
``relationship``
    ``departed`` when a key contact (champion, executive sponsor or economic buyer:
    ``accounts.choices.KEY_CONTACT_ROLES``) departed in the last 90 days, else ``both``
    when an active champion and an active executive sponsor exist, ``one`` for one of them, ``none``
    for neither. Missing for an account without contacts.
``financial``
    max days overdue across invoices unpaid at the as-of day (0 when none is overdue). Missing for
    an account without invoices due by the as-of day.
``csm_pulse``
    colour of the latest CSM pulse of the last 30 days; missing when older (stale) or absent.
``usage:<metric>``
    Σ of the daily metric over the last 30 days; 0 when the account has other usage, missing when it
    has no usage at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from django.db.models import Case, Count, IntegerField, Max, Min, Q, Sum, Value, When

from accounts.choices import KEY_CONTACT_ROLES, NON_TOUCH_ACTIVITY_TYPES
from accounts.models import Account, Activity, Contact, Contract, Organization
from feedback.models import SurveyKind, SurveyResponse

from .models import CsmPulse, Invoice, Ticket, TicketPriority, TicketStatus, UsageMetric
from .scoring import explain, score_frame

__all__ = ["ACCOUNT_COLUMNS", "SIGNAL_COLUMNS", "load_signals", "load_signals_at", "score_accounts"]

SIGNAL_COLUMNS = (
    "adoption",
    "usage_trend",
    "support",
    "open_p1_tickets",
    "nps",
    "engagement",
    "relationship",
    "financial",
    "csm_pulse",
)
ACCOUNT_COLUMNS = (
    "name",
    "external_id",
    "arr",
    "touch_model",
    "lifecycle_stage",
    "churned_at",
    "customer_since",
    "scorecard_id",
)
USAGE_WINDOW = 30
USAGE_LOOKBACK = 60
SUPPORT_WINDOW = 90
NPS_WINDOW = 180
DEPARTURE_WINDOW = 90
PULSE_STALE_DAYS = 30


def _day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def _scope(queryset: Any, account_ids: Sequence[int] | None, field: str = "account_id") -> Any:
    return queryset if account_ids is None else queryset.filter(**{f"{field}__in": list(account_ids)})


def _frame(rows: Iterable[Sequence[Any]], columns: Sequence[str]) -> pd.DataFrame:
    """Rows of ``(account_id, *columns)`` as a frame indexed by account id."""
    frame = pd.DataFrame.from_records(list(rows), columns=["account_id", *columns])
    return frame.set_index("account_id")


def _num(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce").astype(float)


def load_signals(
    organization: Organization,
    as_of: date,
    account_ids: Sequence[int] | None = None,
    *,
    usage_metrics: Iterable[str] = (),
    bindings: Sequence[tuple[int, Q]] = (),
    default_scorecard_id: int | None = None,
) -> pd.DataFrame:
    """Every signal of the organization's accounts (or ``account_ids``) as of ``as_of``.

    Columns: :data:`SIGNAL_COLUMNS`, ``usage:<metric>`` for each of ``usage_metrics``, and the
    account attributes of :data:`ACCOUNT_COLUMNS`; ``scorecard_id`` is the first of ``bindings``
    (``(scorecard id, Q over Account)`` in order) whose condition matches, else
    ``default_scorecard_id`` — computed in the same SQL query as the attributes. Missing = ``NaN``/``None``.
    Nine queries whatever the number of accounts.
    """
    org_id = organization.pk
    tz = ZoneInfo(organization.time_zone or "UTC")
    end = _day_start(as_of + timedelta(days=1), tz)  # exclusive: nothing after the as-of day

    def since(days: int) -> date:
        return as_of - timedelta(days=days - 1)

    def since_instant(days: int) -> datetime:
        return _day_start(since(days), tz)

    # 1. Accounts, with their scorecard binding (first matching condition wins: CASE order).
    binding = Case(
        *[When(condition, then=Value(sc_id)) for sc_id, condition in bindings],
        default=Value(default_scorecard_id),
        output_field=IntegerField(),
    )
    accounts = _frame(
        _scope(Account.all_orgs.filter(organization_id=org_id), account_ids, "id")
        .annotate(bound_scorecard=binding)
        .order_by()
        .values_list("id", *ACCOUNT_COLUMNS[:-1], "bound_scorecard"),
        ACCOUNT_COLUMNS,
    )
    index = accounts.index
    out = pd.DataFrame(index=index)

    # 2. Usage: one GROUP BY over the last 60 days of the metrics the scorecards read.
    metrics = sorted({m for m in usage_metrics if m})
    recent = Q(date__gte=since(USAGE_WINDOW))
    usage_aggregates: dict[str, Any] = {
        "au30": Max(Case(When(recent & Q(metric="active_users"), then="value"))),
        "ev_cur": Sum(Case(When(recent & Q(metric="events"), then="value"))),
        "ev_prev": Sum(Case(When(~recent & Q(metric="events"), then="value"))),
        "tracked": Count("id", filter=Q(metric__in=("active_users", "events"))),
    }
    for i, metric in enumerate(metrics):
        usage_aggregates[f"m{i}"] = Sum(Case(When(recent & Q(metric=metric), then="value")))
    usage = _frame(
        _scope(
            UsageMetric.all_orgs.filter(
                organization_id=org_id,
                date__gte=since(USAGE_LOOKBACK),
                date__lte=as_of,
                metric__in=["active_users", "events", *metrics],
            ),
            account_ids,
        )
        .order_by()
        .values("account_id")
        .annotate(**usage_aggregates)
        .values_list("account_id", *usage_aggregates),
        list(usage_aggregates),
    ).reindex(index)
    tracked = usage["tracked"].fillna(0) > 0
    has_any_usage = tracked.copy()
    for i in range(len(metrics)):
        has_any_usage |= usage[f"m{i}"].notna()

    # 3. Seats of the contracts running on the as-of day.
    seats = _frame(
        _scope(
            Contract.all_orgs.filter(organization_id=org_id, start_date__lte=as_of, end_date__gte=as_of).exclude(
                status="cancelled"
            ),
            account_ids,
        )
        .order_by()
        .values("account_id")
        .annotate(seats=Sum("seats"))
        .values_list("account_id", "seats"),
        ["seats"],
    ).reindex(index)
    seat_count = _num(seats["seats"])
    au30 = _num(usage["au30"]).fillna(0.0)
    out["adoption"] = (au30 / seat_count).where(tracked & (seat_count > 0))
    ev_prev, ev_cur = _num(usage["ev_prev"]), _num(usage["ev_cur"]).fillna(0.0)
    out["usage_trend"] = ((ev_cur - ev_prev) / ev_prev * 100.0).where(ev_prev > 0)

    # 4. Tickets.
    open_at_as_of = Q(resolved_at__gte=end) | Q(
        resolved_at__isnull=True, status__in=[TicketStatus.OPEN, TicketStatus.PENDING]
    )
    tickets = _frame(
        _scope(Ticket.all_orgs.filter(organization_id=org_id, opened_at__lt=end), account_ids)
        .order_by()
        .values("account_id")
        .annotate(
            ever=Count("id"),
            recent=Count("id", filter=Q(opened_at__gte=since_instant(SUPPORT_WINDOW))),
            open_p1=Count("id", filter=Q(priority=TicketPriority.P1) & open_at_as_of),
        )
        .values_list("account_id", "ever", "recent", "open_p1"),
        ["ever", "recent", "open_p1"],
    ).reindex(index)
    has_tickets = tickets["ever"].fillna(0) > 0
    out["support"] = _num(tickets["recent"]).fillna(0.0).where(has_tickets)
    out["open_p1_tickets"] = _num(tickets["open_p1"]).fillna(0.0)

    # 5. NPS of the last 180 days.
    nps = _frame(
        _scope(
            SurveyResponse.all_orgs.filter(
                organization_id=org_id,
                kind=SurveyKind.NPS,
                responded_at__gte=since_instant(NPS_WINDOW),
                responded_at__lt=end,
            ),
            account_ids,
        )
        .order_by()
        .values("account_id")
        .annotate(
            n=Count("id"),
            promoters=Count("id", filter=Q(score__gte=9)),
            detractors=Count("id", filter=Q(score__lte=6)),
        )
        .values_list("account_id", "n", "promoters", "detractors"),
        ["n", "promoters", "detractors"],
    ).reindex(index)
    responses = _num(nps["n"])
    out["nps"] = ((_num(nps["promoters"]) - _num(nps["detractors"])) / responses * 100.0).where(responses > 0)

    # 6. Engagement: the last customer touch (notes are not touches).
    touches = _frame(
        _scope(
            Activity.all_orgs.filter(organization_id=org_id, occurred_at__lt=end).exclude(
                type__in=list(NON_TOUCH_ACTIVITY_TYPES)
            ),
            account_ids,
        )
        .order_by()
        .values("account_id")
        .annotate(last=Max("occurred_at"))
        .values_list("account_id", "last"),
        ["last"],
    ).reindex(index)
    as_of_ts = pd.Timestamp(as_of)
    last_touch_day = pd.to_datetime(touches["last"], utc=True).dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
    since_day = pd.to_datetime(accounts["customer_since"])
    since_day = since_day.where(since_day <= as_of_ts)
    reference = last_touch_day.fillna(since_day)
    days = (as_of_ts - reference).dt.days.astype(float)
    cadences = organization.touch_cadence_days or {}
    cadence = accounts["touch_model"].map(lambda m: cadences.get(m)).astype(float)
    out["engagement"] = (days / cadence).where(cadence > 0)

    # 7. Relationship: key contacts active at the as-of day, key departures in the last 90 days.
    active_at = Q(departed_at__gt=as_of) | Q(departed_at__isnull=True, is_active=True)
    key_role = Q()
    for role in KEY_CONTACT_ROLES:
        key_role |= Q(roles__icontains=f'"{role}"')
    contacts = _frame(
        _scope(Contact.all_orgs.filter(organization_id=org_id), account_ids)
        .order_by()
        .values("account_id")
        .annotate(
            n=Count("id"),
            champions=Count("id", filter=Q(roles__icontains='"champion"') & active_at),
            sponsors=Count("id", filter=Q(roles__icontains='"executive_sponsor"') & active_at),
            departed=Count(
                "id",
                filter=key_role & Q(departed_at__gte=since(DEPARTURE_WINDOW), departed_at__lte=as_of),
            ),
        )
        .values_list("account_id", "n", "champions", "sponsors", "departed"),
        ["n", "champions", "sponsors", "departed"],
    ).reindex(index)
    present = (_num(contacts["champions"]).fillna(0) > 0).astype(int) + (
        _num(contacts["sponsors"]).fillna(0) > 0
    ).astype(int)
    relationship = pd.Series(np.select([present == 2, present == 1], ["both", "one"], "none"), index=index)
    relationship = relationship.where(_num(contacts["departed"]).fillna(0) == 0, "departed")
    out["relationship"] = relationship.where(_num(contacts["n"]).fillna(0) > 0, None).astype(object)

    # 8. Financial: the oldest invoice overdue and unpaid at the as-of day.
    unpaid_overdue = Q(due_date__lt=as_of) & (Q(paid_at__isnull=True) | Q(paid_at__gt=as_of))
    invoices = _frame(
        _scope(Invoice.all_orgs.filter(organization_id=org_id, due_date__lte=as_of), account_ids)
        .order_by()
        .values("account_id")
        .annotate(n=Count("id"), oldest=Min("due_date", filter=unpaid_overdue))
        .values_list("account_id", "n", "oldest"),
        ["n", "oldest"],
    ).reindex(index)
    overdue_days = (as_of_ts - pd.to_datetime(invoices["oldest"])).dt.days.astype(float).fillna(0.0)
    out["financial"] = overdue_days.where(_num(invoices["n"]).fillna(0) > 0)

    # 9. CSM pulse: the latest of the last 30 days (a handful of rows per account at most).
    pulses = pd.DataFrame.from_records(
        list(
            _scope(
                CsmPulse.all_orgs.filter(
                    organization_id=org_id, created_at__gte=end - timedelta(days=PULSE_STALE_DAYS), created_at__lt=end
                ),
                account_ids,
            )
            .order_by()
            .values_list("account_id", "created_at", "id", "color")
        ),
        columns=["account_id", "created_at", "id", "color"],
    )
    latest = pulses.sort_values(["created_at", "id"]).drop_duplicates("account_id", keep="last").set_index("account_id")
    out["csm_pulse"] = latest["color"].reindex(index).astype(object).where(lambda s: s.notna(), None)

    for i, metric in enumerate(metrics):
        out[f"usage:{metric}"] = _num(usage[f"m{i}"]).fillna(0.0).where(has_any_usage)
    for column in ACCOUNT_COLUMNS:
        out[column] = accounts[column]
    out["arr"] = _num(out["arr"]).fillna(0.0)
    return out


def load_signals_at(
    organization: Organization,
    pairs: pd.DataFrame,
    *,
    usage_metrics: Iterable[str] = (),
) -> pd.DataFrame:
    """Every signal of each ``(account_id, as_of)`` pair of ``pairs``, each as of its own day.

    ``pairs`` has columns ``account_id`` and ``as_of`` (dates); the result is indexed like ``pairs``
    (one row per pair, in the same order) with the columns of :func:`load_signals` plus
    ``account_id`` and ``as_of``. Only what was known on a pair's day counts (point in time), so the
    backtest can score an account as it looked N days before each of its renewals.

    This version groups the pairs by day and calls :func:`load_signals` once per distinct day.
    """
    columns = [*SIGNAL_COLUMNS, *(f"usage:{m}" for m in sorted({m for m in usage_metrics if m})), *ACCOUNT_COLUMNS]
    parts: list[pd.DataFrame] = []
    for day, group in pairs.groupby("as_of", sort=True):
        ids = sorted({int(i) for i in group["account_id"]})
        signals = load_signals(organization, day, ids, usage_metrics=usage_metrics)
        picked = signals.reindex(group["account_id"].astype(int).to_numpy())
        picked.index = group.index
        parts.append(picked)
    out = pd.concat(parts) if parts else pd.DataFrame(columns=columns)
    out = out.reindex(pairs.index)
    out["account_id"] = pairs["account_id"]
    out["as_of"] = pairs["as_of"]
    return out


def score_accounts(
    definitions: Mapping[int | None, Mapping[str, Any]],
    signals: pd.DataFrame,
    bands: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Score every account of ``signals`` with the definition of its ``scorecard_id`` (vectorised per
    scorecard). ``definitions`` maps scorecard id → definition; a ``signals`` frame without a
    ``scorecard_id`` column, or an id not in ``definitions``, uses ``definitions[None]`` when present.

    Returns a frame indexed like ``signals`` with ``scorecard_id``, ``score`` (float, ``NaN`` = none),
    ``color`` (``""`` without a score), ``components`` (list of dicts) and ``missing`` (list of keys).
    """
    ids = signals["scorecard_id"] if "scorecard_id" in signals else pd.Series(None, index=signals.index)
    ids = ids.where(ids.isin([k for k in definitions if k is not None]), None)
    parts = []
    for scorecard_id, rows in signals.groupby(ids.fillna(-1), sort=False):
        key = None if scorecard_id == -1 else int(scorecard_id)
        definition = definitions.get(key)
        if definition is None:
            continue
        frame = score_frame(definition, rows, bands)
        components, missing = explain(definition, frame)
        parts.append(
            pd.DataFrame(
                {
                    "scorecard_id": key,
                    "score": frame["score"],
                    "color": frame["color"],
                    "components": components,
                    "missing": missing,
                },
                index=rows.index,
            )
        )
    if not parts:
        return pd.DataFrame(
            columns=["scorecard_id", "score", "color", "components", "missing"], index=signals.index[:0]
        )
    return pd.concat(parts).reindex(signals.index)
