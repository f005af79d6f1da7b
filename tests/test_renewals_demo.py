"""seed_demo's contract and renewal history: three years, every outcome, reason and timing, consistent."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.demo import seed_demo
from accounts.models import Account, Contract
from renewals.models import DEFAULT_CHURN_REASONS, Renewal, RenewalTarget
from renewals.services import create_due_renewals

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 23)


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        summary = seed_demo(slug="demo-renewals", accounts=600, seed=42, today=TODAY)
        yield summary
        from accounts.demo import _wipe

        _wipe(summary.organization)
        summary.organization.delete()


def test_three_years_with_every_outcome_reason_and_timing(demo):
    org = demo.organization
    renewals = Renewal.objects.for_org(org)
    closed = renewals.exclude(outcome="")
    assert min(closed.values_list("due_date", flat=True)) <= TODAY - dt.timedelta(days=3 * 365)
    starts = set(Contract.objects.for_org(org).filter(start_date__gte=TODAY - dt.timedelta(days=3 * 365))
                 .values_list("start_date__year", "start_date__month"))  # fmt: skip
    assert len(starts) >= 36  # contracts (new logos and renewals) start every month of the three years
    outcomes = {o: closed.filter(outcome=o).count() for o in ("renewed", "expanded", "contracted", "churned")}
    assert all(outcomes.values()), outcomes
    total = sum(outcomes.values())
    assert 0.70 <= (outcomes["renewed"] + outcomes["expanded"]) / total <= 0.85
    assert 0.06 <= outcomes["churned"] / total <= 0.14
    assert set(closed.values_list("timing", flat=True)) == {"early", "on_time", "late"}
    reasons = set(closed.exclude(churn_reason=None).values_list("churn_reason__code", flat=True))
    assert reasons == {code for code, _, _ in DEFAULT_CHURN_REASONS}
    assert closed.filter(outcome__in=["contracted", "churned"], churn_reason=None).count() == 0
    assert closed.filter(avoidable=False).exists() and closed.filter(avoidable=True).exists()
    # A product dropped while the logo stays.
    assert closed.filter(outcome="contracted", line_changes__kind="dropped").exists()
    # Open renewals for the coming window with mixed categories and calls.
    open_ = renewals.filter(outcome="")
    assert set(open_.values_list("forecast_category", flat=True)) == {"commit", "likely", "upside", "at_risk", "churn"}
    assert open_.exclude(csm_call="").exists() and open_.exclude(final_call="").exists()
    assert not open_.filter(due_date__lt=TODAY).exists()
    assert not open_.filter(due_date__gt=TODAY + dt.timedelta(days=org.renewal_lead_days)).exists()
    assert RenewalTarget.objects.for_org(org).count() >= 4
    assert Contract.objects.for_org(org).filter(status="cancelled").exists()
    accounts = Account.objects.for_org(org)
    assert accounts.filter(churned_at=None, renewals__outcome="churned").exists()  # reactivations
    assert accounts.filter(parent__isnull=False).exists()


def test_bridges_sum_and_the_history_agrees_with_the_daily_job(demo):
    org = demo.organization
    for renewal in Renewal.objects.for_org(org).exclude(outcome="").prefetch_related("line_changes"):
        assert sum(c.delta for c in renewal.line_changes.all()) == renewal.new_arr - renewal.current_arr
        if renewal.outcome == "churned":
            assert renewal.successor_contract_id is None and renewal.new_arr == 0
        else:
            assert renewal.successor_contract.arr == renewal.new_arr
    ended = Contract.objects.for_org(org).exclude(status="cancelled").filter(end_date__lt=TODAY)
    assert not ended.filter(renewals__isnull=True).exists()  # every past term has its outcome
    assert create_due_renewals(org, today=TODAY) == 0  # every contract in the window already has its renewal
    assert demo.arr_refreshed == 0
