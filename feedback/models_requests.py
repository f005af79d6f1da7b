"""Feature requests (spec §6): what customers ask for, which accounts wait on it, and its status.

A :class:`FeatureRequest` is one ask (a bug, a feature, a how-to question) in a product area; accounts are
linked to it by :class:`FeatureRequestLink` (who asked, how much it matters to them, the renewal or lost
deal it blocks). Requests are ranked by the ARR waiting on them (``feedback.requests.ranked``). A duplicate is
merged into a survivor: its links move over and it stays, marked ``merged_into``, so old links still resolve.
Every status change and merge is kept in :class:`FeatureRequestChange` (the audit).

The tracker loop: a request may carry the key of an issue in the issue tracker (``PROD-42``); health's
inbound webhook moves the status of every request with that key (docs/api.md, "Inbound webhooks").
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from cs_platform.tenancy import OrgScopedModel

__all__ = [
    "IMPORTANCE_RANK",
    "FeatureRequest",
    "FeatureRequestChange",
    "FeatureRequestLink",
    "RequestImportance",
    "RequestStatus",
    "RequestType",
]


class RequestType(models.TextChoices):
    BUG = "bug", "Bug"
    FEATURE = "feature", "Feature"
    HOW_TO = "how_to", "How-to"


class RequestStatus(models.TextChoices):
    NEW = "new", "New"
    UNDER_REVIEW = "under_review", "Under review"
    PLANNED = "planned", "Planned"
    SHIPPED = "shipped", "Shipped"
    DECLINED = "declined", "Declined"


class RequestImportance(models.TextChoices):
    LOW = "low", "Nice to have"
    MEDIUM = "medium", "Important"
    HIGH = "high", "Very important"
    CRITICAL = "critical", "Blocker"


#: Importance order (a merge keeps the higher of two links to the same account).
IMPORTANCE_RANK = {RequestImportance.LOW: 1, RequestImportance.MEDIUM: 2, RequestImportance.HIGH: 3,
                   RequestImportance.CRITICAL: 4}  # fmt: skip


class FeatureRequest(OrgScopedModel):
    """One request of customers: a bug to fix, a feature to build or a how-to to document.

    ``external_issue_key`` / ``external_issue_url``: the issue tracker's issue (Jira-style ``PROJ-123``) the
    inbound tracker webhook matches. ``merged_into``: set when this request was a duplicate; its links then
    live on the survivor."""

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    product_area = models.CharField(max_length=80, blank=True)
    type = models.CharField(max_length=8, choices=RequestType.choices, default=RequestType.FEATURE)
    status = models.CharField(max_length=12, choices=RequestStatus.choices, default=RequestStatus.NEW)
    external_issue_key = models.CharField(max_length=64, null=True, blank=True)
    external_issue_url = models.URLField(max_length=500, blank=True)
    # CASCADE: a merged duplicate is a shell (its links moved); deleting the request it went into deletes it too,
    # rather than bringing it back, linkless, to the board.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="merged_duplicates"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["organization", "status"], name="feedback_fr_org_status"),
            models.Index(fields=["organization", "external_issue_key"], name="feedback_fr_org_issue"),
            models.Index(fields=["organization", "product_area"], name="feedback_fr_org_area"),
        ]

    def __str__(self) -> str:
        return self.title


class FeatureRequestLink(OrgScopedModel):
    """An account waiting on a request: who asked for it (``requested_by``, the requesting CSM), how much it
    matters to the account, and optionally what it blocks: an open renewal (``blocked_renewal_id``, a
    renewals id checked in the service: feedback may not import renewals) or a lost deal (``blocked_deal``,
    the CRM's reference)."""

    request = models.ForeignKey(FeatureRequest, on_delete=models.CASCADE, related_name="links")
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="feature_request_links")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    importance = models.CharField(max_length=8, choices=RequestImportance.choices, default=RequestImportance.MEDIUM)
    comment = models.TextField(blank=True)
    blocked_renewal_id = models.PositiveBigIntegerField(null=True, blank=True)
    blocked_deal = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta(OrgScopedModel.Meta):
        ordering = ["request", "-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "request", "account"], name="feedback_frlink_unique_org_req_acct"
            )
        ]
        indexes = [models.Index(fields=["organization", "account"], name="feedback_frlink_org_acct")]

    def __str__(self) -> str:
        return f"{self.account_id} → {self.request_id}"


class FeatureRequestChange(OrgScopedModel):
    """The audit of a request: every status change (by whom, or which tracker delivery) and every merge."""

    request = models.ForeignKey(FeatureRequest, on_delete=models.CASCADE, related_name="changes")
    kind = models.CharField(max_length=12, default="status")  # "status" | "merged" | "absorbed"
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12, blank=True)
    source = models.CharField(max_length=20, default="page")  # page | api | tracker | merge
    note = models.CharField(max_length=300, blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["organization", "request", "-at"], name="feedback_frchange_req")]

    def __str__(self) -> str:
        return f"{self.kind} {self.from_status} → {self.to_status}"
