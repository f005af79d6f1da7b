"""Outbound webhooks: the consumer of domain events that signs and delivers them, with retries (spec §8).

Flow: producers record domain events (:func:`cs_platform.events.record_event`, docs/events.md); after
their commit the event dispatch runs :func:`deliver_event`, the webhook consumer registered in
``PlaybooksConfig.ready``. It calls :func:`emit`, which stores one
:class:`~playbooks.models.WebhookDelivery` per active endpoint of the organization subscribed to the
event type (at most one per endpoint and event id) and, once the dispatch's transaction commits,
enqueues :data:`DELIVER_TASK` for each. The task calls :func:`attempt_delivery`, which
POSTs the signed body, logs the try and either finishes the delivery or schedules the next try of
the same task with a countdown (``RETRY_DELAYS``); after ``MAX_ATTEMPTS`` tries it is ``failed``.

Exactly-once towards a healthy receiver: each try message carries the attempt number it is meant
to be; a message whose number does not match the delivery's next attempt (a redelivered or
duplicated message) does nothing, and a delivery that succeeded or failed is never sent again.
The delivery row is locked for the duration of a try, so two workers cannot send the same try.

Every HTTP call goes through :mod:`cs_platform.outbound`: the address is checked when the endpoint is
registered (early feedback) and again at every try (the check that counts), the connection goes to
the address that was checked, no response body is kept, and failures are stored in plain words. A
try runs only while its organization has a free outbound slot (``OUTBOUND_ORG_CONCURRENCY``);
otherwise it is queued again :data:`DEFER_SECONDS` later without counting as an attempt, so one
organization's slow receiver cannot occupy every worker of the ``outbound`` queue.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import random
import secrets
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization
from cs_platform import outbound
from cs_platform.celery import app as celery_app
from cs_platform.models import DomainEvent
from cs_platform.ratelimit import count, parse_rate

from .models import DeliveryStatus, EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "DEFER_SECONDS",
    "EVENT_TYPES",
    "MAX_ATTEMPTS",
    "RETRY_DELAYS",
    "SendTestThrottled",
    "attempt_delivery",
    "build_body",
    "deliver_event",
    "emit",
    "endpoint_origin",
    "generate_secret",
    "lock_for_try",
    "reserve_test_send",
    "send_and_record",
    "send_test",
    "sign",
    "validate_event_types",
    "validate_webhook_url",
]

#: Every event type an endpoint may subscribe to (``webhook.test`` is sent to any endpoint on request).
EVENT_TYPES: tuple[str, ...] = tuple(EventType.values)
SUBSCRIBABLE: tuple[str, ...] = tuple(t for t in EVENT_TYPES if t != EventType.WEBHOOK_TEST)
#: Seconds to wait after failed try n (1-based) before try n + 1: 30 s, 2 min, 10 min, 1 h, 6 h.
RETRY_DELAYS: tuple[int, ...] = (30, 120, 600, 3600, 21600)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
#: A try whose organization has no free outbound slot comes back after this many seconds (+ jitter).
DEFER_SECONDS = 2.0
USER_AGENT = "Retain-Webhooks/1"
#: The Celery task making one try (defined in playbooks.tasks, which imports this module: it is named,
#: not imported, so that services and tasks do not import each other).
DELIVER_TASK = "playbooks.tasks.deliver_webhook"
#: The name of the webhook consumer in the event dispatch (stored in receipts: never rename it).
CONSUMER_NAME = "webhooks"

#: ``schedule(organization_id, delivery_id, attempt, countdown)`` enqueues a try; injected in tests.
Scheduler = Callable[[int, int, int, float], None]


def generate_secret() -> str:
    """A new signing secret: 256 random bits, recognisable by its prefix."""
    return "whsec_" + secrets.token_urlsafe(32)


def validate_webhook_url(url: str) -> str:
    """The registration-time check (:func:`cs_platform.outbound.check_url`): an absolute ``http``/
    ``https`` URL without credentials whose host is not a refused address or name (loopback,
    private, link-local, metadata, Retain itself...). Early feedback only: every delivery checks
    the address again, and that check is the one that counts."""
    url = (url or "").strip()
    try:
        outbound.check_url(url)
    except outbound.OutboundRefused as exc:
        raise ValidationError(exc.reason) from None
    return url


def endpoint_origin(url: str) -> str:
    """``https://host[:port]`` of an endpoint URL: what non-admins see (the path or query of a webhook
    URL often carries a token)."""
    try:
        target = outbound.parse_url(url)
    except outbound.OutboundRefused:
        return ""
    return f"{target.scheme}://{target.host_header}"


def validate_event_types(values: Any) -> list[str]:
    """A non-empty list of known event types, deduplicated, in the canonical order."""
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
        raise ValidationError("Give the event types as a list of strings.")
    unknown = sorted(set(values) - set(SUBSCRIBABLE))
    if unknown:
        raise ValidationError(f"Unknown event type(s) {', '.join(unknown)}; choose from: {', '.join(SUBSCRIBABLE)}.")
    if not values:
        raise ValidationError("Choose at least one event type.")
    return [t for t in SUBSCRIBABLE if t in set(values)]


def sign(secret: str, body: bytes) -> str:
    """The ``X-Retain-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    # Dates, decimals and UUIDs become the strings the receiver will see, once, at emit time.
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def deliver_event(event: DomainEvent) -> None:
    """The webhook consumer of the domain-event dispatch (after the producer's commit): the event's
    deliveries, under the event's id. Idempotent by event id: endpoints that already have a delivery
    of this event get none again (and a unique constraint fences concurrent runs)."""
    emit(event.organization_id, event.name, event.payload, event_id=event.pk)


