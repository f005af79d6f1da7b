"""The reference definition of the daily usage figures, for tests: plain Python over the events a test
sent, sharing no code with ``health.rollups`` (spec §8 and ``docs/metrics.md``)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Ev:
    """One track event as a test sends it."""

    account: str  # the account's external id ("" = the user is linked to no account)
    user: str  # userId ("" = anonymous)
    when: dt.datetime
    name: str = "Page Viewed"
    anonymous: str = ""
    session: str | None = None


def reference(events: list[Ev], zone: str = "UTC", features: frozenset[str] | set[str] = frozenset()) -> dict:
    """Every rollup figure of ``events``: ``{(account external id, local day, metric): Decimal}``.

    ``events`` and ``event:<name>`` count events; ``active_users`` and ``feature_users:<name>`` count
    distinct users (``userId``, else ``anonymousId``); ``sessions`` distinct session ids, only on days
    that have one; days are local days of ``zone``; events of no account count nowhere.
    """
    tz = ZoneInfo(zone)
    count: dict = defaultdict(int)
    users: dict = defaultdict(set)
    sessions: dict = defaultdict(set)
    for e in events:
        if not e.account:
            continue
        day = e.when.astimezone(tz).date()
        who = e.user or e.anonymous
        count[(e.account, day, "events")] += 1
        count[(e.account, day, f"event:{e.name}")] += 1
        users[(e.account, day, "active_users")].add(who)
        if e.name in features:
            users[(e.account, day, f"feature_users:{e.name}")].add(who)
        if e.session:
            sessions[(e.account, day, "sessions")].add(e.session)
    out = {key: Decimal(n) for key, n in count.items()}
    out |= {key: Decimal(len(s)) for key, s in users.items()}
    out |= {key: Decimal(len(s)) for key, s in sessions.items()}
    return out
