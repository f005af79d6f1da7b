"""Models of the playbooks app: outbound automation. For now, outbound webhooks (spec §8).

Segments moved to ``accounts`` (their rules are account fields; the table is still ``playbooks_segment``).

An admin registers a :class:`WebhookEndpoint` for some event types; every event of those types
becomes one :class:`WebhookDelivery` per endpoint, delivered by a Celery task with retries, and
each HTTP try is logged as a :class:`WebhookAttempt`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from cs_platform.events import CATALOGUE
from cs_platform.tenancy import OrgScopedModel

from .models_chat import *  # noqa: F403  (chat channels: Slack and Teams incoming webhooks, their deliveries)
from .models_digest import *  # noqa: F403  (the daily digest: members' choice and the runs)
from .models_email import *  # noqa: F403  (templated email: templates and the send log)
from .models_engine import *  # noqa: F403  (the playbook engine: playbooks and their firings)
from .models_work import *  # noqa: F403  (the work queue's models: CTAs, tasks, notifications, log)

#: The event types a webhook can carry: every entry of the domain-event catalogue
#: (:data:`cs_platform.events.CATALOGUE`, spec §8, docs/events.md), in its order, with the same names.
EventType = models.TextChoices(  # type: ignore[misc]
    "EventType", [(spec.member, (spec.name, spec.label)) for spec in CATALOGUE]
)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Retrying"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookEndpoint(OrgScopedModel):
    """A receiver URL of an organization and the event types it wants.

    ``secret`` signs every body (``X-Retain-Signature: sha256=<HMAC-SHA256(secret, body)>``). Unlike
    API and write keys it is stored as is, not hashed: HMAC signing needs the secret itself at every
    delivery, and a hash would make signing impossible. It is a shared verification secret (the
    receiver holds a copy), it grants no access to Retain, and only admins can read it.
    """

    # Not a URLField: its validator refuses single-label hosts (``http://crm-sync:8080/``) that
    # on-premise receivers use; playbooks.services.validate_webhook_url applies the outbound guard.
    # Only admins see it whole (a path or query often carries a token); others see its host.
    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(default=list, help_text="Subset of EventType values")
    secret = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "is_active"], name="playbooks_hook_org_active")]

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        """Whether an event of this type goes to this endpoint (a test event always does)."""
        return event_type == EventType.WEBHOOK_TEST or event_type in (self.event_types or [])


class WebhookDelivery(OrgScopedModel):
    """One event to one endpoint: the payload as sent, its status and the retry schedule.

    ``event_id`` is the same for every endpoint that receives the event, and stays the same across
    retries, so receivers can deduplicate. For a domain event it is the
    :class:`~cs_platform.models.DomainEvent` id, and at most one delivery exists per endpoint and
    event, which makes the webhook consumer idempotent. What the receiver answered is kept as its status code
    only: its body is never read or stored (it could be an internal service's answer, and every
    member can read the log).
    """

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=64, choices=EventType.choices)
    event_id = models.UUIDField()
    payload = models.JSONField(default=dict, help_text="The event's data object")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, help_text="Why the last try failed, in plain words")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["organization", "endpoint", "-created_at"], name="playbooks_delivery_endpoint"),
            models.Index(fields=["organization", "status"], name="playbooks_delivery_status"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "endpoint", "event_id"], name="playbooks_delivery_unique_event"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint_id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED)


class WebhookAttempt(OrgScopedModel):
    """One HTTP try of a delivery: what came back (code or error), how long it took, and when the
    next try was scheduled (``retry_in_seconds``, empty when none was)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    retry_in_seconds = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="playbooks_attempt_unique_number"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


__all__ = ["DeliveryStatus", "EventType", "WebhookAttempt", "WebhookDelivery", "WebhookEndpoint"]