def emit(
    organization_id: int, event_type: str, data: dict[str, Any], *, event_id: uuid.UUID | None = None
) -> list[WebhookDelivery]:
    """Store a delivery of ``event_type`` for every active endpoint of the organization subscribed to
    it and enqueue them after the current transaction commits (nothing is sent for a rolled-back
    change). Returns the new deliveries (none when no endpoint listens: one cheap query).

    This is the webhook consumer's fan-out, not a producer API: code that wants an event sent
    records a domain event (:func:`cs_platform.events.record_event`), which reaches this function
    through :func:`deliver_event`. ``event_id`` is the domain event's id (a new one when omitted);
    endpoints that already have a delivery with that id are skipped.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    endpoints = [
        e
        for e in WebhookEndpoint.objects.for_org(organization_id).filter(is_active=True).only("pk", "event_types")
        if e.wants(event_type) and event_type != EventType.WEBHOOK_TEST
    ]
    if endpoints and event_id is not None:
        already = set(
            WebhookDelivery.objects.for_org(organization_id)
            .filter(event_id=event_id, endpoint__in=[e.pk for e in endpoints])
            .values_list("endpoint_id", flat=True)
        )
        endpoints = [e for e in endpoints if e.pk not in already]
    if not endpoints:
        return []
    return _create_deliveries(organization_id, endpoints, event_type, data, event_id=event_id)


class SendTestThrottled(Exception):
    """The organization has used its ``WEBHOOK_TEST_RATE`` budget; ``wait`` is the seconds until the next."""

    def __init__(self, wait: int, limit: int, period: int) -> None:
        self.wait, self.limit, self.period = wait, limit, period
        per = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}[period]
        super().__init__(
            f"Too many test sends: at most {limit} per {per} for this organization. Try again in {wait} s."
        )


def _test_rate() -> tuple[int, int]:
    """``WEBHOOK_TEST_RATE`` (``5/min``) as (count, seconds), DRF's rate syntax."""
    return parse_rate(getattr(settings, "WEBHOOK_TEST_RATE", "5/min"), name="WEBHOOK_TEST_RATE")


def send_test_budget_key(organization_id: int) -> str:
    """Cache key counting an organization's test sends in its current rate window."""
    return f"retain:webhook-test:{organization_id}"


