"""Rollup promises stated by hand, one test per promise, for the mutants of ``health/rollups.py`` that the
reference comparison of ``tests/test_rollups.py`` alone would let through (docs/testing.md, "Mutation
testing"). Every expected figure is written out here, never computed by ``health.rollups``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from health.models import UsageEvent, UsageMetric
from health.rollups import purge_raw_events, rollup_usage

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


# --- what a recompute_since reports and hands on -------------------------------------------------------


def test_recompute_since_reports_its_rows_and_hands_on_the_days_it_rewrote(org):
    """A recompute rewrites exactly the account-days of the tally from the local day asked, reports how
    many metric rows it wrote, and gives those days to the caller (whose health is then recomputed)."""
    a, b = AccountFactory(organization=org), AccountFactory(organization=org)
    for account, when in ((a, at("UTC", D1, 9)), (a, at("UTC", D2, 9)), (b, at("UTC", D2, 10))):
        UsageEventFactory(organization=org, account=account, user_id="u1", timestamp=when, event="Login")
    rollup_usage(org.pk)
    touched: dict[int, set[dt.date]] = {}
    counts = rollup_usage(org.pk, recompute_since=D2, touched_days=touched)
    # Each account-day has 3 rows: events, active_users, event:Login (no session, no key feature).
    assert counts == {"events": 0, "days": 2, "metrics": 6}
    assert touched == {a.pk: {D2}, b.pk: {D2}}


def test_one_call_that_counts_and_recomputes_reports_both(org):
    """Pending events counted and a recompute in the same call: the counts add up."""
    account = AccountFactory(organization=org)
    UsageEventFactory(organization=org, account=account, user_id="u1", timestamp=at("UTC", D1, 9), event="Login")
    rollup_usage(org.pk)
    UsageEventFactory(organization=org, account=account, user_id="u2", timestamp=at("UTC", D2, 9), event="Login")
    # Counting D2 writes its 3 rows; recomputing from D1 rewrites D1 and D2 again (3 rows each).
    assert rollup_usage(org.pk, recompute_since=D1) == {"events": 1, "days": 1 + 2, "metrics": 3 + 6}


def test_day_figures_read_two_queries_per_31_days(org, django_assert_num_queries):
    """The figures of many days are read in grouped queries per 31 days, not per day: 40 days of one
    account take the key features query and two queries for each of the two chunks of days."""
    from health.rollups import day_figures

    account = AccountFactory(organization=org)
    days = {D1 + dt.timedelta(days=i) for i in range(40)}
    with django_assert_num_queries(1 + 2 * 2):
        assert day_figures(org.pk, {account.pk: days}) == {}


# --- the purge stays in its organization ---------------------------------------------------------------


def test_purge_deletes_only_the_organizations_own_events(org, other_org):
    old = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    mine = UsageEventFactory(organization=org, account=AccountFactory(organization=org), received_at=old)
    theirs = UsageEventFactory(organization=other_org, account=AccountFactory(organization=other_org), received_at=old)
    UsageEvent.all_orgs.filter(pk__in=[mine.pk, theirs.pk]).update(rolled_up=True, received_at=old)
    assert purge_raw_events(org.pk) == {"deleted": 1, "unattributed_expired": 0}
    assert set(UsageEvent.all_orgs.values_list("pk", flat=True)) == {theirs.pk}


# --- small promises: the stored session key, the run record, the default time zone -------------------


SESSION_KEYS = [
    (None, ""),
    ("", ""),
    (42, "42"),
    ("s1", "s1"),
    ("x" * 200, "x" * 200),  # fits the column: kept as sent
    ("x" * 201, "sha256:" + hashlib.sha256(b"x" * 201).hexdigest()),
]


@pytest.mark.parametrize(("value", "stored"), SESSION_KEYS, ids=["none", "empty", "number", "text", "200", "201"])
def test_session_key_is_the_text_or_the_sha256_of_a_long_one(value, stored):
    from health.rollups import session_key

    assert session_key(value) == stored


def test_the_first_run_record_says_when_it_ran(org):
    from health.models import UsageRollupState
    from health.rollups import record_rollup

    UsageRollupState.all_orgs.filter(organization=org).delete()
    before = timezone.now()
    record_rollup(org.pk, 7)
    state = UsageRollupState.all_orgs.get(organization=org)
    assert state.last_run_events == 7
    assert state.last_run_at is not None and before <= state.last_run_at <= timezone.now()


def test_a_run_record_that_races_another_first_record_does_not_fail(org, monkeypatch):
    """Two first runs of an organization: both find no row to update, the second insert is ignored."""
    from health.models import UsageRollupState
    from health.rollups import record_rollup

    UsageRollupState.all_orgs.filter(organization=org).delete()
    real_filter = UsageRollupState.all_orgs.filter

    class Raced:
        def update(self, **fields):
            # The other run inserts its row between this run's UPDATE (no row yet) and its INSERT.
            UsageRollupState.all_orgs.create(organization=org, last_run_events=3)
            return 0

    monkeypatch.setattr(UsageRollupState.all_orgs, "filter", lambda **kw: Raced())
    record_rollup(org.pk, 7)
    monkeypatch.setattr(UsageRollupState.all_orgs, "filter", real_filter)
    assert list(UsageRollupState.all_orgs.filter(organization=org).values_list("last_run_events", flat=True)) == [3]


def test_an_organization_without_a_time_zone_counts_in_utc(org):
    from health.rollups import local_today

    org.time_zone = ""
    before = dt.datetime.now(dt.UTC).date()
    today = local_today(org)
    assert today in {before, dt.datetime.now(dt.UTC).date()}


# --- rescoring the health history that read changed usage ---------------------------------------------


class Recorder:
    """A job handle that records what the body reports."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.done: list[tuple[int, bool]] = []
        self.counts: dict[str, int] = {}

    def set_total(self, total: int) -> None:
        self.total = total

    def advance(self, done: int, *, force: bool = False) -> None:
        self.done.append((done, force))

    def count(self, **counts: int) -> None:
        self.counts.update(counts)


