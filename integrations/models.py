"""The connector framework's rows: connections, per-object syncs, recorded runs and per-record errors.

Every model is org-scoped (``OrgScopedModel``: ``organization`` leads every index and unique constraint).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import models
from encrypted_fields.fields import EncryptedTextField

from cs_platform.tenancy import OrgScopedModel

from .choices import (
    CapturedEmailStatus,
    ConnectionStatus,
    Direction,
    InboundOutcome,
    InboundSource,
    JobStatus,
    RunMode,
    RunTrigger,
    WebhookOutcome,
)

__all__ = [
    "CapturedEmail",
    "Connection",
    "EmailCapture",
    "InboundEmail",
    "ObjectSync",
    "PushState",
    "SyncDeletion",
    "SyncRecordError",
    "SyncRun",
    "VendorCustomer",
    "WebhookEvent",
]


class Connection(OrgScopedModel):
    """One connected vendor account (a HubSpot portal, a Salesforce org, ...) of an organization.

    ``credentials`` is a JSON object (``{"access_token": "..."}``) encrypted at rest with Fernet
    (django-fernet-encrypted-fields, key derived from ``SECRET_KEY`` and ``SALT_KEY``): the column holds
    ciphertext only. It is never returned by the API nor shown on a page (only which keys are set),
    never logged, and replaced as a whole, never read back to a person.
    """

    kind = models.CharField(max_length=40, help_text="The connector: hubspot, salesforce, ... (the registry).")
    name = models.CharField(max_length=120)
    base_url = models.URLField(max_length=300, help_text="The vendor's API root (sandbox, EU data centre, proxy).")
    credentials_encrypted = EncryptedTextField(blank=True, default="")
    web_url = models.URLField(
        max_length=300, blank=True, default="",
        help_text="The vendor's web app for this account (HubSpot: https://app.hubspot.com/contacts/<portal id>), "
        "read when the connection is tested; Account 360 links records back to it.",
    )  # fmt: skip
    status = models.CharField(max_length=12, choices=ConnectionStatus.choices, default=ConnectionStatus.UNTESTED)
    paused = models.BooleanField(default=False)
    last_test_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_test_message = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(OrgScopedModel.Meta):
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="integrations_connection_org_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    # Credentials: the only accessors. Never put them in a repr, a log line or an API answer.
    @property
    def credentials(self) -> dict[str, str]:
        if not self.credentials_encrypted:
            return {}
        try:
            value = json.loads(self.credentials_encrypted)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    @credentials.setter
    def credentials(self, value: dict[str, Any]) -> None:
        clean = {str(k): str(v) for k, v in (value or {}).items() if v not in (None, "")}
        self.credentials_encrypted = json.dumps(clean) if clean else ""

    @property
    def credential_keys(self) -> list[str]:
        return sorted(self.credentials)

    @property
    def has_credentials(self) -> bool:
        return bool(self.credentials_encrypted)


class ObjectSync(OrgScopedModel):
    """How one vendor object (``companies``) syncs with its Retain counterpart over one connection.

    ``mapping`` is ``{"fields": [{"target", "source", "transform", "wins"}, ...]}`` (empty: the
    connector's defaults, see ``integrations.mapping``); ``cursor`` is the connector's incremental
    position, written in the same transaction as each applied page, so a crashed run resumes there.
    """

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="syncs")
    object_name = models.CharField(max_length=60)
    direction = models.CharField(max_length=8, choices=Direction.choices, default=Direction.PULL)
    mapping = models.JSONField(default=dict, blank=True)
    cursor = models.JSONField(default=dict, blank=True)
    interval_minutes = models.PositiveIntegerField(default=60)
    next_run_at = models.DateTimeField(null=True, blank=True)
    paused = models.BooleanField(default=False)
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["connection_id", "object_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "connection", "object_name"], name="integrations_objectsync_unique"
            ),
        ]
        indexes = [models.Index(fields=["organization", "next_run_at"], name="integrations_sync_due")]

    def __str__(self) -> str:
        return f"{self.connection_id}:{self.object_name}"


class SyncRun(OrgScopedModel):
    """One recorded run of an object sync: its mode, trigger, progress counters and outcome.

    A run may span several task executions (it requeues itself every few pages so other organizations'
    runs get workers): ``cursor`` is the run's own position; a sync run copies it to its ObjectSync after
    every page, a dry run never does.
    """

    sync = models.ForeignKey(ObjectSync, on_delete=models.CASCADE, related_name="runs")
    mode = models.CharField(max_length=8, choices=RunMode.choices, default=RunMode.SYNC)
    trigger = models.CharField(max_length=10, choices=RunTrigger.choices, default=RunTrigger.MANUAL)
    status = models.CharField(max_length=12, choices=JobStatus.choices, default=JobStatus.QUEUED)
    cursor = models.JSONField(default=dict, blank=True)
    pending = models.JSONField(default=list, blank=True)  # rows waiting for a record of a later page
    fetched = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    pages = models.PositiveIntegerField(default=0)
    request_count = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(OrgScopedModel.Meta):
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["organization", "sync", "-created_at"], name="integrations_run_sync")]

    def __str__(self) -> str:
        return f"run #{self.pk} ({self.mode}, {self.status})"

    COUNTERS = ("fetched", "created", "updated", "unchanged", "skipped", "failed", "deleted")

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.COUNTERS}


class SyncRecordError(OrgScopedModel):
    """A record of a run that could not be applied, and why (nothing is dropped silently).

    ``excerpt`` holds a few of the record's fields (never credentials: records are vendor data only).
    """

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="record_errors")
    object_name = models.CharField(max_length=60)
    external_id = models.CharField(max_length=120, blank=True, default="")
    field = models.CharField(max_length=120, blank=True, default="")
    reason = models.CharField(max_length=500)
    excerpt = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["pk"]
        indexes = [models.Index(fields=["organization", "run"], name="integrations_error_run")]

    def __str__(self) -> str:
        return f"{self.object_name} {self.external_id}: {self.reason}"


class SyncDeletion(OrgScopedModel):
    """A record the vendor reported deleted in a run, and what Retain did with it
    (``accounts.source_deletions.Outcome``: ``flagged``, ``deactivated``, ``already_flagged``,
    ``already_inactive``, ``not_in_retain``, ``restored``; in a dry run what a sync *would* do). The sync
    page and the API list them with the run; ``SyncRun.deleted`` counts the ``flagged`` and ``deactivated``.
    """

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="deletions")
    object_name = models.CharField(max_length=60)
    external_id = models.CharField(max_length=120)
    outcome = models.CharField(max_length=20)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["pk"]
        indexes = [models.Index(fields=["organization", "run"], name="integrations_deletion_run")]

    def __str__(self) -> str:
        return f"{self.object_name} {self.external_id}: {self.outcome}"


# --- Email to the timeline (issue 21 item 5; docs/integrations.md "Email to the timeline") -----------------


class EmailCapture(OrgScopedModel):
    """An organization's email capture settings (one row per organization).

    The capture address is ``<org slug>+<token>@<CAPTURE_DOMAIN>``: the token is the routing key the SMTP
    listener looks up (shown to members, regenerable by admins, which retires the old address at once).
    ``never_capture_domains``: participants of these domains are ignored (the members' own domains by
    default); a message left with no other participant is not captured (counted in ``skipped_count``).
    ``mailbox``: an optional ``imap`` Connection (host, port, user, password encrypted at rest) polled by
    the beat sweep.
    """

    token = models.CharField(max_length=40)
    enabled = models.BooleanField(default=True)
    never_capture_domains = models.JSONField(default=list, blank=True)
    mailbox = models.ForeignKey(
        Connection, null=True, blank=True, on_delete=models.SET_NULL, related_name="email_captures"
    )
    last_poll_at = models.DateTimeField(null=True, blank=True)
    last_poll_ok = models.BooleanField(null=True, blank=True)
    last_poll_message = models.CharField(max_length=300, blank=True, default="")
    captured_count = models.PositiveIntegerField(default=0)
    unmatched_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="integrations_emailcapture_one_per_org"),
        ]

    def __str__(self) -> str:
        return f"email capture of org {self.organization_id}"


class InboundEmail(OrgScopedModel):
    """One received message, stored before anything else so nothing accepted is lost.

    ``raw`` holds the message's bytes until the task has processed it, then is emptied (attachment bodies
    are never kept); ``outcome`` says what became of it.
    """

    source = models.CharField(max_length=8, choices=InboundSource.choices)
    raw = models.BinaryField(default=bytes)
    size = models.PositiveIntegerField(default=0)
    envelope_from = models.CharField(max_length=320, blank=True, default="")
    message_id = models.CharField(max_length=998, blank=True, default="")
    outcome = models.CharField(max_length=10, choices=InboundOutcome.choices, default=InboundOutcome.QUEUED)
    reason = models.CharField(max_length=300, blank=True, default="")
    captured = models.ForeignKey(
        "CapturedEmail", null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-received_at", "-pk"]
        indexes = [models.Index(fields=["organization", "outcome", "-received_at"], name="integrations_inbound_out")]

    def __str__(self) -> str:
        return f"inbound #{self.pk} ({self.outcome})"


class CapturedEmail(OrgScopedModel):
    """A captured message, once per ``Message-ID`` per organization (the dedupe key): what is kept of it
    (subject, participants, the first 2,000 characters of text, attachment names) and where it went —
    an ``email`` activity on an account, or the unmatched inbox an admin assigns or discards from."""

    message_id = models.CharField(max_length=998)
    subject = models.CharField(max_length=500, blank=True, default="")
    from_address = models.CharField(max_length=320, blank=True, default="")
    participants = models.JSONField(default=list, blank=True)  # [{"name", "address", "field"}]
    sent_at = models.DateTimeField()
    body_excerpt = models.TextField(blank=True, default="")
    attachment_names = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=CapturedEmailStatus.choices)
    account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="captured_emails"
    )
    activity = models.ForeignKey(
        "accounts.Activity", null=True, blank=True, on_delete=models.SET_NULL, related_name="captured_emails"
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-sent_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "message_id"], name="integrations_email_message_id"),
        ]
        indexes = [models.Index(fields=["organization", "status", "-sent_at"], name="integrations_email_status")]

    def __str__(self) -> str:
        return self.subject or self.message_id


class PushState(OrgScopedModel):
    """What Retain last pushed to the vendor for one account over one connection (push-back): the values
    and their digest. A push sends only the accounts whose digest changed since (``integrations.push``)."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="push_states")
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="+")
    digest = models.CharField(max_length=64)
    values = models.JSONField(default=dict, blank=True)
    pushed_at = models.DateTimeField()

    class Meta(OrgScopedModel.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "connection", "account"], name="integrations_pushstate_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.connection_id}:{self.account_id} {self.digest[:8]}"


