"""What an ingest writes besides its events, shared by ingestion (:mod:`health.services`) and the rollup
(:mod:`health.rollups`): the day's ingestion counters, the organization's local day, and the rollup's
schedule flag (queue one rollup soon after an ingest, one pending run per organization).

It sits below both: ingestion records counters and queues the rollup through it, and the rollup (which
recomputes health through the services) clears and records the flag, so neither imports the other
backwards. ``health.rollups`` re-exports these names.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import DatabaseError, connection
from django.utils import timezone

from accounts.models import Organization

from .models import IngestionStat, UsageRollupState
from .queueing import ROLLUP_USAGE, health_task

__all__ = [
    "ROLLUP_DELAY_SECONDS",
    "SCHEDULE_STALE",
    "add_stats",
    "local_today",
    "record_rollup",
    "schedule_rollup",
    "start_rollup",
]

logger = logging.getLogger(__name__)

#: The rollup queued after an ingest waits this long, so a burst of requests is counted in one run.
ROLLUP_DELAY_SECONDS = 1
#: A queued rollup that has not started after this long is presumed lost (broker restarted): the next
#: ingest queues another. Runs of one organization are serialised anyway, so a duplicate is harmless.
SCHEDULE_STALE = timedelta(minutes=2)


def add_stats(org_id: int, day: date, counts: dict[str, int]) -> None:
    """Add ``counts`` to the organization's :class:`~health.models.IngestionStat` counters of ``day``.

    One statement, increments (``value = value + n``): safe under concurrent requests, and part of the
    caller's transaction, so a counter moves exactly when what it counts is committed. Names are written
    in sorted order, so two transactions never lock the same counter rows in opposite orders.
    """
    rows = sorted((name, n) for name, n in counts.items() if n)
    if not rows:
        return
    table = IngestionStat._meta.db_table
    values = ", ".join(["(%s, %s, %s, %s)"] * len(rows))
    params: list[Any] = []
    for name, n in rows:
        params += [org_id, connection.ops.adapt_datefield_value(day), name, n]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (organization_id, date, name, value) VALUES {values} "
            f"ON CONFLICT (organization_id, date, name) DO UPDATE SET value = {table}.value + EXCLUDED.value",
            params,
        )


def local_today(org: Organization) -> date:
    return timezone.localdate(timezone=ZoneInfo(org.time_zone or "UTC"))


def schedule_rollup(org_id: int) -> bool:
    """Queue one rollup of the organization soon, unless one is already queued; returns whether it queued.

    Called after an ingest commits. The compare-and-set ``UPDATE … SET scheduled_at = now WHERE
    scheduled_at IS NULL (or stale)`` lets exactly one of many concurrent requests queue the task; the
    task clears the flag *before* it reads pending events, so an event committed after that queues the
    next run and none waits for the beat. Works on any database and broker (the demo has no Redis).
    """
    now = timezone.now()
    table = UsageRollupState._meta.db_table
    # One statement whatever the state: creates the row on the organization's first ingest, else claims
    # it only if no run is queued (or the queued one is stale); RETURNING says whether this call won.
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (organization_id, scheduled_at, last_run_events) VALUES (%s, %s, 0) "
                f"ON CONFLICT (organization_id) DO UPDATE SET scheduled_at = EXCLUDED.scheduled_at "
                f"WHERE {table}.scheduled_at IS NULL OR {table}.scheduled_at < %s RETURNING 1",
                [org_id, *map(connection.ops.adapt_datetimefield_value, (now, now - SCHEDULE_STALE))],
            )
            if cursor.fetchone() is None:
                return False  # already queued
    except DatabaseError:  # after the events' commit: their 200 stands, the beat entry counts them
        logger.exception("could not queue the usage rollup of organization %s", org_id)
        return False
    try:
        health_task(ROLLUP_USAGE).apply_async((org_id,), countdown=ROLLUP_DELAY_SECONDS)
    except Exception:  # the events are stored; the beat entry counts them if the broker is down
        logger.exception("could not queue the usage rollup of organization %s", org_id)
        UsageRollupState.all_orgs.filter(organization_id=org_id, scheduled_at=now).update(scheduled_at=None)
        return False
    return True


def start_rollup(org_id: int) -> None:
    """The queued rollup starts: clear the flag first, so events arriving from now on queue the next run."""
    UsageRollupState.all_orgs.filter(organization_id=org_id).update(scheduled_at=None)


def record_rollup(org_id: int, events: int) -> None:
    """When the last rollup of the organization ran and how many events it counted (status page)."""
    state = UsageRollupState.all_orgs.filter(organization_id=org_id)
    if not state.update(last_run_at=timezone.now(), last_run_events=events):
        UsageRollupState.all_orgs.bulk_create(
            [UsageRollupState(organization_id=org_id, last_run_at=timezone.now(), last_run_events=events)],
            ignore_conflicts=True,
        )
