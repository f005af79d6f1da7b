"""Health signals: product usage (raw events and daily metrics), support tickets and invoices.

Scorecards, snapshots and overrides arrive with the health-engine issue.
"""

from __future__ import annotations

from django.db import models

from cs_platform.tenancy import OrgScopedModel

__all__ = ["Invoice", "KeyFeature", "Ticket", "UsageEvent", "UsageMetric", "UserAccountLink"]


class EventType(models.TextChoices):
    TRACK = "track", "Track"
    IDENTIFY = "identify", "Identify"
    GROUP = "group", "Group"


class UsageEvent(OrgScopedModel):
    """One raw event received through the Segment-compatible tracking API, stored before the ``200``.

    ``message_id`` deduplicates: a client retrying a batch never counts twice. Raw events are kept for
    the organization's ``raw_event_retention_days`` after being rolled up into :class:`UsageMetric`.
    """

    message_id = models.CharField(max_length=200)
    type = models.CharField(max_length=10, choices=EventType.choices)
    event = models.CharField(max_length=200, blank=True, help_text="Event name of a track call")
    user_id = models.CharField(max_length=200, blank=True)
    anonymous_id = models.CharField(max_length=200, blank=True)
    group_id = models.CharField(max_length=200, blank=True)
    account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="usage_events"
    )
    timestamp = models.DateTimeField(help_text="When it happened (the event's timestamp), UTC")
    received_at = models.DateTimeField(auto_now_add=True)
    properties = models.JSONField(default=dict, blank=True, help_text="properties or traits")
    rolled_up = models.BooleanField(default=False)

    class Meta(OrgScopedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["organization", "message_id"], name="health_usageevent_unique_msg")
        ]
        indexes = [
            models.Index(fields=["organization", "rolled_up", "id"], name="health_usageevent_org_pending"),
            models.Index(fields=["organization", "account", "timestamp"], name="health_usageevent_org_acct_ts"),
            models.Index(fields=["organization", "received_at"], name="health_usageevent_org_recv"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event or ''} {self.message_id}".strip()


class UserAccountLink(OrgScopedModel):
    """Which account a product user belongs to, learnt from ``group`` calls (the latest call wins)."""

    user_id = models.CharField(max_length=200)
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="product_users")
    linked_at = models.DateTimeField()

    class Meta(OrgScopedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["organization", "user_id"], name="health_useraccountlink_unique_user")
        ]
        indexes = [models.Index(fields=["organization", "account"], name="health_userlink_org_account")]


class UsageMetric(OrgScopedModel):
    """A daily per-account usage figure: ``events``, ``active_users``, ``sessions``, ``event:<name>``, or any
    metric imported by CSV. Same shape as the ``usage`` CSV and ``/api/v1/usage-metrics/``."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="usage_metrics")
    date = models.DateField()
    metric = models.CharField(max_length=200)
    value = models.DecimalField(max_digits=18, decimal_places=4)

    class Meta(OrgScopedModel.Meta):
        ordering = ["date", "metric"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "account", "date", "metric"], name="health_usagemetric_unique_day"
            )
        ]
        indexes = [models.Index(fields=["organization", "metric", "date"], name="health_usagemetric_org_metric")]


class KeyFeature(OrgScopedModel):
    """A product feature an admin flagged as key: the ``track`` event name that means "used it".

    The daily rollup then writes ``feature_users:<event_name>`` (distinct users of the feature per
    account and day) next to the ``event:<name>`` counts; see ``docs/metrics.md``.
    """

    event_name = models.CharField(max_length=200, help_text="The track event name, as sent (case-sensitive)")
    label = models.CharField(max_length=200, help_text="How the feature is called in Retain")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["label", "event_name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "event_name"], name="health_keyfeature_unique_event")
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.event_name})"


class TicketPriority(models.TextChoices):
    P1 = "P1", "P1 (urgent)"
    P2 = "P2", "P2 (high)"
    P3 = "P3", "P3 (normal)"
    P4 = "P4", "P4 (low)"


class TicketStatus(models.TextChoices):
    OPEN = "open", "Open"
    PENDING = "pending", "Pending"
    SOLVED = "solved", "Solved"
    CLOSED = "closed", "Closed"


class Ticket(OrgScopedModel):
    """A support ticket from the helpdesk, kept as a health signal (not a helpdesk)."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="tickets")
    external_id = models.CharField(max_length=120)
    opened_at = models.DateTimeField()
    priority = models.CharField(max_length=2, choices=TicketPriority.choices, default=TicketPriority.P3)
    status = models.CharField(max_length=10, choices=TicketStatus.choices, default=TicketStatus.OPEN)
    resolved_at = models.DateTimeField(null=True, blank=True)
    subject = models.CharField(max_length=300, blank=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "external_id"], name="health_ticket_unique_org_extid")
        ]
        indexes = [models.Index(fields=["organization", "account", "opened_at"], name="health_ticket_org_acct")]


class Invoice(OrgScopedModel):
    """An invoice from the billing system, kept as a health signal (days overdue)."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="invoices")
    external_id = models.CharField(max_length=120)
    due_date = models.DateField()
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    paid_at = models.DateField(null=True, blank=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-due_date"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "external_id"], name="health_invoice_unique_org_extid")
        ]
        indexes = [models.Index(fields=["organization", "account", "due_date"], name="health_invoice_org_acct")]
