"""The sales → CS handoff and onboarding projects (issue 15, item 1).

A :class:`Handoff` is what sales hands to CS for a new account: success measures with baselines and
targets (they seed the success plan's objectives), stakeholders by role, the go-live target and commercial
notes. An :class:`OnboardingProject` is instantiated from an :class:`OnboardingTemplate` (phases of
milestones with owner roles and due-date offsets from the kickoff); its :class:`OnboardingMilestone` rows
carry the clock: the milestone marked ``kickoff`` starts it, ``go_live`` and ``first_value`` stop the two
clocks that time-to-value analytics read.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from cs_platform.tenancy import OrgScopedModel

from ..choices import OPEN_ONBOARDING_STATUSES, MilestoneMark, MilestoneOwnerRole, OnboardingStatus

__all__ = ["Handoff", "OnboardingMilestone", "OnboardingProject", "OnboardingTemplate"]


class Handoff(OrgScopedModel):
    """The sales → CS handoff of one account (one per account; ``submitted_at`` empty while a draft).

    ``success_measures``: ``[{"title", "customer_measure", "baseline", "target", "due_date"}]``, copied into
    the success plan's objectives on submit. ``stakeholders``: ``[{"name", "email", "title", "role"}]``
    (``role`` one of the contact roles). Both are validated by the services, not by the database."""

    account = models.OneToOneField("accounts.Account", on_delete=models.CASCADE, related_name="handoff")
    go_live_target = models.DateField(null=True, blank=True)
    success_measures = models.JSONField(default=list, blank=True)
    stakeholders = models.JSONField(default=list, blank=True)
    commercial_notes = models.TextField(blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["organization", "submitted_at"], name="value_handoff_org_submitted")]

    def __str__(self) -> str:
        return f"Handoff of {self.account_id}"


class OnboardingTemplate(OrgScopedModel):
    """A reusable onboarding plan. ``phases``: ``[{"name", "milestones": [{"key", "name", "owner_role",
    "due_offset_days", "mark"}]}]`` with ``owner_role`` a :class:`MilestoneOwnerRole` and ``mark`` a
    :class:`MilestoneMark` (exactly one ``kickoff`` and one ``go_live``; ``first_value`` optional, go-live
    stands in for it when absent). A milestone unchanged for ``stall_after_days`` while open, or past its
    due date, is stalled. ``target_go_live_days`` / ``target_first_value_days`` (from the kickoff) are what
    the on-time rate is measured against."""

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    is_default = models.BooleanField(default=False)
    phases = models.JSONField(default=list, blank=True)
    stall_after_days = models.PositiveSmallIntegerField(default=14)
    target_go_live_days = models.PositiveSmallIntegerField(default=60)
    target_first_value_days = models.PositiveSmallIntegerField(default=90)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="value_onbtemplate_unique_name"),
            models.UniqueConstraint(
                fields=["organization"], condition=Q(is_default=True), name="value_onbtemplate_one_default"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class OnboardingProject(OrgScopedModel):
    """One account's onboarding, from a template (copied: later template edits do not change it).

    ``kickoff_on`` starts the clock, ``go_live_on`` and ``first_value_on`` stop its two clocks (set when the
    milestones so marked are completed). ``target_go_live_on``: from the handoff, else kickoff + the
    template's target. At most one open (``active``/``live``) project per account."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="onboarding_projects")
    template = models.ForeignKey(
        OnboardingTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="projects"
    )
    name = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=OnboardingStatus.choices, default=OnboardingStatus.ACTIVE)
    kickoff_on = models.DateField(null=True, blank=True)
    target_go_live_on = models.DateField(null=True, blank=True)
    target_first_value_on = models.DateField(null=True, blank=True)
    go_live_on = models.DateField(null=True, blank=True)
    first_value_on = models.DateField(null=True, blank=True)
    stall_after_days = models.PositiveSmallIntegerField(default=14)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "account"],
                condition=Q(status__in=[s.value for s in OPEN_ONBOARDING_STATUSES]),
                name="value_onbproject_one_open",
            )
        ]
        indexes = [
            models.Index(fields=["organization", "status"], name="value_onbproject_org_status"),
            models.Index(fields=["organization", "account"], name="value_onbproject_org_account"),
            models.Index(fields=["organization", "kickoff_on"], name="value_onbproject_org_kickoff"),
        ]

    def __str__(self) -> str:
        return self.name


class OnboardingMilestone(OrgScopedModel):
    """One milestone of a project: phase, order, owner, due date, completion. ``last_changed_at`` moves on
    every change (what "unchanged N days" reads); ``stalled_on`` is the day a stall was raised (the
    occurrence a playbook fires on, once) and is cleared when the milestone changes or completes."""

    project = models.ForeignKey(OnboardingProject, on_delete=models.CASCADE, related_name="milestones")
    phase = models.CharField(max_length=120)
    position = models.PositiveIntegerField(default=0)
    key = models.SlugField(max_length=60)
    name = models.CharField(max_length=200)
    mark = models.CharField(max_length=12, choices=MilestoneMark.choices, blank=True)
    owner_role = models.CharField(max_length=16, choices=MilestoneOwnerRole.choices, default=MilestoneOwnerRole.CSM)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    due_on = models.DateField(null=True, blank=True)
    #: Days after the kickoff the template set; ``None`` once a person typed the due date (the kickoff no
    #: longer recomputes it) and for milestones added to the project by hand.
    due_offset_days = models.PositiveSmallIntegerField(null=True, blank=True)
    completed_on = models.DateField(null=True, blank=True)
    notes = models.TextField(blank=True)
    last_changed_at = models.DateTimeField(default=timezone.now)
    stalled_on = models.DateField(null=True, blank=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["project", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "project", "key"], name="value_milestone_unique_key")
        ]
        indexes = [
            models.Index(fields=["organization", "project", "position"], name="value_milestone_org_proj"),
            models.Index(fields=["organization", "completed_on", "due_on"], name="value_milestone_org_open"),
        ]

    def __str__(self) -> str:
        return self.name
