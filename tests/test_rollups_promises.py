"""Rollup promises stated by hand, one test per promise, for the mutants of ``health/rollups.py`` that the
reference comparison of ``tests/test_rollups.py`` alone would let through (docs/testing.md, "Mutation
testing"). Every expected figure is written out here, never computed by ``health.rollups``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from health.models import UsageMetric
from health.rollups import rollup_usage

from .factories import AccountFactory
from .signal_factories import UsageEventFactory

pytestmark = pytest.mark.django_db

D1, D2 = dt.date(2026, 11, 2), dt.date(2026, 11, 3)


def at(zone: str, day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(zone))


def events_per_day(org) -> dict[dt.date, Decimal]:
    return dict(UsageMetric.all_orgs.filter(organization=org, metric="events").values_list("date", "value"))


# (org time zone, event instants, events per local day): the first hour after local midnight belongs
# to the new day, whatever the zone's offset (Kolkata's first local hour is still the day before in UTC).
FIRST_HOUR = {
    "utc": ("UTC", [at("UTC", D2, 0), at("UTC", D2, 0, 59), at("UTC", D1, 23, 59)], {D1: 1, D2: 2}),
    "kolkata": (
        "Asia/Kolkata",
        [at("Asia/Kolkata", D2, 0, 10), at("Asia/Kolkata", D2, 0, 59), at("Asia/Kolkata", D1, 23, 50)],
        {D1: 1, D2: 2},
    ),
    "new_york": ("America/New_York", [at("America/New_York", D2, 0, 30)], {D2: 1}),
}


@pytest.mark.parametrize("case", sorted(FIRST_HOUR))
def test_events_in_the_first_local_hour_count_on_their_local_day(org, case):
    zone, instants, expected = FIRST_HOUR[case]
    org.time_zone = zone
    org.save()
    account = AccountFactory(organization=org)
    for when in instants:
        UsageEventFactory(organization=org, account=account, user_id="u1", timestamp=when, event="Login")
    assert rollup_usage(org.pk)["events"] == len(instants)
    assert events_per_day(org) == {day: Decimal(n) for day, n in expected.items()}