def reserve_test_send(organization_id: int) -> None:
    """Count one test send against the organization's budget, or raise :class:`SendTestThrottled`.

    The window opens at the organization's first send and lasts one period (a counter in the cache:
    Redis in production, so every web process shares it). A window aligned on the calendar minute
    would let a burst straddling its boundary send twice the limit.
    """
    limit, period = _test_rate()
    verdict = count(send_test_budget_key(organization_id), limit, period)
    if verdict.wait is not None:
        raise SendTestThrottled(verdict.wait, limit, period)


def send_test(endpoint: WebhookEndpoint, *, user: Any = None) -> WebhookDelivery:
    """Queue a ``webhook.test`` event to one endpoint (whatever its subscriptions), within the
    organization's ``WEBHOOK_TEST_RATE``; raises :class:`SendTestThrottled` beyond it."""
    reserve_test_send(endpoint.organization_id)
    data = {"message": "This is a test event from Retain.", "endpoint": endpoint.pk}
    if user is not None and getattr(user, "email", None):
        data["sent_by"] = user.email
    return _create_deliveries(endpoint.organization_id, [endpoint], EventType.WEBHOOK_TEST, data)[0]


def _create_deliveries(
    organization_id: int,
    endpoints: list[WebhookEndpoint],
    event_type: str,
    data: dict[str, Any],
    *,
    event_id: uuid.UUID | None = None,
) -> list[WebhookDelivery]:
    event_id = event_id or uuid.uuid4()
    payload = _jsonable(data)
    deliveries = WebhookDelivery.all_orgs.bulk_create(
        [
            WebhookDelivery(
                organization_id=organization_id,
                endpoint_id=endpoint.pk,
                event_type=event_type,
                event_id=event_id,
                payload=payload,
            )
            for endpoint in endpoints
        ]
    )
    ids = [d.pk for d in deliveries]
    if None in ids:  # backends without RETURNING ids on bulk insert
        deliveries = list(
            WebhookDelivery.all_orgs.filter(
                organization_id=organization_id, event_id=event_id, endpoint__in=[e.pk for e in endpoints]
            )
        )
        ids = [d.pk for d in deliveries]

    def enqueue() -> None:
        for pk in ids:
            enqueue_try(organization_id, pk, 1, 0)

    transaction.on_commit(enqueue)
    return deliveries


def enqueue_try(organization_id: int, delivery_id: int, attempt: int, countdown: float) -> None:
    """The default scheduler: the same Celery task, delayed by ``countdown`` seconds."""
    deliver_webhook = celery_app.tasks[DELIVER_TASK]  # registered by PlaybooksConfig.ready
    kwargs = {"attempt": attempt}
    if countdown:
        deliver_webhook.apply_async((organization_id, delivery_id), kwargs, countdown=countdown)
    else:
        deliver_webhook.apply_async((organization_id, delivery_id), kwargs)


def build_body(delivery: WebhookDelivery, organization_slug: str) -> bytes:
    """The JSON body; identical on every try of the delivery (same id, created_at and data)."""
    envelope = {
        "id": str(delivery.event_id),
        "type": delivery.event_type,
        "created_at": delivery.created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "organization": organization_slug,
        "data": delivery.payload,
    }
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True, cls=DjangoJSONEncoder).encode()