def test_rescoring_usage_history_recomputes_the_snapshots_that_read_the_changed_days(org, monkeypatch):
    """Usage of day d is read by the snapshots of [d, d + 59] (60-day lookback): exactly those existing
    snapshots of the account are recomputed, each as of its own day, then today's score."""
    import health.rollups
    from health.rollups import rescore_usage_history

    from .signal_factories import HealthSnapshotFactory

    calls: list[tuple] = []
    monkeypatch.setattr(
        health.rollups,  # rollups calls the recompute it imported from services
        "recompute_health",
        lambda org_arg, ids, **kw: calls.append((org_arg.pk, list(ids), kw.get("as_of"), kw.get("latest", True))),
    )
    a, b, other = (AccountFactory(organization=org) for _ in range(3))
    today = timezone.localdate()
    changed = today - dt.timedelta(days=100)
    inside = [changed, changed + dt.timedelta(days=59)]
    outside = [changed - dt.timedelta(days=1), changed + dt.timedelta(days=60)]
    for day in inside + outside:
        HealthSnapshotFactory(account=a, date=day)
        HealthSnapshotFactory(account=other, date=day)  # not in the spans: never recomputed
    HealthSnapshotFactory(account=b, date=changed + dt.timedelta(days=1))
    job = Recorder()
    spans = [[a.pk, changed.isoformat(), changed.isoformat()], [b.pk, changed.isoformat(), changed.isoformat()]]
    counts = rescore_usage_history(org.pk, spans, job=job)
    assert counts == {"days": 3, "snapshots": 3, "accounts": 2}
    assert calls == [
        (org.pk, [a.pk], changed, False),
        (org.pk, [b.pk], changed + dt.timedelta(days=1), False),
        (org.pk, [a.pk], changed + dt.timedelta(days=59), False),
        (org.pk, [a.pk, b.pk], None, True),  # today's score of both accounts
    ]
    # One step per past day, then today's score (forced, so the page shows the run finished).
    assert job.total == 4 and job.done == [(1, False), (2, False), (3, False), (4, True)] and job.counts == counts
    # Without a job handle the same work is done.
    calls.clear()
    assert rescore_usage_history(org.pk, spans) == counts and len(calls) == 4


