"""Daily usage rollups: exact hand-computed counts, time zones, idempotence, late events, retention."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from health.models import UsageEvent, UsageMetric
from health.rollups import purge_raw_events, rollup_usage
from health.tasks import purge_raw_events_task, rollup_all_usage, rollup_usage_task

from .factories import AccountFactory
from .signal_factories import UsageEventFactory

pytestmark = pytest.mark.django_db
UTC = dt.UTC
D1, D2 = dt.date(2026, 11, 2), dt.date(2026, 11, 3)


@pytest.fixture
def org(org):
    org.raw_event_retention_days = 36_500  # fixed 2026 dates stay inside the window whenever the suite runs
    org.save()
    return org


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def track(account, user: str, when: dt.datetime, event: str = "Page Viewed", **kwargs) -> UsageEvent:
    return UsageEventFactory(account=account, organization=account.organization if account else kwargs.pop("org"),
                             user_id=user, timestamp=when, event=event, **kwargs)  # fmt: skip


def metrics(org) -> dict[tuple[str, dt.date, str], Decimal]:
    return {
        (m.account.external_id, m.date, m.metric): m.value
        for m in UsageMetric.all_orgs.filter(organization=org).select_related("account")
    }


@pytest.fixture
def two_accounts(org):
    a = AccountFactory(organization=org, external_id="A")
    b = AccountFactory(organization=org, external_id="B")
    # Account A, day 1: u1 ×2 (Login, Page Viewed), u2 ×1 (Page Viewed). Day 2: u1 (active both days) ×1.
    track(a, "u1", at(D1, 9), "Login")
    track(a, "u1", at(D1, 10))
    track(a, "u2", at(D1, 23, 59))
    track(a, "u1", at(D2, 0, 1))
    # Account B, day 1: one anonymous visitor (no user id) ×2. Day 2: u3 ×3 Export, u4 ×1 Export.
    track(b, "", at(D1, 12), anonymous_id="anon-7")
    track(b, "", at(D1, 13), anonymous_id="anon-7")
    for hour in (8, 9, 10):
        track(b, "u3", at(D2, hour), "Export")
    track(b, "u4", at(D2, 11), "Export")
    # Not counted: a user linked to no account, and identify/group calls.
    track(None, "ghost", at(D1, 10), org=org)
    UsageEventFactory(account=a, type="identify", event="", user_id="u1", timestamp=at(D1, 9))
    UsageEventFactory(account=a, type="group", event="", user_id="u1", timestamp=at(D1, 9))
    return a, b


EXPECTED = {
    ("A", D1, "events"): 3, ("A", D1, "active_users"): 2, ("A", D1, "event:Login"): 1,
    ("A", D1, "event:Page Viewed"): 2,
    ("A", D2, "events"): 1, ("A", D2, "active_users"): 1, ("A", D2, "event:Page Viewed"): 1,
    ("B", D1, "events"): 2, ("B", D1, "active_users"): 1, ("B", D1, "event:Page Viewed"): 2,
    ("B", D2, "events"): 4, ("B", D2, "active_users"): 2, ("B", D2, "event:Export"): 4,
}  # fmt: skip


def test_hand_computed_counts_for_two_accounts_over_two_days(org, two_accounts):
    counts = rollup_usage(org.pk)
    assert metrics(org) == {key: Decimal(n) for key, n in EXPECTED.items()}
    assert counts == {"events": 10, "days": 4, "metrics": len(EXPECTED), "too_old": 0}
    # The unlinked user's event stays pending (a later group call may link it); identify/group are never rolled.
    assert set(UsageEvent.all_orgs.filter(organization=org, rolled_up=False).values_list("type", "user_id")) == {
        ("track", "ghost"), ("identify", "u1"), ("group", "u1"),
    }  # fmt: skip


def test_rerunning_changes_nothing(org, two_accounts):
    rollup_usage(org.pk)
    before = list(UsageMetric.all_orgs.filter(organization=org).order_by("id").values())
    assert rollup_usage(org.pk) == {"events": 0, "days": 0, "metrics": 0, "too_old": 0}
    assert list(UsageMetric.all_orgs.filter(organization=org).order_by("id").values()) == before


def test_batches_give_the_same_result_as_one_run(org, two_accounts):
    while rollup_usage(org.pk, limit=3)["events"]:
        pass
    assert metrics(org) == {key: Decimal(n) for key, n in EXPECTED.items()}


def test_late_event_for_a_rolled_day_updates_it_exactly(org, two_accounts):
    a, _ = two_accounts
    rollup_usage(org.pk)
    track(a, "u9", at(D1, 15), "Login")  # arrives after day 1 was rolled up
    counts = rollup_usage(org.pk)
    assert counts["events"] == 1 and counts["days"] == 1
    expected = {key: Decimal(n) for key, n in EXPECTED.items()}
    expected.update({("A", D1, "events"): 4, ("A", D1, "active_users"): 3, ("A", D1, "event:Login"): 2})
    assert metrics(org) == expected


def test_org_time_zone_moves_an_event_across_midnight(org):
    a = AccountFactory(organization=org, external_id="A")
    track(a, "u1", at(D2, 3))  # 03:00 UTC on day 2 is 22:00 on day 1 in New York (UTC-5 in November)
    track(a, "u2", at(D2, 6))  # 01:00 on day 2 in New York
    org.time_zone = "America/New_York"
    org.save()
    rollup_usage(org.pk)
    assert metrics(org) == {
        ("A", D1, "events"): 1, ("A", D1, "active_users"): 1, ("A", D1, "event:Page Viewed"): 1,
        ("A", D2, "events"): 1, ("A", D2, "active_users"): 1, ("A", D2, "event:Page Viewed"): 1,
    }  # fmt: skip


def test_sessions_only_where_events_carry_a_session_id(org):
    a = AccountFactory(organization=org, external_id="A")
    track(a, "u1", at(D1, 9), properties={"session_id": "s1"})
    track(a, "u1", at(D1, 10), properties={"session_id": "s1"})
    track(a, "u1", at(D1, 11), properties={"session_id": "s2"})
    track(a, "u1", at(D2, 9))
    rollup_usage(org.pk)
    assert metrics(org)[("A", D1, "sessions")] == 2
    assert ("A", D2, "sessions") not in metrics(org)


def test_imported_metrics_of_the_same_day_are_kept(org):
    a = AccountFactory(organization=org, external_id="A")
    UsageMetric.all_orgs.create(organization=org, account=a, date=D1, metric="seats_used", value=7)
    track(a, "u1", at(D1, 9))
    rollup_usage(org.pk)
    assert metrics(org)[("A", D1, "seats_used")] == 7


def test_rollup_never_reads_another_organization(org, other_org):
    mine, theirs = AccountFactory(organization=org), AccountFactory(organization=other_org)
    track(mine, "u1", at(D1, 9))
    track(theirs, "u1", at(D1, 9))
    assert rollup_usage(org.pk)["events"] == 1
    assert not UsageMetric.all_orgs.filter(organization=other_org).exists()
    assert UsageEvent.all_orgs.get(organization=other_org).rolled_up is False


def test_purge_deletes_only_old_events_that_are_done_with(org):
    org.raw_event_retention_days = 30
    org.save()
    a = AccountFactory(organization=org)
    now = timezone.now()
    old_rolled = track(a, "u1", now - dt.timedelta(days=40), rolled_up=True)
    old_pending = track(a, "u1", now - dt.timedelta(days=40))  # a lagging rollup must not lose it
    old_identify = UsageEventFactory(account=a, type="identify", event="", timestamp=now - dt.timedelta(days=40))
    old_unlinked = track(None, "ghost", now - dt.timedelta(days=40), org=org)
    recent_rolled = track(a, "u1", now - dt.timedelta(days=2), rolled_up=True)
    # received_at is auto_now_add: age the old ones as if they had been received 40 days ago.
    ids = [old_rolled.pk, old_pending.pk, old_identify.pk, old_unlinked.pk]
    UsageEvent.all_orgs.filter(pk__in=ids).update(received_at=now - dt.timedelta(days=40))
    assert purge_raw_events(org.pk) == 3
    assert set(UsageEvent.all_orgs.filter(organization=org).values_list("pk", flat=True)) == {
        old_pending.pk, recent_rolled.pk,
    }  # fmt: skip


def test_late_event_for_an_already_purged_day_is_not_counted(org):
    org.raw_event_retention_days = 30
    org.save()
    a = AccountFactory(organization=org)
    track(a, "u1", timezone.now() - dt.timedelta(days=45))
    assert rollup_usage(org.pk) == {"events": 0, "days": 0, "metrics": 0, "too_old": 1}
    assert not UsageMetric.all_orgs.filter(organization=org).exists()
    assert UsageEvent.all_orgs.get(organization=org).rolled_up is True


def test_tasks_roll_up_and_record_their_run(org, other_org, two_accounts):
    from cs_platform.jobs import create_job

    job = create_job(organization_id=org.pk, kind="rollup_usage")
    assert rollup_usage_task(org.pk, job_id=job.pk)["events"] == 10
    job.refresh_from_db()
    assert job.counts["events"] == 10
    assert metrics(org) == {key: Decimal(n) for key, n in EXPECTED.items()}
    assert purge_raw_events_task(org.pk) == 0


def test_beat_fan_out_queues_only_organizations_with_pending_events(org, other_org, two_accounts):
    from cs_platform.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        assert rollup_all_usage() == 1  # org has pending events, other_org none
        assert rollup_all_usage() == 0  # everything is rolled up now
    finally:
        app.conf.task_always_eager = before
    assert metrics(org) == {key: Decimal(n) for key, n in EXPECTED.items()}


def test_beat_schedule_runs_the_fan_out_every_five_minutes(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["rollup-usage"]
    assert entry == {"task": "health.tasks.rollup_all_usage", "schedule": 300}