def lock_for_try(model: Any, organization_id: int, delivery_id: int, attempt: int, related: str) -> Any | None:
    """The delivery row of ``model`` (a webhook or a chat delivery), locked for this try, or ``None`` when it
    is gone, final, or its next try is not ``attempt`` (a stale or duplicated message). Call it inside the
    try's transaction. Shared by :func:`attempt_delivery` and ``playbooks.chat.attempt_chat_delivery``."""
    delivery = (
        model.objects.for_org(organization_id)
        .select_for_update(of=("self",))
        .select_related(related)
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None or delivery.is_final or delivery.attempts != attempt - 1:
        return None
    return delivery


def send_and_record(
    organization_id: int,
    delivery: Any,
    attempt: int,
    *,
    url: str,
    body: bytes,
    headers: dict[str, str],
    send: bool,
    not_sent: str,
    may_retry: bool,
    attempt_model: Any,
    schedule: Scheduler,
) -> bool:
    """The skeleton of one try, shared by webhooks and chat messages (inside the try's transaction, the row
    locked by :func:`lock_for_try`): POST ``body`` through the outbound guard holding one of the
    organization's slots (``send`` False: not sent, recorded as failed with ``not_sent``), then store the
    outcome on the delivery, log the try as an ``attempt_model`` row, and schedule the next try after the
    commit on the :data:`RETRY_DELAYS` schedule (only when ``may_retry``). ``False`` when the organization had
    no free slot: the same try comes back about :data:`DEFER_SECONDS` later and nothing was recorded."""
    delivery_id = delivery.pk
    attempted_at = timezone.now()
    if not send:
        result = outbound.OutboundResult(None, "inactive", not_sent, 0)
    else:
        slot = outbound.acquire_slot(organization_id)
        if slot is None:
            # The organization's slots are busy: give this worker to another message and come back.
            defer = DEFER_SECONDS + random.uniform(0, DEFER_SECONDS / 2)
            transaction.on_commit(lambda: schedule(organization_id, delivery_id, attempt, defer))
            return False
        try:
            result = outbound.request("POST", url, body=body, headers=headers)
        finally:
            outbound.release_slot(organization_id, slot)
    delivery.attempts = attempt
    delivery.last_status_code = result.status_code
    delivery.last_error = "" if result.ok else result.error
    retry_in: int | None = None
    if result.ok:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.SUCCEEDED, None
    elif attempt < MAX_ATTEMPTS and may_retry:
        retry_in = RETRY_DELAYS[attempt - 1]
        delivery.status = DeliveryStatus.RETRYING
        delivery.next_attempt_at = timezone.now() + dt.timedelta(seconds=retry_in)
    else:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
    delivery.save(
        update_fields=["attempts", "status", "next_attempt_at", "last_status_code", "last_error", "updated_at"]
    )
    attempt_model.all_orgs.create(
        organization_id=organization_id,
        delivery=delivery,
        number=attempt,
        attempted_at=attempted_at,
        status_code=result.status_code,
        error=delivery.last_error,
        duration_ms=result.duration_ms,
        retry_in_seconds=retry_in,
    )
    if retry_in is not None:
        countdown = retry_in
        transaction.on_commit(lambda: schedule(organization_id, delivery_id, attempt + 1, countdown))
    return True


def attempt_delivery(
    organization_id: int, delivery_id: int, *, attempt: int = 1, schedule: Scheduler | None = None
) -> WebhookDelivery | None:
    """Make try number ``attempt`` of a delivery: send, log, then finish or schedule the next try.

    Does nothing (returns ``None``) for a delivery that is gone, already succeeded or failed, or
    whose next try is not ``attempt`` (a stale or duplicated message). When the organization already
    has ``OUTBOUND_ORG_CONCURRENCY`` calls in flight, the same try is scheduled again about
    :data:`DEFER_SECONDS` later and ``None`` is returned: it is not an attempt. ``schedule`` defaults
    to :func:`enqueue_try`, run after commit so the next try sees this one's row. A deactivated
    endpoint gets nothing but tests, and a failure towards it is not retried.
    """
    schedule = schedule or enqueue_try
    org = Organization.objects.only("slug").get(pk=organization_id)
    with transaction.atomic():
        delivery = lock_for_try(WebhookDelivery, organization_id, delivery_id, attempt, "endpoint")
        if delivery is None:
            return None
        endpoint = delivery.endpoint
        body = build_body(delivery, org.slug)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Retain-Signature": sign(endpoint.secret, body),
            "X-Retain-Event": delivery.event_type,
            "X-Retain-Delivery": str(delivery.pk),
        }
        sent = send_and_record(
            organization_id, delivery, attempt, url=endpoint.url, body=body, headers=headers,
            send=endpoint.is_active or delivery.event_type == EventType.WEBHOOK_TEST,
            not_sent="Endpoint deactivated; not sent.", may_retry=endpoint.is_active,
            attempt_model=WebhookAttempt, schedule=schedule,
        )  # fmt: skip
        if not sent:
            return None
    return delivery
