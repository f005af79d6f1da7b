"""Health signals: product usage (raw events and daily metrics), support tickets and invoices.

And the health engine (spec §3): scorecards and their versions, daily snapshots, the latest score per
account, colour overrides and the CSM pulse.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from cs_platform.tenancy import OrgScopedModel

from .models_inbound import *  # noqa: F403  (inbound webhooks: tracker and helpdesk hooks, delivery log)

__all__ = [
    "CsmPulse",
    "HealthOverride",
    "HealthScore",
    "HealthSnapshot",
    "IngestionRefusal",
    "IngestionStat",
    "Invoice",
    "KeyFeature",
    "ProductUser",
    "Scorecard",
    "ScorecardVersion",
    "Ticket",
    "UsageEvent",
    "UsageMetric",
    "UsageRollupState",
    "UsageTally",
    "UserAccountLink",
]


class EventType(models.TextChoices):
    TRACK = "track", "Track"
    IDENTIFY = "identify", "Identify"
    GROUP = "group", "Group"


class UsageEvent(OrgScopedModel):
    """One raw event received through the Segment-compatible tracking API, stored before the ``200``.

    ``message_id`` deduplicates: a client retrying a batch never counts twice. ``rolled_up`` means the
    event has been counted into its account-day's :class:`UsageTally` (exactly once, in the transaction
    that sets the flag). Raw events are kept for the organization's ``raw_event_retention_days`` after
    they were *received*; a counted event needs no raw row any more, so the purge never changes a figure
    (see ``docs/ingestion.md``, "Counting and retention").
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
    rolled_up = models.BooleanField(default=False, help_text="Counted into its account-day's tally")

    class Meta(OrgScopedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["organization", "message_id"], name="health_usageevent_unique_msg")
        ]
        indexes = [
            models.Index(fields=["organization", "rolled_up", "id"], name="health_usageevent_org_pending"),
            models.Index(fields=["organization", "account", "timestamp"], name="health_usageevent_org_acct_ts"),
            models.Index(fields=["organization", "received_at"], name="health_usageevent_org_recv"),
            # Track events waiting for their user to be linked to an account: a group call attributes them.
            models.Index(
                fields=["organization", "user_id", "anonymous_id"],
                condition=models.Q(account__isnull=True, rolled_up=False, type="track"),
                name="health_usageevent_org_unlinked",
            ),
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


class ProductUser(OrgScopedModel):
    """A user of the customer's product as ``identify`` calls describe them: ingestion's own records,
    keyed by ``userId`` (else ``anonymousId``), never a CRM contact. ``contact`` is the organization's
    contact with the same email, if any: a read-only link (an event never creates, moves or rewrites a
    contact; the CRM and imports own contacts)."""

    user_id = models.CharField(max_length=200)
    email = models.EmailField(max_length=320, blank=True)
    name = models.CharField(max_length=200, blank=True)
    title = models.CharField(max_length=200, blank=True)
    contact = models.ForeignKey(
        "accounts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="product_users"
    )
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta(OrgScopedModel.Meta):
        ordering = ["user_id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user_id"], name="health_productuser_unique_user")
        ]
        indexes = [models.Index(fields=["organization", "email"], name="health_productuser_org_email")]

    def __str__(self) -> str:
        return self.email or self.user_id


