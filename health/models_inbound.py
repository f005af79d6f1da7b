"""Inbound webhooks (issue 13 §4): the issue tracker's "issue updated" and the helpdesk's tickets.

An organization enables a source (:class:`InboundHook`, one per organization and source) and gets a URL
and a signing secret; every POST to it, accepted or refused, is logged as an :class:`InboundDelivery` with
its outcome and reason (admins read the log on the integrations page).

The secret is never stored. HMAC verification needs the raw secret, so a hash cannot work; instead the hook
keeps a random ``secret_salt`` and the secret is *derived* from it and the deployment's ``SECRET_KEY``
(``health.inbound.hook_secret``): reading the database alone does not reveal it, rotating the salt
replaces it, and nothing new (an encryption key, a crypto dependency) has to be managed.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from cs_platform.tenancy import OrgScopedModel

__all__ = ["InboundDelivery", "InboundHook", "InboundOutcome", "InboundSource"]


class InboundSource(models.TextChoices):
    TRACKER = "tracker", "Issue tracker (Jira)"
    HELPDESK = "helpdesk", "Helpdesk"


class InboundOutcome(models.TextChoices):
    APPLIED = "applied", "Applied"
    IGNORED = "ignored", "Accepted, nothing to change"
    STALE = "stale", "Accepted, older than the stored ticket (ignored)"
    REFUSED = "refused", "Refused"
    THROTTLED = "throttled", "Rate-limited"


def default_status_map() -> dict[str, str]:
    """The tracker's status names → feature request statuses, until an admin edits them."""
    return {"To Do": "under_review", "In Progress": "planned", "Done": "shipped", "Won't Do": "declined"}


class InboundHook(OrgScopedModel):
    """One inbound source enabled for an organization: its signing secret (derived, see the module doc),
    and for the tracker the mapping from the tracker's status names to feature request statuses."""

    source = models.CharField(max_length=10, choices=InboundSource.choices)
    secret_salt = models.CharField(max_length=64)
    status_map = models.JSONField(default=default_status_map, blank=True)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rotated_at = models.DateTimeField(default=timezone.now)

    class Meta(OrgScopedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["organization", "source"], name="health_inboundhook_unique_org_source")
        ]

    def __str__(self) -> str:
        return self.source


class InboundDelivery(OrgScopedModel):
    """One POST to an inbound hook and what came of it: applied, ignored (valid, nothing matched), stale (a
    helpdesk ticket whose ``updated_at`` is older than the stored one: an out-of-order delivery), refused
    (with the reason the sender was told) or throttled. The body itself is not kept (a digest and its size
    are), only what the outcome needs: the issue key or ticket id and how many rows changed. The newest
    :data:`KEEP` accepted (applied/ignored) and :data:`KEEP_REFUSED` refused/throttled deliveries per organization
    are kept, each against its own cap."""

    KEEP = 1000
    KEEP_REFUSED = 200

    source = models.CharField(max_length=10, choices=InboundSource.choices)
    received_at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=10, choices=InboundOutcome.choices)
    status_code = models.PositiveSmallIntegerField()
    reason = models.CharField(max_length=500, blank=True)
    reference = models.CharField(max_length=120, blank=True, help_text="issue key or ticket id")
    changed = models.PositiveIntegerField(default=0)
    body_sha256 = models.CharField(max_length=64, blank=True)
    body_bytes = models.PositiveIntegerField(default=0)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-received_at", "-pk"]
        indexes = [models.Index(fields=["organization", "-received_at"], name="health_inbound_org_recv")]

    def __str__(self) -> str:
        return f"{self.source} {self.outcome}"
