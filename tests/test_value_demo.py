"""The demo's handoffs and onboarding projects (value/demo.py): every time-to-value figure means something,
deterministic with the seed, replaced on a re-seed, consistent with the stall detection."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from accounts.demo import seed_demo
from value.analytics import time_to_value
from value.demo import TEMPLATE_NAME
from value.models import Handoff, OnboardingMilestone, OnboardingProject, OnboardingTemplate
from value.stalls import detect_stalls

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 11, 23)


def rows(org):
    return list(
        OnboardingProject.objects.for_org(org)
        .order_by("account__external_id")
        .values_list("account__external_id", "status", "kickoff_on", "go_live_on", "first_value_on")
    )


def test_the_demo_makes_every_figure_meaningful_and_is_deterministic():
    summary = seed_demo(slug="demo", accounts=150, seed=7, today=TODAY)
    org = summary.organization
    before = rows(org)
    statuses = {status for _, status, *_ in before}
    assert {"active", "live", "completed"} <= statuses
    assert summary.counts["onboarding_projects"] == len(before) >= 20
    assert Handoff.objects.for_org(org).count() == summary.counts["handoffs"] >= len(before)
    template = OnboardingTemplate.objects.for_org(org).get()
    assert (template.name, template.is_default) == (TEMPLATE_NAME, True)

    result = time_to_value(org, start=TODAY - dt.timedelta(days=365), end=TODAY, today=TODAY)
    overall = result["overall"]
    assert overall["go_live"]["n"] >= 5 and overall["go_live"]["running"] >= 1
    assert overall["first_value"]["n"] >= 3
    assert 0 < overall["on_time"]["on_time"] < overall["on_time"]["with_target"]  # on time and late ones
    assert overall["on_time"]["overdue"] >= 1
    risk = result["at_risk"]
    assert 0 < risk["at_risk"] < risk["onboarding_accounts"] and risk["stalled"] >= 1 and risk["late_milestone"] >= 1
    assert len(result["by_cohort"]) >= 3 and len(result["by_csm"]) >= 2
    assert sum(1 for t in result["trend"] if t["go_lives"]) >= 2

    # The milestones marked stalled are exactly those the detection would raise: running it raises nothing.
    with time_machine.travel(dt.datetime.combine(TODAY, dt.time(12), tzinfo=dt.UTC), tick=False):
        assert detect_stalls(org) == 0
    assert OnboardingMilestone.objects.for_org(org).filter(stalled_on__isnull=False).exists()

    again = seed_demo(slug="demo", accounts=150, seed=7, today=TODAY)
    assert rows(org) == before and again.counts == summary.counts  # replaced, not duplicated
    assert OnboardingTemplate.objects.for_org(org).count() == 1
