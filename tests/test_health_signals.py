"""Signal loading (health.analytics.load_signals) against hand-built data, point-in-time safe."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import pandas as pd
import pytest

from feedback.models import SurveyResponse
from health.analytics import load_signals
from health.models import CsmPulse

from .factories import AccountFactory, ActivityFactory, ContactFactory, ContractFactory
from .signal_factories import InvoiceFactory, TicketFactory, UsageMetricFactory

AS_OF = dt.date(2026, 11, 20)


def at(day: str, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), tzinfo=dt.UTC)


def usage(account, day: str, metric: str, value: int) -> None:
    UsageMetricFactory(account=account, date=dt.date.fromisoformat(day), metric=metric, value=Decimal(value))


def nps(account, day: str, score: int) -> None:
    SurveyResponse.all_orgs.create(
        organization=account.organization, account=account, kind="nps", score=score, responded_at=at(day)
    )


@pytest.fixture
def accounts(org):
    a = AccountFactory(organization=org, touch_model="low", customer_since=dt.date(2025, 1, 1))
    b = AccountFactory(organization=org, touch_model="tech", customer_since=dt.date(2025, 1, 1))
    c = AccountFactory(organization=org, touch_model="high", customer_since=None)
    ContractFactory(account=a, seats=100, start_date=dt.date(2026, 1, 1), end_date=dt.date(2026, 12, 31))
    ContractFactory(account=a, seats=900, start_date=dt.date(2025, 1, 1), end_date=dt.date(2025, 12, 31))  # ended
    ContractFactory(account=a, seats=500, status="cancelled")
    # Usage: the peak day in the last 30 days (10-22..11-20) is 50; 90 is older, 99 is after the as-of day.
    usage(a, "2026-11-20", "active_users", 40)
    usage(a, "2026-11-01", "active_users", 50)
    usage(a, "2026-10-15", "active_users", 90)
    usage(a, "2026-11-21", "active_users", 99)
    usage(a, "2026-11-01", "events", 100)
    usage(a, "2026-11-20", "events", 20)
    usage(a, "2026-10-15", "events", 200)  # previous 30 days (09-22..10-21)
    usage(a, "2026-09-10", "events", 5000)  # older than 60 days
    usage(a, "2026-11-21", "events", 1000)  # future
    usage(a, "2026-11-05", "logins", 7)
    usage(a, "2026-11-06", "logins", 8)
    usage(a, "2026-10-01", "logins", 100)  # outside 30 days
    # Tickets: 4 opened in the last 90 days (08-23..11-20), 2 P1 open at the as-of day.
    TicketFactory(account=a, opened_at=at("2026-10-01"), priority="P3", status="solved", resolved_at=at("2026-10-02"))
    TicketFactory(account=a, opened_at=at("2026-05-01"), priority="P1", status="open")  # old, but still open P1
    TicketFactory(account=a, opened_at=at("2026-11-10"), priority="P1", status="open")
    TicketFactory(account=a, opened_at=at("2026-11-01"), priority="P1", status="solved", resolved_at=at("2026-11-25"))
    TicketFactory(account=a, opened_at=at("2026-11-02"), priority="P1", status="solved", resolved_at=at("2026-11-15"))
    TicketFactory(account=a, opened_at=at("2026-11-21"), priority="P1", status="open")  # future
    # NPS in the last 180 days (05-25..11-20): 10, 9, 7, 3 → (2 − 1) / 4 = 25.
    for day, score in (("2026-11-01", 10), ("2026-10-01", 9), ("2026-09-01", 7), ("2026-06-01", 3)):
        nps(a, day, score)
    nps(a, "2026-05-01", 0)  # too old
    nps(a, "2026-11-21", 0)  # future
    SurveyResponse.all_orgs.create(organization=org, account=a, kind="csat", score=1, responded_at=at("2026-11-01"))
    # Engagement: last touch 11-05 (the note of 11-18 and the future meeting do not count): 15 / 30.
    ActivityFactory(account=a, type="call", occurred_at=at("2026-11-05"))
    ActivityFactory(account=a, type="note", occurred_at=at("2026-11-18"))
    ActivityFactory(account=a, type="meeting", occurred_at=at("2026-11-22"))
    # Relationship: the sponsor leaves after the as-of day, so both are active then.
    ContactFactory(account=a, roles=["champion"])
    ContactFactory(account=a, roles=["executive_sponsor", "economic_buyer"], is_active=False, departed_at="2026-12-01")
    ContactFactory(account=b, roles=["champion"], is_active=False, departed_at=dt.date(2026, 10, 1))
    ContactFactory(account=b, roles=["executive_sponsor"])
    # Financial: oldest unpaid-at-as-of invoice was due 10-01 → 50 days.
    InvoiceFactory(account=a, due_date=dt.date(2026, 10, 1), paid_at=None)
    InvoiceFactory(account=a, due_date=dt.date(2026, 11, 1), paid_at=dt.date(2026, 11, 25))
    InvoiceFactory(account=a, due_date=dt.date(2026, 9, 1), paid_at=dt.date(2026, 9, 10))
    InvoiceFactory(account=a, due_date=dt.date(2026, 12, 1), paid_at=None)
    # Pulses: the latest of the last 30 days is yellow; the red one is after the as-of day.
    for day, color in (("2026-10-01", "green"), ("2026-11-10", "yellow"), ("2026-11-21", "red")):
        CsmPulse.all_orgs.create(organization=org, account=a, color=color, created_at=at(day))
    CsmPulse.all_orgs.create(organization=org, account=b, color="green", created_at=at("2026-10-01"))  # stale
    return a, b, c


def test_signals_of_a_fully_instrumented_account(org, accounts):
    a, _, _ = accounts
    frame = load_signals(org, AS_OF, usage_metrics=["logins"])
    row = frame.loc[a.pk]
    assert row["adoption"] == pytest.approx(0.5)
    assert row["usage_trend"] == pytest.approx(-40.0)
    assert row["support"] == 4
    assert row["open_p1_tickets"] == 3  # 05-01 (still open), 11-10, and 11-01 (resolved only on 11-25)
    assert row["nps"] == pytest.approx(25.0)
    assert row["engagement"] == pytest.approx(0.5)
    assert row["relationship"] == "both"
    assert row["financial"] == 50
    assert row["csm_pulse"] == "yellow"
    assert row["usage:logins"] == 15


def test_missing_signals_stay_missing(org, accounts):
    _, b, c = accounts
    frame = load_signals(org, AS_OF)
    row = frame.loc[b.pk]
    for signal in ("adoption", "usage_trend", "support", "nps", "engagement", "financial"):
        assert math.isnan(row[signal]), signal
    assert pd.isna(row["csm_pulse"])  # stale
    assert row["relationship"] == "departed"  # the champion left 50 days before
    assert row["open_p1_tickets"] == 0
    empty = frame.loc[c.pk]
    assert pd.isna(empty["relationship"]) and pd.isna(empty["csm_pulse"])
    assert math.isnan(empty["engagement"])  # never touched, no customer-since date


def test_point_in_time_earlier_as_of(org, accounts):
    a, b, _ = accounts
    frame = load_signals(org, dt.date(2026, 10, 20))
    row = frame.loc[a.pk]
    # 30 days 09-21..10-20: peak active users 90; events 200 vs 5000 (08-22..09-20).
    assert row["adoption"] == pytest.approx(0.9)
    assert row["usage_trend"] == pytest.approx((200 - 5000) / 5000 * 100)
    assert row["csm_pulse"] == "green"  # 10-01 was 19 days old then
    assert row["financial"] == 19  # due 10-01, unpaid on 10-20
    assert frame.loc[b.pk]["relationship"] == "departed"
    before = load_signals(org, dt.date(2026, 9, 30))
    assert before.loc[b.pk]["relationship"] == "both"  # the champion had not left yet


def test_engagement_from_customer_since_and_subset(org, accounts):
    a, _, _ = accounts
    lonely = AccountFactory(organization=org, touch_model="high", customer_since=dt.date(2026, 11, 6))
    frame = load_signals(org, AS_OF, account_ids=[lonely.pk])
    assert list(frame.index) == [lonely.pk]
    assert frame.loc[lonely.pk]["engagement"] == pytest.approx(14 / 14)  # high touch: 14-day cadence
