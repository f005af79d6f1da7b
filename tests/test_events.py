"""The domain-event stream (issue 11, point 2; docs/events.md): a transactional outbox in core.

* A colour change writes exactly one ``health.color_changed`` event, in the transaction of the new
  colour: another connection sees both or neither, and a rollback leaves no event and no webhook.
* Consumers run after the commit, once per event (receipts): dispatching twice makes one delivery.
* When the dispatch message is lost after the commit (the worker died, or none was running), the
  beat's re-dispatch has a real worker deliver the webhook, exactly once.
* The catalogue keeps the webhook event names, and producers reach it through core only.

The transaction and worker tests need Postgres (another connection must be able to look in while a
transaction is open; the worker needs a database server) and, for the worker, Redis.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from django.db.models.signals import post_save
from django.utils import timezone

from accounts.models import Account, Contact
from accounts.services import Actor
from cs_platform import events
from cs_platform.events import (
    CATALOGUE,
    EVENT_NAMES,
    dispatch,
    purge_dispatched_events,
    record_event,
    redispatch_pending_events,
    register_consumer,
    unregister_consumer,
)
from cs_platform.models import DomainEvent, EventReceipt
from health.models import CsmPulse, HealthScore
from health.overrides import set_override
from health.services import recompute_health
from playbooks import services
from playbooks.models import EventType, WebhookDelivery, WebhookEndpoint

from . import worker_process
from .factories import AccountFactory, ContactFactory
from .outbound_helpers import Receiver, loopback_only_fixture, routed, wait_for  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
AS_OF = timezone.localdate()

POSTGRES = not settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")


def on_postgres(test: Any) -> Any:
    """Committed for real, on Postgres: another connection looks into the open transaction."""
    for mark in (
        pytest.mark.skipif(not POSTGRES, reason="needs a Postgres DATABASE_URL (another connection looks in)"),
        pytest.mark.postgres,
        pytest.mark.django_db(transaction=True),
    ):
        test = mark(test)
    return test


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def pulse(account: Any, color: str, day: dt.date = AS_OF) -> None:
    CsmPulse.all_orgs.create(organization=account.organization, account=account, color=color, created_at=at(day))


def color_events(org: Any) -> Any:
    return DomainEvent.all_orgs.filter(organization=org, name="health.color_changed")


def make_endpoint(org: Any, url: str, event_types: list[str]) -> WebhookEndpoint:
    return WebhookEndpoint.all_orgs.create(
        organization=org, url=url, event_types=event_types, secret=services.generate_secret()
    )


def from_another_connection(fn: Any) -> Any:
    """``fn()`` on a connection of its own (another thread): sees only what has been committed."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(fn())
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    return out[0]


@pytest.fixture
def scored_green(org):
    """An account whose first score (green) is stored: its next colour change is announced."""
    account = AccountFactory(organization=org, external_id="CRM-7", name="Initech")
    pulse(account, "green", AS_OF - dt.timedelta(days=2))
    recompute_health(org, as_of=AS_OF, latest=True)
    assert HealthScore.objects.for_org(org).get(account=account).color == "green"
    assert not color_events(org).exists()  # a first-ever score announces nothing
    return account


# --- One event, in the transaction of the change --------------------------------------------------


@on_postgres
def test_a_colour_change_writes_exactly_one_event_in_the_same_transaction(org, scored_green):
    account = scored_green
    pulse(account, "red")

    def committed() -> tuple[str, int]:
        color = HealthScore.all_orgs.get(account=account).color
        return color, DomainEvent.all_orgs.filter(organization_id=org.pk, name="health.color_changed").count()

    with transaction.atomic():
        recompute_health(org, as_of=AS_OF, latest=True)
        # Inside the transaction: the new colour and its one event.
        (event,) = color_events(org)
        assert HealthScore.objects.for_org(org).get(account=account).color == "red"
        # Another connection sees neither yet: the event is part of the change's transaction.
        assert from_another_connection(committed) == ("green", 0)
        assert event.dispatched_at is None
    assert from_another_connection(committed) == ("red", 1)
    assert (event.subject_type, event.subject_id) == ("account", str(account.pk))
    assert event.payload == {
        "id": account.pk,
        "external_id": "CRM-7",
        "name": "Initech",
        "from": "green",
        "to": "red",
        "score": "0.0",
    }
    recompute_health(org, as_of=AS_OF, latest=True)  # no change: no second event
    assert color_events(org).count() == 1


