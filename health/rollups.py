"""Daily per-account usage rollups from raw ``track`` events: exact whatever an event's age, and raw-event
retention that can never make an accepted event uncountable.

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

Events whose user is linked to no account (``account`` is null) count for no account; a later ``group``
call linking the user attributes them (see :func:`health.services.ingest_events`).

**The design: an exact tally, merged; figures recomputed from it.** Distinct counts cannot be merged
from daily figures (2 users + 1 user may be 2 or 3 users), and raw events are purged. So each counted
event adds 1 to its row of :class:`~health.models.UsageTally` — (account, local day, event name, user,
session) → number of events — and every figure of a day is recomputed from the day's tally rows:
``events`` and ``event:<name>`` are sums, ``active_users``, ``feature_users:<name>`` and ``sessions`` are
distinct counts over the rows. The tally holds everything the figures need and nothing is ever
subtracted from it, so:

- a late event (any age: a backfill of last year) is merged into its day's tally and the day is
  recomputed, giving exactly the figures an on-time arrival would have given;
- the purge of raw events (:func:`purge_raw_events`, by *receipt* time) deletes only events already
  counted (or that are not usage), so retention never changes a figure;
- key features flagged later can be filled in for any past day (``recompute_since``), raw events or not.

**Exactly once.** A run takes pending (not yet counted) ``track`` events with an account, adds them to
the tally, marks exactly those events ``rolled_up`` and rewrites the touched days' metric rows, all in
one transaction: a crash rolls everything back, a re-run finds nothing pending. No other code path sets
``rolled_up``. Runs of one organization are serialised by a row lock on the organization (``FOR NO KEY
UPDATE``, which does not block event inserts: they take ``KEY SHARE`` through their foreign key), so the
read-merge-write of the tally never interleaves.

**Seen within seconds.** After each ingest that stored usage, :func:`schedule_rollup` queues one rollup
for the organization unless one is already queued (compare-and-set on
:class:`~health.models.UsageRollupState`; works with Redis and with the demo's filesystem queue). The
five-minute beat entry stays as the safety net.

Key features are read when a day is recomputed: flagging one does not rewrite days already rolled up
(their ``feature_users:<name>`` appear when new events make them be recomputed). To fill in past days,
call ``rollup_usage(org_id, recompute_since=day)``, which recomputes every (account, local day) of the
tally from that local day on. Unflagging keeps the rows already written.

**Time zone.** A tally row's day is the local day when the event was counted. Changing the
organization's time zone applies to events counted from then on; days already counted keep their days.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from accounts.models import Organization
from cs_platform.jobs import create_job

from .analytics import USAGE_LOOKBACK
from .ingest_state import (
    ROLLUP_DELAY_SECONDS,
    SCHEDULE_STALE,
    add_stats,
    local_today,
    record_rollup,
    schedule_rollup,
    start_rollup,
)
from .models import EventType, HealthSnapshot, KeyFeature, UsageEvent, UsageMetric, UsageTally
from .queueing import RECOMPUTE_ACCOUNTS, RESCORE_USAGE_HISTORY, health_task
from .services import recompute_health

__all__ = [
    "BATCH",
    "ROLLUP_DELAY_SECONDS",
    "SCHEDULE_STALE",
    "add_stats",
    "local_today",
    "purge_raw_events",
    "queue_rescore",
    "record_rollup",
    "rescore_usage_history",
    "retention_cutoff",
    "rollup_usage",
    "schedule_rollup",
    "session_key",
    "start_rollup",
]

BATCH = 20_000  # pending events per transaction: bounded memory and lock time per step
DAYS_PER_QUERY = 31  # account-days recomputed per metric query (bounded IN lists)
SESSION_MAX = 200

#: Metric names the rollup owns (``event:<name>`` and ``feature_users:<name>`` too); other names (CSV imports)
#: are never touched.
ROLLUP_METRICS = ("events", "active_users", "sessions")


def retention_cutoff(org: Organization) -> datetime:
    """Raw events received before this moment are past the organization's retention window."""
    return timezone.now() - timedelta(days=org.raw_event_retention_days)


def session_key(value: Any) -> str:
    """``properties.session_id`` as stored in the tally: ``''`` for none, the text (numbers as their text),
    and the SHA-256 of a value longer than the column (distinct values stay distinct)."""
    if value is None or value == "":
        return ""
    text = value if isinstance(value, str) else str(value)
    if len(text) > SESSION_MAX:
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return text


