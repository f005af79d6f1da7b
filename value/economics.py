"""Services of acquisition and onboarding costs (the CAC side of LTV and payback; docs/metrics.md).

A cost row belongs to exactly one account or one segment of the organization. Writes are set-based
(:func:`upsert_costs`: the CSV import and the demo), or one row through the API's serializer, which checks
the same rule (:func:`owner_problem`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from accounts.models import Organization

from .models import AcquisitionCost

__all__ = ["CostItem", "UpsertCounts", "owner_problem", "upsert_costs"]


def owner_problem(account_id: int | None, segment_id: int | None) -> str | None:
    """Why a cost row cannot name this owner (``None``: it can): exactly one of account and segment."""
    if account_id is None and segment_id is None:
        return "Name an account or a segment."
    if account_id is not None and segment_id is not None:
        return "Name an account or a segment, not both."
    return None


@dataclass(frozen=True)
class CostItem:
    """One cost to write: the owner (account id xor segment id) and the amounts."""

    account_id: int | None
    segment_id: int | None
    acquisition_cost: Decimal
    onboarding_cost: Decimal
    notes: str = ""


@dataclass
class UpsertCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


FIELDS = ("acquisition_cost", "onboarding_cost", "notes")


def upsert_costs(org: Organization, items: Iterable[CostItem]) -> UpsertCounts:
    """Create or update the cost rows of ``items`` (by owner), in three statements whatever their number;
    rows whose values are already those of the database are left alone (a re-import changes nothing).

    The owners must be the organization's (callers resolve them inside it); each owner at most once."""
    items = list(items)
    counts = UpsertCounts()
    if not items:
        return counts
    existing = AcquisitionCost.objects.for_org(org)
    current = {
        (row.account_id, row.segment_id): row
        for row in existing.filter(account_id__in=[i.account_id for i in items if i.account_id is not None])
    }
    current.update(
        {
            (row.account_id, row.segment_id): row
            for row in existing.filter(segment_id__in=[i.segment_id for i in items if i.segment_id is not None])
        }
    )
    new, changed = [], []
    for item in items:
        problem = owner_problem(item.account_id, item.segment_id)
        if problem:
            raise ValueError(problem)
        row = current.get((item.account_id, item.segment_id))
        values = {"acquisition_cost": item.acquisition_cost, "onboarding_cost": item.onboarding_cost,
                  "notes": item.notes}  # fmt: skip
        if row is None:
            new.append(AcquisitionCost(organization_id=org.pk, account_id=item.account_id,
                                       segment_id=item.segment_id, **values))  # fmt: skip
        elif all(getattr(row, k) == v for k, v in values.items()):
            counts.unchanged += 1
        else:
            for k, v in values.items():
                setattr(row, k, v)
            row.updated_at = timezone.now()  # bulk_update does not run auto_now
            changed.append(row)
    AcquisitionCost.all_orgs.bulk_create(new)  # organization_id set on every row above
    if changed:
        AcquisitionCost.all_orgs.bulk_update(changed, [*FIELDS, "updated_at"])
    counts.created, counts.updated = len(new), len(changed)
    return counts
