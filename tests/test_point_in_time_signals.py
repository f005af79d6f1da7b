"""Point-in-time signals (issue 14): no row dated after the as-of day changes a past score, the same row
dated on the day does, and the set-based ``load_signals_at`` returns exactly what one ``load_signals``
per distinct day returns, in a constant number of queries. Runs on Postgres and on SQLite (.ci/run)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pandas.testing import assert_frame_equal

from accounts.models import Contact
from feedback.models import SurveyResponse
from health import analytics
from health.analytics import _load_signals_at_per_day, load_signals, load_signals_at, score_accounts
from health.defaults import DEFAULT_SCORECARD
from health.models import CsmPulse, HealthOverride, Invoice, Ticket

from .factories import AccountFactory, ActivityFactory, ContactFactory, ContractFactory
from .signal_factories import InvoiceFactory, TicketFactory, UsageMetricFactory

TZ = ZoneInfo("America/New_York")
D = dt.date(2026, 6, 15)
METRICS = ["logins"]


def local(day: dt.date, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=TZ)


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


@pytest.fixture
def history(org):
    """An organization (New York time) with a year of every signal for two accounts."""
    org.time_zone = "America/New_York"
    org.save(update_fields=["time_zone"])
    a = AccountFactory(organization=org, touch_model="high", customer_since=dt.date(2025, 1, 1))
    b = AccountFactory(organization=org, touch_model="low", customer_since=dt.date(2025, 3, 1))
    for account in (a, b):
        ContractFactory(account=account, seats=100, start_date=dt.date(2026, 1, 1), end_date=dt.date(2026, 12, 31))
    for i in range(1, 70, 3):
        day = D - days(i)
        UsageMetricFactory(account=a, date=day, metric="events", value=Decimal(100 + i))
        UsageMetricFactory(account=a, date=day, metric="active_users", value=Decimal(30 + i % 7))
        UsageMetricFactory(account=a, date=day, metric="logins", value=Decimal(5))
        UsageMetricFactory(account=b, date=day, metric="events", value=Decimal(50))
    TicketFactory(
        account=a, opened_at=local(D - days(20)), priority="P3", status="solved", resolved_at=local(D - days(18))
    )
    p1 = TicketFactory(account=a, opened_at=local(D - days(40)), priority="P1", status="open")
    TicketFactory(
        account=b, opened_at=local(D - days(200)), priority="P4", status="closed", resolved_at=local(D - days(199))
    )
    for account, back, score in ((a, 30, 9), (a, 100, 5), (b, 10, 8)):
        SurveyResponse.all_orgs.create(
            organization=org, account=account, kind="nps", score=score, responded_at=local(D - days(back))
        )
    ActivityFactory(account=a, type="call", occurred_at=local(D - days(10)))
    ActivityFactory(account=b, type="meeting", occurred_at=local(D - days(25)))
    ContactFactory(account=a, roles=["executive_sponsor"], started_on=dt.date(2025, 1, 1))
    champion = ContactFactory(account=a, roles=["champion"], started_on=dt.date(2025, 1, 1))
    ContactFactory(account=b, roles=["executive_sponsor"], started_on=dt.date(2025, 3, 1))
    InvoiceFactory(account=a, issued_on=D - days(60), due_date=D - days(30), paid_at=D - days(25))
    overdue = InvoiceFactory(account=a, issued_on=D - days(50), due_date=D - days(20), paid_at=None)
    CsmPulse.all_orgs.create(organization=org, account=a, color="green", created_at=local(D - days(5)))
    held = HealthOverride.all_orgs.create(
        organization=org, account=b, color="yellow", reason="watching", expires_at=local(D + days(27))
    )
    HealthOverride.all_orgs.filter(pk=held.pk).update(created_at=local(D - days(3)))
    return {"org": org, "a": a, "b": b, "p1": p1, "champion": champion, "overdue": overdue, "override": held}


def evaluate(org) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Signals as of D (load_signals) and their scores with the default scorecard."""
    signals = load_signals(org, D, usage_metrics=METRICS)
    scores = score_accounts({None: DEFAULT_SCORECARD}, signals, org.health_bands)
    return signals, scores


def evaluate_pairs(org, h) -> pd.DataFrame:
    """The same day through the set-based load_signals_at."""
    pairs = pd.DataFrame({"account_id": [h["a"].pk, h["b"].pk], "as_of": [D, D]})
    return load_signals_at(org, pairs, usage_metrics=METRICS)