def rollup_usage(
    org_id: int,
    *,
    limit: int | None = None,
    recompute_since: date | None = None,
    touched_days: dict[int, set[date]] | None = None,
) -> dict[str, int]:
    """Count the organization's pending ``track`` events into the tally and rewrite their days' metrics.

    ``limit`` caps how many pending events this call counts (exactly that many when that many are
    pending); ``None`` takes them all, in transactions of :data:`BATCH` events. ``recompute_since`` (a
    local day) also rewrites every account-day of the tally from that day on, e.g. after an admin flags
    a key feature. Returns counts: ``events`` counted, ``days`` (account-days) rewritten, ``metrics`` rows
    written. ``touched_days``, when given, receives account id → local days whose metrics were written
    (their health is then recomputed).
    """
    totals = {"events": 0, "days": 0, "metrics": 0}
    remaining = limit
    while remaining is None or remaining > 0:
        size = BATCH if remaining is None else min(BATCH, remaining)
        counts = _rollup_batch(org_id, size, touched_days)
        for key, value in counts.items():
            totals[key] += value
        if remaining is not None:
            remaining -= counts["events"]
        if counts["events"] < size:
            break
    if recompute_since is not None:
        for key, value in _recompute_since(org_id, recompute_since, touched_days).items():
            totals[key] += value
    return totals


def _lock_org(org_id: int) -> Organization:
    """Lock the organization row for this transaction: serialises its rollups (see the module docstring).

    NO KEY: inserts of events, which take KEY SHARE on the organization row through their foreign key,
    are not blocked.
    """
    lock = Organization.objects.filter(pk=org_id)
    return (lock.select_for_update(no_key=True) if connection.features.has_select_for_no_key_update else lock).get()


def _add_to_tally(org_id: int, tally: Counter[tuple[int, date, str, str, str]]) -> None:
    """``events += n`` for each (account, day, event, user, session): one upsert per 1,000 rows."""
    table = UsageTally._meta.db_table
    rows = sorted(tally.items())
    for start in range(0, len(rows), 1000):
        chunk = rows[start : start + 1000]
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
        params: list[Any] = []
        for (account_id, day, event, user, session), n in chunk:
            params += [org_id, account_id, connection.ops.adapt_datefield_value(day), event, user, session, n]
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (organization_id, account_id, date, event, user_key, session, events) "
                f"VALUES {values} ON CONFLICT (organization_id, account_id, date, event, user_key, session) "
                f"DO UPDATE SET events = {table}.events + EXCLUDED.events",
                params,
            )


def _rollup_batch(org_id: int, size: int, touched: dict[int, set[date]] | None) -> dict[str, int]:
    counts = {"events": 0, "days": 0, "metrics": 0}
    with transaction.atomic():
        org = _lock_org(org_id)
        tz = ZoneInfo(org.time_zone or "UTC")
        pending = list(
            UsageEvent.all_orgs.filter(
                organization_id=org_id, rolled_up=False, type=EventType.TRACK, account__isnull=False
            )
            .annotate(session_id=KeyTextTransform("session_id", "properties"))
            .order_by("id")
            .values_list("id", "account_id", "timestamp", "event", "user_id", "anonymous_id", "session_id")[:size]
        )
        if not pending:
            return counts
        tally: Counter[tuple[int, date, str, str, str]] = Counter()
        days: dict[int, set[date]] = defaultdict(set)
        for _, account_id, ts, event, user_id, anonymous_id, session in pending:
            day = ts.astimezone(tz).date()
            tally[(account_id, day, event, user_id or anonymous_id, session_key(session))] += 1
            days[account_id].add(day)
        _add_to_tally(org_id, tally)
        ids = [row[0] for row in pending]
        for start in range(0, len(ids), 2000):
            UsageEvent.all_orgs.filter(organization_id=org_id, id__in=ids[start : start + 2000]).update(rolled_up=True)
        rows = _write_metrics(org_id, days)
        add_stats(org_id, local_today(org), {"counted": len(pending)})
        counts["events"] = len(pending)
        counts["days"] = sum(len(d) for d in days.values())
        counts["metrics"] = rows
    if touched is not None:
        for account_id, account_days in days.items():
            touched.setdefault(account_id, set()).update(account_days)
    return counts


