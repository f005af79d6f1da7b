"""Surveys (spec §6, issue 13 §1): the survey, its sends, the per-contact invitations with their
single-use tokens, and the organization's survey settings (throttle, link lifetime, benchmarks).

The answers are :class:`feedback.models.SurveyResponse` (the table that predates surveys: imported and
API rows keep counting, answered ones point at their survey, send and invitation).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from cs_platform.tenancy import OrgScopedModel

from .choices import SurveyKind

__all__ = [
    "InvitationStatus",
    "SendSchedule",
    "SendStatus",
    "Survey",
    "SurveyInvitation",
    "SurveySend",
    "SurveySettings",
]


class SurveySettings(OrgScopedModel):
    """One row per organization (made on first use): how often a contact may be surveyed, how long a
    link lives, and the benchmark lines of the VoC dashboard."""

    throttle_days = models.PositiveIntegerField(
        default=90, help_text="A contact is not surveyed more than once in this many days"
    )
    link_days = models.PositiveIntegerField(default=30, help_text="Days a response link stays valid")
    nps_benchmark = models.DecimalField(max_digits=5, decimal_places=1, default=30, help_text="NPS benchmark line")
    csat_benchmark = models.DecimalField(max_digits=5, decimal_places=1, default=80, help_text="CSAT % benchmark")
    ces_benchmark = models.DecimalField(max_digits=5, decimal_places=1, default=70, help_text="CES % benchmark")

    class Meta(OrgScopedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["organization"], name="feedback_surveysettings_one")]


class Survey(OrgScopedModel):
    """A question of one kind (NPS 0–10, CSAT 1–5, CES 1–7) with its follow-up comment question and the
    email that carries its link (subject and body: plain text with merge fields, see feedback.emails)."""

    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=4, choices=SurveyKind.choices)
    question = models.CharField(max_length=300)
    comment_question = models.CharField(max_length=300, blank=True, default="What is the main reason for your score?")
    email_subject = models.CharField(max_length=200)
    email_body = models.TextField()
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="feedback_survey_unique_name")]

    def __str__(self) -> str:
        return self.name

    def kind_locked_reason(self) -> str:
        """Why ``kind`` may not change (its scale is fixed once answered or asked), or "" when it may:
        the survey has responses, or invitations out (scheduled or sent: their page shows the old scale)."""
        if not self.pk:
            return ""
        if self.responses.exists():
            return "A survey with responses keeps its kind; make a new survey."
        if self.invitations.filter(status__in=(InvitationStatus.SCHEDULED, InvitationStatus.SENT)).exists():
            return "A survey with invitations out (scheduled or sent) keeps its kind; make a new survey."
        return ""


class SendSchedule(models.TextChoices):
    ONCE = "once", "Once"
    RECURRING = "recurring", "Recurring"


class SendStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    ACTIVE = "active", "Active (recurring)"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class SurveySend(OrgScopedModel):
    """A survey sent to the contacts of a segment or of one account (optionally only those holding some
    roles): once, or every ``interval_weeks``; each run's emails may be spread over ``drip_days``.

    ``run_count`` counts the runs done; ``next_run_at`` is when the next one is due (``None`` when done).
    Recipients, skips by reason, sends and responses are counted from the invitations
    (:func:`feedback.services.send_counts`)."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="sends")
    segment = models.ForeignKey("accounts.Segment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    roles = models.JSONField(default=list, blank=True, help_text="Contact roles to survey; empty = every contact")
    schedule = models.CharField(max_length=12, choices=SendSchedule.choices, default=SendSchedule.ONCE)
    interval_weeks = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Recurring: weeks between runs")
    drip_days = models.PositiveSmallIntegerField(default=0, help_text="Spread each run's emails over this many days")
    status = models.CharField(max_length=12, choices=SendStatus.choices, default=SendStatus.SCHEDULED)
    next_run_at = models.DateTimeField(null=True, blank=True)
    run_count = models.PositiveIntegerField(default=0)
    last_run_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=40, blank=True, help_text="manual, or playbook:<id> for an enrolment")
    problem = models.CharField(
        max_length=300,
        blank=True,
        help_text="Why the last run surveyed nobody (segment deleted or invalid); empty if none",
    )
    delivery_problem = models.CharField(
        max_length=300,
        blank=True,
        help_text="Why some of its emails could not be sent at the last delivery (they are retried); empty if none",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["organization", "status", "next_run_at"], name="feedback_send_org_due")]

    def __str__(self) -> str:
        return f"{self.survey} send {self.pk}"


class InvitationStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled (drip)"
    SENT = "sent", "Sent"
    RESPONDED = "responded", "Responded"
    SKIPPED = "skipped", "Skipped"


class SurveyInvitation(OrgScopedModel):
    """One contact in one run of a send: skipped (with the reason), scheduled (a drip), sent (with a
    single-use token of which only the SHA-256 is stored) or responded. A scheduled one whose email failed
    keeps ``attempts`` and ``last_error`` and is tried again by the next delivery.

    ``token_hash`` is unique across organizations: the public page finds the invitation by the hash of
    the token in its URL before it knows the organization."""

    send = models.ForeignKey(SurveySend, on_delete=models.CASCADE, related_name="invitations")
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="invitations")
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey("accounts.Contact", on_delete=models.CASCADE, related_name="survey_invitations")
    run = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=12, choices=InvitationStatus.choices)
    skip_reason = models.CharField(max_length=24, blank=True)
    scheduled_for = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    used_at = models.DateTimeField(null=True, blank=True)
    token_hash = models.CharField(max_length=64, null=True, blank=True, unique=True)
    #: When an admin (or the CSM who may write the account) revoked the link: its page answers 410 from then on
    #: (:func:`feedback.services.revoke_links`). ``used_at`` is the token's last (and only) use.
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: Failed tries to email it (the mail server refused or was unreachable); after
    #: ``feedback.services.MAX_SEND_ATTEMPTS`` it is skipped with the reason ``send_failed``.
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-scheduled_for", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "send", "run", "contact"], name="feedback_invitation_once")
        ]
        indexes = [
            models.Index(fields=["organization", "contact", "sent_at"], name="feedback_invite_org_contact"),
            models.Index(fields=["organization", "status", "scheduled_for"], name="feedback_invite_org_due"),
        ]

    def __str__(self) -> str:
        return f"invitation {self.pk} ({self.status})"
