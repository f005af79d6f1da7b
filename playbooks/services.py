"""Outbound webhooks: emit events, sign and deliver them, retry with back-off (spec §8).

Flow: :func:`emit` stores one :class:`~playbooks.models.WebhookDelivery` per active endpoint of the
organization subscribed to the event type and, once the surrounding transaction commits, enqueues
:func:`playbooks.tasks.deliver_webhook` for each. The task calls :func:`attempt_delivery`, which
POSTs the signed body, logs the try and either finishes the delivery or schedules the next try of
the same task with a countdown (``RETRY_DELAYS``); after ``MAX_ATTEMPTS`` tries it is ``failed``.

Exactly-once towards a healthy receiver: each try message carries the attempt number it is meant
to be; a message whose number does not match the delivery's next attempt (a redelivered or
duplicated message) does nothing, and a delivery that succeeded or failed is never sent again.
The delivery row is locked for the duration of a try, so two workers cannot send the same try.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization

from .models import DeliveryStatus, EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "EVENT_TYPES",
    "MAX_ATTEMPTS",
    "RETRY_DELAYS",
    "TIMEOUT_SECONDS",
    "attempt_delivery",
    "build_body",
    "emit",
    "generate_secret",
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
TIMEOUT_SECONDS = 10
EXCERPT_CHARS = 1000
USER_AGENT = "Retain-Webhooks/1"

#: ``schedule(organization_id, delivery_id, attempt, countdown)`` enqueues a try; injected in tests.
Scheduler = Callable[[int, int, int, float], None]


def generate_secret() -> str:
    """A new signing secret: 256 random bits, recognisable by its prefix."""
    return "whsec_" + secrets.token_urlsafe(32)


def validate_webhook_url(url: str) -> str:
    """Only absolute ``http``/``https`` URLs with a host; anything else (``file:``, ``ftp:``,
    ``javascript:``, relative) is refused here so the delivery task never opens it."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValidationError("Use an http:// or https:// URL.")
    if not parts.hostname:
        raise ValidationError("The URL needs a host name.")
    if parts.username or parts.password:
        raise ValidationError("Do not put credentials in the URL; verify the signature instead.")
    return url


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


def emit(organization_id: int, event_type: str, data: dict[str, Any]) -> list[WebhookDelivery]:
    """Record ``event_type`` for every active endpoint of the organization subscribed to it and
    enqueue the deliveries after the current transaction commits (nothing is sent for a rolled-back
    change). Returns the deliveries (none when no endpoint listens: one cheap query)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    endpoints = [
        e
        for e in WebhookEndpoint.objects.for_org(organization_id).filter(is_active=True).only("pk", "event_types")
        if e.wants(event_type) and event_type != EventType.WEBHOOK_TEST
    ]
    if not endpoints:
        return []
    return _create_deliveries(organization_id, endpoints, event_type, data)


def send_test(endpoint: WebhookEndpoint, *, user: Any = None) -> WebhookDelivery:
    """Queue a ``webhook.test`` event to one endpoint (whatever its subscriptions)."""
    data = {"message": "This is a test event from Retain.", "endpoint": endpoint.pk}
    if user is not None and getattr(user, "email", None):
        data["sent_by"] = user.email
    return _create_deliveries(endpoint.organization_id, [endpoint], EventType.WEBHOOK_TEST, data)[0]


def _create_deliveries(
    organization_id: int, endpoints: list[WebhookEndpoint], event_type: str, data: dict[str, Any]
) -> list[WebhookDelivery]:
    event_id = uuid.uuid4()
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
        deliveries = list(WebhookDelivery.all_orgs.filter(organization_id=organization_id, event_id=event_id))
        ids = [d.pk for d in deliveries]

    def enqueue() -> None:
        for pk in ids:
            enqueue_try(organization_id, pk, 1, 0)

    transaction.on_commit(enqueue)
    return deliveries


def enqueue_try(organization_id: int, delivery_id: int, attempt: int, countdown: float) -> None:
    """The default scheduler: the same Celery task, delayed by ``countdown`` seconds."""
    from .tasks import deliver_webhook

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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are never followed: a 3xx is a failed try. A receiver that moved must be updated by
    an admin; following it could send a signed body to another host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass
class HttpResult:
    status_code: int | None
    body: str
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = TIMEOUT_SECONDS) -> HttpResult:
    """POST with the standard library; any network failure becomes an error message, never raises."""
    validate_webhook_url(url)  # the stored URL was validated; this guards rows written another way
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    started = time.monotonic()
    code: int | None = None
    text, error = "", ""
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            code = response.status
            text = response.read(EXCERPT_CHARS * 4).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:  # a non-2xx answer (3xx included: not followed)
        code = exc.code
        try:
            text = exc.read(EXCERPT_CHARS * 4).decode("utf-8", "replace")
        except Exception:  # noqa: BLE001 - the body of an error is best effort
            text = ""
        error = f"HTTP {exc.code}" + (" (redirects are not followed)" if 300 <= exc.code < 400 else "")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        error = f"{type(exc).__name__}: {reason}"[:1000]
    return HttpResult(code, text[:EXCERPT_CHARS], error, int((time.monotonic() - started) * 1000))


def attempt_delivery(
    organization_id: int, delivery_id: int, *, attempt: int = 1, schedule: Scheduler | None = None
) -> WebhookDelivery | None:
    """Make try number ``attempt`` of a delivery: send, log, then finish or schedule the next try.

    Does nothing (returns ``None``) for a delivery that is gone, already succeeded or failed, or
    whose next try is not ``attempt`` (a stale or duplicated message). ``schedule`` defaults to
    :func:`enqueue_try`, run after commit so the next try sees this one's row.
    """
    schedule = schedule or enqueue_try
    org = Organization.objects.only("slug").get(pk=organization_id)
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.for_org(organization_id)
            .select_for_update(of=("self",))
            .select_related("endpoint")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.is_final or delivery.attempts != attempt - 1:
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
        now = timezone.now()
        if not endpoint.is_active and delivery.event_type != EventType.WEBHOOK_TEST:
            result = HttpResult(None, "", "Endpoint deactivated; not sent.", 0)
        else:
            result = post(endpoint.url, body, headers)
        delivery.attempts = attempt
        delivery.last_status_code = result.status_code
        delivery.last_error = "" if result.ok else result.error or f"HTTP {result.status_code}"
        delivery.response_excerpt = result.body
        retry_in: int | None = None
        if result.ok:
            delivery.status = DeliveryStatus.SUCCEEDED
            delivery.next_attempt_at = None
        elif attempt < MAX_ATTEMPTS and endpoint.is_active:
            retry_in = RETRY_DELAYS[attempt - 1]
            delivery.status = DeliveryStatus.RETRYING
            delivery.next_attempt_at = now + dt.timedelta(seconds=retry_in)
        else:
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = None
        delivery.save(
            update_fields=[
                "attempts", "status", "next_attempt_at", "last_status_code", "last_error",
                "response_excerpt", "updated_at",
            ]
        )  # fmt: skip
        WebhookAttempt.all_orgs.create(
            organization_id=organization_id,
            delivery=delivery,
            number=attempt,
            attempted_at=now,
            status_code=result.status_code,
            error=delivery.last_error,
            duration_ms=result.duration_ms,
            retry_in_seconds=retry_in,
        )
        if retry_in is not None:
            countdown = retry_in
            transaction.on_commit(lambda: schedule(organization_id, delivery_id, attempt + 1, countdown))
    return delivery
