"""Product tasks on a real worker: the message goes through Redis to a ``celery worker`` subprocess that
runs against the test database, as in production (no eager mode, no fake enqueue).

* The debounced health recompute: a change commits, the countdown (``HEALTH_RECOMPUTE_DEBOUNCE_SECONDS``,
  shortened here) travels with the message, the worker runs it no earlier than that, and two changes
  within the window share one run.
* The daily renewal opening: the beat entry fans out one recorded run per organization on the worker,
  which opens the renewals of the contracts entering the window, and is idempotent when run again.

Each test routes the product's tasks to a queue of its own, so nothing else in the broker is consumed.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from accounts.choices import JobStatus
from accounts.models import JobRun
from health import triggers
from health.models import CsmPulse, HealthScore
from renewals.models import Renewal
from renewals.tasks import JOB_KIND, create_all_due_renewals
from tests import worker_process

from .factories import AccountFactory
from .renewal_factories import contract_with_lines

pytestmark = [*worker_process.WORKER_MARKS, pytest.mark.django_db(transaction=True)]

COUNTDOWN = 3


@pytest.fixture
def queue(monkeypatch):
    """A queue of this test's own: the product's tasks are routed to it (they name no queue themselves)."""
    with worker_process.own_queue(monkeypatch, "retain-worker-test") as name:
        yield name


@pytest.fixture
def worker(queue, tmp_path):
    # The worker sends the tasks it fans out to the same queue (the per-organization renewal runs).
    with worker_process.running(queue, tmp_path) as started:
        yield started


succeeded = worker_process.succeeded


def test_debounced_recompute_reaches_the_worker_with_its_countdown(org, settings, worker):
    process, log = worker
    settings.HEALTH_RECOMPUTE_DEBOUNCE_SECONDS = COUNTDOWN
    client = triggers._redis()
    client.delete(*triggers._keys(org.pk))
    a, b = AccountFactory(organization=org), AccountFactory(organization=org)

    changed_at = time.monotonic()
    CsmPulse.all_orgs.create(organization=org, account=a, color="green", created_at=timezone.now())  # commits
    CsmPulse.all_orgs.create(organization=org, account=b, color="red", created_at=timezone.now())  # joins it
    assert client.smembers(triggers._keys(org.pk)[0]) == {str(a.pk).encode(), str(b.pk).encode()}
    assert not HealthScore.objects.for_org(org).exists()

    worker_process.wait(lambda: HealthScore.objects.for_org(org).count() == 2, 120, "the debounced recompute", log)
    waited = time.monotonic() - changed_at
    # The message carried its countdown: the worker could not run it before (an ETA never fires early).
    assert waited >= COUNTDOWN - 0.05, waited
    scores = dict(HealthScore.objects.for_org(org).values_list("account_id", "color"))
    assert scores == {a.pk: "green", b.pk: "red"}
    assert succeeded(log, "health.tasks.recompute_accounts") == 1  # two changes, one run
    assert client.smembers(triggers._keys(org.pk)[0]) == set()  # the run took the pending ids
    assert process.poll() is None


def test_renewal_opening_runs_on_the_worker_and_is_idempotent(org, worker):
    _process, log = worker
    today = timezone.localdate()
    due = contract_with_lines(org, start=today - dt.timedelta(days=335), end=today + dt.timedelta(days=30))
    later = contract_with_lines(org, start=today, end=today + dt.timedelta(days=364))  # outside the 120-day window

    create_all_due_renewals.delay()
    worker_process.wait(
        lambda: JobRun.objects.for_org(org).filter(kind=JOB_KIND, status=JobStatus.SUCCEEDED).exists(),
        120, "the renewal opening run", log,
    )  # fmt: skip
    run = JobRun.objects.for_org(org).get(kind=JOB_KIND)
    assert run.counts == {"renewals_opened": 1} and run.attempts == 1
    assert list(Renewal.objects.for_org(org).values_list("contract_id", "due_date")) == [(due.pk, due.end_date)]
    assert not Renewal.objects.for_org(org).filter(contract=later).exists()

    create_all_due_renewals.delay()  # the next day's run (or a retry) opens nothing twice
    worker_process.wait(
        lambda: JobRun.objects.for_org(org).filter(kind=JOB_KIND, status=JobStatus.SUCCEEDED).count() == 2,
        120, "the second renewal opening run", log,
    )  # fmt: skip
    second = JobRun.objects.for_org(org).filter(kind=JOB_KIND).order_by("-pk").first()
    assert second.counts == {"renewals_opened": 0}
    assert Renewal.objects.for_org(org).count() == 1
    assert succeeded(log, "renewals.tasks.create_all_due_renewals") == 2
    assert succeeded(log, "renewals.tasks.create_due_renewals_task") == 2
