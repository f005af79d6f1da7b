"""Daily usage rollups against an independent reference computation.

``tests.usage_reference.reference`` is the obviously-correct definition of every rollup figure (spec §8,
docs/metrics.md) written in plain Python over the events as the test created them: it shares no code
with ``health.rollups``. Each case builds raw events, runs the rollup (whole, in limited steps, late,
after the purge) and compares every metric row with the reference.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone

from health import rollups
from health.models import IngestionStat, KeyFeature, UsageEvent, UsageMetric, UsageRollupState, UsageTally
from health.rollups import purge_raw_events, rollup_usage, schedule_rollup
from health.tasks import purge_raw_events_task, rollup_all_usage, rollup_usage_task

from .factories import AccountFactory
from .signal_factories import UsageEventFactory
from .usage_reference import Ev, reference

pytestmark = pytest.mark.django_db
UTC = dt.UTC
D1, D2 = dt.date(2026, 11, 2), dt.date(2026, 11, 3)

_skip_on_sqlite = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
    reason="row locks need a database server (DATABASE_URL=postgres://...): SQLite has one writer",
)


def requires_postgres(test):
    """Skipped on SQLite; marked ``postgres`` so that CI (RETAIN_REQUIRE_SERVICES=1) fails if it skips."""
    return pytest.mark.postgres(_skip_on_sqlite(test))


# --- helpers -----------------------------------------------------------------------------------------


@pytest.fixture
def org(org):
    org.raw_event_retention_days = 90
    org.save()
    return org


def store(org, events: list[Ev]) -> list[UsageEvent]:
    """Store the events as raw rows, as the tracking API would (accounts created on first use)."""
    accounts = {a.external_id: a for a in org_accounts(org)}
    rows = []
    for e in events:
        account = None
        if e.account:
            account = accounts.get(e.account) or AccountFactory(organization=org, external_id=e.account)
            accounts[e.account] = account
        rows.append(
            UsageEventFactory(
                organization=org,
                account=account,
                user_id=e.user,
                anonymous_id=e.anonymous,
                timestamp=e.when,
                event=e.name,
                properties={} if e.session is None else {"session_id": e.session},
            )
        )
    return rows


def org_accounts(org):
    from accounts.models import Account

    return Account.objects.for_org(org)


def metrics(org) -> dict:
    return {
        (m.account.external_id, m.date, m.metric): m.value
        for m in UsageMetric.all_orgs.filter(organization=org).select_related("account")
    }


def pending(org) -> int:
    return UsageEvent.all_orgs.filter(organization=org, rolled_up=False, type="track", account__isnull=False).count()


def local(zone: str, day: dt.date, hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, second, micro, tzinfo=ZoneInfo(zone))


def days_ago(n: int, hour: int = 12) -> dt.datetime:
    today = timezone.now().astimezone(UTC).date()
    day = today - dt.timedelta(days=n)
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


# --- table-driven cases --------------------------------------------------------------------------------

NY, KOLKATA, SYDNEY = "America/New_York", "Asia/Kolkata", "Australia/Sydney"
DST_START = dt.date(2026, 3, 8)  # New York springs forward: a 23-hour day
DST_END = dt.date(2026, 11, 1)  # New York falls back: a 25-hour day

CASES = {
    "utc_two_accounts_two_days": (
        "UTC",
        [
            Ev("A", "u1", local("UTC", D1, 9), "Login"),
            Ev("A", "u1", local("UTC", D1, 10)),
            Ev("A", "u2", local("UTC", D1, 23, 59)),
            Ev("A", "u1", local("UTC", D2, 0, 1)),
            Ev("B", "", local("UTC", D1, 12), anonymous="anon-7"),
            Ev("B", "", local("UTC", D1, 13), anonymous="anon-7"),
            Ev("B", "u3", local("UTC", D2, 8), "Export"),
            Ev("B", "u3", local("UTC", D2, 9), "Export"),
            Ev("B", "u4", local("UTC", D2, 11), "Export"),
            Ev("", "ghost", local("UTC", D1, 10)),  # linked to no account
        ],
    ),
    "at_local_midnight": (
        NY,
        [
            Ev("A", "u1", local(NY, D2, 0)),  # exactly local midnight: day 2
            Ev("A", "u2", local(NY, D1, 23, 59, 59, 999_999)),  # the last instant of day 1
            Ev("A", "u3", local(NY, D2, 0) - dt.timedelta(microseconds=1)),  # same instant, other spelling
        ],
    ),
    "in_the_first_local_hour": (
        KOLKATA,  # UTC+5:30: the first local hour of day 2 is still day 1 in UTC
        [
            Ev("A", "u1", local(KOLKATA, D2, 0, 10)),
            Ev("A", "u2", local(KOLKATA, D2, 0, 59)),
            Ev("A", "u1", local(KOLKATA, D2, 1, 0)),
            Ev("A", "u3", local(KOLKATA, D1, 23, 50)),
        ],
    ),
    "across_the_date_line_of_a_non_utc_org": (
        SYDNEY,
        [
            Ev("A", "u1", dt.datetime(2026, 11, 2, 13, 30, tzinfo=UTC)),  # 00:30 on Nov 3 in Sydney
            Ev("A", "u2", dt.datetime(2026, 11, 2, 12, 59, tzinfo=UTC)),  # 23:59 on Nov 2 in Sydney
        ],
    ),
    "on_a_23_hour_dst_day": (
        NY,
        [
            Ev("A", "u1", local(NY, DST_START, 0, 30)),
            Ev("A", "u2", local(NY, DST_START, 3, 30)),  # after the skipped hour
            Ev("A", "u3", local(NY, DST_START, 23, 30)),
            Ev("A", "u4", local(NY, DST_START + dt.timedelta(days=1), 0, 0)),
        ],
    ),
    "on_a_25_hour_dst_day": (
        NY,
        [
            Ev("A", "u1", dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),  # 01:30 EDT
            Ev("A", "u2", dt.datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),  # 01:30 EST, the repeated hour
            Ev("A", "u3", dt.datetime(2026, 11, 2, 4, 59, tzinfo=UTC)),  # 23:59 EST, still Nov 1
            Ev("A", "u3", dt.datetime(2026, 11, 2, 5, 0, tzinfo=UTC)),  # midnight: Nov 2
        ],
    ),
    "sessions_and_feature_users": (
        "UTC",
        [
            Ev("A", "u1", local("UTC", D1, 9), "Export", session="s1"),
            Ev("A", "u1", local("UTC", D1, 10), "Export", session="s1"),
            Ev("A", "u2", local("UTC", D1, 11), "Export", session="s2"),
            Ev("A", "u3", local("UTC", D1, 12), "Report Built", session="s2"),
            Ev("A", "u3", local("UTC", D2, 9), "Report Built"),
            Ev("A", "", local("UTC", D2, 9), "Export", anonymous="anon-1"),
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rollup_figures_equal_the_reference(org, case):
    zone, events = CASES[case]
    org.time_zone = zone
    org.save()
    KeyFeature.all_orgs.create(organization=org, event_name="Export", label="Export")
    store(org, events)
    counted = sum(1 for e in events if e.account)
    assert rollup_usage(org.pk)["events"] == counted
    assert metrics(org) == reference(events, zone, {"Export"})
    assert pending(org) == 0


def test_a_backfill_far_past_the_retention_window_counts_exactly(org):
    """Retention (90 days here) limits how long raw events are kept, never what is counted."""
    oldest_complete = (timezone.now() - dt.timedelta(days=org.raw_event_retention_days - 1)).date()
    boundary = dt.datetime.combine(oldest_complete, dt.time(0, 30), tzinfo=UTC)
    events = [
        Ev("A", "u1", boundary),  # the oldest complete day of the window
        Ev("A", "u2", boundary - dt.timedelta(days=1)),  # the day before it
        Ev("A", "u1", days_ago(200)),
        Ev("A", "u2", days_ago(200, hour=13)),
        Ev("A", "u1", days_ago(1)),
    ]
    store(org, events)
    assert rollup_usage(org.pk)["events"] == 5
    assert metrics(org) == reference(events)


def test_late_events_of_a_counted_day_keep_every_figure_exact(org):
    first = [Ev("A", "u1", days_ago(200), "Login"), Ev("A", "u2", days_ago(200, 14)), Ev("A", "u1", days_ago(1))]
    store(org, first)
    rollup_usage(org.pk)
    # The same old day again: a user already counted (distinct counts must not grow) and a new one.
    late = [Ev("A", "u1", days_ago(200, 20), "Login"), Ev("A", "u9", days_ago(200, 21), "Login")]
    store(org, late)
    assert rollup_usage(org.pk)["events"] == 2
    assert metrics(org) == reference(first + late)


def test_purging_raw_events_changes_no_figure_and_late_events_still_merge_exactly(org):
    first = [
        Ev("A", "u1", days_ago(200), session="s1"),
        Ev("A", "u2", days_ago(200, 14), "Export", session="s2"),
        Ev("B", "u3", days_ago(150)),
    ]
    rows = store(org, first)
    rollup_usage(org.pk)
    before = metrics(org)
    # Received long ago (as a replay months back would have been): past retention, so purged.
    UsageEvent.all_orgs.filter(pk__in=[r.pk for r in rows]).update(received_at=timezone.now() - dt.timedelta(days=91))
    assert purge_raw_events(org.pk) == {"deleted": 3, "unattributed_expired": 0}
    assert not UsageEvent.all_orgs.filter(organization=org).exists()
    assert metrics(org) == before
    late = [Ev("A", "u1", days_ago(200, 22), session="s1"), Ev("A", "u4", days_ago(200, 23), "Export", session="s3")]
    store(org, late)
    rollup_usage(org.pk)
    assert metrics(org) == reference(first + late)


def test_limit_counts_exactly_that_many_events_per_call(org, monkeypatch):
    events = [Ev("A", f"u{i % 4}", local("UTC", D1 + dt.timedelta(days=i % 3), 8 + i)) for i in range(10)]
    store(org, events)
    assert rollup_usage(org.pk, limit=3)["events"] == 3
    assert pending(org) == 7
    assert rollup_usage(org.pk, limit=1)["events"] == 1
    assert pending(org) == 6
    monkeypatch.setattr(rollups, "BATCH", 2)  # a limit spanning several transactions is still exact
    assert rollup_usage(org.pk, limit=5)["events"] == 5
    assert pending(org) == 1
    assert rollup_usage(org.pk, limit=100)["events"] == 1
    assert metrics(org) == reference(events)


def test_without_a_limit_every_batch_is_taken(org, monkeypatch):
    events = [Ev("A", f"u{i}", local("UTC", D1, i)) for i in range(7)]
    store(org, events)
    monkeypatch.setattr(rollups, "BATCH", 3)
    assert rollup_usage(org.pk)["events"] == 7
    assert pending(org) == 0 and metrics(org) == reference(events)


def test_rerunning_changes_nothing(org):
    events = CASES["utc_two_accounts_two_days"][1]
    store(org, events)
    rollup_usage(org.pk)
    before = list(UsageMetric.all_orgs.filter(organization=org).order_by("id").values())
    tallies = list(UsageTally.all_orgs.filter(organization=org).order_by("id").values())
    assert rollup_usage(org.pk) == {"events": 0, "days": 0, "metrics": 0}
    assert list(UsageMetric.all_orgs.filter(organization=org).order_by("id").values()) == before
    assert list(UsageTally.all_orgs.filter(organization=org).order_by("id").values()) == tallies


def test_only_counted_events_are_marked_counted(org):
    """The unlinked user's event stays pending (a later group call attributes it); identify/group are not usage."""
    a = AccountFactory(organization=org, external_id="A")
    store(org, [Ev("A", "u1", local("UTC", D1, 9)), Ev("", "ghost", local("UTC", D1, 10))])
    UsageEventFactory(account=a, type="identify", event="", user_id="u1", timestamp=local("UTC", D1, 9))
    rollup_usage(org.pk)
    assert set(UsageEvent.all_orgs.filter(organization=org, rolled_up=False).values_list("type", "user_id")) == {
        ("track", "ghost"),
        ("identify", "u1"),
    }
    assert sum(t.events for t in UsageTally.all_orgs.filter(organization=org)) == 1


