"""The demo's acquisition costs (issue 15, item 7): a cost per segment with live members and six accounts of
their own, deterministic, sized so that payback lands around the seeds' two years; re-seeding replaces them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.demo import seed_demo
from value.analytics_ltv import lifetime_value
from value.models import AcquisitionCost

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 11, 23)


def rows(org):
    return list(AcquisitionCost.all_orgs.filter(organization=org).order_by("account_id", "segment_id").values_list(
        "account__external_id", "segment__name", "acquisition_cost", "onboarding_cost"))  # fmt: skip


def test_demo_costs_make_the_figures_meaningful():
    org = seed_demo(slug="demo", accounts=80, seed=3, today=TODAY).organization
    costs = rows(org)
    assert sum(1 for account, _s, _a, _o in costs if account) == 6
    assert sum(1 for _a, segment, _c, _o in costs if segment) >= 2
    assert all(acquisition > onboarding > 0 for _a, _s, acquisition, onboarding in costs)
    result = lifetime_value(org, TODAY)
    total = result.total()
    assert total["accounts_with_cost"] == total["accounts"] > 0  # every live account has a CAC
    assert Decimal(12) < total["payback_months"] < Decimal(48)  # around the seeds' 24 months
    assert total["ltv_to_cac"] > 0 and 0 < total["accounts_recovered"] < total["accounts"]

    again = seed_demo(slug="demo", accounts=80, seed=3, today=TODAY).organization
    assert rows(again) == [(a, s, c, o) for a, s, c, o in costs]  # same seed, same costs (ids aside)
