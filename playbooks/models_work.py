"""Models of the work queue (spec §5): CTA types and reasons, CTAs, their tasks, notifications, the CTA log.

Noise control lives in the schema where it can: at most one **open** CTA exists per (organization,
account, type, reason), enforced by a partial unique index, so a rule that fires twice updates the open
CTA instead of duplicating it even when two workers fire at once (``playbooks.ctas.open_or_update_cta``).
Every firing, update, suppression, snooze, completion and automatic close is a :class:`CtaLog` row.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from cs_platform.tenancy import OrgScopedModel

from .choices import CtaLogAction, CtaOutcome, CtaPriority, CtaStatus, NotificationKind, SnoozeReason

__all__ = [
    "AssignmentCursor",
    "Cta",
    "CtaLog",
    "CtaReason",
    "CtaTask",
    "CtaType",
    "Notification",
]


class CtaType(OrgScopedModel):
    """A kind of call to action, defined per organization. The five built-in ones (risk, lifecycle,
    expansion, objective, activity) are seeded for every organization and cannot be deleted; an admin may
    add others. Few types on purpose: type sprawl is what users of the incumbents complain about."""

    key = models.SlugField(max_length=40)
    label = models.CharField(max_length=80)
    is_builtin = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta(OrgScopedModel.Meta):
        ordering = ["position", "label"]
        constraints = [models.UniqueConstraint(fields=["organization", "key"], name="playbooks_ctatype_unique_key")]

    def __str__(self) -> str:
        return self.label


class CtaReason(OrgScopedModel):
    """Why a CTA of a type exists (``risk`` → "Health turned red"). Part of the de-duplication key."""

    type = models.ForeignKey(CtaType, on_delete=models.CASCADE, related_name="reasons")
    key = models.SlugField(max_length=60)
    label = models.CharField(max_length=120)
    is_active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta(OrgScopedModel.Meta):
        ordering = ["type", "position", "label"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "type", "key"], name="playbooks_ctareason_unique_key")
        ]

    def __str__(self) -> str:
        return self.label


class Cta(OrgScopedModel):
    """A call to action on an account: something a CSM should do, with its tasks.

    ``status`` is open until someone completes or closes it, or until the condition that opened it
    clears (``auto_closed``, for CTAs opened with a ``condition_key``). A snoozed CTA stays open with
    ``snoozed_until`` ahead: it is out of the queue and suppresses re-firing until that day.
    ``source``/``source_ref`` say what opened it (``manual``, ``api``, later ``playbook`` + the playbook's
    id): the playbook engine attaches through them, without a foreign key yet. ``fire_count`` counts the
    firings folded into this CTA (1 when opened).
    """

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="ctas")
    type = models.ForeignKey(CtaType, on_delete=models.PROTECT, related_name="ctas")
    reason = models.ForeignKey(CtaReason, on_delete=models.PROTECT, related_name="ctas")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=12, choices=CtaStatus.choices, default=CtaStatus.OPEN)
    priority = models.CharField(max_length=8, choices=CtaPriority.choices, default=CtaPriority.MEDIUM)
    priority_score = models.DecimalField(max_digits=4, decimal_places=1, default=0)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="ctas"
    )
    due_date = models.DateField(null=True, blank=True)
    snoozed_until = models.DateField(null=True, blank=True)
    snooze_reason = models.CharField(max_length=32, choices=SnoozeReason.choices, blank=True)
    source = models.CharField(max_length=40, default="manual")
    source_ref = models.CharField(max_length=120, blank=True)
    condition_key = models.CharField(
        max_length=120, blank=True, help_text="Set on condition-based CTAs: auto_close(condition_key) closes them"
    )
    fire_count = models.PositiveIntegerField(default=1)
    opened_at = models.DateTimeField(default=timezone.now)
    last_fired_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outcome = models.CharField(max_length=20, choices=CtaOutcome.choices, blank=True)
    close_reason = models.TextField(blank=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["due_date", "-priority_score", "pk"]
        constraints = [
            # "Updated, not duplicated", enforced by the database: one open CTA per (account, type, reason).
            models.UniqueConstraint(
                fields=["organization", "account", "type", "reason"],
                condition=Q(status="open"),
                name="playbooks_cta_one_open_per_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "owner", "status", "due_date"], name="playbooks_cta_queue"),
            models.Index(fields=["organization", "account", "status"], name="playbooks_cta_account"),
            models.Index(fields=["organization", "condition_key", "status"], name="playbooks_cta_condition"),
            models.Index(fields=["organization", "source", "source_ref"], name="playbooks_cta_source"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.status == CtaStatus.OPEN

    def is_snoozed(self, today: object = None) -> bool:
        """Open and snoozed until a day still ahead (``today`` defaults to the local date)."""
        today = today or timezone.localdate()
        return self.is_open and self.snoozed_until is not None and self.snoozed_until > today  # type: ignore[operator]


class CtaTask(OrgScopedModel):
    """One step of a CTA, with its due date and assignee; ``done_at``/``done_by`` once done."""

    cta = models.ForeignKey(Cta, on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=200)
    position = models.PositiveSmallIntegerField(default=0)
    due_date = models.DateField(null=True, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="cta_tasks"
    )
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["cta", "position", "pk"]
        indexes = [
            models.Index(fields=["organization", "assignee", "done_at", "due_date"], name="playbooks_task_queue"),
            models.Index(fields=["organization", "cta", "position"], name="playbooks_task_cta"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_done(self) -> bool:
        return self.done_at is not None


class Notification(OrgScopedModel):
    """An in-app message to one member (a CTA assigned to them, a task handed over); unread until read.

    ``kind`` says what it is about; chat channels subscribed to that kind also get it
    (``playbooks.chat.post_notifications``, once per channel and notification)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=NotificationKind.choices, default=NotificationKind.OTHER)
    message = models.CharField(max_length=300)
    url = models.CharField(max_length=500, blank=True)
    cta = models.ForeignKey(Cta, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications")
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["organization", "user", "read_at"], name="playbooks_notif_unread"),
            models.Index(fields=["organization", "user", "-created_at"], name="playbooks_notif_recent"),
        ]

    def __str__(self) -> str:
        return self.message


class CtaLog(OrgScopedModel):
    """The audit of the work queue: every firing (opened, updated), every suppression with its reason, every
    snooze, completion, close and automatic close, with when and by whom (empty for automation)."""

    cta = models.ForeignKey(Cta, null=True, blank=True, on_delete=models.CASCADE, related_name="log")
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=16, choices=CtaLogAction.choices)
    reason = models.TextField(blank=True, help_text="Why, in plain words")
    source = models.CharField(max_length=40, blank=True)
    source_ref = models.CharField(max_length=120, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    details = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-at", "-pk"]
        indexes = [
            models.Index(fields=["organization", "cta", "-at"], name="playbooks_ctalog_cta"),
            models.Index(fields=["organization", "source", "source_ref", "action"], name="playbooks_ctalog_source"),
        ]

    def __str__(self) -> str:
        return f"{self.action} · {self.cta_id}"


class AssignmentCursor(OrgScopedModel):
    """Where round-robin over a team stands: the user id last given work. The next assignment goes to the
    member with the next higher user id (wrapping), so the order is deterministic and survives members
    joining or leaving."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    last_user_id = models.BigIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(OrgScopedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["organization", "team"], name="playbooks_cursor_unique_team"),
        ]

    def __str__(self) -> str:
        return f"round-robin of team {self.team_id} at user {self.last_user_id}"