def _recompute_since(org_id: int, since: date, touched: dict[int, set[date]] | None) -> dict[str, int]:
    """Rewrite every account-day of the tally from local day ``since`` on, from the tally alone (one
    transaction per :data:`DAYS_PER_QUERY` days: bounded work per step)."""
    counts = {"events": 0, "days": 0, "metrics": 0}
    pairs = (
        UsageTally.all_orgs.filter(organization_id=org_id, date__gte=since)
        .order_by()
        .values_list("account_id", "date")
        .distinct()
    )
    by_day: dict[date, set[int]] = defaultdict(set)
    for account_id, day in pairs:
        by_day[day].add(account_id)
    ordered = sorted(by_day)
    for start in range(0, len(ordered), DAYS_PER_QUERY):
        chunk: dict[int, set[date]] = defaultdict(set)
        for day in ordered[start : start + DAYS_PER_QUERY]:
            for account_id in by_day[day]:
                chunk[account_id].add(day)
        with transaction.atomic():
            _lock_org(org_id)
            counts["metrics"] += _write_metrics(org_id, chunk)
        counts["days"] += sum(len(d) for d in chunk.values())
        if touched is not None:
            for account_id, account_days in chunk.items():
                touched.setdefault(account_id, set()).update(account_days)
    return counts


def day_figures(org_id: int, days: dict[int, set[date]]) -> dict[tuple[int, date], dict[str, int]]:
    """Every rollup figure of the given (account, local day) pairs, from their tally rows.

    Two grouped queries per :data:`DAYS_PER_QUERY` days whatever the number of events: per account-day
    (Σ events, distinct users, distinct non-empty sessions) and per account-day-name (Σ events, distinct
    users: ``event:<name>`` and ``feature_users:<name>``).
    """
    wanted = {(account_id, d) for account_id, ds in days.items() for d in ds}
    features = set(KeyFeature.all_orgs.filter(organization_id=org_id).values_list("event_name", flat=True))
    values: dict[tuple[int, date], dict[str, int]] = defaultdict(dict)
    all_days = sorted({d for _, d in wanted})
    for start in range(0, len(all_days), DAYS_PER_QUERY):
        chunk_days = all_days[start : start + DAYS_PER_QUERY]
        in_chunk = set(chunk_days)
        accounts = sorted({a for a, d in wanted if d in in_chunk})
        rows = UsageTally.all_orgs.filter(organization_id=org_id, account_id__in=accounts, date__in=chunk_days)
        for account_id, day, n, users, sessions in (
            rows.order_by()
            .values("account_id", "date")
            .annotate(
                n=Sum("events"),
                users=Count("user_key", distinct=True),
                sessions=Count("session", distinct=True, filter=~Q(session="")),
            )
            .values_list("account_id", "date", "n", "users", "sessions")
        ):
            if (account_id, day) not in wanted:
                continue  # the query reads the cross product of accounts and days
            figures = values[(account_id, day)]
            figures["events"] = int(n)
            figures["active_users"] = users
            if sessions:
                figures["sessions"] = sessions
        for account_id, day, name, n, users in (
            rows.order_by()
            .values("account_id", "date", "event")
            .annotate(n=Sum("events"), users=Count("user_key", distinct=True))
            .values_list("account_id", "date", "event", "n", "users")
        ):
            if (account_id, day) not in wanted:
                continue
            values[(account_id, day)][f"event:{name}"] = int(n)
            if name in features:
                values[(account_id, day)][f"feature_users:{name}"] = users
    return values


def _write_metrics(org_id: int, days: dict[int, set[date]]) -> int:
    """Overwrite the metric rows of these account-days with their figures from the tally; returns rows."""
    rows = [
        UsageMetric(organization_id=org_id, account_id=account_id, date=day, metric=metric, value=Decimal(n))
        for (account_id, day), figures in day_figures(org_id, days).items()
        for metric, n in figures.items()
    ]
    UsageMetric.all_orgs.bulk_create(
        rows,
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["organization", "account", "date", "metric"],
        update_fields=["value"],
    )
    return len(rows)