def test_rolled_back_colour_change_leaves_no_event_and_no_webhook(
    org, alice, scored_green, django_capture_on_commit_callbacks
):
    account = scored_green
    make_endpoint(org, "https://hooks.example/h", ["health.color_changed"])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                set_override(
                    account, color="red", reason_code="other", reason="escalation",
                    author=Actor(organization=org, role="admin", user=alice),
                )  # fmt: skip
                assert color_events(org).count() == 1
                raise RuntimeError("the change fails after the event was recorded")
    assert callbacks == []  # nothing was queued
    assert not color_events(org).exists()
    dispatch(org.pk)  # what is left to dispatch (the account's creation) has no subscriber
    assert not WebhookDelivery.all_orgs.filter(organization=org).exists()


def test_an_override_records_the_colour_change_with_its_payload(org, alice, scored_green):
    account = scored_green
    set_override(
        account, color="yellow", reason_code="other", reason="watch it",
        author=Actor(organization=org, role="admin", user=alice),
    )  # fmt: skip
    (event,) = color_events(org)
    assert event.payload == {
        "account": account.pk,
        "account_external_id": "CRM-7",
        "from": "green",
        "to": "yellow",
        "cause": "override",
    }


# --- Consumers: after commit, once per event ------------------------------------------------------


def test_dispatching_twice_makes_one_delivery(org, scored_green, django_capture_on_commit_callbacks):
    endpoint = make_endpoint(org, "https://hooks.example/h", ["health.color_changed"])
    pulse(scored_green, "red")
    recompute_health(org, as_of=AS_OF, latest=True)
    (event,) = color_events(org)
    assert not WebhookDelivery.all_orgs.exists()  # consumers run after the commit, not in the change
    with django_capture_on_commit_callbacks() as tries:
        assert dispatch(org.pk, [str(event.pk)]) == 1
        # A duplicated message, a re-dispatch, an explicit second run: nothing more.
        assert dispatch(org.pk, [str(event.pk)]) == 0
        event.dispatched_at = None
        event.save(update_fields=["dispatched_at"])
        assert dispatch(org.pk, [str(event.pk)]) == 1
    (delivery,) = WebhookDelivery.all_orgs.filter(endpoint=endpoint)
    assert (delivery.event_id, delivery.event_type) == (event.pk, "health.color_changed")
    assert delivery.payload == event.payload
    # One first try queued (other consumers may queue their own on-commit work, e.g. the segments refresh).
    assert len([t for t in tries if "_create_deliveries" in t.__qualname__]) == 1
    # One receipt per consumer of the name: webhooks, segments (membership) and playbooks (triggers).
    receipts = EventReceipt.all_orgs.filter(event=event).values_list("consumer", flat=True)
    assert sorted(receipts) == ["playbooks", "segments", "webhooks"]
    # The fan-out itself is idempotent by event id too (the consumer's second fence).
    assert services.emit(org.pk, "health.color_changed", event.payload, event_id=event.pk) == []


def test_a_failing_consumer_is_retried_alone_and_the_others_run_once(org, account):
    calls: list[tuple[str, Any]] = []

    def flaky(event: DomainEvent) -> None:
        calls.append(("flaky", event.pk))
        if len([c for c in calls if c[0] == "flaky"]) == 1:
            raise RuntimeError("receiver of the first try is down")

    register_consumer("test-flaky", flaky, names=["account.updated"])
    register_consumer("test-steady", lambda event: calls.append(("steady", event.pk)), names=["account.updated"])
    try:
        account.name = "Renamed"
        account.save()
        (event,) = DomainEvent.all_orgs.filter(organization=org, name="account.updated")
        assert dispatch(org.pk, [str(event.pk)]) == 0  # the flaky consumer failed: not dispatched yet
        event.refresh_from_db()
        assert (event.dispatched_at, event.dispatch_attempts) == (None, 1)
        assert dispatch(org.pk, [str(event.pk)]) == 1  # the next dispatch runs the failed consumer only
        event.refresh_from_db()
        assert event.dispatched_at is not None
    finally:
        unregister_consumer("test-flaky")
        unregister_consumer("test-steady")
    mine = [c for c in calls if c[1] == event.pk]
    assert mine.count(("flaky", event.pk)) == 2 and mine.count(("steady", event.pk)) == 1


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown domain event"):
        record_event(1, "account.exploded", 1, {})
    with pytest.raises(ValueError, match="unknown domain event"):
        record_event(1, "webhook.test", 1, {})  # a test send is not a domain event
    with pytest.raises(ValueError, match="unknown event name"):
        register_consumer("test-bad", lambda event: None, names=["nope"])


