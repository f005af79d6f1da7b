"""Demo (``seed_demo``, registered by ValueConfig as ``value.demo_economics`` at order 60): acquisition and
onboarding costs, so that LTV:CAC and payback mean something on the demo.

Deterministic (``random.Random(f"{seed}:economics")``, no clock but ``today``'s ARR): every segment with live
members gets a cost of about two years of its median account's ARR (×1.6–2.4: the seeds' "24 months or more
of subscription revenue just to recover the cost of acquisition and onboarding"), four fifths acquisition,
one fifth onboarding; and six accounts (the largest by ARR, ties by external id) get a row of their own
(×1.0–3.5 their ARR), so the per-account override and its drill-down show. Re-running replaces the rows.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from accounts.models import Account, Organization, Segment
from accounts.segments import SegmentRuleError, compile_rules

from .economics import CostItem, upsert_costs
from .models import AcquisitionCost

__all__ = ["seed", "wipe"]

OWN_ROWS = 6
ONBOARDING_SHARE = Decimal("0.2")


def _round(value: Decimal, step: int = 100) -> Decimal:
    return (value / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step


def _split(total: Decimal) -> tuple[Decimal, Decimal]:
    onboarding = _round(total * ONBOARDING_SHARE)
    return total - onboarding, onboarding


def wipe(organization: Organization) -> None:
    """Every cost row of the organization goes before the demo's accounts are replaced."""
    AcquisitionCost.all_orgs.filter(organization_id=organization.pk).delete()


def seed(
    organization: Organization, *, seed: int, today: date, log: Callable[[str], None] | None = None
) -> dict[str, int]:
    rng = random.Random(f"{seed}:economics")
    org = organization
    AcquisitionCost.objects.for_org(org).delete()
    live = Account.objects.for_org(org).filter(arr__gt=0)
    items: list[CostItem] = []
    for segment in Segment.objects.for_org(org).order_by("position", "name", "id"):
        try:
            condition = compile_rules(segment.rules)
        except SegmentRuleError:
            continue
        arrs = [Decimal(a) for a in live.filter(condition).values_list("arr", flat=True)]
        if not arrs:
            continue
        factor = Decimal(str(round(rng.uniform(1.6, 2.4), 2)))
        acquisition, onboarding = _split(_round(Decimal(statistics.median(arrs)) * factor, 1000))
        items.append(CostItem(None, segment.pk, acquisition, onboarding, f"Demo: {factor}× the median ARR"))
    for account_id, arr in live.order_by("-arr", "external_id").values_list("id", "arr")[:OWN_ROWS]:
        factor = Decimal(str(round(rng.uniform(1.0, 3.5), 2)))
        acquisition, onboarding = _split(_round(Decimal(arr) * factor, 1000))
        items.append(CostItem(account_id, None, acquisition, onboarding, "Demo: field sales deal"))
    counts = upsert_costs(org, items)
    if log:
        log(f"acquisition costs: {counts.created} rows")
    return {"acquisition_costs": counts.created}