def test_rescoring_usage_history_goes_up_to_yesterday_and_leaves_today_to_the_latest_score(org, monkeypatch):
    import health.rollups
    from health.rollups import rescore_usage_history

    from .signal_factories import HealthSnapshotFactory

    calls: list[tuple] = []
    monkeypatch.setattr(
        health.rollups,  # rollups calls the recompute it imported from services
        "recompute_health",
        lambda org_arg, ids, **kw: calls.append((list(ids), kw.get("as_of"), kw.get("latest", True))),
    )
    account = AccountFactory(organization=org)
    today = timezone.localdate()
    yesterday = today - dt.timedelta(days=1)
    changed = today - dt.timedelta(days=30)  # its lookback window [changed, changed + 59] runs past today
    for day in (changed, yesterday, today):
        HealthSnapshotFactory(account=account, date=day)
    counts = rescore_usage_history(org.pk, [[account.pk, changed.isoformat(), changed.isoformat()]])
    assert counts == {"days": 2, "snapshots": 2, "accounts": 1}
    assert calls == [([account.pk], changed, False), ([account.pk], yesterday, False), ([account.pk], None, True)]


def test_a_rollup_of_past_days_queues_todays_score_and_a_recorded_history_rescore(org, monkeypatch):
    from accounts.models import JobRun
    from health import tasks
    from health.rollups import local_today, queue_rescore

    sent: dict[str, tuple] = {}
    monkeypatch.setattr(tasks.recompute_accounts, "apply_async", lambda args, kwargs: sent.update(now=(args, kwargs)))
    monkeypatch.setattr(tasks.rescore_usage_history_task, "delay", lambda *a, **kw: sent.update(history=(a, kw)))
    a, b = AccountFactory(organization=org), AccountFactory(organization=org)
    today = local_today(org)
    past = today - dt.timedelta(days=3)
    queue_rescore(org.pk, {b.pk: {today}, a.pk: {past, today - dt.timedelta(days=1), today}})
    assert sent["now"] == ((org.pk,), {"account_ids": sorted([a.pk, b.pk])})
    job = JobRun.all_orgs.get(organization=org, kind="rescore_usage_history")
    assert job.params == {"accounts": 1}
    # Only a's past days: from its first to its last day before today.
    args, kwargs = sent["history"]
    assert args == (org.pk, [[a.pk, past.isoformat(), (today - dt.timedelta(days=1)).isoformat()]])
    assert kwargs == {"job_id": job.pk}


# --- a rollup that cannot be queued says so in the log, with its organization -------------------------


def test_a_rollup_that_cannot_be_queued_is_logged_with_its_organization(org, monkeypatch, caplog):
    """The events stay stored either way (the beat entry counts them); the log names the organization."""
    from django.db import DatabaseError

    from health import rollups
    from health.tasks import rollup_usage_task

    expected = f"could not queue the usage rollup of organization {org.pk}"

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(rollup_usage_task, "apply_async", broker_down)
    with caplog.at_level("ERROR", logger="health.ingest_state"):
        assert rollups.schedule_rollup(org.pk) is False
    assert [r.getMessage() for r in caplog.records if r.name == "health.ingest_state"] == [expected]

    caplog.clear()

    def database_down(*args, **kwargs):
        raise DatabaseError("connection lost")

    monkeypatch.setattr(rollups.connection, "cursor", database_down)
    with caplog.at_level("ERROR", logger="health.ingest_state"):
        assert rollups.schedule_rollup(org.pk) is False
    assert [r.getMessage() for r in caplog.records if r.name == "health.ingest_state"] == [expected]