def test_record_event_joins_the_callers_transaction_and_queues_the_dispatch_on_commit(
    org, account, django_capture_on_commit_callbacks
):
    assert connection.in_atomic_block  # pytest-django's test transaction: record_event joins it
    with django_capture_on_commit_callbacks() as queued:
        event = record_event(org.pk, "account.updated", account.pk, {"id": account.pk, "day": AS_OF})
    assert len(queued) == 1  # the dispatch is queued on commit, never before
    assert event.payload == {"id": account.pk, "day": AS_OF.isoformat()}  # stored as consumers will read it


# --- Retention --------------------------------------------------------------------------------------


def test_purge_deletes_old_dispatched_events_and_their_receipts_only(org, account, settings):
    settings.EVENTS_RETENTION_DAYS = 30
    old = timezone.now() - dt.timedelta(days=31)
    kept_recent = record_event(org.pk, "account.updated", account.pk, {})
    kept_pending = record_event(org.pk, "account.updated", account.pk, {})
    purged = record_event(org.pk, "account.updated", account.pk, {})
    dispatch(org.pk, [str(purged.pk), str(kept_recent.pk)])
    DomainEvent.all_orgs.filter(pk=purged.pk).update(dispatched_at=old, occurred_at=old)
    DomainEvent.all_orgs.filter(pk=kept_pending.pk).update(occurred_at=old)  # never dispatched: kept
    EventReceipt.all_orgs.create(organization=org, event=purged, consumer="test-old")
    assert purge_dispatched_events() == 1
    assert set(DomainEvent.all_orgs.filter(organization=org).values_list("pk", flat=True)) >= {
        kept_recent.pk,
        kept_pending.pk,
    }
    assert not DomainEvent.all_orgs.filter(pk=purged.pk).exists()
    assert not EventReceipt.all_orgs.filter(event_id=purged.pk).exists()


def test_beat_runs_the_redispatch_every_minute_and_the_purge_daily():
    schedule = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["cs_platform.events.redispatch_pending_events"] == 60
    assert schedule["cs_platform.events.purge_dispatched_events"] == 24 * 60 * 60
    assert events.dispatch_events.acks_late


# --- A save and its event commit together ---------------------------------------------------------


