"""Daily per-account usage rollups from raw ``track`` events, computed incrementally, and raw-event retention.

**What is counted** (spec §8; definitions in ``docs/metrics.md``): for each account and each *local* day
(the event's ``timestamp`` in the organization's time zone, UTC unless it sets one):

- ``events`` — the number of ``track`` events;
- ``active_users`` — distinct users with a ``track`` event (``user_id``, or ``anonymous_id`` when the
  event has no user id);
- ``sessions`` — distinct ``properties.session_id`` values; written only for days where events carry one
  (Segment has no standard session field, so days without any give no ``sessions`` row rather than 0);
- ``event:<name>`` — the number of ``track`` events of each event name;
- ``feature_users:<name>`` — for each key feature an admin flagged (:class:`~health.models.KeyFeature`),
  distinct users (same identity as ``active_users``) with a ``track`` event of that name; written only
  for days where the feature was used.

Events whose user is linked to no account (``account`` is null) count for no account.

**Why it is exact and idempotent.** A run takes the pending (not yet rolled up) ``track`` events,
finds the (account, local day) pairs they fall on, and *recomputes those days from every raw event of
the day*, rolled up or not; it then upserts the day's metric rows and marks exactly the events it read
as rolled up, all in one transaction. Re-running changes nothing (no pending events), a late event for
a day already rolled up makes that day be recomputed in full, and a crash rolls everything back.
Runs of one organization are serialized by a row lock on the organization (``FOR NO KEY UPDATE``,
which does not block event inserts), so two runs can never write a stale count over a fresh one.

Limit: a day is recomputed from the raw events still stored. A late event for a day whose raw events
were already purged (older than ``raw_event_retention_days``) would recompute that day from what is
left, so such events are not rolled into it: they are marked rolled up and counted in ``too_old``.

Key features are read when a day is recomputed: flagging one does not rewrite days already rolled up
(their ``feature_users:<name>`` appear when a late event makes them be recomputed). To fill in past
days, call ``rollup_usage(org_id, recompute_since=day)``, which recomputes every (account, day) with
raw events from ``day`` on (within the retention window). Unflagging keeps the rows already written.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Count, Q, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, NullIf, TruncDate
from django.utils import timezone

from accounts.models import Organization

from .models import EventType, KeyFeature, UsageEvent, UsageMetric

__all__ = ["BATCH", "purge_raw_events", "retention_cutoff", "rollup_usage"]

BATCH = 20_000  # pending events per transaction: bounded memory and lock time per step

#: Metric names the rollup owns (``event:<name>`` and ``feature_users:<name>`` too); other names (CSV imports)
#: are never touched.
ROLLUP_METRICS = ("events", "active_users", "sessions")


def retention_cutoff(org: Organization) -> datetime:
    """Raw events received before this moment are past the organization's retention window."""
    return timezone.now() - timedelta(days=org.raw_event_retention_days)


def _day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants where local ``day`` starts and the next one starts (DST-safe)."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start, end


def rollup_usage(
    org_id: int,
    *,
    limit: int | None = None,
    recompute_since: date | None = None,
    touched_accounts: set[int] | None = None,
) -> dict[str, int]:
    """Roll the organization's pending ``track`` events into daily :class:`UsageMetric` rows.

    ``limit`` caps how many pending events this call takes (one transaction); ``None`` takes them all,
    in transactions of :data:`BATCH` events. ``recompute_since`` (a local day) also recomputes every
    account-day from that day on that still has raw events — e.g. after an admin flags a key feature.
    Returns counts: ``events`` rolled up, ``days`` (account-days) recomputed, ``metrics`` rows written,
    ``too_old`` events past the retention window (not counted). ``touched_accounts``, when given,
    receives the ids of the accounts whose daily metrics were written (their health is then recomputed).
    """
    totals = {"events": 0, "days": 0, "metrics": 0, "too_old": 0}
    remaining = limit
    while remaining is None or remaining > 0:
        size = BATCH if remaining is None else min(BATCH, remaining)
        counts = _rollup_batch(org_id, size, touched_accounts)
        for key, value in counts.items():
            totals[key] += value
        if remaining is not None:
            remaining -= counts["events"] + counts["too_old"]
        if counts["events"] + counts["too_old"] < size:
            break
    if recompute_since is not None:
        for key, value in _recompute_since(org_id, recompute_since).items():
            totals[key] += value
    return totals


def _lock_org(org_id: int) -> Organization:
    """Lock the organization row for this transaction: serializes its rollups (see the module docstring).

    NO KEY: inserts of events, which take KEY SHARE on the organization row through their foreign key,
    are not blocked.
    """
    lock = Organization.objects.filter(pk=org_id)
    return (lock.select_for_update(no_key=True) if connection.features.has_select_for_no_key_update else lock).get()


def _upsert(rows: list[UsageMetric]) -> None:
    UsageMetric.all_orgs.bulk_create(
        rows,
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["organization", "account", "date", "metric"],
        update_fields=["value"],
    )


def _recompute_since(org_id: int, since: date) -> dict[str, int]:
    """Recompute every account-day from local day ``since`` on (one transaction per day: bounded work)."""
    counts = {"events": 0, "days": 0, "metrics": 0, "too_old": 0}
    org = Organization.objects.get(pk=org_id)
    tz = ZoneInfo(org.time_zone or "UTC")
    # Days that may have lost raw events to the purge are left as they are (see the module docstring).
    first = max(since, (retention_cutoff(org) + timedelta(days=1)).astimezone(tz).date())
    pairs = (
        UsageEvent.all_orgs.filter(
            organization_id=org_id,
            type=EventType.TRACK,
            account__isnull=False,
            timestamp__gte=_day_bounds(first, tz)[0],
        )
        .annotate(day=TruncDate("timestamp", tzinfo=tz))
        .order_by()
        .values_list("account_id", "day")
        .distinct()
    )
    by_day: dict[date, set[int]] = defaultdict(set)
    for account_id, day in pairs:
        by_day[day].add(account_id)
    for day in sorted(by_day):
        with transaction.atomic():
            _lock_org(org_id)
            rows = _recompute(org_id, tz, {account_id: {day} for account_id in by_day[day]})
            _upsert(rows)
        counts["days"] += len(by_day[day])
        counts["metrics"] += len(rows)
    return counts