def purge_raw_events(org_id: int) -> dict[str, int]:
    """Delete the organization's raw events *received* before its retention window; returns counts.

    Deleted: ``track`` events already counted (the tally keeps what the figures need), and
    ``identify``/``group`` calls (they did their work when received). Kept whatever their age: ``track``
    events of an account not counted yet (a lagging rollup never loses usage). ``track`` events whose
    user was never linked to an account within the window are deleted too, and counted in the
    ``unattributed_expired`` counter of the status page: they were never usage of any account.
    Returns ``{"deleted": all rows, "unattributed_expired": those never attributed}``.
    """
    org = Organization.objects.get(pk=org_id)
    old = UsageEvent.all_orgs.filter(organization_id=org_id, received_at__lt=retention_cutoff(org))
    with transaction.atomic():
        # Two deletes, so the counter is exactly the rows deleted (an event a group call attributes in the
        # meantime is re-checked by the DELETE and kept). Nothing references a raw event: a raw DELETE
        # (no rows loaded, no signals) is safe.
        unattributed = old.filter(type=EventType.TRACK, rolled_up=False, account__isnull=True)
        expired = unattributed._raw_delete(unattributed.db)
        done = old.filter(Q(rolled_up=True) | ~Q(type=EventType.TRACK))
        purged = done._raw_delete(done.db)
        add_stats(org_id, local_today(org), {"purged": purged, "unattributed_expired": expired})
        deleted = purged + expired
    return {"deleted": deleted, "unattributed_expired": expired}


def queue_rescore(org_id: int, touched: dict[int, set[date]]) -> None:
    """After a rollup: recompute today's health of the touched accounts now (not after the 60-second
    debounce of other signals: usage is the signal an admin watches arrive), and, when usage of past
    days changed, queue the recorded recompute of the past snapshots that read those days."""
    org = Organization.objects.get(pk=org_id)
    today = local_today(org)
    health_task(RECOMPUTE_ACCOUNTS).apply_async((org_id,), {"account_ids": sorted(touched)})
    spans = [
        [account_id, min(days).isoformat(), max(d for d in days if d < today).isoformat()]
        for account_id, days in sorted(touched.items())
        if min(days) < today
    ]
    if spans:
        job = create_job(organization_id=org_id, kind="rescore_usage_history", params={"accounts": len(spans)})
        health_task(RESCORE_USAGE_HISTORY).delay(org_id, spans, job_id=job.pk)


def rescore_usage_history(org_id: int, spans: list[list[Any]], *, job: Any = None) -> dict[str, int]:
    """Recompute the health snapshots whose figures read the changed past days of usage.

    A scorecard reads the last ``USAGE_LOOKBACK`` days of usage, so usage of local day ``d`` changes the
    snapshots of ``[d, d + USAGE_LOOKBACK − 1]``. For each account span ``[first, last]`` this recomputes
    the account's *existing* snapshots from ``first`` to ``last + USAGE_LOOKBACK − 1`` (before today),
    each as of its own day (point in time: nothing after that day is read), then today's score, whose
    Δ7/Δ30 compare with those snapshots. Days without a snapshot are not created: the history shows the
    days Retain scored. One ``recompute_health`` per day, for the accounts that have that day.
    """
    org = Organization.objects.get(pk=org_id)
    yesterday = local_today(org) - timedelta(days=1)
    ranges = {
        int(account_id): (
            date.fromisoformat(first),
            min(date.fromisoformat(last) + timedelta(days=USAGE_LOOKBACK - 1), yesterday),
        )
        for account_id, first, last in spans
    }
    by_day: dict[date, list[int]] = defaultdict(list)
    if ranges:
        low, high = min(r[0] for r in ranges.values()), max(r[1] for r in ranges.values())
        for account_id, day in (
            HealthSnapshot.objects.for_org(org_id)
            .filter(account_id__in=list(ranges), date__gte=low, date__lte=high)
            .values_list("account_id", "date")
        ):
            first, last = ranges[account_id]
            if first <= day <= last:
                by_day[day].append(account_id)
    if job is not None:
        job.set_total(len(by_day) + 1)
    for done, day in enumerate(sorted(by_day), start=1):
        recompute_health(org, sorted(by_day[day]), as_of=day, latest=False, emit_events=False)
        if job is not None:
            job.advance(done)
    if ranges:
        recompute_health(org, sorted(ranges))
    counts = {"days": len(by_day), "snapshots": sum(len(v) for v in by_day.values()), "accounts": len(ranges)}
    if job is not None:
        job.advance(len(by_day) + 1, force=True)
        job.count(**counts)
    return counts
