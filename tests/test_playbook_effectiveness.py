"""Per-playbook effectiveness for a list: :func:`playbooks.effectiveness.effectiveness_many` answers every
playbook's figures in a number of queries that does not grow with the playbooks, and the same figures as the
first, per-playbook implementation (kept below as the oracle)."""

from __future__ import annotations

import datetime as dt
import statistics
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from health.models import HealthSnapshot
from playbooks import ctas
from playbooks.choices import CtaStatus
from playbooks.effectiveness import RECOVERY_DAYS, _share, effectiveness, effectiveness_many
from playbooks.models import Cta, Playbook, PlaybookFiring
from playbooks.models_engine import FiringOutcome

from .factories import AccountFactory
from .test_playbook_engine import START, at, make_playbook

pytestmark = pytest.mark.django_db

REASONS = ["health_red", "usage_drop", "no_touch", "invoice_overdue", "p1_ticket", "health_drop"]


def build(org, owner, playbooks: int) -> list[Playbook]:
    """``playbooks`` playbooks, each with firings on accounts red or yellow that day (some recover, some CTAs
    completed, one suppressed firing), and bystanders of the same colours with and without CTAs."""
    made = []
    snapshots = []
    for p in range(playbooks):
        reason = REASONS[p % len(REASONS)]
        playbook = make_playbook(
            org,
            "health_color",
            {"colors": ["red"]},
            name=f"P{p}",
            actions=[{"kind": "open_cta", "type": "risk", "reason": reason}],
        )
        made.append(playbook)
        for i in range(4):
            day = START + dt.timedelta(days=3 * p + (i % 2))
            account = AccountFactory(organization=org, owner=owner)
            colour = "red" if i % 3 else "yellow"
            snapshots.append(
                HealthSnapshot(organization=org, account=account, date=day, color=colour, score=30, computed_at=at(day))
            )
            later = "green" if (i + p) % 2 else colour
            snapshots.append(
                HealthSnapshot(
                    organization=org,
                    account=account,
                    date=day + dt.timedelta(days=5 + i),
                    color=later,
                    score=70,
                    computed_at=at(day),
                )
            )
            with time_machine.travel(at(day), tick=False):
                cta, _ = ctas.open_or_update_cta(account=account, type="risk", reason=reason)
                PlaybookFiring.all_orgs.create(
                    organization=org,
                    playbook=playbook,
                    account=account,
                    occurrence_key=f"k{i}",
                    outcome="fired",
                    cta=cta,
                    fired_at=at(day),
                )
                if i == 3:
                    PlaybookFiring.all_orgs.create(
                        organization=org,
                        playbook=playbook,
                        account=account,
                        occurrence_key="again",
                        outcome="suppressed",
                        fired_at=at(day),
                    )
            if i % 2:
                with time_machine.travel(at(day + dt.timedelta(days=i)), tick=False):
                    ctas.complete(cta, outcome="resolved")
            bystander = AccountFactory(organization=org, owner=owner)
            snapshots.append(
                HealthSnapshot(
                    organization=org, account=bystander, date=day, color=colour, score=35, computed_at=at(day)
                )
            )
            if i % 2:
                snapshots.append(
                    HealthSnapshot(
                        organization=org,
                        account=bystander,
                        date=day + dt.timedelta(days=9),
                        color="green",
                        score=75,
                        computed_at=at(day),
                    )
                )
    HealthSnapshot.all_orgs.bulk_create(snapshots)
    return made


def test_effectiveness_of_a_list_is_constant_in_queries_and_equals_the_per_playbook_figures(org, bob):
    playbooks = build(org, bob, 6)
    now = at(START + dt.timedelta(days=60))
    with time_machine.travel(now, tick=False):
        with CaptureQueriesContext(connection) as one:
            effectiveness_many(org.pk, playbooks[:1])
        with CaptureQueriesContext(connection) as six:
            figures = effectiveness_many(org.pk, playbooks)
        expected = {p.pk: reference(p) for p in playbooks}
        assert effectiveness(playbooks[2]) == expected[playbooks[2].pk]
    assert len(six) == len(one) <= 6, (len(one), len(six))
    assert figures == expected
    # The figures are not trivial: every playbook has treated accounts, a comparison and completions.
    for values in figures.values():
        assert values["fired"] == 4 and values["suppressed"] == 1 and values["completed"] == 2
        assert values["recovery"]["accounts"] == 4 and values["recovery"]["comparison_accounts"] > 0
    assert {v["recovery"]["recovered"] for v in figures.values()} == {2}
    # A playbook without firings answers zeros, in the same queries.
    idle = make_playbook(org, "no_touch", {"days": 45}, name="Idle")
    with CaptureQueriesContext(connection) as with_idle:
        assert effectiveness_many(org.pk, [*playbooks, idle], now=now)[idle.pk]["fired"] == 0
    assert len(with_idle) == len(six)


# The first implementation, verbatim but for its name: the oracle of the test above.
def reference(playbook: Playbook, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The first implementation (queries per playbook and per (day, colour)), kept as the oracle."""
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
