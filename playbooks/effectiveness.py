"""Per-playbook effectiveness (spec §5, docs/playbooks.md "Effectiveness").

* ``fired`` / ``suppressed`` / ``skipped``: firings by outcome;
* ``completed``: CTAs opened by the playbook's firings that were completed; ``median_days_to_complete``: the
  median of (closed − opened) over them, in days (one decimal);
* **recovery**: of the *matured* firings (fired at least :data:`RECOVERY_DAYS` ago) that opened a CTA on an
  account that was not green that day, the share whose health turned green within 30 days after; against
  a **comparison group**: accounts of the organization with the same colour on the same day that got no
  CTA at all in the 30 days around it, and the share of them green within the same 30 days.

:func:`effectiveness_many` computes the figures of many playbooks (a list page) in six queries whatever the
number of playbooks, firings or accounts; :func:`effectiveness` is it for one playbook.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from .choices import CtaStatus
from .models import Cta
from .models_engine import FiringOutcome, Playbook, PlaybookFiring

__all__ = ["RECOVERY_DAYS", "effectiveness", "effectiveness_many"]

RECOVERY_DAYS = 30


def _share(part: int, whole: int) -> Decimal | None:
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.001")) if whole else None


def effectiveness(playbook: Playbook, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The playbook's effectiveness figures (see the module docstring)."""
    return effectiveness_many(playbook.organization_id, [playbook], now=now)[playbook.pk]


def effectiveness_many(
    organization_id: int, playbooks: Iterable[Playbook | int], *, now: dt.datetime | None = None
) -> dict[int, dict[str, Any]]:
    """:func:`effectiveness` of every playbook given (of one organization), by playbook id, for a list of
    playbooks: six queries whatever the number of playbooks, firings or accounts (outcomes, completed CTAs,
    matured firings, their day's colours, the treated accounts' green days, the comparison groups)."""
    from health.models import HealthSnapshot

    now = now or timezone.now()
    org_id = organization_id
    pks = [p if isinstance(p, int) else p.pk for p in playbooks]
    firings = PlaybookFiring.objects.for_org(org_id).filter(playbook_id__in=pks)
    by_outcome: dict[int, dict[str, int]] = {pk: {} for pk in pks}
    for pk, outcome, n in (
        firings.values("playbook_id", "outcome").annotate(n=Count("pk")).values_list("playbook_id", "outcome", "n")
    ):
        by_outcome[pk][outcome] = n
    days_to_complete: dict[int, list[float]] = {pk: [] for pk in pks}
    for pk, _cta, opened, closed in (
        firings.filter(cta__status=CtaStatus.COMPLETED, cta__closed_at__isnull=False)
        .values_list("playbook_id", "cta_id", "cta__opened_at", "cta__closed_at")
        .distinct()
    ):
        days_to_complete[pk].append((closed - opened).total_seconds() / 86400)

    # Recovery, matured firings only: the colour on the firing's day, then green within 30 days or not.
    cutoff = now - dt.timedelta(days=RECOVERY_DAYS)
    day_of: dict[int, set[tuple[int, dt.date]]] = {pk: set() for pk in pks}
    matured = firings.filter(outcome=FiringOutcome.FIRED, cta__isnull=False, fired_at__lte=cutoff)
    for pk, account, at in matured.values_list("playbook_id", "account_id", "fired_at"):
        day_of[pk].add((account, timezone.localdate(at)))
    pairs = set().union(*day_of.values()) if day_of else set()
    colour: dict[tuple[int, dt.date], str] = {}
    if pairs:
        colour = {
            (a, d): c
            for a, d, c in HealthSnapshot.objects.for_org(org_id)
            .filter(account_id__in={a for a, _ in pairs}, date__in={d for _, d in pairs})
            .values_list("account_id", "date", "color")
        }
    treated = {(a, d): c for (a, d), c in colour.items() if (a, d) in pairs and c and c != "green"}
    green_days: dict[int, list[dt.date]] = {}
    groups: dict[tuple[dt.date, str], dict[str, int]] = {}
    if treated:
        first, last = min(d for _, d in treated), max(d for _, d in treated)
        for a, d in (
            HealthSnapshot.objects.for_org(org_id)
            .filter(
                account_id__in={a for a, _ in treated},
                color="green",
                date__range=(first + dt.timedelta(days=1), last + dt.timedelta(days=RECOVERY_DAYS)),
            )
            .values_list("account_id", "date")
        ):
            green_days.setdefault(a, []).append(d)
        # The comparison groups, all (day, colour) at once: same colour that day, no CTA within 30 days of it.
        green_later = HealthSnapshot.all_orgs.filter(
            organization_id=org_id,
            account_id=OuterRef("account_id"),
            color="green",
            date__gte=OuterRef("date") + dt.timedelta(days=1),
            date__lte=OuterRef("date") + dt.timedelta(days=RECOVERY_DAYS),
        )
        any_cta = Cta.all_orgs.filter(
            organization_id=org_id,
            account_id=OuterRef("account_id"),
            opened_at__date__gte=OuterRef("date") - dt.timedelta(days=RECOVERY_DAYS),
            opened_at__date__lte=OuterRef("date") + dt.timedelta(days=RECOVERY_DAYS),
        )
        wanted = set(treated.items())
        rows = (
            HealthSnapshot.objects.for_org(org_id)
            .filter(date__in={d for _, d in treated}, color__in=set(treated.values()))
            .annotate(recovered=Exists(green_later), had_cta=Exists(any_cta))
            .values("date", "color")
            .annotate(
                control=Count("pk", filter=Q(had_cta=False)),
                control_ok=Count("pk", filter=Q(had_cta=False, recovered=True)),
            )
            .values_list("date", "color", "control", "control_ok")
        )
        present = {(d, c) for (_, d), c in wanted}
        groups = {(d, c): {"control": n, "control_ok": ok} for d, c, n, ok in rows if (d, c) in present}

    out = {}
    for pk in pks:
        days = days_to_complete[pk]
        mine = {(a, d): treated[(a, d)] for a, d in day_of[pk] if (a, d) in treated}
        recovered = sum(
            1 for (a, d) in mine if any(d < g <= d + dt.timedelta(days=RECOVERY_DAYS) for g in green_days.get(a, ()))
        )
        compared = compared_recovered = 0
        for day_colour in {(d, c) for (_, d), c in mine.items()}:
            group = groups.get(day_colour, {})
            compared += group.get("control", 0)
            compared_recovered += group.get("control_ok", 0)
        out[pk] = _figures(by_outcome[pk], days, len(mine), recovered, compared, compared_recovered)
    return out


def _figures(
    by_outcome: dict[str, int], days: list[float], treated: int, recovered: int, compared: int, compared_ok: int
) -> dict[str, Any]:
    return {
        "fired": by_outcome.get(FiringOutcome.FIRED, 0),
        "suppressed": by_outcome.get(FiringOutcome.SUPPRESSED, 0),
        "skipped": by_outcome.get(FiringOutcome.SKIPPED, 0),
        "completed": len(days),
        "median_days_to_complete": Decimal(str(round(statistics.median(days), 1))) if days else None,
        "recovery": {
            "window_days": RECOVERY_DAYS,
            "accounts": treated,
            "recovered": recovered,
            "share": _share(recovered, treated),
            "comparison_accounts": compared,
            "comparison_recovered": compared_ok,
            "comparison_share": _share(compared_ok, compared),
        },
    }
