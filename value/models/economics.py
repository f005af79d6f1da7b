"""What it cost to acquire and onboard customers (issue 15, item 4): the CAC side of LTV and payback."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from cs_platform.tenancy import OrgScopedModel

__all__ = ["AcquisitionCost"]

MONEY = {"max_digits": 14, "decimal_places": 2}


class AcquisitionCost(OrgScopedModel):
    """The acquisition and onboarding cost of one account, or of every account of one segment that has no
    row of its own (exactly one of ``account`` and ``segment``). In the organization's currency, like ARR."""

    account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.CASCADE, related_name="acquisition_costs"
    )
    segment = models.ForeignKey(
        "accounts.Segment", null=True, blank=True, on_delete=models.CASCADE, related_name="acquisition_costs"
    )
    acquisition_cost = models.DecimalField(default=Decimal("0"), validators=[MinValueValidator(0)], **MONEY)
    onboarding_cost = models.DecimalField(default=Decimal("0"), validators=[MinValueValidator(0)], **MONEY)
    notes = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(account__isnull=False, segment__isnull=True)
                | Q(account__isnull=True, segment__isnull=False),
                name="value_acqcost_account_xor_segment",
            ),
            models.UniqueConstraint(
                fields=["organization", "account"],
                condition=Q(account__isnull=False),
                name="value_acqcost_one_per_account",
            ),
            models.UniqueConstraint(
                fields=["organization", "segment"],
                condition=Q(segment__isnull=False),
                name="value_acqcost_one_per_segment",
            ),
        ]

    @property
    def total_cost(self) -> Decimal:
        """The CAC the LTV figures use: acquisition + onboarding."""
        return (self.acquisition_cost or Decimal(0)) + (self.onboarding_cost or Decimal(0))

    def __str__(self) -> str:
        owner = f"account {self.account_id}" if self.account_id else f"segment {self.segment_id}"
        return f"Acquisition cost of {owner}"