# Each mutation adds (or dates) one row of a kind at ``when``: an instant (local) and its day.
Mutation = Callable[[dict, dt.datetime, dt.date], None]


def _usage(metric: str, value: int) -> Mutation:
    return lambda h, at, day: UsageMetricFactory(account=h["a"], date=day, metric=metric, value=Decimal(value))


def _contract(h, at, day):
    ContractFactory(account=h["a"], seats=300, start_date=day, end_date=dt.date(2027, 6, 30))


def _ticket_opened(h, at, day):
    TicketFactory(account=h["b"], opened_at=at, priority="P1", status="open")


def _ticket_resolved(h, at, day):
    Ticket.all_orgs.filter(pk=h["p1"].pk).update(status="solved", resolved_at=at)


def _response(h, at, day):
    SurveyResponse.all_orgs.create(organization=h["org"], account=h["a"], kind="nps", score=0, responded_at=at)


def _activity(h, at, day):
    ActivityFactory(account=h["b"], type="call", occurred_at=at)


def _contact_started(h, at, day):
    ContactFactory(account=h["b"], roles=["champion"], started_on=day)


def _contact_recorded(h, at, day):
    contact = ContactFactory(account=h["b"], roles=["champion"], started_on=None)
    Contact.all_orgs.filter(pk=contact.pk).update(created_at=at)


def _contact_departed(h, at, day):
    Contact.all_orgs.filter(pk=h["champion"].pk).update(is_active=False, departed_at=day)


def _invoice_issued(h, at, day):
    InvoiceFactory(account=h["b"], issued_on=day, due_date=day + days(14), paid_at=None)


def _invoice_net30(h, at, day):
    invoice = InvoiceFactory(account=h["b"], due_date=day + days(30), paid_at=None)
    Invoice.all_orgs.filter(pk=invoice.pk).update(issued_on=None)  # not known: due date − 30 days


def _invoice_paid(h, at, day):
    Invoice.all_orgs.filter(pk=h["overdue"].pk).update(paid_at=day)


def _pulse(h, at, day):
    CsmPulse.all_orgs.create(organization=h["org"], account=h["a"], color="red", created_at=at)


def _override(h, at, day):
    override = HealthOverride.all_orgs.create(
        organization=h["org"], account=h["a"], color="red", reason="escalated", expires_at=at + days(30)
    )
    HealthOverride.all_orgs.filter(pk=override.pk).update(created_at=at)


def _override_cleared(h, at, day):
    HealthOverride.all_orgs.filter(pk=h["override"].pk).update(cleared_at=at)


#: kind → (mutation, the column its row changes when dated on the as-of day, the account).
KINDS: dict[str, tuple[Mutation, str, str]] = {
    "usage_events": (_usage("events", 5000), "usage_trend", "a"),
    "usage_active_users": (_usage("active_users", 99), "adoption", "a"),
    "usage_metric": (_usage("logins", 70), "usage:logins", "a"),
    "contract_started": (_contract, "adoption", "a"),
    "ticket_opened": (_ticket_opened, "open_p1_tickets", "b"),
    "ticket_resolved": (_ticket_resolved, "open_p1_tickets", "a"),
    "survey_response": (_response, "nps", "a"),
    "activity": (_activity, "engagement", "b"),
    "contact_started": (_contact_started, "relationship", "b"),
    "contact_recorded": (_contact_recorded, "relationship", "b"),
    "contact_departed": (_contact_departed, "relationship", "a"),
    "invoice_issued": (_invoice_issued, "financial", "b"),
    "invoice_without_issue_day": (_invoice_net30, "financial", "b"),
    "invoice_paid": (_invoice_paid, "financial", "a"),
    "csm_pulse": (_pulse, "csm_pulse", "a"),
    "override_set": (_override, "override_color", "a"),
    "override_cleared": (_override_cleared, "override_color", "b"),
}

#: Just after the as-of day ends (local time), and just before.
AFTER = (local(D + days(1), 0, 30), D + days(1))
ON = (local(D, 23, 30), D)


