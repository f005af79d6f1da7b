"""Segment membership kept current on a real worker: a health colour change (an override) records
``health.color_changed``; the worker dispatches it to the ``segments`` consumer, which schedules one
debounced refresh through Redis; the worker runs it and the account enters the segment, with one
``segment.entered`` event, within seconds of the change. Postgres + Redis + a ``celery worker`` subprocess
(``tests/worker_process.py``), on a queue of the test's own."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import JobRun, Segment, SegmentMembership
from accounts.segment_membership import refresh_memberships
from cs_platform.actors import Actor
from cs_platform.models import DomainEvent
from health.models import HealthScore
from health.overrides import set_override
from tests import worker_process

from .factories import AccountFactory

pytestmark = [*worker_process.WORKER_MARKS, pytest.mark.django_db(transaction=True)]

DEBOUNCE = 1


@pytest.fixture
def worker(monkeypatch, tmp_path, settings):
    settings.SEGMENT_REFRESH_DEBOUNCE_SECONDS = DEBOUNCE
    with worker_process.own_queue(monkeypatch, "retain-segments-test") as queue:
        with worker_process.running(queue, tmp_path, SEGMENT_REFRESH_DEBOUNCE_SECONDS=str(DEBOUNCE)) as started:
            yield started


succeeded = worker_process.succeeded


def test_a_colour_change_moves_the_account_into_the_segment_within_seconds(org, alice, worker):
    _process, log = worker
    red = Segment.all_orgs.create(
        organization=org, name="Red", rules={"conditions": [{"field": "health_color", "op": "eq", "value": "red"}]}
    )
    account = AccountFactory(organization=org, owner=alice)
    HealthScore.all_orgs.create(
        organization=org, account=account, score=Decimal("80"), color="green", computed_color="green",
        computed_at=timezone.now(),
    )  # fmt: skip
    refresh_memberships(org.pk)  # the first fill: nobody is red
    assert not SegmentMembership.all_orgs.filter(segment=red).exists()
    # Let the worker finish what the setup queued (the refresh after saving the segment, the one after
    # account.created), so that what follows is the colour change's doing alone.
    worker_process.wait(
        lambda: not DomainEvent.all_orgs.filter(organization=org, dispatched_at__isnull=True).exists()
        and not JobRun.objects.for_org(org).filter(kind="refresh_segments", status__in=["queued", "running"]).exists(),
        60, "the setup's runs", log,
    )  # fmt: skip
    before = succeeded(log, "accounts.tasks.refresh_segments_soon")

    changed_at = time.monotonic()
    set_override(
        account,
        color="red",
        reason_code="other",
        reason="Escalated",
        author=Actor(organization=org, role="admin", user=alice),
    )
    worker_process.wait(
        lambda: SegmentMembership.all_orgs.filter(segment=red, account=account).exists(), 60, "the refresh", log
    )
    waited = time.monotonic() - changed_at
    assert waited < 15, waited  # dispatch, debounce of 1 s, refresh: seconds, not the 15-minute schedule
    entered = DomainEvent.all_orgs.filter(organization=org, name="segment.entered", payload__segment=red.pk)
    assert list(entered.values_list("payload__account", flat=True)) == [account.pk]
    worker_process.wait(
        lambda: succeeded(log, "accounts.tasks.refresh_segments_soon") == before + 1, 30, "the recorded run", log
    )
    run = JobRun.objects.for_org(org).filter(kind="refresh_segments", params__trigger="events").latest("pk")
    assert run.status == "succeeded" and run.counts["entered"] == 1

    # The refresh's own events reach no segment consumer: no second refresh follows.
    time.sleep(DEBOUNCE + 3)
    assert succeeded(log, "accounts.tasks.refresh_segments_soon") == before + 1