class UsageMetric(OrgScopedModel):
    """A daily per-account usage figure: ``events``, ``active_users``, ``sessions``, ``event:<name>``,
    ``feature_users:<name>``, or any metric imported by CSV. Same shape as the ``usage`` CSV and
    ``/api/v1/usage-metrics/``. The rollup's rows are always recomputed from :class:`UsageTally`."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="usage_metrics")
    date = models.DateField()
    # 255: "feature_users:" + an event name of up to 200 characters must fit, so every event is countable.
    metric = models.CharField(max_length=255)
    value = models.DecimalField(max_digits=18, decimal_places=4)

    class Meta(OrgScopedModel.Meta):
        ordering = ["date", "metric"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "account", "date", "metric"], name="health_usagemetric_unique_day"
            )
        ]
        indexes = [
            models.Index(fields=["organization", "metric", "date"], name="health_usagemetric_org_metric"),
            # The value as a key column too: the point-in-time signals of many (account, day) pairs
            # (health.analytics.load_signals_at) then read each pair's days from the index alone.
            models.Index(
                fields=["organization", "account", "date", "metric", "value"], name="health_usagemetric_acct_value"
            ),
        ]


class UsageTally(OrgScopedModel):
    """How many ``track`` events one user sent under one event name in one session, on one local day of
    one account: the exact, compact form of the raw events that every rollup figure derives from.

    ``events`` = Σ ``events``; ``event:<name>`` = Σ over the name; ``active_users`` = distinct
    ``user_key``; ``feature_users:<name>`` = distinct ``user_key`` of the name; ``sessions`` = distinct
    non-empty ``session``. Rows only grow (``events += n`` in the transaction that marks the raw events
    counted), so a day stays exact whatever its raw events' age: a late event is merged into its day's
    tally, and the purge of raw events takes nothing the figures need.
    """

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="usage_tallies")
    date = models.DateField(help_text="Local day (organization time zone at counting time)")
    event = models.CharField(max_length=200)
    user_key = models.CharField(max_length=200, help_text="userId, else anonymousId")
    session = models.CharField(
        max_length=200, blank=True, help_text="properties.session_id ('' if none; a longer one as its SHA-256)"
    )
    events = models.PositiveBigIntegerField()

    class Meta(OrgScopedModel.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "account", "date", "event", "user_key", "session"],
                name="health_usagetally_unique",
            )
        ]


class UsageRollupState(OrgScopedModel):
    """One row per organization: whether a rollup is already queued (the debounce of the trigger after
    each ingest; a compare-and-set on ``scheduled_at`` lets exactly one request queue it) and when the
    last one ran. Not on :class:`~accounts.models.Organization`: the rollup locks that row, and a flag
    there would make every ingest wait for the running rollup."""

    scheduled_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_run_events = models.PositiveBigIntegerField(default=0)

    class Meta(OrgScopedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["organization"], name="health_usagerollupstate_unique_org")]


class IngestionStat(OrgScopedModel):
    """A daily counter of the tracking API (``accepted``, ``duplicates``, ``refused_events``,
    ``unattributed``, ``counted``, …; see ``docs/ingestion.md``): what came in, what was counted and
    what was not, with why. ``date`` is the local day the counter moved."""

    date = models.DateField()
    name = models.CharField(max_length=40)
    value = models.PositiveBigIntegerField(default=0)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-date", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "date", "name"], name="health_ingestionstat_unique_day")
        ]


class IngestionRefusal(OrgScopedModel):
    """A request the tracking API refused (4xx after authentication), with its reason and the first
    event errors: what the sender's logs say, shown to the organization's admins. The newest
    :data:`KEEP` per organization are kept."""

    KEEP = 100

    received_at = models.DateTimeField()
    status = models.PositiveSmallIntegerField()
    detail = models.TextField()
    events = models.PositiveIntegerField(default=0, help_text="Events in the request (none was stored)")
    errors = models.JSONField(default=list, blank=True, help_text="[{index, messageId, reason}], at most 20")

    class Meta(OrgScopedModel.Meta):
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["organization", "-id"], name="health_ingestrefusal_org_id")]


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
    #: The issue tracker's key of the bug this ticket is about (``PROD-42``): a feature request with the same
    #: ``external_issue_key`` shows the ticket (matched by key: feedback, below health, cannot point at it).
    issue_key = models.CharField(max_length=64, blank=True, default="", db_default="")
    #: The helpdesk's own moment of its last change to the ticket (the helpdesk webhook's ``updated_at``):
    #: a delivery older than it is out of order and ignored (``stale``). Null until a delivery carries one.
    updated_at = models.DateTimeField(
        null=True, blank=True, help_text="The helpdesk's last change (webhook updated_at); older deliveries are ignored"
    )

    class Meta(OrgScopedModel.Meta):
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "external_id"], name="health_ticket_unique_org_extid")
        ]
        indexes = [
            models.Index(fields=["organization", "account", "opened_at"], name="health_ticket_org_acct"),
            models.Index(fields=["organization", "issue_key"], name="health_ticket_org_issue"),
        ]


class Invoice(OrgScopedModel):
    """An invoice from the billing system, kept as a health signal (days overdue)."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="invoices")
    external_id = models.CharField(max_length=120)
    #: The day the invoice was issued (point in time: the financial signal knows the invoice from this day
    #: on). ``None`` = unknown: taken as 30 days before ``due_date``, which a new invoice gets when not given.
    issued_on = models.DateField(
        null=True, blank=True, help_text="Day the invoice was issued; empty = 30 days before the due date"
    )
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

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.issued_on is None and self.due_date is not None:
            self.issued_on = default_issued_on(self.due_date)
        super().save(*args, **kwargs)