def test_every_event_marked_counted_is_in_the_tally_exactly_once(org, monkeypatch):
    """No path marks an event counted without counting it: after partial runs, late events and reruns,
    the tally of each account-day holds exactly its events marked ``rolled_up``."""
    from django.db.models import Count, Sum

    monkeypatch.setattr(rollups, "BATCH", 4)
    events = [Ev("A" if i % 3 else "B", f"u{i % 5}", days_ago(i % 7 * 40, 8 + i % 12)) for i in range(30)]
    store(org, events[:20])
    rollup_usage(org.pk, limit=7)
    store(org, events[20:])
    rollup_usage(org.pk, limit=9)
    rollup_usage(org.pk)
    rollup_usage(org.pk)
    tz = ZoneInfo(org.time_zone)
    marked: dict = {}
    for account_id, ts in UsageEvent.all_orgs.filter(organization=org, rolled_up=True).values_list(
        "account_id", "timestamp"
    ):
        key = (account_id, ts.astimezone(tz).date())
        marked[key] = marked.get(key, 0) + 1
    tallied = {
        (row["account_id"], row["date"]): row["n"]
        for row in UsageTally.all_orgs.filter(organization=org).values("account_id", "date").annotate(n=Sum("events"))
    }
    assert tallied == marked and sum(marked.values()) == 30
    assert not UsageEvent.all_orgs.filter(organization=org, rolled_up=False).aggregate(n=Count("id"))["n"]
    assert metrics(org) == reference(events)


