"""Issue 16, faults: a worker SIGKILLed in the middle of a job loses nothing, and the broker's own redelivery
finishes the job with the same result as an undisturbed run.

Real processes: a ``celery worker`` subprocess (tests/worker_process.py) against the test database and Redis,
killed with SIGKILL at an observable point of its job (the recompute's JobRun running; the playbook
evaluation's first batch of firings committed, the others not; the webhook request held open by a receiver
on loopback), then a new worker. Nothing re-enqueues by hand: the killed worker's message stays in Redis's
``unacked`` set and the new worker's sweep puts it back on the queue once the visibility timeout has passed
(:data:`tests.worker_process.REDELIVERY`: 14 s instead of over an hour, swept every second).

The reference ("undisturbed run") is the same job on an identical organization, run in this process.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
import uuid

import pytest
from django.utils import timezone

from accounts.choices import JobStatus
from accounts.models import Account, JobRun
from accounts.services import create_organization
from cs_platform.jobs import create_job
from cs_platform.models import DomainEvent
from health.models import CsmPulse, HealthScore, Invoice
from health.services import recompute_health
from health.tasks import recompute_health_task
from playbooks import services
from playbooks.engine import evaluate_organization
from playbooks.models import (
    Cta,
    CtaTask,
    DeliveryStatus,
    Playbook,
    PlaybookFiring,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from playbooks.tasks import evaluate_all_playbooks
from tests import worker_process

from .outbound_helpers import Receiver, loopback_only_fixture, routed  # noqa: F401 - fixture

pytestmark = [*worker_process.WORKER_MARKS, pytest.mark.django_db(transaction=True)]

#: Accounts of the organization recomputed: enough that the worker is still computing when the test sees
#: its run start (about a second of work), few enough for the test's minute.
ACCOUNTS = 3000
COLORS = ("green", "yellow", "red")


def _seed(org, accounts: int) -> None:
    """``accounts`` accounts, each with one CSM pulse 2 days ago: colours cycle, so scores differ."""
    day = timezone.now() - dt.timedelta(days=2)
    rows = Account.all_orgs.bulk_create(
        Account(organization=org, external_id=f"acc-{i:05d}", name=f"Account {i}") for i in range(accounts)
    )
    CsmPulse.all_orgs.bulk_create(
        CsmPulse(organization=org, account=a, color=COLORS[i % 3], created_at=day) for i, a in enumerate(rows)
    )


def _scores(org) -> dict[str, tuple]:
    return {
        external_id: (score, color)
        for external_id, score, color in HealthScore.objects.for_org(org).values_list(
            "account__external_id", "score", "color"
        )
    }


def _events(org) -> list[tuple[str, str]]:
    return sorted(
        (e.payload["external_id"], e.payload["to"] or "")
        for e in DomainEvent.all_orgs.filter(organization=org, name="health.color_changed")
    )


def test_a_worker_killed_mid_recompute_loses_nothing_and_the_redelivery_scores_as_an_undisturbed_run(tmp_path):
    killed_org = create_organization(slug="killed", name="Killed")[0]
    reference_org = create_organization(slug="reference", name="Reference")[0]
    for org in (killed_org, reference_org):
        _seed(org, ACCOUNTS)
    recompute_health(reference_org, latest=True)  # the undisturbed run, in this process
    reference = _scores(reference_org)
    assert len(reference) == ACCOUNTS and {color for _score, color in reference.values()} == set(COLORS)

    queue = f"retain-fault-recompute-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    env = {**worker_process.REDELIVERY, "CELERY_TASK_DEFAULT_QUEUE": queue}
    job = create_job(organization_id=killed_org.pk, kind="recompute_health", params={"trigger": "schedule"})
    worker = None
    started = time.monotonic()
    try:
        worker = worker_process.start_worker(queue, log, **env)
        recompute_health_task.apply_async((killed_org.pk,), {"job_id": job.pk}, queue=queue)
        running = JobRun.all_orgs.filter(pk=job.pk, status=JobStatus.RUNNING)
        worker_process.wait(running.exists, 60, "the recompute to start on the worker", log)
        worker_process.kill(worker)
        killed_at = time.monotonic() - started

        # Killed mid-run: no score, no event; the run says "running" (a killed process records nothing).
        assert not HealthScore.objects.for_org(killed_org).exists(), "the recompute finished before the kill"
        assert _events(killed_org) == []
        crashed = JobRun.all_orgs.get(pk=job.pk)
        assert (crashed.status, crashed.attempts, crashed.finished_at) == (JobStatus.RUNNING, 1, None)

        # --- a new worker: the broker redelivers the message by itself ----------------------------------
        worker = worker_process.start_worker(queue, log, **env)
        done = JobRun.all_orgs.filter(pk=job.pk, status__in=[JobStatus.SUCCEEDED, JobStatus.FAILED])
        worker_process.wait(done.exists, 60, "the redelivered recompute to finish", log)
        finished = JobRun.all_orgs.get(pk=job.pk)
        assert finished.status == JobStatus.SUCCEEDED, finished.errors
        assert finished.attempts == 2  # the same message, run a second time: not a new job
        print(f"\nkilled after {killed_at:.1f}s; redelivered and done after {time.monotonic() - started:.1f}s")
    finally:
        worker_process.stop(worker)
        worker_process.end_other_backends()
        worker_process.forget_messages(queue)

    assert _scores(killed_org) == reference
    # The colour changes are announced exactly once each, as by the undisturbed run.
    assert _events(killed_org) == _events(reference_org)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _colour_change(org, receiver) -> None:
    """An endpoint for colour changes, and an account whose green → red change is recorded in this process
    (the event and its dispatch message, sent to the test's queue by the caller's routes)."""
    WebhookEndpoint.all_orgs.create(
        organization=org, url=receiver.url("/hook"), event_types=["health.color_changed"],
        secret=services.generate_secret(),
    )  # fmt: skip
    account = Account.all_orgs.create(organization=org, external_id="CRM-9", name="Hooli")
    day = timezone.now() - dt.timedelta(days=2)
    CsmPulse.all_orgs.create(organization=org, account=account, color="green", created_at=day)
    recompute_health(org, latest=True)
    CsmPulse.all_orgs.create(organization=org, account=account, color="red", created_at=timezone.now())


def _deliveries(org) -> list[tuple]:
    return list(WebhookDelivery.all_orgs.filter(organization=org).values_list("event_type", "status", "attempts")) + [
        ("attempts", WebhookAttempt.all_orgs.filter(organization=org).count())
    ]


@pytest.mark.usefixtures("loopback_only")
def test_a_worker_killed_mid_webhook_delivery_delivers_once_on_redelivery(receiver, settings, tmp_path):
    from cs_platform.celery import app

    killed_org = create_organization(slug="killed", name="Killed")[0]
    reference_org = create_organization(slug="reference", name="Reference")[0]
    queue = f"retain-fault-webhook-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    # Both processes send the event tasks and the delivery tries to this test's queue only.
    routes = {"cs_platform.events.*": {"queue": queue}, "playbooks.tasks.deliver_webhook": {"queue": queue}}
    env = {
        **worker_process.REDELIVERY,
        "RETAIN_TEST_TASK_ROUTES": json.dumps(routes),
        "OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8",  # the receiver is on loopback (the guard refuses it else)
        "CELERY_TASK_DEFAULT_QUEUE": queue,
    }
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    for org in (killed_org, reference_org):
        _colour_change(org, receiver)

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = False
    worker = None
    started = time.monotonic()
    try:
        worker = worker_process.start_worker(queue, log, app="tests.worker_app", **env)
        # --- the undisturbed run: the reference organization's delivery, on the same worker ------------
        with routed(app, routes):
            recompute_health(reference_org, latest=True)
        delivered = WebhookDelivery.all_orgs.filter(organization=reference_org, status=DeliveryStatus.SUCCEEDED)
        worker_process.wait(delivered.exists, 60, "the reference delivery", log)
        assert len(receiver.requests) == 1

        # --- the killed run: the receiver holds the request open, the worker is killed meanwhile --------
        receiver.hold = threading.Event()
        with routed(app, routes):
            recompute_health(killed_org, latest=True)
        worker_process.wait(lambda: len(receiver.requests) == 2, 60, "the webhook request to arrive", log)
        worker_process.kill(worker)
        receiver.hold.set()  # the held request's answer goes to a dead socket
        (delivery,) = WebhookDelivery.all_orgs.filter(organization=killed_org)
        # The try left no trace: the delivery is still pending, no attempt is recorded.
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 0)
        assert not WebhookAttempt.all_orgs.filter(organization=killed_org).exists()

        # --- a new worker: the broker redelivers the try by itself --------------------------------------
        worker = worker_process.start_worker(queue, log, app="tests.worker_app", **env)
        worker_process.wait(
            lambda: WebhookDelivery.all_orgs.filter(pk=delivery.pk, status=DeliveryStatus.SUCCEEDED).exists(),
            60, "the redelivered webhook", log,
        )  # fmt: skip
        print(f"\nkilled, redelivered and delivered in {time.monotonic() - started:.1f}s")
    finally:
        app.conf.task_always_eager = saved
        worker_process.stop(worker)
        worker_process.end_other_backends()
        worker_process.forget_messages(queue)

    # One delivery recorded as delivered, with one attempt, as in the undisturbed run.
    assert _deliveries(killed_org) == _deliveries(reference_org) == [
        ("health.color_changed", DeliveryStatus.SUCCEEDED, 1), ("attempts", 1),
    ]  # fmt: skip
    # The receiver saw the killed try and the redelivered one: the same delivery id both times (at least
    # once; a receiver deduplicates on X-Retain-Delivery), and one request for the reference.
    killed = receiver.requests[1:]
    assert len(killed) == 2
    ids = {v for r in killed for k, v in r["headers"].items() if k.lower() == "x-retain-delivery"}
    assert ids == {str(delivery.pk)}
    assert killed[0]["body"] == killed[1]["body"]


# --- Mid-playbook evaluation ------------------------------------------------------------------------------

#: Accounts with an overdue invoice: the engine fires in batches of 2,000 (``playbooks.engine.BATCH``), each
#: committed on its own, so a kill can land between batches (some fired, some not) or inside one.
OVERDUE = 5000
RISK = {
    "kind": "open_cta", "type": "risk", "reason": "invoice_overdue",
    "tasks": [{"title": "Chase", "due_in_days": 2}, {"title": "Escalate", "due_in_days": 5}],
}  # fmt: skip


def _overdue_org(slug: str):
    org = create_organization(slug=slug, name=slug.title())[0]
    rows = Account.all_orgs.bulk_create(
        Account(organization=org, external_id=f"acc-{i:05d}", name=f"Account {i}") for i in range(OVERDUE)
    )
    due = timezone.localdate() - dt.timedelta(days=45)
    Invoice.all_orgs.bulk_create(
        Invoice(organization=org, account=a, external_id=f"INV-{i}", due_date=due, amount=1200)
        for i, a in enumerate(rows)
    )
    Playbook.all_orgs.create(
        organization=org, name="Overdue → risk", trigger="invoice_overdue", trigger_params={"days": 30},
        actions=[RISK], active=True,
    )  # fmt: skip
    return org


def _work(org) -> dict[str, object]:
    """What an evaluation leaves: firings per account and outcome, CTAs per account, tasks."""
    # Occurrences are keyed on the invoice's id ("invoice:<pk>"), which differs between organizations: compare
    # them by the invoice's external id.
    invoices = dict(Invoice.all_orgs.filter(organization=org).values_list("pk", "external_id"))
    firings = PlaybookFiring.all_orgs.filter(organization=org)
    ctas = Cta.all_orgs.filter(organization=org)
    return {
        "firings": sorted(
            (account, invoices[int(key.removeprefix("invoice:"))], outcome)
            for account, key, outcome in firings.values_list("account__external_id", "occurrence_key", "outcome")
        ),
        "ctas": sorted(ctas.values_list("account__external_id", "type__key", "reason__key", "status")),
        "tasks": CtaTask.all_orgs.filter(organization=org).count(),
    }


def test_a_worker_killed_mid_playbook_evaluation_fires_each_occurrence_once_on_redelivery(tmp_path, monkeypatch):
    killed_org = _overdue_org("killed")
    with worker_process.own_queue(monkeypatch, "retain-fault-playbooks") as queue:
        log = tmp_path / "worker.log"
        env = {**worker_process.REDELIVERY, "CELERY_TASK_DEFAULT_QUEUE": queue}
        firings = PlaybookFiring.all_orgs.filter(organization=killed_org)
        worker = None
        started = time.monotonic()
        try:
            worker = worker_process.start_worker(queue, log, **env)
            evaluate_all_playbooks.delay()  # the beat's run: one evaluation per organization, on the worker
            # Killed once the first batch has committed: part fired, the rest not yet.
            worker_process.wait(firings.exists, 60, "the evaluation's first batch", log)
            worker_process.kill(worker)
            fired_before = firings.count()
            assert 0 < fired_before < OVERDUE, "the evaluation finished before the kill"
            assert worker_process.succeeded(log, "playbooks.tasks.evaluate_playbooks") == 0

            worker = worker_process.start_worker(queue, log, **env)
            worker_process.wait(
                lambda: worker_process.succeeded(log, "playbooks.tasks.evaluate_playbooks") == 1,
                60, "the redelivered evaluation", log,
            )  # fmt: skip
            print(f"\nkilled with {fired_before} of {OVERDUE} fired; done after {time.monotonic() - started:.1f}s")
        finally:
            worker_process.stop(worker)
            worker_process.end_other_backends()
            worker_process.forget_messages(queue)

    killed = _work(killed_org)
    reference_org = _overdue_org("reference")
    evaluate_organization(reference_org.pk)  # the undisturbed run, in this process
    reference = _work(reference_org)
    assert len(reference["firings"]) == len(reference["ctas"]) == OVERDUE and reference["tasks"] == 2 * OVERDUE
    assert killed == reference  # each occurrence fired once, one CTA (two tasks) per account
