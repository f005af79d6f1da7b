"""Set-based loading of health signals and vectorised scoring (spec §3).

:func:`load_signals` reads every signal of an organization's accounts (or of a subset) **as of a
date** with a fixed number of aggregated queries — one per source table (accounts, usage metrics,
contracts, tickets, invoices, NPS responses, activities, contacts, CSM pulses, overrides), each a ``GROUP BY
account`` with conditional ``COUNT``/``SUM``/``MAX``/``MIN`` — whatever the number of accounts. Raw
usage rows never reach Python. The result is a pandas DataFrame indexed by account id.

**Point in time.** Nothing dated after the as-of day is read: windows are "the last N days including
the as-of day" (``[as_of − (N−1), as_of]``; days end at midnight in the organization's time zone),
a ticket counts as open at the as-of day when it was opened by then and not resolved by then, an
invoice once issued (``issued_on``; without one, due within 30 days) and as unpaid when not paid by
then, a contact once started (``started_on``; without one, recorded: ``created_at``) and as active
unless it departed by then, an override when set by then and neither cleared nor expired, a contract
by its dates (not its current status, except ``cancelled``). What stays today's value (the account's
attributes, a contact's roles, undated statuses) is listed in ``docs/metrics.md`` ("Point in time").

:func:`load_signals_at` reads the same signals for many ``(account, day)`` pairs at once, each as of its
own day, in as many queries as :func:`load_signals` (set-based SQL, see :class:`_PairSql`).

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
    for neither, over the contacts known at the as-of day. Missing for an account without one.
``financial``
    max days overdue across the invoices issued by the as-of day and unpaid then (0 when none is
    overdue). Missing for an account without an invoice issued by the as-of day.
``csm_pulse``
    colour of the latest CSM pulse of the last 30 days; missing when older (stale) or absent.
``usage:<metric>``
    Σ of the daily metric over the last 30 days; 0 when the account has other usage, missing when it
    has no usage at all.
``override_color`` (not a signal: state)
    the colour of the override active at the end of the as-of day (``red`` for customer will churn).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from django.db import connections
from django.db.models import Case, Count, IntegerField, Max, Min, Q, Sum, Value, When

from accounts.choices import KEY_CONTACT_ROLES, NON_TOUCH_ACTIVITY_TYPES
from accounts.models import Account, Activity, Contact, Contract, Organization
from feedback.models import SurveyKind, SurveyResponse

from .models import (
    INVOICE_TERMS_DAYS,
    CsmPulse,
    HealthColor,
    HealthOverride,
    Invoice,
    OverrideReason,
    Ticket,
    TicketPriority,
    TicketStatus,
    UsageMetric,
)
from .scoring import explain, score_frame

__all__ = ["ACCOUNT_COLUMNS", "SIGNAL_COLUMNS", "STATE_COLUMNS", "load_signals", "load_signals_at", "score_accounts"]

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
#: Not signals a scorecard component reads, but state known as of the day: the colour of the override
#: active at the end of the as-of day (``red`` for "customer will churn"), ``None`` without one.
STATE_COLUMNS = ("override_color",)
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


def _frame(rows: Iterable[Sequence[Any]], columns: Sequence[str], key: str = "account_id") -> pd.DataFrame:
    """Rows of ``(key, *columns)`` as a frame indexed by the key (an account id, or a pair's position)."""
    frame = pd.DataFrame.from_records(list(rows), columns=[key, *columns])
    return frame.set_index(key)


def _num(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce").astype(float)


def _latest(rows: Iterable[Sequence[Any]], columns: Sequence[str]) -> pd.DataFrame:
    """Rows of ``(key, created_at, id, *columns)``: the latest (by ``created_at``, then id) per key."""
    frame = pd.DataFrame.from_records(list(rows), columns=["key", "created_at", "id", *columns])
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True, format="ISO8601")
    return frame.sort_values(["created_at", "id"]).drop_duplicates("key", keep="last").set_index("key")


def _override_color(latest: pd.DataFrame) -> pd.Series:
    """The effective colour of each key's override: ``customer_will_churn`` forces red."""
    forced = latest["reason_code"] == OverrideReason.CUSTOMER_WILL_CHURN
    return latest["color"].where(~forced, HealthColor.RED)


@dataclass
class _Bounds:
    """The window edges of one as-of day: dates, and instants (local midnights of the organization)."""

    as_of: date
    end: datetime  # exclusive: the start of the next day; nothing at or after it is known
    usage_since: date  # the 30-day usage window
    usage_lookback: date  # the 60-day one (the previous 30 days too)
    support_since: datetime
    nps_since: datetime
    departed_since: date
    pulse_since: datetime
    invoice_due_by: date  # an invoice without an issue day is known when due by this day (net 30)

    @classmethod
    def of(cls, as_of: date, tz: ZoneInfo) -> _Bounds:
        def since(days: int) -> date:
            return as_of - timedelta(days=days - 1)

        end = _day_start(as_of + timedelta(days=1), tz)
        return cls(
            as_of=as_of,
            end=end,
            usage_since=since(USAGE_WINDOW),
            usage_lookback=since(USAGE_LOOKBACK),
            support_since=_day_start(since(SUPPORT_WINDOW), tz),
            nps_since=_day_start(since(NPS_WINDOW), tz),
            departed_since=since(DEPARTURE_WINDOW),
            pulse_since=end - timedelta(days=PULSE_STALE_DAYS),
            invoice_due_by=as_of + timedelta(days=INVOICE_TERMS_DAYS),
        )


def _known_contact(b: _Bounds) -> Q:
    """A contact known at the as-of day: started by then, or (start unknown) recorded by then."""
    return Q(started_on__lte=b.as_of) | Q(started_on__isnull=True, created_at__lt=b.end)


def _known_invoice(b: _Bounds) -> Q:
    """An invoice known at the as-of day: issued by then (no issue day: due within 30 days)."""
    return Q(issued_on__lte=b.as_of) | Q(issued_on__isnull=True, due_date__lte=b.invoice_due_by)


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

    Columns: :data:`SIGNAL_COLUMNS`, :data:`STATE_COLUMNS`, ``usage:<metric>`` for each of
    ``usage_metrics``, and the account attributes of :data:`ACCOUNT_COLUMNS`; ``scorecard_id`` is the
    first of ``bindings`` (``(scorecard id, Q over Account)`` in order) whose condition matches, else
    ``default_scorecard_id`` — computed in the same SQL query as the attributes. Missing =
    ``NaN``/``None``. Ten queries whatever the number of accounts.
    """
    org_id = organization.pk
    tz = ZoneInfo(organization.time_zone or "UTC")
    b = _Bounds.of(as_of, tz)
    end = b.end

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
    parts: dict[str, pd.DataFrame] = {}

    # 2. Usage: one GROUP BY over the last 60 days of the metrics the scorecards read.
    metrics = sorted({m for m in usage_metrics if m})
    recent = Q(date__gte=b.usage_since)
    usage_aggregates: dict[str, Any] = {
        "au30": Max(Case(When(recent & Q(metric="active_users"), then="value"))),
        "ev_cur": Sum(Case(When(recent & Q(metric="events"), then="value"))),
        "ev_prev": Sum(Case(When(~recent & Q(metric="events"), then="value"))),
        "tracked": Count("id", filter=Q(metric__in=("active_users", "events"))),
    }
    for i, metric in enumerate(metrics):
        usage_aggregates[f"m{i}"] = Sum(Case(When(recent & Q(metric=metric), then="value")))
    parts["usage"] = _frame(
        _scope(
            UsageMetric.all_orgs.filter(
                organization_id=org_id,
                date__gte=b.usage_lookback,
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
    )

    # 3. Seats of the contracts running on the as-of day.
    parts["seats"] = _frame(
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
    )

    # 4. Tickets opened by the as-of day; open at its end = not resolved by then.
    open_at_as_of = Q(resolved_at__gte=end) | Q(
        resolved_at__isnull=True, status__in=[TicketStatus.OPEN, TicketStatus.PENDING]
    )
    parts["tickets"] = _frame(
        _scope(Ticket.all_orgs.filter(organization_id=org_id, opened_at__lt=end), account_ids)
        .order_by()
        .values("account_id")
        .annotate(
            ever=Count("id"),
            recent=Count("id", filter=Q(opened_at__gte=b.support_since)),
            open_p1=Count("id", filter=Q(priority=TicketPriority.P1) & open_at_as_of),
        )
        .values_list("account_id", "ever", "recent", "open_p1"),
        ["ever", "recent", "open_p1"],
    )

    # 5. NPS of the last 180 days.
    parts["nps"] = _frame(
        _scope(
            SurveyResponse.all_orgs.filter(
                organization_id=org_id,
                kind=SurveyKind.NPS,
                responded_at__gte=b.nps_since,
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
    )

    # 6. Engagement: the last customer touch (notes are not touches).
    parts["touches"] = _frame(
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
    )

    # 7. Relationship: the contacts known at the as-of day; key contacts active then, key departures in
    #    the last 90 days.
    active_at = Q(departed_at__gt=as_of) | Q(departed_at__isnull=True, is_active=True)
    key_role = Q()
    for role in KEY_CONTACT_ROLES:
        key_role |= Q(roles__icontains=f'"{role}"')
    parts["contacts"] = _frame(
        _scope(Contact.all_orgs.filter(_known_contact(b), organization_id=org_id), account_ids)
        .order_by()
        .values("account_id")
        .annotate(
            n=Count("id"),
            champions=Count("id", filter=Q(roles__icontains='"champion"') & active_at),
            sponsors=Count("id", filter=Q(roles__icontains='"executive_sponsor"') & active_at),
            departed=Count(
                "id",
                filter=key_role & Q(departed_at__gte=b.departed_since, departed_at__lte=as_of),
            ),
        )
        .values_list("account_id", "n", "champions", "sponsors", "departed"),
        ["n", "champions", "sponsors", "departed"],
    )

    # 8. Financial: the invoices issued by the as-of day; the oldest overdue and unpaid then.
    unpaid_overdue = Q(due_date__lt=as_of) & (Q(paid_at__isnull=True) | Q(paid_at__gt=as_of))
    parts["invoices"] = _frame(
        _scope(Invoice.all_orgs.filter(_known_invoice(b), organization_id=org_id), account_ids)
        .order_by()
        .values("account_id")
        .annotate(n=Count("id"), oldest=Min("due_date", filter=unpaid_overdue))
        .values_list("account_id", "n", "oldest"),
        ["n", "oldest"],
    )

    # 9. CSM pulse: the latest of the last 30 days (a handful of rows per account at most).
    parts["pulse"] = _latest(
        _scope(
            CsmPulse.all_orgs.filter(organization_id=org_id, created_at__gte=b.pulse_since, created_at__lt=end),
            account_ids,
        )
        .order_by()
        .values_list("account_id", "created_at", "id", "color"),
        ["color"],
    )

    # 10. Override: the latest one set by the end of the as-of day and neither expired nor cleared then.
    parts["override"] = _latest(
        _scope(
            HealthOverride.all_orgs.filter(
                Q(cleared_at__isnull=True) | Q(cleared_at__gte=end),
                organization_id=org_id,
                created_at__lt=end,
                expires_at__gte=end,
            ),
            account_ids,
        )
        .order_by()
        .values_list("account_id", "created_at", "id", "color", "reason_code"),
        ["color", "reason_code"],
    )

    as_of_ts = pd.Series(pd.Timestamp(as_of), index=index)
    return _derive(organization, accounts, as_of_ts, parts, metrics)


def _derive(
    organization: Organization,
    accounts: pd.DataFrame,
    as_of: pd.Series,
    parts: Mapping[str, pd.DataFrame],
    metrics: Sequence[str],
) -> pd.DataFrame:
    """The signals from the aggregates of each key (an account, or an (account, day) pair).

    ``accounts`` holds each key's :data:`ACCOUNT_COLUMNS`, ``as_of`` its day (``datetime64``) and
    ``parts`` the aggregates of :func:`load_signals`' queries, indexed by key (keys without rows
    absent). Shared by :func:`load_signals` and :func:`load_signals_at`, so both derive alike.
    """
    index = accounts.index
    tz = ZoneInfo(organization.time_zone or "UTC")
    usage, seats, tickets, nps, touches, contacts, invoices = (
        parts[name].reindex(index) for name in ("usage", "seats", "tickets", "nps", "touches", "contacts", "invoices")
    )
    out = pd.DataFrame(index=index)

    tracked = usage["tracked"].fillna(0) > 0
    has_any_usage = tracked.copy()
    for i in range(len(metrics)):
        has_any_usage |= usage[f"m{i}"].notna()
    seat_count = _num(seats["seats"])
    au30 = _num(usage["au30"]).fillna(0.0)
    out["adoption"] = (au30 / seat_count).where(tracked & (seat_count > 0))
    ev_prev, ev_cur = _num(usage["ev_prev"]), _num(usage["ev_cur"]).fillna(0.0)
    out["usage_trend"] = ((ev_cur - ev_prev) / ev_prev * 100.0).where(ev_prev > 0)

    has_tickets = tickets["ever"].fillna(0) > 0
    out["support"] = _num(tickets["recent"]).fillna(0.0).where(has_tickets)
    out["open_p1_tickets"] = _num(tickets["open_p1"]).fillna(0.0)

    responses = _num(nps["n"])
    out["nps"] = ((_num(nps["promoters"]) - _num(nps["detractors"])) / responses * 100.0).where(responses > 0)

    last_touch = pd.to_datetime(touches["last"], utc=True, format="ISO8601")
    last_touch_day = last_touch.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
    since_day = pd.to_datetime(accounts["customer_since"])
    since_day = since_day.where(since_day <= as_of)
    reference = last_touch_day.fillna(since_day)
    days = (as_of - reference).dt.days.astype(float)
    cadences = organization.touch_cadence_days or {}
    cadence = accounts["touch_model"].map(lambda m: cadences.get(m)).astype(float)
    out["engagement"] = (days / cadence).where(cadence > 0)

    present = (_num(contacts["champions"]).fillna(0) > 0).astype(int) + (
        _num(contacts["sponsors"]).fillna(0) > 0
    ).astype(int)
    relationship = pd.Series(np.select([present == 2, present == 1], ["both", "one"], "none"), index=index)
    relationship = relationship.where(_num(contacts["departed"]).fillna(0) == 0, "departed")
    out["relationship"] = relationship.where(_num(contacts["n"]).fillna(0) > 0, None).astype(object)

    oldest = pd.to_datetime(invoices["oldest"])
    overdue_days = (as_of - oldest).dt.days.astype(float).fillna(0.0)
    out["financial"] = overdue_days.where(_num(invoices["n"]).fillna(0) > 0)

    def colour(series: pd.Series) -> pd.Series:
        return series.reindex(index).astype(object).where(lambda s: s.notna(), None)

    out["csm_pulse"] = colour(parts["pulse"]["color"])
    out["override_color"] = colour(_override_color(parts["override"]))

    for i, metric in enumerate(metrics):
        out[f"usage:{metric}"] = _num(usage[f"m{i}"]).fillna(0.0).where(has_any_usage)
    for column in ACCOUNT_COLUMNS:
        out[column] = accounts[column]
    out["arr"] = _num(out["arr"]).fillna(0.0)
    return out


def _pairs_frame(pairs: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """``pairs``' account ids (int) and days (``date``), positionally."""
    account_ids = pairs["account_id"].astype("int64").reset_index(drop=True)
    days = pd.Series([pd.Timestamp(d).date() for d in pairs["as_of"]], dtype=object)
    return account_ids, days


