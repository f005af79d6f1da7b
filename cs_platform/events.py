"""The one domain-event stream: catalogue, transactional outbox, consumers and dispatch (docs/events.md).

Producers (any app) call :func:`record_event` / :func:`record_events` inside the transaction of the
change they describe. The event row is written in that transaction, so it exists if and only if the
change committed; once the transaction commits, :func:`dispatch_events` is queued for the new ids.
That task runs every consumer registered for the event's name (:func:`register_consumer`, called in
an ``AppConfig.ready``) exactly once per event: a consumer's writes and its :class:`EventReceipt`
commit together, so a repeated dispatch skips consumers that already have a receipt.

Delivery is at-least-once: if the process dies between the commit and the queueing, or the worker
dies mid-dispatch (``acks_late`` redelivers the message), the beat's :func:`redispatch_pending_events`
queues every event still undispatched a minute after it occurred. :func:`purge_dispatched_events`
deletes dispatched events after ``EVENTS_RETENTION_DAYS``.

Consumers run after the commit only, never inside the producer's transaction: a consumer that fails
or is slow cannot roll back or hold up the change that raised the event.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from .models import DomainEvent, EventReceipt
from .tasks import TRANSIENT_ERRORS, org_task, sweep_task
from .tenancy import org_scope

__all__ = [
    "CATALOGUE",
    "EVENT_NAMES",
    "WEBHOOK_EVENT_NAMES",
    "Consumer",
    "EventSpec",
    "NewEvent",
    "consumers_for",
    "dispatch",
    "dispatch_events",
    "purge_dispatched_events",
    "record_event",
    "record_events",
    "redispatch_pending_events",
    "register_consumer",
    "unregister_consumer",
]

logger = logging.getLogger(__name__)


# --- The catalogue ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventSpec:
    """One entry of the catalogue: what docs/events.md lists and webhook subscribers read.

    ``recorded``: producers record it as a domain event (``webhook.test`` is not one: an admin's
    test send goes to one endpoint directly). ``subscribable``: webhook endpoints may subscribe to
    it. ``live``: some code records it today (the others arrive with their issue)."""

    name: str
    label: str
    subject: str
    when: str
    payload: tuple[str, ...] = ()
    recorded: bool = True
    subscribable: bool = True
    live: bool = True

    @property
    def member(self) -> str:
        """The enum member name: ``health.color_changed`` → ``HEALTH_COLOR_CHANGED``."""
        return self.name.replace(".", "_").upper()


ACCOUNT_FIELDS = (
    "id", "external_id", "name", "domain", "industry", "region", "parent", "owner", "lifecycle_stage",
    "touch_model", "tags", "arr", "customer_since", "churned_at",
)  # fmt: skip

#: Every event, in the canonical order (webhook subscription lists and the docs follow it). Names and
#: payloads of the webhook events are a public contract: change them only with a new name.
CATALOGUE: tuple[EventSpec, ...] = (
    EventSpec(
        "account.created", "Account created", "account",
        "an account is created by any Account.save() (API, page, admin); not by CSV imports",
        ACCOUNT_FIELDS,
    ),
    EventSpec(
        "account.updated", "Account updated", "account",
        "an existing account is saved again by Account.save(); not by imports or the ARR refresh",
        ACCOUNT_FIELDS,
    ),
    EventSpec(
        "account.deleted_in_source", "Account deleted in the CRM", "account",
        "a connector sync finds the account's CRM record deleted (a HubSpot company archived, a Salesforce Account "
        "deleted): the account is kept and flagged, not deleted; once per deletion (not in a dry run)",
        (*ACCOUNT_FIELDS, "source_deleted_at"),
    ),
    EventSpec(
        "account.restored_in_source", "Account restored in the CRM", "account",
        "a connector sync answers again an account flagged as deleted in the CRM (restored from its recycle bin): "
        "the flag is cleared",
        (*ACCOUNT_FIELDS, "source_deleted_at"),
    ),
    EventSpec(
        "health.color_changed", "Health colour changed", "account",
        "an account's effective health colour changes: in a recompute (not its first-ever score) or "
        "when an override is set or cleared",
        ("id", "external_id", "name", "from", "to", "score", "account", "account_external_id", "cause"),
    ),
    EventSpec(
        "renewal.forecast_changed", "Renewal forecast changed", "renewal",
        "a renewal's forecast changes (anything but the notes alone) or the renewal is closed",
        (
            "renewal", "account", "account_external_id", "account_name", "contract", "due_date",
            "forecast_category", "forecast_arr", "current_arr", "probability", "stage", "outcome",
            "changes", "changed_by", "new_arr",
        ),
    ),
    EventSpec(
        "contact.departed", "Contact departed", "contact",
        "an existing contact stops being active (is_active turns false or departed_at is set): through "
        "Contact.save() (the API, the admin) or a contacts CSV import",
        ("id", "external_id", "name", "email", "title", "roles", "key_role", "account", "account_external_id",
         "departed_at"),
    ),  # fmt: skip
    EventSpec(
        "segment.entered", "Account entered a segment", "account",
        "a membership refresh finds an account matching a segment's rules that did not at the previous "
        "refresh (not when a new segment is filled for the first time)",
        ("segment", "segment_name", "account", "account_external_id", "account_name", "at"),
    ),
    EventSpec(
        "segment.left", "Account left a segment", "account",
        "a membership refresh finds a member of a segment no longer matching its rules (not when the "
        "segment or the account is deleted)",
        ("segment", "segment_name", "account", "account_external_id", "account_name", "at"),
    ),
    EventSpec(
        "onboarding.milestone_stalled", "Onboarding milestone stalled", "onboarding_milestone",
        "the daily stall detection finds an open milestone of a running onboarding project late (today, in the "
        "organization's time zone, is past its due date) or unchanged for the project's stall_after_days; once per "
        "stall: not again until the milestone changes",
        ("milestone", "key", "name", "phase", "mark", "owner", "due_on", "last_changed_at", "stalled_on", "reasons",
         "project", "project_name", "account", "account_external_id", "account_name"),
    ),  # fmt: skip
    EventSpec("cta.opened", "CTA opened", "cta", "a CTA opens", live=False),
    EventSpec("cta.closed", "CTA closed", "cta", "a CTA closes", live=False),
    EventSpec(
        "playbook.fired", "Playbook fired", "playbook",
        "a playbook with a webhook action fires for an account (the action records it; webhooks deliver it)",
        ("playbook", "playbook_name", "trigger", "account", "account_external_id", "account_name", "occurrence_key",
         "cta", "fired_at"),
    ),
    EventSpec(
        "survey.response", "Survey response", "survey_response",
        "a contact answers a survey on its public page, or a response is created through the API (not by the "
        "survey_responses CSV import: history does not fire playbooks)",
        ("id", "kind", "score", "category", "comment", "responded_at", "source", "survey", "send", "contact",
         "account", "account_external_id", "account_name"),
    ),
    EventSpec(
        "feature_request.status_changed", "Feature request status changed", "feature_request",
        "a feature request changes status: on its page, through the API, or by the issue tracker's inbound "
        "webhook (not when it is merged into another)",
        ("id", "title", "type", "product_area", "from", "to", "source", "external_issue_key", "external_issue_url",
         "arr_at_stake", "accounts", "changed_by"),
    ),
    EventSpec(
        "business_review.closed", "Business review closed", "business_review",
        "a QBR or EBR is closed (its page or the API): the activity is logged, the next objectives are set "
        "and the value report is frozen",
        ("id", "kind", "account", "account_external_id", "account_name", "period_start", "period_end", "held_on",
         "summary", "activity", "next_review_on", "next_objectives", "closed_by"),
    ),
    EventSpec(
        "onboarding.went_live", "Onboarding went live", "onboarding_project",
        "the go-live milestone of an onboarding project is completed (reopening it records nothing)",
        ("project", "project_name", "account", "account_external_id", "account_name", "milestone", "milestone_key",
         "kickoff_on", "go_live_on", "target_go_live_on", "days_to_go_live", "on_time"),
    ),
    EventSpec(
        "onboarding.first_value", "Onboarding reached first value", "onboarding_project",
        "the first-value milestone of an onboarding project is completed, or its go-live when the project has "
        "no first-value milestone (reopening it records nothing)",
        ("project", "project_name", "account", "account_external_id", "account_name", "milestone", "milestone_key",
         "kickoff_on", "first_value_on", "target_first_value_on", "days_to_first_value", "go_live_on"),
    ),
    EventSpec(
        "webhook.test", "Test event", "webhook_endpoint",
        "an admin presses Send test: sent to that endpoint only, never recorded as a domain event",
        ("message", "endpoint", "sent_by"), recorded=False, subscribable=False,
    ),
)  # fmt: skip

SPECS: dict[str, EventSpec] = {spec.name: spec for spec in CATALOGUE}
#: Names producers may record.
EVENT_NAMES: tuple[str, ...] = tuple(spec.name for spec in CATALOGUE if spec.recorded)
#: Every name a webhook delivery can carry (the recorded events and ``webhook.test``).
WEBHOOK_EVENT_NAMES: tuple[str, ...] = tuple(spec.name for spec in CATALOGUE)


# --- Consumers ------------------------------------------------------------------------------------

Handler = Callable[[DomainEvent], None]


class Consumer(NamedTuple):
    """A registered consumer: its stable ``name`` (stored in receipts: never rename one lightly), the
    handler, and the event names it wants (``None``: every event)."""

    name: str
    handler: Handler
    names: frozenset[str] | None


_consumers: dict[str, Consumer] = {}


def register_consumer(name: str, handler: Handler, names: Iterable[str] | None = None) -> Consumer:
    """Register ``handler(event)`` under ``name`` for the events ``names`` (default: all).

    Call it from an ``AppConfig.ready``. Registering the same name again replaces the entry (ready
    may run twice in tests). The handler runs after the producer's commit, inside a transaction that
    also writes the receipt: whatever it writes to the database commits with the receipt or not at
    all. It must not call outside services directly (queue a task on commit instead) and must accept
    the payload's fields as strings where they are dates or decimals.
    """
    wanted = None if names is None else frozenset(names)
    unknown = sorted((wanted or frozenset()) - set(EVENT_NAMES))
    if unknown:
        raise ValueError(f"unknown event name(s) {', '.join(unknown)}; see cs_platform.events.CATALOGUE")
    consumer = Consumer(name, handler, wanted)
    _consumers[name] = consumer
    return consumer


def unregister_consumer(name: str) -> None:
    """Remove a consumer (tests)."""
    _consumers.pop(name, None)


def consumers_for(event_name: str) -> list[Consumer]:
    """The consumers of an event name, in registration order."""
    return [c for c in _consumers.values() if c.names is None or event_name in c.names]


# --- Recording ------------------------------------------------------------------------------------


class NewEvent(NamedTuple):
    """An event to record: catalogue name, subject id and payload (``subject_type`` defaults to the
    catalogue's)."""

    name: str
    subject_id: int | str
    payload: dict[str, Any]
    subject_type: str | None = None


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    # Dates, decimals and UUIDs become the strings consumers and webhook receivers will see, once.
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def record_event(
    organization_id: int, name: str, subject_id: int | str, payload: dict[str, Any], *, subject_type: str | None = None
) -> DomainEvent:
    """Record one event in the current transaction and queue its dispatch once that commits.

    Call it inside the transaction of the change (``transaction.atomic``): the event then commits or
    rolls back with it. Outside any transaction it opens one of its own (the change before it has
    already committed in autocommit mode, so only the event row is atomic then). Raises
    ``ValueError`` for a name that is not in the catalogue.
    """
    (event,) = record_events(organization_id, [NewEvent(name, subject_id, payload, subject_type)])
    return event


def record_events(organization_id: int, events: Iterable[NewEvent]) -> list[DomainEvent]:
    """Record several events in one insert (see :func:`record_event`); returns them."""
    now = timezone.now()
    rows = []
    for item in events:
        spec = SPECS.get(item.name)
        if spec is None or not spec.recorded:
            raise ValueError(f"unknown domain event {item.name!r}; see cs_platform.events.CATALOGUE")
        rows.append(
            DomainEvent(
                organization_id=organization_id,
                name=item.name,
                subject_type=item.subject_type or spec.subject,
                subject_id=str(item.subject_id),
                payload=_jsonable(item.payload),
                occurred_at=now,
            )
        )
    if not rows:
        return []
    with transaction.atomic(savepoint=False):  # joins the caller's transaction, or opens one
        DomainEvent.all_orgs.bulk_create(rows)
        ids = [str(row.pk) for row in rows]  # UUIDs chosen here, so known on every backend
        # robust: a broker that is down must not turn a committed change into an error; the beat's
        # re-dispatch picks the events up a minute later.
        transaction.on_commit(lambda: _queue_dispatch(organization_id, ids), robust=True)
    return rows


def _queue_dispatch(organization_id: int, event_ids: list[str]) -> None:
    dispatch_events.delay(organization_id, event_ids)


# --- Dispatching ----------------------------------------------------------------------------------


def dispatch(organization_id: int, event_ids: Iterable[str] | None = None) -> int:
    """Run every consumer of the organization's undispatched events ``event_ids`` (default: all of
    them) that has no receipt yet; returns how many events became dispatched.

    Each consumer runs in a savepoint with its receipt: a failing consumer rolls back alone, is
    logged, and the event stays undispatched for the next dispatch (others keep their receipts and
    are not run again). Events another dispatcher is working on are skipped (``SKIP LOCKED``).
    """
    done = 0
    with org_scope(organization_id), transaction.atomic():
        pending = DomainEvent.objects.for_org(organization_id).filter(dispatched_at__isnull=True)
        if event_ids is not None:
            pending = pending.filter(pk__in=list(event_ids))
        if connection.features.has_select_for_update_skip_locked:
            pending = pending.select_for_update(skip_locked=True)
        events = list(pending.order_by("occurred_at", "pk"))
        receipts: dict[Any, set[str]] = defaultdict(set)
        for event_id, consumer in (
            EventReceipt.objects.for_org(organization_id)
            .filter(event__in=[e.pk for e in events])
            .values_list("event_id", "consumer")
        ):
            receipts[event_id].add(consumer)
        for event in events:
            failed = False
            for consumer in consumers_for(event.name):
                if consumer.name in receipts[event.pk]:
                    continue
                try:
                    with transaction.atomic():
                        consumer.handler(event)
                        EventReceipt.all_orgs.create(
                            organization_id=organization_id, event=event, consumer=consumer.name
                        )
                except TRANSIENT_ERRORS:
                    raise  # the connection may be gone: the task retries the whole dispatch
                except Exception:
                    failed = True
                    logger.exception("event consumer %s failed on %s %s", consumer.name, event.name, event.pk)
            if failed:
                event.dispatch_attempts += 1
                event.save(update_fields=["dispatch_attempts"])
            else:
                event.dispatched_at = timezone.now()
                event.save(update_fields=["dispatched_at"])
                done += 1
    return done


@org_task(name="cs_platform.events.dispatch_events")
def dispatch_events(organization_id: int, event_ids: list[str]) -> None:
    """Dispatch events of one organization (queued on commit by :func:`record_events`, and by the
    beat's re-dispatch). Safe to run twice: consumers with a receipt are skipped."""
    dispatch(organization_id, event_ids)


#: Events whose consumers keep failing stop being re-dispatched after this many tries (they stay in
#: the table, undispatched, for an operator to look at; the purge removes them with the others).
MAX_DISPATCH_ATTEMPTS = 10
#: How many pending events one re-dispatch run queues at most, and per message.
REDISPATCH_LIMIT = 10_000
REDISPATCH_CHUNK = 500


def _pending_before(cutoff: Any) -> Any:
    return DomainEvent.all_orgs.filter(
        dispatched_at__isnull=True, occurred_at__lt=cutoff, dispatch_attempts__lt=MAX_DISPATCH_ATTEMPTS
    )


@sweep_task(
    "events: redispatch pending events of every organization", name="cs_platform.events.redispatch_pending_events"
)
def redispatch_pending_events() -> int:
    """Beat, every minute: queue the dispatch of events still undispatched ``EVENTS_REDISPATCH_AFTER``
    seconds after they occurred (the message was lost: a process died between the commit and the
    queueing, or the broker was down; or a consumer failed). Returns how many were queued."""
    cutoff = timezone.now() - timedelta(seconds=settings.EVENTS_REDISPATCH_AFTER)
    by_org: dict[int, list[str]] = defaultdict(list)
    rows = _pending_before(cutoff).order_by("occurred_at").values_list("organization_id", "pk")[:REDISPATCH_LIMIT]
    for organization_id, pk in rows:
        by_org[organization_id].append(str(pk))
    for organization_id, ids in by_org.items():
        for start in range(0, len(ids), REDISPATCH_CHUNK):
            dispatch_events.delay(organization_id, ids[start : start + REDISPATCH_CHUNK])
    return sum(len(ids) for ids in by_org.values())


@sweep_task("events: purge dispatched events of every organization", name="cs_platform.events.purge_dispatched_events")
def purge_dispatched_events(batch: int = 5000) -> int:
    """Beat, daily: delete events dispatched more than ``EVENTS_RETENTION_DAYS`` days ago (their
    receipts go with them), and events that gave up after :data:`MAX_DISPATCH_ATTEMPTS` as old. What
    consumers made of them (webhook deliveries, …) keeps its own retention. Returns events deleted."""
    cutoff = timezone.now() - timedelta(days=settings.EVENTS_RETENTION_DAYS)
    expired = DomainEvent.all_orgs.filter(dispatched_at__lt=cutoff) | DomainEvent.all_orgs.filter(
        dispatched_at__isnull=True, dispatch_attempts__gte=MAX_DISPATCH_ATTEMPTS, occurred_at__lt=cutoff
    )
    deleted = 0
    while True:
        ids = list(expired.values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        EventReceipt.all_orgs.filter(event_id__in=ids).delete()
        deleted += DomainEvent.all_orgs.filter(pk__in=ids).delete()[0]
