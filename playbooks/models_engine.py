"""Models of the playbook engine (spec §5): playbooks and their firings.

A :class:`Playbook` is a trigger (``trigger`` + ``trigger_params``), optional conditions (segment rules and/or
a segment), a list of actions, an active flag and a cooldown per account. Every time a trigger occurs for an
account, the engine records one :class:`PlaybookFiring`, fired or not: the unique constraint on
(organization, playbook, account, occurrence_key) is what makes one occurrence fire exactly once, whichever
worker, beat run or redelivered event gets there first. What the engine does is in ``playbooks/engine.py``;
the triggers' semantics and occurrence keys in ``playbooks/triggers.py`` and docs/playbooks.md.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models.versions import ConfigVersionBase, version_constraints
from cs_platform.tenancy import OrgScopedModel

__all__ = ["AccountStageMark", "FiringOutcome", "Playbook", "PlaybookFiring", "PlaybookVersion", "TriggerKind"]


class TriggerKind(models.TextChoices):
    """What starts a playbook (spec §5). Parameters and occurrence keys per kind: ``playbooks/triggers.py``."""

    HEALTH_COLOR = "health_color", "Health turned red/yellow"
    HEALTH_DROP = "health_drop", "Health dropped by N points in D days"
    RENEWAL_DUE = "renewal_due", "Renewal due in N days"
    SURVEY_RESPONSE = "survey_response", "Survey response (detractor/passive/promoter)"
    USAGE_DROP = "usage_drop", "Usage dropped by X % (30 days vs the 30 before)"
    SEATS_OVER = "seats_over", "Active users over licensed seats"
    CONTACT_DEPARTED = "contact_departed", "Key contact departed"
    STAGE_UNCHANGED = "stage_unchanged", "Lifecycle stage unchanged for N days"
    INVOICE_OVERDUE = "invoice_overdue", "Invoice overdue by N days"
    NO_TOUCH = "no_touch", "No customer touch in N days"
    P1_TICKET = "p1_ticket", "P1 ticket opened"
    SEGMENT_ENTERED = "segment_entered", "Entered a segment"
    SEGMENT_LEFT = "segment_left", "Left a segment"
    ACCOUNT_CREATED = "account_created", "Account created"
    ONBOARDING_STALLED = "onboarding_stalled", "Onboarding milestone stalled"
    SCHEDULE = "schedule", "Schedule (every month/quarter/year)"


class FiringOutcome(models.TextChoices):
    """What became of one occurrence of a trigger for one account."""

    FIRED = "fired", "Fired"
    SUPPRESSED = "suppressed", "Suppressed (cooldown or snoozed CTA)"
    SKIPPED = "skipped", "Skipped (conditions not met, inactive)"


class Playbook(OrgScopedModel):
    """Automation: when ``trigger`` occurs for an account that meets ``conditions`` (segment rules, see
    ``accounts.segments``) and is in ``segment`` (both optional), run ``actions`` (a list of
    ``{"kind": ..., ...}``, see ``playbooks/actions.py``), at most once per ``cooldown_days`` per account.
    Only ``active`` playbooks run; an inactive one can still be previewed."""

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    active = models.BooleanField(default=False)
    trigger = models.CharField(max_length=24, choices=TriggerKind.choices)
    trigger_params = models.JSONField(default=dict, blank=True)
    conditions = models.JSONField(default=dict, blank=True, help_text="Segment rules (accounts.segments)")
    segment = models.ForeignKey(
        "accounts.Segment", null=True, blank=True, on_delete=models.PROTECT, related_name="playbooks"
    )
    cooldown_days = models.PositiveIntegerField(default=0)
    actions = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["name", "pk"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="playbooks_playbook_unique_name")]
        indexes = [models.Index(fields=["organization", "active", "trigger"], name="playbooks_playbook_active")]

    def __str__(self) -> str:
        return self.name

    @property
    def source_ref(self) -> str:
        """How CTAs and their log name this playbook (``Cta.source = "playbook"``)."""
        return str(self.pk)


class PlaybookVersion(ConfigVersionBase):
    """One version of a playbook's configuration (docs/admin-guide.md, "Drafts"): ``content`` is
    ``{"name", "description", "trigger", "trigger_params", "conditions", "segment" (id or null),
    "cooldown_days", "actions"}`` (what the editor edits; ``active`` is not content, it is its own switch).
    A ``draft`` changes nothing live; publishing it (:func:`playbooks.drafts.publish`) copies its content
    onto the :class:`Playbook` (which the engine reads), makes it ``published`` and the previous one
    ``superseded``. The segment is kept as an id, not a foreign key: a version never holds a segment back
    from deletion, and publishing one whose segment is gone is refused ("Unknown segment.")."""

    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="versions")

    class Meta(OrgScopedModel.Meta):
        ordering = ["playbook", "-number"]
        constraints = version_constraints("playbook", "playbooks_playbookversion")

    def __str__(self) -> str:
        return f"{self.playbook_id} v{self.number} ({self.state})"


class PlaybookFiring(OrgScopedModel):
    """One occurrence of a playbook's trigger for one account, and what the engine did about it.

    ``occurrence_key`` names the occurrence (``renewal:9``, ``event:<uuid>``, ``since:2026-12-05``,
    ``period:2026-Q4``): unique per (playbook, account), so an occurrence fires once. ``results`` lists what
    each action did. For condition-based triggers ``condition_key`` names the condition the CTA waits on and
    ``cleared_at`` is set when it clears (the CTA then closes itself); while a firing is uncleared the same
    condition does not fire again for that account."""

    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="firings")
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="+")
    occurrence_key = models.CharField(max_length=120)
    fired_at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=12, choices=FiringOutcome.choices)
    reason = models.TextField(blank=True, help_text="Why it fired or why it did not, in plain words")
    event_id = models.UUIDField(null=True, blank=True, help_text="The domain event that triggered it")
    cta = models.ForeignKey("playbooks.Cta", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    results = models.JSONField(default=list, blank=True, help_text="What each action did")
    condition_key = models.CharField(max_length=120, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-fired_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "playbook", "account", "occurrence_key"], name="playbooks_firing_once"
            )
        ]
        indexes = [
            models.Index(fields=["organization", "playbook", "account", "-fired_at"], name="playbooks_firing_recent"),
            models.Index(fields=["organization", "playbook", "cleared_at"], name="playbooks_firing_uncleared"),
        ]

    def __str__(self) -> str:
        return f"{self.playbook_id} · {self.account_id} · {self.occurrence_key} ({self.outcome})"


class AccountStageMark(OrgScopedModel):
    """Since when an account has been in its lifecycle stage, as far as the engine has watched it (the
    account keeps no history of its stage). Kept by the beat job set-based; the "stage unchanged" trigger
    counts from ``since``."""

    account = models.OneToOneField("accounts.Account", on_delete=models.CASCADE, related_name="+")
    stage = models.CharField(max_length=40)
    since = models.DateField()

    def __str__(self) -> str:
        return f"{self.account_id} in {self.stage} since {self.since}"