def _columns(usage_metrics: Iterable[str]) -> list[str]:
    metrics = sorted({m for m in usage_metrics if m})
    return [*SIGNAL_COLUMNS, *STATE_COLUMNS, *(f"usage:{m}" for m in metrics), *ACCOUNT_COLUMNS]


def _finish(out: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Indexed like ``pairs``, with its ``account_id`` and ``as_of``; text columns as ``object`` (a
    column's inferred dtype would otherwise depend on whether some pair's account is unknown)."""
    out = out.reindex(pairs.index)
    for column in out.columns:
        if isinstance(out[column].dtype, pd.StringDtype):
            out[column] = out[column].astype(object)
    out["account_id"] = pairs["account_id"]
    out["as_of"] = pairs["as_of"]
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
    backtest can score an account as it looked N days before each of its renewals. A pair whose
    account is not the organization's gets a row of missing values; no scorecard binding is applied
    (``scorecard_id`` is ``None``).

    Set-based: the pairs travel as one JSON parameter, unpacked in SQL (``jsonb_to_recordset`` on
    Postgres, ``json_each`` on SQLite) with each pair's window edges, and every aggregate of
    :func:`load_signals` is one ``GROUP BY`` pair over a join of that list to its table — ten queries
    whatever the number of pairs or distinct days. Returns exactly what calling :func:`load_signals`
    once per distinct day returns (``_load_signals_at_per_day``, the reference a test compares it to).
    """
    metrics = sorted({m for m in usage_metrics if m})
    if pairs.empty:
        return _finish(pd.DataFrame(columns=_columns(metrics)), pairs)
    tz = ZoneInfo(organization.time_zone or "UTC")
    account_ids, days = _pairs_frame(pairs)
    distinct = sorted({int(i) for i in account_ids})
    accounts_qs = Account.all_orgs.filter(organization_id=organization.pk)
    if len(distinct) <= _IN_LIST_LIMIT:
        accounts_qs = accounts_qs.filter(id__in=distinct)
    attributes = _frame(
        accounts_qs.annotate(bound_scorecard=Value(None, output_field=IntegerField()))
        .order_by()
        .values_list("id", *ACCOUNT_COLUMNS[:-1], "bound_scorecard"),
        ACCOUNT_COLUMNS,
    )
    known = account_ids.isin(attributes.index).to_numpy()
    keys = pd.Index(np.flatnonzero(known), name="key")
    bounds = {day: _Bounds.of(day, tz) for day in sorted(set(days))}
    sql = _PairSql(organization.pk, [(int(k), int(account_ids[k]), bounds[days[k]]) for k in keys])
    parts = sql.parts(metrics)
    accounts = attributes.reindex(account_ids[keys].to_numpy())
    accounts.index = keys
    as_of = pd.Series(pd.to_datetime([days[k] for k in keys]), index=keys)
    out = _derive(organization, accounts, as_of, parts, metrics)
    out = out.reindex(pd.RangeIndex(len(pairs)))
    out.index = pairs.index
    return _finish(out, pairs)


#: Up to this many distinct accounts are read by id; more, and every account of the organization is read
#: (one query either way; SQLite takes at most 32,766 parameters).
_IN_LIST_LIMIT = 5000


class _PairSql:
    """The SQL of :func:`load_signals_at`: the pairs as a relation ``p`` of ``(k, a, d, e, …)`` (key,
    account id, as-of day, end instant, window edges), joined to each signal table.

    Postgres gets the pairs as one array parameter per column (``unnest``) and aggregates each pair in a
    ``LATERAL`` subquery (an index range scan per pair, no hash aggregate over millions of joined rows);
    SQLite gets them as one JSON text (``json_each``) and a ``JOIN … GROUP BY`` pair. The conditions and
    aggregates are the same text in both forms."""

    _COLUMNS = (
        ("k", "integer"),
        ("a", "bigint"),
        ("d", "date"),
        ("e", "timestamptz"),
        ("u30", "date"),
        ("u60", "date"),
        ("t90", "timestamptz"),
        ("n180", "timestamptz"),
        ("dep", "date"),
        ("p30", "timestamptz"),
        ("i30", "date"),
    )

    def __init__(self, organization_id: int, pairs: Sequence[tuple[int, int, _Bounds]]) -> None:
        self.org_id = organization_id
        self.connection = connections[Account.all_orgs.db]
        self.postgres = self.connection.vendor == "postgresql"
        rows = [
            (
                k,
                a,
                b.as_of,
                b.end,
                b.usage_since,
                b.usage_lookback,
                b.support_since,
                b.nps_since,
                b.departed_since,
                b.pulse_since,
                b.invoice_due_by,
            )
            for k, a, b in pairs
        ]
        if self.postgres:
            # One array literal per column, as text ('{1,2,3}'): Postgres parses it in one go.
            columns = list(zip(*rows, strict=True)) or [() for _ in self._COLUMNS]
            self.pair_params: list[Any] = [
                "{" + ",".join(v.isoformat() if isinstance(v, date) else str(v) for v in column) + "}"
                for column in columns
            ]
        else:
            adapt = self.connection.ops.adapt_datetimefield_value  # SQLite compares naive UTC text
            names = [name for name, _ in self._COLUMNS]
            self.pair_params = [
                json.dumps(
                    [
                        {
                            name: (
                                str(adapt(v))
                                if isinstance(v, datetime)
                                else v.isoformat()
                                if isinstance(v, date)
                                else v
                            )
                            for name, v in zip(names, row, strict=True)
                        }
                        for row in rows
                    ]
                )
            ]

    def _with(self) -> str:
        if self.postgres:
            arrays = ", ".join(f"%s::{kind}[]" for _, kind in self._COLUMNS)
            names = ", ".join(name for name, _ in self._COLUMNS)
            return f"WITH p AS (SELECT * FROM unnest({arrays}) AS r({names}))"
        columns = ", ".join(f"json_extract(value, '$.{name}') AS {name}" for name, _ in self._COLUMNS)
        return f"WITH p AS (SELECT {columns} FROM json_each(%s))"

    def _table(self, model: Any) -> str:
        return self.connection.ops.quote_name(model._meta.db_table)

    def _like(self, column: str) -> str:
        """``column`` contains the parameter's text, ignoring case (Django's ``icontains`` on JSON)."""
        if self.postgres:
            return f"UPPER({column}::text) LIKE UPPER(%s)"
        return f"{column} LIKE %s ESCAPE '\\'"

    def _execute(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [*self.pair_params, *params])
            return list(cursor.fetchall())

    def _aggregate(
        self, select: str, model: Any, alias: str, condition: str, params: Sequence[Any]
    ) -> list[tuple[Any, ...]]:
        """``(k, *aggregates)`` of each pair over the rows of ``model`` meeting ``condition`` (which
        names the pair as ``p``); ``params``: those of ``select`` then those of ``condition``."""
        table = self._table(model)
        if self.postgres:
            sql = (
                f"{self._with()} SELECT p.k, x.* FROM p CROSS JOIN LATERAL"
                f" (SELECT {select} FROM {table} {alias} WHERE {condition}) x"
            )
        else:
            sql = f"{self._with()} SELECT p.k, {select} FROM p JOIN {table} {alias} ON {condition} GROUP BY p.k"
        return self._execute(sql, params)

    def _rows(
        self, select: str, model: Any, alias: str, condition: str, params: Sequence[Any]
    ) -> list[tuple[Any, ...]]:
        """``(k, *select)`` of every row of ``model`` meeting ``condition`` for each pair."""
        return self._execute(
            f"{self._with()} SELECT p.k, {select} FROM p JOIN {self._table(model)} {alias} ON {condition}", params
        )

    @staticmethod
    def _in(values: Sequence[Any]) -> str:
        return "(" + ", ".join(["%s"] * len(values)) + ")"

    def parts(self, metrics: Sequence[str]) -> dict[str, pd.DataFrame]:
        org = self.org_id
        parts: dict[str, pd.DataFrame] = {}

        wanted = ["active_users", "events", *metrics]
        selects = [
            "MAX(CASE WHEN u.date >= p.u30 AND u.metric = 'active_users' THEN u.value END)",
            "SUM(CASE WHEN u.date >= p.u30 AND u.metric = 'events' THEN u.value END)",
            "SUM(CASE WHEN u.date < p.u30 AND u.metric = 'events' THEN u.value END)",
            "COUNT(CASE WHEN u.metric IN ('active_users', 'events') THEN 1 END)",
            *["SUM(CASE WHEN u.date >= p.u30 AND u.metric = %s THEN u.value END)"] * len(metrics),
        ]
        rows = self._aggregate(
            ", ".join(selects),
            UsageMetric,
            "u",
            "u.organization_id = %s AND u.account_id = p.a AND u.date >= p.u60 AND u.date <= p.d"
            f" AND u.metric IN {self._in(wanted)}",
            [*metrics, org, *wanted],
        )
        parts["usage"] = _frame(rows, ["au30", "ev_cur", "ev_prev", "tracked", *(f"m{i}" for i in range(len(metrics)))])

        rows = self._aggregate(
            "SUM(c.seats)",
            Contract,
            "c",
            "c.organization_id = %s AND c.account_id = p.a AND c.start_date <= p.d AND c.end_date >= p.d"
            " AND c.status <> 'cancelled'",
            [org],
        )
        parts["seats"] = _frame(rows, ["seats"])

        rows = self._aggregate(
            "COUNT(t.id), COUNT(CASE WHEN t.opened_at >= p.t90 THEN t.id END),"
            " COUNT(CASE WHEN t.priority = %s AND (t.resolved_at >= p.e"
            " OR (t.resolved_at IS NULL AND t.status IN (%s, %s))) THEN t.id END)",
            Ticket,
            "t",
            "t.organization_id = %s AND t.account_id = p.a AND t.opened_at < p.e",
            [TicketPriority.P1.value, TicketStatus.OPEN.value, TicketStatus.PENDING.value, org],
        )
        parts["tickets"] = _frame(rows, ["ever", "recent", "open_p1"])

        rows = self._aggregate(
            "COUNT(r.id), COUNT(CASE WHEN r.score >= 9 THEN r.id END), COUNT(CASE WHEN r.score <= 6 THEN r.id END)",
            SurveyResponse,
            "r",
            "r.organization_id = %s AND r.account_id = p.a AND r.kind = %s AND r.responded_at >= p.n180"
            " AND r.responded_at < p.e",
            [org, SurveyKind.NPS.value],
        )
        parts["nps"] = _frame(rows, ["n", "promoters", "detractors"])

        # The last touch: a correlated MAX per pair, read backwards on (organization, account, occurred_at).
        skipped = [str(t) for t in NON_TOUCH_ACTIVITY_TYPES]
        rows = self._execute(
            f"{self._with()} SELECT p.k, (SELECT MAX(t.occurred_at) FROM {self._table(Activity)} t"
            " WHERE t.organization_id = %s AND t.account_id = p.a AND t.occurred_at < p.e"
            f" AND t.type NOT IN {self._in(skipped)}) FROM p",
            [org, *skipped],
        )
        parts["touches"] = _frame([r for r in rows if r[1] is not None], ["last"])

        active = "(c.departed_at > p.d OR (c.departed_at IS NULL AND c.is_active))"
        key_role = " OR ".join([self._like("c.roles")] * len(KEY_CONTACT_ROLES))
        rows = self._aggregate(
            f"COUNT(c.id), COUNT(CASE WHEN {self._like('c.roles')} AND {active} THEN c.id END),"
            f" COUNT(CASE WHEN {self._like('c.roles')} AND {active} THEN c.id END),"
            f" COUNT(CASE WHEN ({key_role}) AND c.departed_at >= p.dep AND c.departed_at <= p.d THEN c.id END)",
            Contact,
            "c",
            "c.organization_id = %s AND c.account_id = p.a"
            " AND (c.started_on <= p.d OR (c.started_on IS NULL AND c.created_at < p.e))",
            [
                '%"champion"%',
                '%"executive_sponsor"%',
                *(f'%"{role}"%' for role in KEY_CONTACT_ROLES),
                org,
            ],
        )
        parts["contacts"] = _frame(rows, ["n", "champions", "sponsors", "departed"])

        rows = self._aggregate(
            "COUNT(i.id), MIN(CASE WHEN i.due_date < p.d AND (i.paid_at IS NULL OR i.paid_at > p.d)"
            " THEN i.due_date END)",
            Invoice,
            "i",
            "i.organization_id = %s AND i.account_id = p.a"
            " AND (i.issued_on <= p.d OR (i.issued_on IS NULL AND i.due_date <= p.i30))",
            [org],
        )
        parts["invoices"] = _frame(rows, ["n", "oldest"])

        rows = self._rows(
            "s.created_at, s.id, s.color",
            CsmPulse,
            "s",
            "s.organization_id = %s AND s.account_id = p.a AND s.created_at >= p.p30 AND s.created_at < p.e",
            [org],
        )
        parts["pulse"] = _latest(rows, ["color"])

        rows = self._rows(
            "o.created_at, o.id, o.color, o.reason_code",
            HealthOverride,
            "o",
            "o.organization_id = %s AND o.account_id = p.a AND o.created_at < p.e AND o.expires_at >= p.e"
            " AND (o.cleared_at IS NULL OR o.cleared_at >= p.e)",
            [org],
        )
        parts["override"] = _latest(rows, ["color", "reason_code"])
        for name in ("usage", "seats", "tickets", "nps", "touches", "contacts", "invoices"):
            parts[name].index = parts[name].index.astype("int64")
        return parts


def _load_signals_at_per_day(
    organization: Organization,
    pairs: pd.DataFrame,
    *,
    usage_metrics: Iterable[str] = (),
) -> pd.DataFrame:
    """:func:`load_signals_at` by calling :func:`load_signals` once per distinct day: the reference
    the set-based version is tested against (``tests/test_point_in_time_signals.py``)."""
    columns = _columns(usage_metrics)
    account_ids, days = _pairs_frame(pairs)
    positions = pd.DataFrame({"account_id": account_ids, "as_of": days})
    parts: list[pd.DataFrame] = []
    for day, group in positions.groupby("as_of", sort=True):
        ids = sorted({int(i) for i in group["account_id"]})
        signals = load_signals(organization, day, ids, usage_metrics=usage_metrics)
        picked = signals.reindex(group["account_id"].to_numpy())
        picked.index = group.index
        parts.append(picked)
    out = pd.concat(parts) if parts else pd.DataFrame(columns=columns)
    out = out.reindex(pd.RangeIndex(len(pairs)))
    out.index = pairs.index
    return _finish(out, pairs)


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