def test_recompute_since_takes_a_local_day_of_the_org_time_zone(org):
    org.time_zone = NY
    org.save()
    events = [
        Ev("A", "u1", dt.datetime(2026, 11, 3, 3, tzinfo=UTC), "Export"),  # 22:00 on Nov 2 in New York
        Ev("A", "u2", dt.datetime(2026, 11, 3, 6, tzinfo=UTC), "Export"),  # 01:00 on Nov 3 in New York
    ]
    store(org, events)
    rollup_usage(org.pk)
    KeyFeature.all_orgs.create(organization=org, event_name="Export", label="Export")
    counts = rollup_usage(org.pk, recompute_since=D2)
    assert counts["days"] == 1
    features = {k: v for k, v in metrics(org).items() if k[2].startswith("feature_users:")}
    assert features == {("A", D2, "feature_users:Export"): 1}  # Nov 2 (local) is before the day asked
    rollup_usage(org.pk, recompute_since=D1)
    assert metrics(org) == reference(events, NY, {"Export"})


def test_a_long_session_id_stays_distinct(org):
    long_a, long_b = "s" * 300 + "a", "s" * 300 + "b"  # longer than the column: stored as digests
    events = [
        Ev("A", "u1", local("UTC", D1, 9), session=long_a),
        Ev("A", "u1", local("UTC", D1, 10), session=long_b),
        Ev("A", "u1", local("UTC", D1, 11), session=long_a),
    ]
    store(org, events)
    rollup_usage(org.pk)
    assert metrics(org)[("A", D1, "sessions")] == 2


