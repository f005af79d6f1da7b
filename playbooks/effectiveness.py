"""Per-playbook effectiveness (spec §5, docs/playbooks.md "Effectiveness").

* ``fired`` / ``suppressed`` / ``skipped``: firings by outcome;
* ``completed``: CTAs opened by the playbook's firings that were completed; ``median_days_to_complete``: the
  median of (closed − opened) over them, in days (one decimal);
* **recovery**: of the *matured* firings (fired at least :data:`RECOVERY_DAYS` ago) that opened a CTA on an
  account that was not green that day, the share whose health turned green within 30 days after; against
  a **comparison group**: accounts of the organization with the same colour on the same day that got no
  CTA at all in the 30 days around it, and the share of them green within the same 30 days.

One query per distinct (day, colour) of the matured firings, over health snapshots; nothing per account.
"""

from __future__ import annotations

import datetime as dt
import statistics
from decimal import Decimal
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from .choices import CtaStatus
from .models import Cta
from .models_engine import FiringOutcome, Playbook, PlaybookFiring

__all__ = ["RECOVERY_DAYS", "effectiveness"]

RECOVERY_DAYS = 30


def _share(part: int, whole: int) -> Decimal | None:
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.001")) if whole else None


def effectiveness(playbook: Playbook, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The playbook's effectiveness figures (see the module docstring)."""
    from health.models import HealthSnapshot

    now = now or timezone.now()
    org_id = playbook.organization_id
    firings = PlaybookFiring.objects.for_org(org_id).filter(playbook=playbook)
    by_outcome = dict(firings.values_list("outcome").annotate(n=Count("pk")).values_list("outcome", "n"))
    cta_ids = firings.filter(cta__isnull=False).values("cta_id")
    completed = list(
        Cta.objects.for_org(org_id)
        .filter(pk__in=cta_ids, status=CtaStatus.COMPLETED, closed_at__isnull=False)
        .values_list("opened_at", "closed_at")
    )
    days = [(closed - opened).total_seconds() / 86400 for opened, closed in completed]
    median = Decimal(str(round(statistics.median(days), 1))) if days else None

    # Recovery, matured firings only: the colour on the firing's day, then green within 30 days or not.
    cutoff = now - dt.timedelta(days=RECOVERY_DAYS)
    matured = list(
        firings.filter(outcome=FiringOutcome.FIRED, cta__isnull=False, fired_at__lte=cutoff).values_list(
            "account_id", "fired_at"
        )
    )
    day_of = {(account, timezone.localdate(at)) for account, at in matured}
    colour = {
        (a, d): c
        for a, d, c in HealthSnapshot.objects.for_org(org_id)
        .filter(account_id__in={a for a, _ in day_of}, date__in={d for _, d in day_of})
        .values_list("account_id", "date", "color")
    }
    treated = recovered = compared = compared_recovered = 0
    groups: dict[tuple[dt.date, str], list[int]] = {}
    for account, day in day_of:
        c = colour.get((account, day))
        if c and c != "green":
            groups.setdefault((day, c), []).append(account)
    for (day, c), accounts in groups.items():
        window = (day + dt.timedelta(days=1), day + dt.timedelta(days=RECOVERY_DAYS))
        green_later = HealthSnapshot.all_orgs.filter(
            organization_id=org_id, account_id=OuterRef("account_id"), date__range=window, color="green"
        )
        any_cta = Cta.all_orgs.filter(
            organization_id=org_id,
            account_id=OuterRef("account_id"),
            opened_at__date__range=(day - dt.timedelta(days=RECOVERY_DAYS), window[1]),
        )
        rows = (
            HealthSnapshot.objects.for_org(org_id)
            .filter(date=day, color=c)
            .annotate(recovered=Exists(green_later), had_cta=Exists(any_cta))
            .aggregate(
                treated=Count("pk", filter=Q(account_id__in=accounts)),
                treated_ok=Count("pk", filter=Q(account_id__in=accounts, recovered=True)),
                control=Count("pk", filter=Q(had_cta=False)),
                control_ok=Count("pk", filter=Q(had_cta=False, recovered=True)),
            )
        )
        treated += rows["treated"]
        recovered += rows["treated_ok"]
        compared += rows["control"]
        compared_recovered += rows["control_ok"]
    return {
        "fired": by_outcome.get(FiringOutcome.FIRED, 0),
        "suppressed": by_outcome.get(FiringOutcome.SUPPRESSED, 0),
        "skipped": by_outcome.get(FiringOutcome.SKIPPED, 0),
        "completed": len(completed),
        "median_days_to_complete": median,
        "recovery": {
            "window_days": RECOVERY_DAYS,
            "accounts": treated,
            "recovered": recovered,
            "share": _share(recovered, treated),
            "comparison_accounts": compared,
            "comparison_recovered": compared_recovered,
            "comparison_share": _share(compared_recovered, compared),
        },
    }