#: When an invoice's issue day is not known: this many days before its due date (net 30).
INVOICE_TERMS_DAYS = 30


def default_issued_on(due_date: Any) -> Any:
    """The issue day assumed for an invoice due on ``due_date`` when its own is not known (net 30)."""
    if isinstance(due_date, str):
        due_date = dt.date.fromisoformat(due_date)
    return due_date - dt.timedelta(days=INVOICE_TERMS_DAYS)


# --- Health engine (spec §3) --------------------------------------------------------------------


class HealthColor(models.TextChoices):
    GREEN = "green", "Green"
    YELLOW = "yellow", "Yellow"
    RED = "red", "Red"


class Scorecard(OrgScopedModel):
    """A health profile. Its components live in immutable :class:`ScorecardVersion` rows: every saved
    change is a new version, and every snapshot names the version that produced it.

    Binding: an account uses the first active scorecard (by ``position``) whose ``segment`` matches it,
    else the organization's default scorecard (``is_default``; exactly one per organization).
    """

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    segment = models.ForeignKey(
        "accounts.Segment", null=True, blank=True, on_delete=models.PROTECT, related_name="scorecards"
    )
    position = models.PositiveIntegerField(default=0, help_text="Order in which segment bindings are tried")
    is_default = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    current_version = models.ForeignKey(
        "ScorecardVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="health_scorecard_unique_name"),
            models.UniqueConstraint(
                fields=["organization"], condition=models.Q(is_default=True), name="health_scorecard_one_default"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class VersionState(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
    SUPERSEDED = "superseded", "Superseded"


class ScorecardVersion(OrgScopedModel):
    """One immutable definition of a scorecard: groups and components as JSON.

    ``definition`` shape (validated by ``health.scoring.validate_definition``)::

        {"groups": [{"key": "product", "name": "Product", "weight": 50}, ...],      # optional
         "components": [{"key": "adoption", "name": "Adoption", "group": "product"|null,
                         "signal": "adoption" | "usage:<metric>",
                         "weight": 25,
                         "function": {"type": "linear", "x0": 0.10, "x100": 0.60} | ...}]}
    """

    scorecard = models.ForeignKey(Scorecard, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    note = models.CharField(max_length=300, blank=True, help_text="What changed, written by the editor")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Drafts (``health.drafts``): a version whose ``published_at`` is empty is a draft, the only kind of
    # version that may still change. A version created any other way is published when created.
    published_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    publish_note = models.CharField(max_length=300, blank=True, help_text="Why it was published (or rolled back)")
    restores = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="For a rollback: the version whose definition it copied",
    )

    class Meta(OrgScopedModel.Meta):
        ordering = ["scorecard", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "scorecard", "number"], name="health_scorecardversion_unique_number"
            ),
            # At most one open draft per scorecard.
            models.UniqueConstraint(
                fields=["organization", "scorecard"],
                condition=models.Q(published_at__isnull=True),
                name="health_scorecardversion_one_draft",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scorecard_id} v{self.number}"

    @property
    def is_draft(self) -> bool:
        return self.published_at is None

    def state_for(self, current_version_id: int | None) -> str:
        """``draft`` (not published yet), ``published`` (the scorecard's current version, the one the
        engine scores with) or ``superseded`` (published once, replaced since)."""
        if self.published_at is None:
            return VersionState.DRAFT
        return VersionState.PUBLISHED if self.pk == current_version_id else VersionState.SUPERSEDED

    @property
    def state(self) -> str:
        return self.state_for(self.scorecard.current_version_id)


class HealthSnapshot(OrgScopedModel):
    """An account's health on one day; a recompute later the same day updates that day's row.

    ``score`` is ``None`` for a churned account or one with no data at all (never a default green).
    ``components``: ``[{"key", "name", "group", "signal", "score", "weight", "contribution"}]`` where
    ``weight`` is the effective share after missing-data redistribution (scored weights sum to 1) and
    ``contribution = weight × score``; ``missing`` lists the keys of components without data.
    """

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="health_snapshots")
    date = models.DateField()
    computed_at = models.DateTimeField()
    score = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    color = models.CharField(max_length=8, choices=HealthColor.choices, blank=True)
    scorecard_version = models.ForeignKey(
        ScorecardVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    components = models.JSONField(default=list, blank=True)
    missing = models.JSONField(default=list, blank=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-date"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "account", "date"], name="health_snapshot_unique_account_day"
            )
        ]
        indexes = [models.Index(fields=["organization", "date"], name="health_snapshot_org_date")]


class HealthScore(OrgScopedModel):
    """The latest health of one account (what lists, filters and the Portfolio read): the newest
    snapshot's score plus trends, kept in step by every recompute and by overrides.

    ``computed_color`` is the colour of ``score``; ``color`` is the effective colour (an active override
    wins). ``delta_7``/``delta_30`` are score changes against the snapshot 7/30 days earlier;
    ``trend`` is ``up``/``down``/``flat`` from ``delta_7`` (±1 point counts as flat).
    """

    account = models.OneToOneField("accounts.Account", on_delete=models.CASCADE, related_name="health")
    score = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    computed_color = models.CharField(max_length=8, choices=HealthColor.choices, blank=True)
    color = models.CharField(max_length=8, choices=HealthColor.choices, blank=True)
    computed_at = models.DateTimeField()
    scorecard = models.ForeignKey(Scorecard, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    scorecard_version = models.ForeignKey(
        ScorecardVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    delta_7 = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    delta_30 = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    trend = models.CharField(max_length=4, blank=True)
    override = models.ForeignKey("HealthOverride", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta(OrgScopedModel.Meta):
        indexes = [
            models.Index(fields=["organization", "color"], name="health_score_org_color"),
            models.Index(fields=["organization", "score"], name="health_score_org_score"),
        ]


class OverrideReason(models.TextChoices):
    CUSTOMER_WILL_CHURN = "customer_will_churn", "Customer told us they will churn"
    EXECUTIVE_ESCALATION = "executive_escalation", "Executive escalation"
    KNOWN_DATA_GAP = "known_data_gap", "Signals are incomplete or wrong"
    RELATIONSHIP = "relationship", "Relationship better or worse than the data shows"
    OTHER = "other", "Other"


class HealthOverride(OrgScopedModel):
    """A manual colour for an account, with reason, author and expiry; every row is kept (the audit
    trail). Active = not cleared and not expired. ``customer_will_churn`` always forces red."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="health_overrides")
    color = models.CharField(max_length=8, choices=HealthColor.choices)
    reason_code = models.CharField(max_length=32, choices=OverrideReason.choices, default=OverrideReason.OTHER)
    reason = models.TextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    computed_score_at_creation = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    cleared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(OrgScopedModel.Meta):
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "account", "created_at"], name="health_override_org_acct")]


class PulseReason(models.TextChoices):
    STRONG_RELATIONSHIP = "strong_relationship", "Strong relationship"
    GOALS_MET = "goals_met", "Goals being met"
    EXPANSION_INTEREST = "expansion_interest", "Expansion interest"
    LOW_ENGAGEMENT = "low_engagement", "Low engagement"
    CHAMPION_AT_RISK = "champion_at_risk", "Champion at risk or leaving"
    PRODUCT_GAPS = "product_gaps", "Product gaps"
    SUPPORT_ISSUES = "support_issues", "Support issues"
    BUDGET_PRESSURE = "budget_pressure", "Budget pressure"
    COMPETITOR = "competitor", "Competitor evaluation"
    REORG = "reorg", "Reorganisation or M&A"


class CsmPulse(OrgScopedModel):
    """The CSM's own read of an account (green/yellow/red with reason codes): the ``csm_pulse`` signal.
    The latest pulse counts for 30 days, then the component is missing (stale)."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="pulses")
    color = models.CharField(max_length=8, choices=HealthColor.choices)
    reason_codes = models.JSONField(default=list, blank=True, help_text="Subset of PulseReason values")
    note = models.TextField(blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()

    class Meta(OrgScopedModel.Meta):
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "account", "created_at"], name="health_pulse_org_acct")]