def test_imported_metrics_of_the_same_day_are_kept(org):
    a = AccountFactory(organization=org, external_id="A")
    UsageMetric.all_orgs.create(organization=org, account=a, date=D1, metric="seats_used", value=7)
    store(org, [Ev("A", "u1", local("UTC", D1, 9))])
    rollup_usage(org.pk)
    assert metrics(org)[("A", D1, "seats_used")] == 7


def test_an_event_name_of_200_characters_is_countable(org):
    name = "N" * 200
    store(org, [Ev("A", "u1", local("UTC", D1, 9), name)])
    KeyFeature.all_orgs.create(organization=org, event_name=name, label="Long")
    rollup_usage(org.pk)
    assert metrics(org)[("A", D1, f"feature_users:{name}")] == 1


def test_rollup_never_reads_another_organization(org, other_org):
    AccountFactory(organization=other_org, external_id="A")
    store(org, [Ev("A", "u1", local("UTC", D1, 9))])
    theirs = UsageEventFactory(
        organization=other_org, account=org_accounts(other_org).get(), user_id="u1", timestamp=local("UTC", D1, 9)
    )
    assert rollup_usage(org.pk)["events"] == 1
    assert not UsageMetric.all_orgs.filter(organization=other_org).exists()
    assert UsageEvent.all_orgs.get(pk=theirs.pk).rolled_up is False


