"""The demo gives every "know the details" figure (issue 15, item 5) something to answer: seeded once, each
figure over the last three years has customers behind it; the first renewals change discounts both ways
(renewals/demo.py, first_renewal_discount), and every closed renewal's outcome still follows its ARR."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.demo import seed_demo
from renewals.models import Renewal
from value.analytics_details import FIGURES, figure

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 11, 23)


def headline(result: dict) -> dict:
    return {m["key"]: m["value"] for m in result["headline"]}


def test_every_details_figure_has_customers_behind_it_on_the_demo():
    org = seed_demo(slug="demo", accounts=150, seed=7, today=TODAY).organization
    start = TODAY - dt.timedelta(days=3 * 365)
    results = {key: figure(org, key, start, TODAY) for key in FIGURES}

    assert headline(results["contract-growth"])["customers_renewed"] > 0
    assert headline(results["churn-by-group"])["logo_churn"] > 0
    assert headline(results["product-retention"])["grr"] is not None
    discount = headline(results["first-renewal-discount"])
    # Expansions trim the launch discount more often (70 %) than contractions deepen it (50 %, by less), so
    # the average change per customer at the first renewal is a reduction.
    assert discount["customers"] > 0 and discount["average_change"] < 0 and discount["share_reduced"] > 0
    assert headline(results["long-term-size"])["customers"] > 0
    assert sum(v for k, v in headline(results["churn-drivers"]).items() if isinstance(v, Decimal)) > 0
    assert headline(results["revenue-pareto"])["accounts_80"] > 0
    assert headline(results["csm-coverage"])["csms"] > 0


def test_the_demo_outcomes_still_follow_arr():
    org = seed_demo(slug="demo", accounts=150, seed=7, today=TODAY).organization
    closed = Renewal.objects.for_org(org).exclude(outcome="").exclude(new_arr=None)
    assert closed.count() > 50
    for renewal in closed:
        expected = (
            "churned" if renewal.new_arr == 0
            else "expanded" if renewal.new_arr > renewal.current_arr
            else "contracted" if renewal.new_arr < renewal.current_arr
            else "renewed"
        )  # fmt: skip
        assert renewal.outcome == expected, renewal.pk
