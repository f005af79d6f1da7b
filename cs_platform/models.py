"""Models of the kernel: the domain-event outbox (docs/events.md).

A :class:`DomainEvent` is written in the same transaction as the change it describes (so it exists
if and only if the change committed) and dispatched after the commit to every registered consumer.
An :class:`EventReceipt` records that one consumer has handled one event; it is written in the same
transaction as the consumer's own writes, which makes a consumer idempotent by event id however
often the event is dispatched (at-least-once delivery).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .tenancy import OrgScopedModel

__all__ = ["AuditEntry", "DomainEvent", "EventReceipt"]


class DomainEvent(OrgScopedModel):
    """Something that happened in an organization: ``name`` from the catalogue
    (:data:`cs_platform.events.CATALOGUE`), the subject it happened to, and its payload.

    The id is a UUID because it leaves Retain: it is the ``id`` webhook receivers deduplicate on.
    ``dispatched_at`` is set once every consumer has a receipt; until then the beat's re-dispatch
    picks the event up again. ``dispatch_attempts`` counts dispatches that left a consumer failing.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=64)
    subject_type = models.CharField(max_length=32, help_text="account, renewal, contact, …")
    subject_id = models.CharField(max_length=64, help_text="The subject's primary key, as text")
    payload = models.JSONField(default=dict, help_text="JSON-ready data (dates and decimals as strings)")
    occurred_at = models.DateTimeField(default=timezone.now)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    dispatch_attempts = models.PositiveSmallIntegerField(default=0)

    class Meta(OrgScopedModel.Meta):
        ordering = ["occurred_at"]
        indexes = [
            models.Index(fields=["organization", "name", "occurred_at"], name="cs_event_org_name"),
            models.Index(fields=["organization", "subject_type", "subject_id"], name="cs_event_org_subject"),
            # The beat's re-dispatch reads only what is still pending: a small partial index.
            models.Index(
                fields=["organization", "occurred_at"],
                name="cs_event_org_pending",
                condition=Q(dispatched_at__isnull=True),
            ),
            # The purge reads dispatched events by age.
            models.Index(fields=["organization", "dispatched_at"], name="cs_event_org_dispatched"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.subject_type}:{self.subject_id} ({self.pk})"


class EventReceipt(OrgScopedModel):
    """Proof that ``consumer`` handled ``event``: at most one per (event, consumer)."""

    event = models.ForeignKey(DomainEvent, on_delete=models.CASCADE, related_name="receipts")
    consumer = models.CharField(max_length=64)
    processed_at = models.DateTimeField(default=timezone.now)

    class Meta(OrgScopedModel.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "event", "consumer"], name="cs_receipt_unique_event_consumer"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.consumer} handled {self.event_id}"


class AuditEntry(OrgScopedModel):
    """One change to an organization's configuration or access, kept for admins to read and export.

    Written by :func:`cs_platform.audit.record_audit` in the transaction of the change it describes
    (it exists if and only if the change committed). Rows are never edited or deleted by the product.
    ``action`` is dotted ``<subject>.<verb>`` (``scorecard.published``, ``segment.rolled_back``, …);
    ``changes`` is the field-by-field diff (:func:`cs_platform.configdiff.diff`) where there is one.
    """

    action = models.CharField(max_length=64)
    subject_type = models.CharField(max_length=32, help_text="scorecard, segment, playbook, member, api_key, …")
    subject_id = models.CharField(max_length=64)
    subject_label = models.CharField(max_length=200, blank=True, help_text="The subject's name when it happened")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True, help_text="Who, kept if the user is deleted")
    note = models.CharField(max_length=300, blank=True)
    changes = models.JSONField(default=list, blank=True)
    data = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-occurred_at"], name="cs_audit_org_time"),
            models.Index(fields=["organization", "subject_type", "subject_id"], name="cs_audit_org_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.subject_type}:{self.subject_id}"
