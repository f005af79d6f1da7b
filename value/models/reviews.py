"""Business reviews (QBR / EBR) and their value report (issue 15, item 3)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from cs_platform.tenancy import OrgScopedModel

from ..choices import ReviewKind, ReviewStatus

__all__ = ["BusinessReview"]


class BusinessReview(OrgScopedModel):
    """One QBR or EBR of an account over ``period_start``–``period_end``. While ``open`` its value report is
    computed live; closing records an activity of the review's kind (``activity``), sets the next review's
    objectives on the success plan and freezes the report's figures in ``snapshot`` so that a closed
    review's page and PDF show what was presented."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="business_reviews")
    kind = models.CharField(max_length=4, choices=ReviewKind.choices, default=ReviewKind.QBR)
    period_start = models.DateField()
    period_end = models.DateField()
    held_on = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=ReviewStatus.choices, default=ReviewStatus.OPEN)
    summary = models.TextField(blank=True)
    snapshot = models.JSONField(default=dict, blank=True)
    activity = models.ForeignKey(
        "accounts.Activity", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-period_end", "id"]
        indexes = [
            models.Index(fields=["organization", "account", "period_end"], name="value_review_org_account"),
            models.Index(fields=["organization", "status"], name="value_review_org_status"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.account_id} ({self.period_start}–{self.period_end})"