# --- Inbound connector webhooks (Stripe) ------------------------------------------------------------------


class WebhookEvent(OrgScopedModel):
    """One event a vendor pushed to a connection's webhook (``/hooks/<org>/stripe/``), once per event id:
    a replayed delivery finds its row and changes nothing. ``event_created`` orders the events of one
    object (``reference``, the invoice id): an event older than one already applied is ``stale``."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="webhook_events")
    event_id = models.CharField(max_length=120)
    event_type = models.CharField(max_length=80)
    event_created = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=12, choices=WebhookOutcome.choices)
    reference = models.CharField(max_length=120, blank=True, default="")
    reason = models.CharField(max_length=500, blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "connection", "event_id"], name="integrations_webhook_event_unique"
            )
        ]
        indexes = [
            models.Index(fields=["organization", "connection", "reference"], name="integrations_webhook_ref"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}: {self.outcome}"


class VendorCustomer(OrgScopedModel):
    """A vendor's customer (a Stripe ``cus_…``) linked to an account's external id, learned from the
    customer's metadata in ``customer.created``/``customer.updated`` events; invoices of the customer
    land on that account."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="vendor_customers")
    customer_id = models.CharField(max_length=120)
    account_external_id = models.CharField(max_length=120, blank=True, default="")
    email = models.CharField(max_length=254, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(OrgScopedModel.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "connection", "customer_id"], name="integrations_vendor_customer_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} → {self.account_external_id or '?'}"