# --- purge ------------------------------------------------------------------------------------------


def test_purge_deletes_by_receipt_only_what_is_done_with_and_counts_what_was_never_attributed(org):
    a = AccountFactory(organization=org)
    now = timezone.now()
    old_counted = UsageEventFactory(account=a, rolled_up=True)
    old_pending = UsageEventFactory(account=a)  # a lagging rollup must not lose it
    old_identify = UsageEventFactory(account=a, type="identify", event="")
    old_unlinked = UsageEventFactory(organization=org, account=None, user_id="ghost")
    recent_counted = UsageEventFactory(account=a, rolled_up=True)
    recent_unlinked = UsageEventFactory(organization=org, account=None, user_id="ghost-2")
    # An event dated long ago but received yesterday (a backfill) is not "old": retention counts from receipt.
    backfilled = UsageEventFactory(account=a, rolled_up=True, timestamp=now - dt.timedelta(days=400))
    aged = [old_counted.pk, old_pending.pk, old_identify.pk, old_unlinked.pk]
    UsageEvent.all_orgs.filter(pk__in=aged).update(received_at=now - dt.timedelta(days=91))
    assert purge_raw_events(org.pk) == {"deleted": 3, "unattributed_expired": 1}
    assert set(UsageEvent.all_orgs.filter(organization=org).values_list("pk", flat=True)) == {
        old_pending.pk,
        recent_counted.pk,
        recent_unlinked.pk,
        backfilled.pk,
    }
    stats = dict(IngestionStat.all_orgs.filter(organization=org).values_list("name", "value"))
    assert stats == {"purged": 2, "unattributed_expired": 1}


# --- tasks and scheduling ----------------------------------------------------------------------------


def test_rollup_task_counts_records_its_run_and_clears_the_schedule_flag(org, monkeypatch):
    from cs_platform.jobs import create_job

    queued = []
    monkeypatch.setattr("health.tasks.queue_rescore", lambda org_id, touched: queued.append((org_id, touched)))
    events = CASES["utc_two_accounts_two_days"][1]
    store(org, events)
    UsageRollupState.all_orgs.create(organization=org, scheduled_at=timezone.now())
    job = create_job(organization_id=org.pk, kind="rollup_usage")
    assert rollup_usage_task(org.pk, job_id=job.pk)["events"] == 9
    job.refresh_from_db()
    assert job.counts["events"] == 9
    assert metrics(org) == reference(events)
    state = UsageRollupState.all_orgs.get(organization=org)
    assert state.scheduled_at is None and state.last_run_events == 9
    accounts = {a.external_id: a.pk for a in org_accounts(org)}
    assert queued == [(org.pk, {accounts["A"]: {D1, D2}, accounts["B"]: {D1, D2}})]
    assert purge_raw_events_task(org.pk) == 0


def test_schedule_rollup_queues_one_run_until_the_run_starts(org, monkeypatch):
    sent = []
    monkeypatch.setattr(rollup_usage_task, "apply_async", lambda args, countdown: sent.append((args, countdown)))
    assert schedule_rollup(org.pk) is True
    assert schedule_rollup(org.pk) is False  # one pending run per organization
    assert sent == [((org.pk,), rollups.ROLLUP_DELAY_SECONDS)]
    rollups.start_rollup(org.pk)  # the task starts: the next ingest queues the next run
    assert schedule_rollup(org.pk) is True
    # A queued run that never started (broker lost it) stops debouncing after a while.
    UsageRollupState.all_orgs.filter(organization=org).update(
        scheduled_at=timezone.now() - rollups.SCHEDULE_STALE - dt.timedelta(seconds=1)
    )
    assert schedule_rollup(org.pk) is True
    assert len(sent) == 3