def assert_same(before: tuple[pd.DataFrame, pd.DataFrame], after: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    assert_frame_equal(before[0], after[0])
    assert_frame_equal(before[1], after[1])


def differs(x, y) -> bool:
    if pd.isna(x) and pd.isna(y):
        return False
    return pd.isna(x) != pd.isna(y) or x != y


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_row_dated_after_the_day_changes_nothing_the_same_row_on_the_day_does(history, kind):
    org = history["org"]
    mutate, column, who = KINDS[kind]
    account = history[who].pk
    before, before_pairs = evaluate(org), evaluate_pairs(org, history)

    mutate(history, *AFTER)
    assert_same(before, evaluate(org))
    assert_frame_equal(before_pairs, evaluate_pairs(org, history))

    mutate(history, *ON)
    signals, _ = evaluate(org)
    assert differs(before[0].loc[account, column], signals.loc[account, column]), (kind, column)
    pairs = evaluate_pairs(org, history).set_index("account_id")
    assert not differs(pairs.loc[account, column], signals.loc[account, column])


def test_every_kind_after_the_day_at_once_leaves_scores_alone(history):
    org = history["org"]
    before, before_pairs = evaluate(org), evaluate_pairs(org, history)
    assert before[1]["score"].notna().all()
    for mutate, _, _ in KINDS.values():
        mutate(history, *AFTER)
    assert_same(before, evaluate(org))
    assert_frame_equal(before_pairs, evaluate_pairs(org, history))
    # ...and the day after does see them.
    later = load_signals(org, D + days(1), usage_metrics=METRICS)
    assert later.loc[history["b"].pk, "open_p1_tickets"] == 1
    assert later.loc[history["a"].pk, "override_color"] == "red"


def test_the_history_reads_as_expected(history):
    """The base history itself, so the comparisons above compare real values."""
    signals, scores = evaluate(history["org"])
    a, b = signals.loc[history["a"].pk], signals.loc[history["b"].pk]
    assert a["relationship"] == "both" and b["relationship"] == "one"
    assert a["financial"] == 20 and np.isnan(b["financial"])
    assert a["open_p1_tickets"] == 1 and a["support"] == 2
    assert a["csm_pulse"] == "green" and a["override_color"] is None
    assert b["override_color"] == "yellow"
    assert a["engagement"] == pytest.approx(10 / 14)
    assert scores["color"].isin(["green", "yellow", "red"]).all()


# --- The set-based load_signals_at against one load_signals per day -----------------------------------


def _random_history(org, other_org, seed: int) -> list[int]:
    rng = random.Random(seed)
    org.time_zone = "Europe/Paris"
    org.save(update_fields=["time_zone"])
    tz = ZoneInfo(org.time_zone)
    start = dt.date(2025, 6, 1)

    def day() -> dt.date:
        return start + days(rng.randrange(420))

    def instant() -> dt.datetime:
        return dt.datetime.combine(day(), dt.time(rng.randrange(24), rng.choice([0, 15, 59])), tzinfo=tz)

    accounts = [
        AccountFactory(
            organization=org,
            touch_model=rng.choice(["high", "low", "tech"]),
            customer_since=rng.choice([None, day()]),
        )
        for _ in range(6)
    ]
    for account in accounts:
        for _ in range(rng.randrange(3)):
            first = day()
            ContractFactory(
                account=account,
                seats=rng.choice([None, 10, 50, 200]),
                start_date=first,
                end_date=first + days(365),
                status=rng.choice(["active", "active", "ended", "cancelled"]),
            )
        for i in range(rng.randrange(60, 140)):
            metric = rng.choice(["events", "active_users", "logins", "sessions"])
            UsageMetricFactory(
                account=account, date=start + days(3 * i + rng.randrange(3)), metric=metric, value=rng.randrange(200)
            )
        for _ in range(rng.randrange(8)):
            opened = instant()
            resolved = rng.choice([None, opened + dt.timedelta(hours=rng.randrange(1, 2000))])
            status = rng.choice(["open", "pending"]) if resolved is None else rng.choice(["solved", "closed"])
            priority = rng.choice(["P1", "P2"])
            TicketFactory(account=account, opened_at=opened, priority=priority, status=status, resolved_at=resolved)
        for _ in range(rng.randrange(6)):
            SurveyResponse.all_orgs.create(
                organization=org,
                account=account,
                kind=rng.choice(["nps", "nps", "csat"]),
                score=rng.randrange(6) if rng.random() < 0.2 else rng.randrange(11),
                responded_at=instant(),
            )
        for _ in range(rng.randrange(6)):
            ActivityFactory(account=account, type=rng.choice(["call", "note", "email"]), occurred_at=instant())
        for _ in range(rng.randrange(4)):
            departed = rng.choice([None, None, day()])
            contact = ContactFactory(
                account=account,
                roles=rng.sample(["champion", "executive_sponsor", "economic_buyer", "admin"], rng.randrange(1, 3)),
                started_on=rng.choice([None, day()]),
                is_active=departed is None and rng.random() < 0.9,
                departed_at=departed,
            )
            if contact.started_on is None:
                Contact.all_orgs.filter(pk=contact.pk).update(created_at=instant())
        for _ in range(rng.randrange(5)):
            due = day()
            invoice = InvoiceFactory(
                account=account,
                issued_on=due - days(rng.randrange(0, 60)),
                due_date=due,
                paid_at=rng.choice([None, due + days(rng.randrange(-10, 90))]),
            )
            if rng.random() < 0.3:
                Invoice.all_orgs.filter(pk=invoice.pk).update(issued_on=None)
        for _ in range(rng.randrange(5)):
            CsmPulse.all_orgs.create(
                organization=org, account=account, color=rng.choice(["green", "yellow", "red"]), created_at=instant()
            )
        for _ in range(rng.randrange(3)):
            created = instant()
            override = HealthOverride.all_orgs.create(
                organization=org,
                account=account,
                color=rng.choice(["green", "yellow", "red"]),
                reason_code=rng.choice(["other", "customer_will_churn"]),
                reason="r",
                expires_at=created + days(rng.randrange(1, 60)),
                cleared_at=rng.choice([None, created + days(rng.randrange(0, 40))]),
            )
            HealthOverride.all_orgs.filter(pk=override.pk).update(created_at=created)
    stranger = AccountFactory(organization=other_org)
    UsageMetricFactory(account=stranger, date=start + days(100), metric="events", value=5)
    return [a.pk for a in accounts] + [stranger.pk, 10**9]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_set_based_pairs_twin_the_per_day_reference(org, other_org, seed, monkeypatch):
    ids = _random_history(org, other_org, seed)
    if seed == 3:  # many distinct accounts: every account of the organization is read, not a list of ids
        monkeypatch.setattr(analytics, "_IN_LIST_LIMIT", 2)
    rng = random.Random(seed + 100)
    start = dt.date(2025, 6, 1)
    chosen_days = [start + days(rng.randrange(450)) for _ in range(25)]
    rows = [(rng.choice(ids), rng.choice(chosen_days)) for _ in range(90)]
    rows += rows[:5]  # duplicates keep their own rows
    pairs = pd.DataFrame(rows, columns=["account_id", "as_of"])
    pairs.index = pd.Index(rng.sample(range(1000, 5000), len(pairs)), name="renewal")
    fast = load_signals_at(org, pairs, usage_metrics=METRICS)
    slow = _load_signals_at_per_day(org, pairs, usage_metrics=METRICS)
    assert list(fast.index) == list(pairs.index)
    assert list(fast.columns) == list(slow.columns)
    assert_frame_equal(fast, slow)
    known = fast["account_id"].isin(ids[:6])
    assert fast.loc[~known, "adoption"].isna().all() and fast.loc[known, "arr"].notna().all()
    # Scores agree too, and the twin is not vacuous: the pairs see different data.
    definitions = {None: DEFAULT_SCORECARD}
    assert_frame_equal(score_accounts(definitions, fast), score_accounts(definitions, slow))
    assert fast["relationship"].nunique() > 1 and fast["support"].notna().any()


def test_load_signals_at_of_no_pair(org):
    out = load_signals_at(org, pd.DataFrame({"account_id": [], "as_of": []}), usage_metrics=METRICS)
    assert out.empty and {"account_id", "as_of", "usage:logins", "override_color"} <= set(out.columns)


def test_load_signals_at_takes_a_constant_number_of_queries(org):
    accounts = [AccountFactory(organization=org) for _ in range(20)]
    for account in accounts:
        UsageMetricFactory(account=account, date=dt.date(2026, 3, 1), metric="events", value=3)
    rng = random.Random(7)

    def run(n: int) -> int:
        pairs = pd.DataFrame(
            {
                "account_id": [rng.choice(accounts).pk for _ in range(n)],
                "as_of": [dt.date(2026, 1, 1) + days(rng.randrange(n)) for _ in range(n)],
            }
        )
        with CaptureQueriesContext(connection) as queries:
            out = load_signals_at(org, pairs, usage_metrics=METRICS)
        assert len(out) == n
        return len(queries.captured_queries)

    small, large = run(10), run(200)
    assert small == large == 10