def _rollup_batch(org_id: int, size: int, touched: set[int] | None = None) -> dict[str, int]:
    counts = {"events": 0, "days": 0, "metrics": 0, "too_old": 0}
    with transaction.atomic():
        org = _lock_org(org_id)
        tz = ZoneInfo(org.time_zone or "UTC")
        pending = list(
            UsageEvent.all_orgs.filter(
                organization_id=org_id, rolled_up=False, type=EventType.TRACK, account__isnull=False
            )
            .order_by("id")
            .values_list("id", "account_id", "timestamp")[:size]
        )
        if not pending:
            return counts
        cutoff = retention_cutoff(org)
        # The oldest day still complete in storage: days before it may have lost raw events to the purge.
        oldest_complete = (cutoff + timedelta(days=1)).astimezone(tz).date()
        days: dict[int, set[date]] = defaultdict(set)
        for _, account_id, ts in pending:
            day = ts.astimezone(tz).date()
            if day < oldest_complete:
                counts["too_old"] += 1
            else:
                days[account_id].add(day)
                counts["events"] += 1
        rows = _recompute(org_id, tz, days)
        _upsert(rows)
        if touched is not None:
            touched.update(days)
        ids = [pk for pk, *_ in pending]
        for start in range(0, len(ids), 2000):
            UsageEvent.all_orgs.filter(organization_id=org_id, id__in=ids[start : start + 2000]).update(rolled_up=True)
        counts["days"] = sum(len(d) for d in days.values())
        counts["metrics"] = len(rows)
    return counts


def _recompute(org_id: int, tz: ZoneInfo, days: dict[int, set[date]]) -> list[UsageMetric]:
    """Every rollup metric of the given (account, local day) pairs, from all their raw ``track`` events."""
    if not days:
        return []
    all_days = {d for ds in days.values() for d in ds}
    window_start = _day_bounds(min(all_days), tz)[0]
    window_end = _day_bounds(max(all_days), tz)[1]
    # One window over the affected accounts; pairs outside ``days`` that fall inside it are dropped below.
    events = UsageEvent.all_orgs.filter(
        organization_id=org_id,
        type=EventType.TRACK,
        account_id__in=list(days),
        timestamp__gte=window_start,
        timestamp__lt=window_end,
    ).annotate(day=TruncDate("timestamp", tzinfo=tz))
    wanted = {(account_id, d) for account_id, ds in days.items() for d in ds}
    values: dict[tuple[int, date], dict[str, int]] = defaultdict(dict)
    per_name = events.values("account_id", "day", "event").annotate(n=Count("id"))
    for account_id, day, name, n in per_name.values_list("account_id", "day", "event", "n"):
        if (account_id, day) not in wanted:
            continue
        day_values = values[(account_id, day)]
        day_values["events"] = day_values.get("events", 0) + n
        if name:
            day_values[f"event:{name}"] = n
    user = NullIf(Coalesce(NullIf("user_id", Value("")), "anonymous_id"), Value(""))
    session = NullIf(KeyTextTransform("session_id", "properties"), Value(""))
    for account_id, day, users, sessions in (
        events.values("account_id", "day")
        .annotate(users=Count(user, distinct=True), sessions=Count(session, distinct=True))
        .values_list("account_id", "day", "users", "sessions")
    ):
        if (account_id, day) not in wanted:
            continue
        values[(account_id, day)]["active_users"] = users
        if sessions:
            values[(account_id, day)]["sessions"] = sessions
    # Key features: read under the organization lock, so a day is computed against one list of flags.
    features = list(KeyFeature.all_orgs.filter(organization_id=org_id).values_list("event_name", flat=True))
    if features:
        for account_id, day, name, users in (
            events.filter(event__in=features)
            .values("account_id", "day", "event")
            .annotate(users=Count(user, distinct=True))
            .values_list("account_id", "day", "event", "users")
        ):
            if (account_id, day) in wanted and users:
                values[(account_id, day)][f"feature_users:{name}"] = users
    return [
        UsageMetric(organization_id=org_id, account_id=account_id, date=day, metric=metric, value=Decimal(n))
        for (account_id, day), metrics in values.items()
        for metric, n in metrics.items()
    ]


def purge_raw_events(org_id: int) -> int:
    """Delete the organization's raw events past its retention window; returns how many.

    Age is measured from ``received_at`` (indexed, and never in the future). Kept whatever their age:
    ``track`` events of an account not yet rolled up, so a lagging rollup never loses usage. Events that
    can never be rolled up (``identify``/``group`` calls, ``track`` events of users linked to no account)
    go with the rest.
    """
    org = Organization.objects.get(pk=org_id)
    doomed = UsageEvent.all_orgs.filter(organization_id=org_id, received_at__lt=retention_cutoff(org)).filter(
        Q(rolled_up=True) | ~Q(type=EventType.TRACK) | Q(account__isnull=True)
    )
    # Nothing references a raw event, so a raw DELETE (no rows loaded, no signals) is safe.
    return doomed._raw_delete(doomed.db)