def test_a_broker_failure_leaves_nothing_scheduled(org, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(rollup_usage_task, "apply_async", down)
    assert schedule_rollup(org.pk) is False
    assert UsageRollupState.all_orgs.get(organization=org).scheduled_at is None  # the next ingest tries again


def test_beat_fan_out_queues_only_organizations_with_pending_events(org, other_org, monkeypatch):
    from cs_platform.celery import app

    monkeypatch.setattr("health.tasks.queue_rescore", lambda *args: None)
    events = CASES["utc_two_accounts_two_days"][1]
    store(org, events)
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        assert rollup_all_usage() == 1  # org has pending events, other_org none
        assert rollup_all_usage() == 0  # everything is counted now
    finally:
        app.conf.task_always_eager = before
    assert metrics(org) == reference(events)


def test_beat_schedule_keeps_the_five_minute_safety_net(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["rollup-usage"]
    assert entry == {"task": "health.tasks.rollup_all_usage", "schedule": 300}


# --- concurrency, on Postgres ------------------------------------------------------------------------


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_rollups_of_one_org_serialise_while_event_inserts_go_through(org, monkeypatch):
    """Connection 1 holds a rollup's organization lock; connection 2's rollup must wait for it, while a
    third connection stores events without waiting (the lock is FOR NO KEY UPDATE)."""
    from health.services import IncomingEvent, ingest_events

    monkeypatch.setattr(rollup_usage_task, "apply_async", lambda *args, **kwargs: None)  # no broker here

    store(org, [Ev("A", "u1", local("UTC", D1, 9))])
    holding, release = threading.Event(), threading.Event()
    done: dict[str, float] = {}
    errors: list[BaseException] = []

    def guarded(name, fn):
        def run():
            try:
                fn()
                done[name] = time.monotonic()
            except BaseException as exc:  # surfaced in the main thread
                errors.append(exc)
            finally:
                connections.close_all()

        return threading.Thread(target=run, name=name)

    def hold_lock():
        with transaction.atomic():
            rollups._lock_org(org.pk)
            holding.set()
            release.wait(10)

    def second_rollup():
        holding.wait(10)
        rollup_usage(org.pk)

    def insert_events():
        holding.wait(10)
        event = IncomingEvent(
            index=0, type="track", message_id="late-1", timestamp=local("UTC", D1, 10), user_id="u2", event="Login"
        )
        ingest_events(org, [event])

    holder = guarded("holder", hold_lock)
    rollup = guarded("rollup", second_rollup)
    inserter = guarded("inserter", insert_events)
    holder.start()
    assert holding.wait(10)
    rollup.start()
    inserter.start()
    inserter.join(10)
    time.sleep(0.5)  # give the second rollup every chance to (wrongly) finish
    assert "inserter" in done, errors  # the insert did not wait for the lock
    assert "rollup" not in done, "a second rollup ran while another held the organization"
    released_at = time.monotonic()
    release.set()
    for thread in (holder, rollup):
        thread.join(10)
    assert not errors, errors
    assert done["rollup"] >= released_at
    assert pending(org) == 0


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_ingests_queue_exactly_one_rollup(org, monkeypatch):
    sent: list = []
    monkeypatch.setattr(rollup_usage_task, "apply_async", lambda args, countdown: sent.append(args))
    UsageRollupState.all_orgs.create(organization=org)
    barrier = threading.Barrier(6)
    results: list[bool] = []

    def one():
        try:
            barrier.wait(10)
            results.append(schedule_rollup(org.pk))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results) == [False] * 5 + [True]
    assert sent == [(org.pk,)]
    assert connection.vendor == "postgresql"