def _refuse_events(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise DatabaseError("the outbox refused the event")

    monkeypatch.setattr(DomainEvent.all_orgs, "bulk_create", refuse)


@pytest.mark.django_db(transaction=True)
def test_an_account_save_whose_event_fails_leaves_no_account(org, monkeypatch):
    """In autocommit (no transaction of the caller) the insert and its account.created are one transaction."""
    assert connection.get_autocommit()
    _refuse_events(monkeypatch)
    with pytest.raises(DatabaseError):
        Account(organization=org, name="Initech", external_id="A-1").save()
    assert not Account.all_orgs.filter(organization=org, external_id="A-1").exists()
    assert not DomainEvent.all_orgs.filter(organization=org).exists()


@pytest.mark.django_db(transaction=True)
def test_an_account_update_whose_event_fails_changes_nothing(org, monkeypatch):
    account = Account.all_orgs.create(organization=org, name="Initech", external_id="A-1")
    assert DomainEvent.all_orgs.filter(organization=org, name="account.created").count() == 1
    _refuse_events(monkeypatch)
    account.name = "Initrode"
    with pytest.raises(DatabaseError):
        account.save()
    assert Account.all_orgs.get(pk=account.pk).name == "Initech"
    assert not DomainEvent.all_orgs.filter(organization=org, name="account.updated").exists()


@pytest.mark.django_db(transaction=True)
def test_an_account_save_that_fails_after_its_event_leaves_no_event(org):
    """The other way round: the event is written, then the save fails (a later post_save receiver): both go."""

    def fail_after_the_event(sender: Any, instance: Any, **kwargs: Any) -> None:
        assert DomainEvent.all_orgs.filter(subject_id=str(instance.pk)).exists()  # recorded already
        raise RuntimeError("a later receiver failed")

    post_save.connect(fail_after_the_event, sender=Account, dispatch_uid="test-fail-after-the-event")
    try:
        with pytest.raises(RuntimeError):
            Account(organization=org, name="Initech", external_id="A-1").save()
    finally:
        post_save.disconnect(sender=Account, dispatch_uid="test-fail-after-the-event")
    assert not Account.all_orgs.filter(organization=org).exists()
    assert not DomainEvent.all_orgs.filter(organization=org).exists()


@pytest.mark.django_db(transaction=True)
def test_a_contact_departure_whose_event_fails_leaves_the_contact_active(org, monkeypatch):
    contact = ContactFactory(account=AccountFactory(organization=org))
    _refuse_events(monkeypatch)
    contact.is_active = False
    with pytest.raises(DatabaseError):
        contact.save()
    assert Contact.all_orgs.get(pk=contact.pk).is_active


# --- contact.departed -----------------------------------------------------------------------------


def test_a_contact_leaving_records_contact_departed_once(org, api):
    contact = ContactFactory(account=AccountFactory(organization=org, external_id="A-1"), roles=["champion"])
    ContactFactory(account=contact.account, is_active=False)  # created inactive: not a departure
    assert not DomainEvent.all_orgs.filter(name="contact.departed").exists()
    response = api(org).patch(f"/api/v1/contacts/{contact.pk}/", {"departed_at": "2026-11-02"}, format="json")
    assert response.status_code == 200, response.json()
    (event,) = DomainEvent.all_orgs.filter(organization=org, name="contact.departed")
    assert (event.subject_type, event.subject_id) == ("contact", str(contact.pk))
    assert event.payload["account_external_id"] == "A-1"
    assert (event.payload["key_role"], event.payload["departed_at"]) == (True, "2026-11-02")
    # Already gone: saving it again (or switching it inactive too) is not a second departure.
    assert api(org).patch(f"/api/v1/contacts/{contact.pk}/", {"is_active": False}, format="json").status_code == 200
    assert DomainEvent.all_orgs.filter(name="contact.departed").count() == 1


# --- The catalogue ----------------------------------------------------------------------------------

#: The webhook event types as they were before the outbox: names are a public contract.
WEBHOOK_TYPES_BEFORE = [
    "account.created",
    "account.updated",
    "health.color_changed",
    "renewal.forecast_changed",
    "cta.opened",
    "cta.closed",
    "survey.response",
    "feature_request.status_changed",
    "webhook.test",
]


def test_webhook_event_types_derive_from_the_catalogue_and_keep_their_names():
    assert EventType.values == [spec.name for spec in CATALOGUE]
    assert [name for name in EventType.values if name in WEBHOOK_TYPES_BEFORE] == WEBHOOK_TYPES_BEFORE
    assert EventType.HEALTH_COLOR_CHANGED == "health.color_changed" and EventType.WEBHOOK_TEST == "webhook.test"
    assert "contact.departed" in services.SUBSCRIBABLE and "webhook.test" not in EVENT_NAMES
    assert all(spec.subject and spec.when for spec in CATALOGUE)


def test_every_catalogue_entry_is_documented():
    doc = (ROOT / "docs" / "events.md").read_text()
    for spec in CATALOGUE:
        assert f"`{spec.name}`" in doc, spec.name


def test_producers_reach_the_event_stream_through_core_only():
    """accounts, health and renewals record events through cs_platform.events, never playbooks."""
    offenders = []
    for package in ("accounts", "health", "renewals"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module in ("playbooks.services", "playbooks.signals"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                if isinstance(node, ast.ImportFrom) and node.module == "playbooks.models":
                    if any(alias.name in ("EventType", "WebhookEndpoint") for alias in node.names):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


# --- A lost dispatch message: the re-dispatch and a real worker ------------------------------------

QUEUE = f"retain-events-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _real_broker_and_db() -> bool:
    return settings.CELERY_BROKER_URL.startswith("redis") and POSTGRES


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.mark.skipif(not _real_broker_and_db(), reason="needs REDIS_URL and a Postgres DATABASE_URL")
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("loopback_only")
def test_a_lost_dispatch_is_redispatched_and_the_webhook_delivered_once(org, alice, receiver, settings):
    """The colour change commits while no worker runs, and its dispatch message is lost (as when the
    web process or the worker holding it dies after the commit). A worker that comes back does nothing
    by itself; the beat's re-dispatch, a minute later, has it deliver the webhook, exactly once."""
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun

    from cs_platform.celery import app

    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    make_endpoint(org, receiver.url("/hook"), ["health.color_changed"])
    account = AccountFactory(organization=org, external_id="CRM-9", name="Hooli")
    pulse(account, "green", AS_OF - dt.timedelta(days=2))
    recompute_health(org, as_of=AS_OF, latest=True)
    pulse(account, "red")

    def close(**_: object) -> None:
        connections.close_all()

    saved = {key: app.conf[key] for key in ("task_always_eager", "worker_hijack_root_logger")}
    app.conf.update(task_always_eager=False, worker_hijack_root_logger=False)
    task_postrun.connect(close, weak=False)
    routes = {"cs_platform.events.*": {"queue": QUEUE}, "playbooks.tasks.deliver_webhook": {"queue": QUEUE}}
    try:
        with routed(app, routes):
            recompute_health(org, as_of=AS_OF, latest=True)  # commits: the event, then its dispatch message
            (event,) = color_events(org)
            with app.connection_for_write() as conn:  # the message is lost with the process that held it
                assert conn.default_channel.queue_purge(QUEUE) >= 1

            with start_worker(app, queues=[QUEUE], perform_ping_check=False, shutdown_timeout=30):
                assert not wait_for(lambda: WebhookDelivery.all_orgs.filter(organization=org).exists(), 2)
                event.refresh_from_db()
                assert event.dispatched_at is None  # nothing re-sends it by itself: the beat does

                settings.EVENTS_REDISPATCH_AFTER = 60
                assert redispatch_pending_events() == 0  # younger than a minute: its message may be on its way
                DomainEvent.all_orgs.filter(pk=event.pk).update(occurred_at=event.occurred_at - dt.timedelta(minutes=2))
                redispatch_pending_events.delay()  # the beat's run, on the worker
                assert wait_for(lambda: len(receiver.requests) == 1, 60)
                delivery = WebhookDelivery.all_orgs.get(organization=org)
                assert wait_for(lambda: WebhookDelivery.all_orgs.get(pk=delivery.pk).is_final, 30)

                # A second beat run and a duplicated dispatch message change nothing.
                assert redispatch_pending_events() == 0
                events.dispatch_events.delay(org.pk, [str(event.pk)])
                assert not wait_for(lambda: len(receiver.requests) > 1, 3)
    finally:
        task_postrun.disconnect(close)
        app.conf.update(saved)

    assert WebhookDelivery.all_orgs.filter(organization=org).count() == 1
    (body,) = receiver.bodies("/hook")
    assert (body["id"], body["type"]) == (str(event.pk), "health.color_changed")
    assert (body["data"]["from"], body["data"]["to"], body["data"]["external_id"]) == ("green", "red", "CRM-9")
    event.refresh_from_db()
    assert event.dispatched_at is not None


# --- The worker dies while it holds the dispatch: a real worker process, SIGKILLed ------------------


@pytest.mark.skipif(not worker_process.AVAILABLE, reason=worker_process.NEEDS)
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("loopback_only")
def test_a_worker_killed_while_it_holds_the_dispatch_delivers_the_webhook_once_back(org, receiver, settings, tmp_path):
    """Acceptance (issue 11): the colour change commits; the worker process running its dispatch is
    SIGKILLed in the middle of it (the webhook consumer's delivery row written, not committed). Nothing
    of the dispatch survives, the killed worker's message stays unacknowledged in the broker (Redis
    redelivers it only after the visibility timeout, over an hour), and a new worker process does
    nothing by itself; the beat's re-dispatch, run as the beat runs it, has the new worker deliver the
    webhook to a local receiver, exactly once."""
    import signal

    from cs_platform.celery import app

    queue = f"retain-events-kill-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    hold = tmp_path / "hold"
    hold.mkdir()
    # Both processes send the event tasks and the delivery tries to this test's queue only.
    routes = {"cs_platform.events.*": {"queue": queue}, "playbooks.tasks.deliver_webhook": {"queue": queue}}
    env = {
        "RETAIN_TEST_TASK_ROUTES": json.dumps(routes),
        "OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8",  # the receiver is on loopback
        "CELERY_TASK_DEFAULT_QUEUE": queue,
    }
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    make_endpoint(org, receiver.url("/hook"), ["health.color_changed"])
    account = AccountFactory(organization=org, external_id="CRM-9", name="Hooli")
    pulse(account, "green", AS_OF - dt.timedelta(days=2))
    recompute_health(org, as_of=AS_OF, latest=True)
    pulse(account, "red")

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = False
    worker = None
    started = time.monotonic()
    try:
        worker = worker_process.start_worker(
            queue, log, app="tests.worker_app", RETAIN_TEST_HOLD_DISPATCH=str(hold), **env
        )
        with routed(app, routes):
            recompute_health(org, as_of=AS_OF, latest=True)  # commits: the event, then its dispatch message
        (event,) = color_events(org)

        # --- 1. the worker takes the dispatch and is killed while it holds it ------------------------
        worker_process.wait(lambda: (hold / "holding").exists(), 60, "the worker to hold the dispatch", log)
        assert (hold / "holding").read_text() == str(event.pk)
        # Held mid-dispatch: the worker's transaction has written (the delivery row), nothing is committed.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
            )
            assert cursor.fetchone()[0] == 1
        assert not WebhookDelivery.all_orgs.filter(organization=org).exists()
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        worker_process.end_other_backends()  # its session (and the event's row lock) is gone

        assert not WebhookDelivery.all_orgs.filter(organization=org).exists()  # rolled back with the worker
        assert not EventReceipt.all_orgs.filter(event_id=event.pk).exists()
        event.refresh_from_db()
        assert (event.dispatched_at, event.dispatch_attempts) == (None, 0)
        assert receiver.requests == []

        # --- 2. a new worker process: nothing happens by itself -------------------------------------
        worker = worker_process.start_worker(queue, log, app="tests.worker_app", **env)
        worker_process.wait(lambda: log.read_text().count("ready.") >= 2, 60, "the new worker to start", log)
        assert not wait_for(lambda: WebhookDelivery.all_orgs.filter(organization=org).exists(), 2)

        # --- 3. the beat's re-dispatch (its task, sent to the queue as beat sends it) ----------------
        settings.EVENTS_REDISPATCH_AFTER = 60
        assert redispatch_pending_events() == 0  # younger than a minute: its message may be on its way
        DomainEvent.all_orgs.filter(pk=event.pk).update(occurred_at=event.occurred_at - dt.timedelta(minutes=2))
        with routed(app, routes):
            redispatch_pending_events.delay()
            worker_process.wait(lambda: len(receiver.requests) == 1, 30, "the webhook", log)
            delivery = WebhookDelivery.all_orgs.get(organization=org)
            worker_process.wait(
                lambda: WebhookDelivery.all_orgs.get(pk=delivery.pk).is_final, 30, "the delivery to finish", log
            )
            # A second beat run and a duplicated dispatch message change nothing.
            assert redispatch_pending_events() == 0
            events.dispatch_events.delay(org.pk, [str(event.pk)])
            assert not wait_for(lambda: len(receiver.requests) > 1, 3)
    finally:
        app.conf.task_always_eager = saved
        worker_process.stop(worker)
        worker_process.end_other_backends()
        worker_process.forget_messages(queue)
    print(f"\nkilled, back and delivered in {time.monotonic() - started:.1f}s")

    assert WebhookDelivery.all_orgs.filter(organization=org).count() == 1
    (body,) = receiver.bodies("/hook")
    assert (body["id"], body["type"]) == (str(event.pk), "health.color_changed")
    assert (body["data"]["from"], body["data"]["to"], body["data"]["external_id"]) == ("green", "red", "CRM-9")
    event.refresh_from_db()
    assert event.dispatched_at is not None
    # Every consumer of the event ran once, the webhooks among them (segments and others consume it too).
    consumers = {consumer.name for consumer in events.consumers_for("health.color_changed")}
    assert "webhooks" in consumers
    assert set(EventReceipt.all_orgs.filter(event_id=event.pk).values_list("consumer", flat=True)) == consumers
