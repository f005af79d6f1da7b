"""Models of the daily digest email (issue 12 §2, "an optional daily digest email"): each member's choice, and
the record of every digest run (one per member per day: what makes sending idempotent)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from cs_platform.tenancy import OrgScopedModel

__all__ = ["DigestRun", "DigestStatus", "NotificationPreference"]


class NotificationPreference(OrgScopedModel):
    """A member's notification settings in one organization (one row per membership, made when first changed).
    ``daily_digest`` is off by default: the member turns it on from the notifications page."""

    membership = models.OneToOneField("accounts.Membership", on_delete=models.CASCADE, related_name="+")
    daily_digest = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(OrgScopedModel.Meta):
        indexes = [models.Index(fields=["organization", "daily_digest"], name="playbooks_pref_digest")]

    def __str__(self) -> str:
        return f"{self.membership_id}: digest {'on' if self.daily_digest else 'off'}"


class DigestStatus(models.TextChoices):
    SENT = "sent", "Sent"
    EMPTY = "empty", "Nothing to say: not sent"


class DigestRun(OrgScopedModel):
    """One member's digest of one (organization-local) day: claimed before sending, so a retried or
    overlapping run sends nothing twice. ``status`` says whether an email went; the counts say what it held."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    status = models.CharField(max_length=8, choices=DigestStatus.choices)
    notifications = models.PositiveIntegerField(default=0)
    tasks_due = models.PositiveIntegerField(default=0)
    tasks_overdue = models.PositiveIntegerField(default=0)
    at = models.DateTimeField(default=timezone.now)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-day", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user", "day"], name="playbooks_digest_once_a_day")
        ]

    def __str__(self) -> str:
        return f"digest {self.day} → {self.user_id} ({self.status})"
