"""The demo's health signals and score history (health.demo, run by seed_demo)."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.demo import seed_demo
from accounts.models import Account
from health.analytics import load_signals
from health.models import HealthScore, HealthSnapshot

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 23)


def test_demo_accounts_with_signals_have_scores_and_history():
    summary = seed_demo(slug="demo", accounts=120, seed=42, today=TODAY)
    org = summary.organization
    assert summary.counts["usage_metrics"] > 0 and summary.counts["tickets"] > 0
    live = Account.objects.for_org(org).filter(churned_at__isnull=True).exclude(lifecycle_stage="churned")
    signals = load_signals(org, TODAY)
    signal_columns = ["adoption", "usage_trend", "support", "nps", "engagement", "relationship", "financial",
                      "csm_pulse"]  # fmt: skip
    with_signals = set(signals.index[signals[signal_columns].notna().any(axis=1)])
    scores = dict(HealthScore.objects.for_org(org).values_list("account_id", "score"))
    live_ids = set(live.values_list("id", flat=True))
    assert live_ids & with_signals == live_ids  # every live demo account has signals
    assert all(scores[pk] is not None for pk in live_ids)
    churned = set(Account.objects.for_org(org).values_list("id", flat=True)) - live_ids
    assert all(scores[pk] is None for pk in churned)
    colors = set(HealthScore.objects.for_org(org).values_list("color", flat=True))
    assert {"red", "yellow", "green"} <= colors
    # History for the charts and the trends: daily for 30 days, weekly before.
    account = live.order_by("-arr").first()
    days = set(HealthSnapshot.objects.for_org(org).filter(account=account).values_list("date", flat=True))
    assert {TODAY, TODAY - dt.timedelta(days=7), TODAY - dt.timedelta(days=30)} <= days
    assert len(days) >= 35
    assert (
        HealthScore.objects.for_org(org).filter(delta_7__isnull=False, delta_30__isnull=False).count()
        >= len(live_ids) * 0.9
    )
