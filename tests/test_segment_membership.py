"""Stored segment membership: the set-based refresh (enter, leave, transitions, events once, idempotent),
the refresh after a segment is saved, the ``segments`` consumer of the domain events and its debounce,
the beat fan-out, and the preview (count + sample by ARR)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import segment_membership
from accounts.models import Account, JobRun, Segment, SegmentMembership, SegmentTransition
from accounts.segment_membership import preview_segment, refresh_memberships
from accounts.tasks import refresh_all_segment_memberships, refresh_segment_memberships
from cs_platform.events import dispatch
from cs_platform.models import DomainEvent

from .factories import AccountFactory

pytestmark = pytest.mark.django_db

BIG = {"match": "all", "conditions": [{"field": "arr", "op": "gte", "value": "100000"}]}


def with_arr(org, arr: str, **kwargs) -> Account:
    account = AccountFactory(organization=org, **kwargs)
    Account.all_orgs.filter(pk=account.pk).update(arr=Decimal(arr))
    return account


def set_arr(account: Account, arr: str) -> None:
    Account.all_orgs.filter(pk=account.pk).update(arr=Decimal(arr))


def members(segment: Segment) -> set[int]:
    return set(SegmentMembership.all_orgs.filter(segment=segment).values_list("account_id", flat=True))


def events(org, name: str, segment: Segment | None = None) -> list[tuple[int, int]]:
    """(segment, account) of the recorded events ``name`` (of one segment: the default touch segments of
    every new organization are refreshed too)."""
    rows = DomainEvent.objects.for_org(org).filter(name=name).order_by("occurred_at", "subject_id")
    pairs = [(e.payload["segment"], e.payload["account"]) for e in rows]
    return [pair for pair in pairs if segment is None or pair[0] == segment.pk]


@pytest.fixture
def big(org):
    return Segment.all_orgs.create(organization=org, name="Big", rules=BIG)


def test_first_refresh_fills_the_segment_with_transitions_but_no_events(org, other_org, big):
    a, b = with_arr(org, "150000"), with_arr(org, "250000")
    with_arr(org, "99999.99")
    with_arr(other_org, "900000")  # never a member of another organization's segment
    result = refresh_memberships(org.pk, [big.pk])
    assert members(big) == {a.pk, b.pk}
    assert result.counts() == {"segments": 1, "entered": 2, "left": 0, "invalid_segments": 0}
    assert sorted(SegmentTransition.all_orgs.filter(segment=big).values_list("account_id", "kind")) == sorted(
        [(a.pk, "entered"), (b.pk, "entered")]
    )
    assert events(org, "segment.entered") == []  # matching all along is not "entering"
    big.refresh_from_db()
    assert big.refreshed_at is not None


def test_entering_and_leaving_are_stored_with_transitions_and_one_event_each(org, big):
    stays, leaves, enters = with_arr(org, "150000"), with_arr(org, "250000"), with_arr(org, "5000")
    refresh_memberships(org.pk)
    first_entered_at = SegmentMembership.all_orgs.get(segment=big, account=stays).entered_at
    set_arr(leaves, "1000")
    set_arr(enters, "100000")

    result = refresh_memberships(org.pk)
    assert members(big) == {stays.pk, enters.pk}
    assert (result.entered[big.pk], result.left[big.pk], result.members[big.pk]) == (1, 1, 2)
    assert SegmentMembership.all_orgs.get(segment=big, account=stays).entered_at == first_entered_at
    latest = SegmentTransition.all_orgs.filter(segment=big).exclude(kind="entered", account__in=[stays, leaves])
    assert sorted(latest.values_list("account_id", "kind")) == sorted([(enters.pk, "entered"), (leaves.pk, "left")])
    assert events(org, "segment.entered", big) == [(big.pk, enters.pk)]
    assert events(org, "segment.left", big) == [(big.pk, leaves.pk)]
    payload = DomainEvent.objects.for_org(org).get(name="segment.left", payload__segment=big.pk).payload
    assert set(payload) == {"segment", "segment_name", "account", "account_external_id", "account_name", "at"}
    assert payload["segment_name"] == "Big" and payload["account_external_id"] == leaves.external_id

    # A second run changes nothing: no rows, no transitions, no events.
    transitions, recorded = SegmentTransition.all_orgs.count(), DomainEvent.all_orgs.count()
    again = refresh_memberships(org.pk)
    assert again.counts()["entered"] == again.counts()["left"] == 0
    assert SegmentTransition.all_orgs.count() == transitions
    assert DomainEvent.all_orgs.count() == recorded


def test_refresh_queries_do_not_grow_with_the_accounts(org, big):
    def run() -> int:
        with CaptureQueriesContext(connection) as queries:
            refresh_memberships(org.pk, [big.pk])
        return len(queries)

    few = [with_arr(org, "1") for _ in range(3)]
    many = [with_arr(org, "1") for _ in range(30)]
    refresh_memberships(org.pk, [big.pk])  # the first fill (empty)
    Account.all_orgs.filter(pk__in=[a.pk for a in few]).update(arr=Decimal("200000"))
    three_entered = run()
    Account.all_orgs.filter(pk__in=[a.pk for a in few]).update(arr=Decimal("1"))
    three_left = run()
    Account.all_orgs.filter(pk__in=[a.pk for a in many]).update(arr=Decimal("200000"))
    assert run() == three_entered  # 30 entrants cost the queries of 3
    Account.all_orgs.filter(pk__in=[a.pk for a in many]).update(arr=Decimal("1"))
    assert run() == three_left
    assert len(members(big)) == 0


def test_invalid_stored_rules_keep_the_members_and_are_reported(org, big):
    a = with_arr(org, "150000")
    refresh_memberships(org.pk)
    Segment.all_orgs.filter(pk=big.pk).update(rules={"conditions": [{"field": "nope", "op": "eq", "value": 1}]})
    result = refresh_memberships(org.pk)
    assert members(big) == {a.pk}
    assert result.invalid[big.pk] == ["rules.conditions.0.field: unknown field 'nope'"]
    assert events(org, "segment.left") == []


def test_derived_fields_drive_membership(org):
    from django.utils import timezone

    from health.models import HealthScore

    red = Segment.all_orgs.create(
        organization=org, name="Red", rules={"conditions": [{"field": "health_color", "op": "eq", "value": "red"}]}
    )
    account = AccountFactory(organization=org)
    score = HealthScore.all_orgs.create(
        organization=org,
        account=account,
        color="green",
        computed_color="green",
        score=Decimal("80"),
        computed_at=timezone.now(),
    )
    refresh_memberships(org.pk)
    assert members(red) == set()
    HealthScore.all_orgs.filter(pk=score.pk).update(color="red")
    refresh_memberships(org.pk)
    assert members(red) == {account.pk}
    assert events(org, "segment.entered", red) == [(red.pk, account.pk)]


def test_task_records_its_run_and_is_safe_twice(org, big):
    with_arr(org, "150000")
    from cs_platform.jobs import create_job

    job = create_job(organization_id=org.pk, kind="refresh_segments")
    refresh_segment_memberships.apply((org.pk, [big.pk]), {"job_id": job.pk})
    run = JobRun.objects.for_org(org).get(pk=job.pk)
    assert run.status == "succeeded" and run.counts["entered"] == 1
    assert refresh_segment_memberships.apply((org.pk, [big.pk])).get()["entered"] == 0


def test_beat_fans_out_one_recorded_run_per_organization(org, other_org, monkeypatch):
    sent = []
    monkeypatch.setattr(refresh_segment_memberships, "delay", lambda org_id, job_id: sent.append((org_id, job_id)))
    assert refresh_all_segment_memberships() >= 2
    assert {org.pk, other_org.pk} <= {org_id for org_id, _ in sent}
    assert JobRun.objects.for_org(org).filter(kind="refresh_segments").count() == 1


def test_saving_a_segment_queues_its_refresh(org, monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(
        "celery.current_app.send_task", lambda name, args, kwargs=None, **opts: sent.append((name, args))
    )
    with django_capture_on_commit_callbacks(execute=True):
        segment = Segment.all_orgs.create(organization=org, name="Mid", rules=BIG)
    assert sent == [("accounts.tasks.refresh_segment_memberships", (org.pk, [segment.pk]))]


def test_the_consumer_schedules_a_refresh_for_events_that_change_membership(
    org, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.REDIS_URL = ""  # without Redis: every committed transaction queues its own refresh
    queued = []
    monkeypatch.setattr(segment_membership, "_enqueue", lambda org_id, countdown: queued.append((org_id, countdown)))
    account = AccountFactory(organization=org)
    account.region = "EMEA"
    account.save()  # account.updated
    ids = list(DomainEvent.objects.for_org(org).filter(name__startswith="account.").values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        dispatch(org.pk, [str(i) for i in ids])
    assert queued and all(item == (org.pk, settings.SEGMENT_REFRESH_DEBOUNCE_SECONDS) for item in queued)
    # Its own events are not consumed: a refresh never schedules another.
    assert "segment.entered" not in segment_membership.MEMBERSHIP_EVENTS


@pytest.mark.redis
@pytest.mark.skipif(
    not __import__("os").environ.get("REDIS_URL"), reason="needs REDIS_URL: the debounce flag is in Redis"
)
def test_a_burst_of_events_schedules_one_refresh(org, settings, monkeypatch, django_capture_on_commit_callbacks):
    import os

    settings.REDIS_URL = os.environ["REDIS_URL"]
    segment_membership.take_scheduled(org.pk)
    queued = []
    monkeypatch.setattr(segment_membership, "_enqueue", lambda org_id, countdown: queued.append(org_id))
    for _ in range(5):
        with django_capture_on_commit_callbacks(execute=True):
            segment_membership.schedule_refresh(org.pk)
    assert queued == [org.pk]
    segment_membership.take_scheduled(org.pk)  # the run drops the flag: the next change schedules again
    with django_capture_on_commit_callbacks(execute=True):
        segment_membership.schedule_refresh(org.pk)
    assert queued == [org.pk, org.pk]
    segment_membership.take_scheduled(org.pk)


def test_preview_counts_and_samples_the_first_ten_by_arr(org, other_org):
    for i in range(12):
        with_arr(org, str(100000 + i * 1000), name=f"Acc {i:02d}")
    with_arr(org, "10")
    with_arr(other_org, "999999")
    preview = preview_segment(org, BIG)
    assert preview["accounts"] == 12 and preview["arr"] == Decimal(12 * 100000 + 66 * 1000)
    assert [a.name for a in preview["sample"]] == [f"Acc {i:02d}" for i in range(11, 1, -1)]
    broken = preview_segment(org, {"conditions": [{"field": "arr", "op": "gte", "value": "lots"}]})
    assert broken["accounts"] == 0 and broken["sample"] == [] and broken["problems"]
