"""The screens as CS leaders and CSMs read them (issue 19 §1–§3, issue 12 point 8): figures that agree with
each other, renewal risk beside health, and the evidence behind a score."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, Contract
from accounts.services import Actor, capacity_by_csm, refresh_current_arr
from feedback.models import SurveyResponse
from health.models import HealthScore, Scorecard
from health.services import recompute_health
from renewals.analytics import fiscal_quarter
from renewals.models import Renewal, RenewalTarget
from renewals.services import close_renewal, update_forecast
from tests.factories import (
    AccountFactory,
    ContactFactory,
    ContractFactory,
    ContractLineFactory,
)
from tests.renewal_builders import open_renewal
from tests.signal_factories import HealthScoreFactory, InvoiceFactory, TicketFactory, UsageMetricFactory

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate


def login(client, user):
    client.force_login(user)
    return client


def between(html: str, start: str, end: str) -> str:
    i = html.index(start)
    return html[i : html.index(end, i)]


# --- §1 Forecast vs target: the chart draws exactly the table's figures --------------------------------


def _due_in(org, bob, *, name, due: dt.date, category="likely", arr=10_000, probability=70, forecast=None):
    renewal = open_renewal(org, bob, name=name, days=(due - TODAY()).days, qty=1, price=arr, category=category)
    renewal.probability = probability
    if forecast is not None:
        renewal.forecast_arr = Decimal(forecast)
    renewal.save()
    return renewal


def _closed(renewal, new_arr):
    renewal.outcome = "expanded" if Decimal(new_arr) > renewal.current_arr else "renewed"
    renewal.new_arr = Decimal(new_arr)
    renewal.stage = "won"
    renewal.closed_on = TODAY()
    renewal.save()


def _chart_and_table(html: str) -> tuple[dict, dict, dict, dict]:
    figure = between(html, 'data-testid="forecast-chart"', "</figure>")
    bars, totals = {}, {}
    for quarter, total, body in re.findall(r'<g class="bar" data-category="([^"]+)" data-total="([^"]+)">(.*?)</g>',
                                           figure):  # fmt: skip
        totals[quarter] = Decimal(total)
        bars[quarter] = {s: Decimal(v) for s, v in re.findall(r'data-series="([^"]+)" data-value="([^"]+)"', body)}
    markers = {q: Decimal(v) for q, v in re.findall(r'<line [^>]*data-category="([^"]+)" data-value="([^"]+)"', figure)}
    table: dict[str, dict[str, str]] = {}
    section = between(html, 'data-testid="forecast-table"', "</table>")
    for quarter, figure_key, value in re.findall(
        r'data-quarter="([^"]+)" data-figure="([^"]+)" data-value="([^"]*)"', section
    ):
        table.setdefault(quarter, {})[figure_key] = value
    return bars, totals, markers, table


def test_forecast_chart_bars_and_marks_equal_the_tables_figures_for_each_quarter(client, org, bob):
    today = TODAY()
    first, last, label = fiscal_quarter(org, today)
    next_first, next_last, next_label = fiscal_quarter(org, last + dt.timedelta(days=1))
    # This quarter: two open forecasts with awkward probabilities and cents, one closed expansion.
    a = _due_in(org, bob, name="A", due=last, category="commit", arr=100_001, probability=67, forecast="100001.01")
    b = _due_in(org, bob, name="B", due=last, category="at_risk", arr=50_000, probability=33, forecast="45000.55")
    c = _due_in(org, bob, name="C", due=max(first, today), category="likely", arr=20_000)
    _closed(c, "26000.00")
    # Next quarter: likely, upside and churn.
    _due_in(org, bob, name="D", due=next_first + dt.timedelta(days=3), category="likely", arr=80_000, probability=75)
    _due_in(org, bob, name="E", due=next_last, category="upside", arr=40_000, probability=55, forecast="52000")
    _due_in(org, bob, name="F", due=next_last, category="churn", arr=30_000, probability=10)
    RenewalTarget.all_orgs.create(organization=org, quarter_start=first, target_arr=Decimal("150000"))

    html = login(client, bob).get(reverse("renewals", args=[org.slug])).content.decode()
    bars, totals, markers, table = _chart_and_table(html)
    assert set(bars) == set(table) == {label, next_label}
    for quarter, figures in table.items():
        for key in ("closed", "commit", "likely", "upside", "at_risk", "churn"):
            # A zero figure draws no segment; every other one is drawn at exactly the table's value.
            assert bars[quarter].get(key, Decimal("0")) == Decimal(figures[key]), (quarter, key)
        expected = Decimal(figures["expected"])
        assert totals[quarter] == expected == sum(bars[quarter].values(), Decimal(0))
    assert markers == {label: Decimal(table[label]["target"])} and table[next_label]["target"] == ""

    # The oracle, by hand: closed new ARR + Σ forecast × probability, each rounded half-up to the cent.
    def weighted(amount: str, p: int) -> Decimal:
        return (Decimal(amount) * p / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    assert Decimal(table[label]["commit"]) == weighted("100001.01", 67) == Decimal("67000.68")
    assert Decimal(table[label]["at_risk"]) == weighted("45000.55", 33)
    assert Decimal(table[label]["closed"]) == Decimal("26000.00")
    assert Decimal(table[label]["expected"]) == Decimal("26000.00") + weighted("100001.01", 67) + weighted(
        "45000.55", 33
    )
    assert Decimal(table[next_label]["upside"]) == weighted("52000", 55)
    assert a.pk and b.pk  # both counted above


def test_forecast_api_categories_add_up_to_the_expected_arr(org, bob, api):
    last = fiscal_quarter(org, TODAY())[1]
    _due_in(org, bob, name="A", due=last, category="commit", arr=12_345, probability=61)
    _due_in(org, bob, name="B", due=last, category="upside", arr=9_999, probability=49)
    body = api(org, "viewer").get("/api/v1/metrics/renewal-forecast/").json()
    quarter = body["quarters"][0]
    closed = Decimal(quarter["closed"]["new_arr"])
    assert closed + sum(Decimal(c["expected_arr"]) for c in quarter["by_category"]) == Decimal(quarter["expected_arr"])


# --- §1 Capacity: no non-empty book reads 0 % -------------------------------------------------------------


def test_no_non_empty_book_shows_zero_load_and_the_driving_limit_is_named(client, org, make_member):
    leader = make_member(org, "leader").user
    tess = make_member(org, "csm", first_name="Tess", last_name="Tech").user
    max_ = make_member(org, "csm", first_name="Max", last_name="Mixed").user
    zed = make_member(org, "csm", first_name="Zed", last_name="Zero").user
    AccountFactory.create_batch(120, organization=org, owner=tess, touch_model="tech", arr=Decimal("20000"))
    AccountFactory.create_batch(10, organization=org, owner=max_, touch_model="high", arr=Decimal("1"))
    AccountFactory.create_batch(50, organization=org, owner=max_, touch_model="tech", arr=Decimal("10000"))
    AccountFactory.create_batch(3, organization=org, owner=zed, touch_model="tech", arr=Decimal("0"))

    books = {b["owner_id"]: b for b in capacity_by_csm(org)}
    assert books[tess.pk]["load"] == pytest.approx(2_400_000 / 5_000_000)  # pooled: 120 × $20k of $5M
    assert books[tess.pk]["driver"]["limit"] == "pooled_arr"
    assert books[max_.pk]["load"] == pytest.approx(10 / 15 + 500_000 / 5_000_000)
    assert books[max_.pk]["driver"]["touch_model"] == "high"  # 67 % of the 77 %: the high-touch count drives it
    assert books[zed.pk]["load"] is None and books[zed.pk]["untargeted"] == 3  # no ARR to pool: "no target"

    login(client, leader)
    html = client.get(reverse("portfolio", args=[org.slug]), {"csm_sort": "-load"}).content.decode()
    assert re.search(r">0% load", html) is None
    cells = re.findall(r'data-testid="capacity">(.*?)</td>', html, re.S)
    tess_cell = next(c for c in cells if "48% load" in c)
    assert "Tech touch (pooled): $2.4M of $5M ARR" in tess_cell
    table = between(html, 'data-testid="by-owner"', "</table>")
    order = [name for name in ("Max Mixed", "Tess Tech", "Zed Zero") if name in table]
    assert sorted(order, key=table.index) == ["Max Mixed", "Tess Tech", "Zed Zero"]  # heaviest load first
    max_cell = next(c for c in cells if "77% load" in c)
    assert "High touch: 10 of 15 accounts <strong>drives it</strong>" in max_cell
    assert "no target" in next(c for c in cells if "3 accounts without a target" in c)
    ascending = client.get(reverse("portfolio", args=[org.slug]), {"csm_sort": "load"}).content.decode()
    table = between(ascending, 'data-testid="by-owner"', "</table>")
    assert table.index("Tess Tech") < table.index("Max Mixed")


# --- §1 A renewal already closed is not due ---------------------------------------------------------------


def test_an_account_renewed_early_shows_its_next_renewal_only_and_is_not_counted_as_due(client, org, alice, bob):
    renewal = open_renewal(org, bob, name="Renewed Early", days=6, qty=10, price=223_000)
    due_soon = open_renewal(org, bob, name="Still Due", days=30)
    refresh_current_arr(org)
    account = Account.objects.for_org(org).get(pk=renewal.account_id)
    assert account.next_renewal_date == renewal.due_date

    line = renewal.contract.lines.get()
    close_renewal(
        renewal,
        outcome="expanded",
        by=Actor(organization=org, role="admin", user=alice),
        lines=[{"product": line.product, "quantity": Decimal(12), "annual_unit_price": line.annual_unit_price,
                "discount": Decimal(0)}],
    )  # fmt: skip
    refresh_current_arr(org)
    account.refresh_from_db()
    successor = Contract.objects.for_org(org).get(
        pk=Renewal.objects.for_org(org).get(pk=renewal.pk).successor_contract_id
    )
    assert successor.start_date == renewal.due_date + dt.timedelta(days=1)
    assert account.next_renewal_date == successor.end_date  # the open one, not the closed one in 6 days
    assert account.arr == Decimal("2230000.00")  # the old term still runs until its end: ARR by dates

    login(client, bob)
    book = client.get(reverse("my-book", args=[org.slug]))
    assert book.context["summary"]["renewing_90"] == 1  # "Still Due" only
    assert "1 renews in the next 90 days" in book.content.decode()
    page = client.get(reverse("account-detail", args=[org.slug, account.pk])).content.decode()
    kpi = between(page, "<dt>Next renewal</dt>", "</div>")
    assert successor.end_date.strftime("%b %-d, %Y") in kpi and "in 6 days" not in kpi
    assert f'Renewed by <span class="mono">{successor.number}</span>' in page
    assert (
        due_soon.account.name in client.get(reverse("my-book", args=[org.slug]), {"renews_within": 90}).content.decode()
    )


def test_a_superseded_contract_ends_once_its_successor_has_started(org, alice, bob):
    renewal = open_renewal(org, bob, name="Cut Short", days=40)
    line = renewal.contract.lines.get()
    start = TODAY() - dt.timedelta(days=5)  # renewed early: the new term started before the old one's end
    close_renewal(
        renewal,
        outcome="renewed",
        by=Actor(organization=org, role="admin", user=alice),
        start_date=start,
        end_date=start + dt.timedelta(days=364),
        lines=[{"product": line.product, "quantity": line.quantity, "annual_unit_price": line.annual_unit_price,
                "discount": line.discount}],
    )  # fmt: skip
    refresh_current_arr(org)
    old = Contract.objects.for_org(org).get(pk=renewal.contract_id)
    assert old.end_date == start - dt.timedelta(days=1) and old.status == "ended"
    account = Account.objects.for_org(org).get(pk=renewal.account_id)
    assert account.next_renewal_date == start + dt.timedelta(days=364)
    # A contract merely past its end is ended too; a running one stays active.
    past = ContractFactory(account=account, start_date=TODAY() - dt.timedelta(days=400),
                           end_date=TODAY() - dt.timedelta(days=40))  # fmt: skip
    ContractLineFactory(contract=past, product=line.product)
    refresh_current_arr(org)
    past.refresh_from_db()
    assert past.status == "ended"
    assert Contract.objects.for_org(org).filter(status="active").count() == 1


# --- §1 Counts that agree ----------------------------------------------------------------------------------


def test_my_book_and_portfolio_count_the_same_live_accounts(client, org, bob):
    AccountFactory.create_batch(3, organization=org, owner=bob, arr=Decimal("1000"))
    AccountFactory.create_batch(2, organization=org, owner=bob, churned_at=TODAY(), lifecycle_stage="churned")
    login(client, bob)
    book = client.get(reverse("my-book", args=[org.slug]), {"scope": "all"})
    portfolio = client.get(reverse("portfolio", args=[org.slug]))
    assert book.context["summary"]["count"] == portfolio.context["overall"]["accounts"] == 3
    assert "<strong>3</strong> live accounts" in book.content.decode()
    assert "<strong>3</strong> live accounts" in portfolio.content.decode()
    churned = client.get(reverse("my-book", args=[org.slug]), {"scope": "all", "status": "churned"})
    assert (
        churned.context["summary"]["count"] == 2 and "<strong>2</strong> churned accounts" in churned.content.decode()
    )
    everyone = client.get(reverse("my-book", args=[org.slug]), {"scope": "all", "status": "all"})
    assert everyone.context["summary"]["count"] == 5 and "(live and churned)" in everyone.content.decode()
    # The drill-down links' own filter still decides when given.
    assert client.get(reverse("my-book", args=[org.slug]), {"churned": "true"}).context["summary"]["count"] == 2


# --- §1 Raw values on screen ------------------------------------------------------------------------------


def test_forecast_history_and_inputs_show_money_and_labels_not_raw_values(client, org, alice, bob):
    renewal = open_renewal(org, bob, name="Northwind", days=47, qty=1, price=2_842_215, category="likely")
    update_forecast(renewal, by=Actor(organization=org, role="admin", user=alice), forecast_arr=Decimal("2500000"),
                    forecast_category="at_risk", probability=40)  # fmt: skip
    login(client, alice)
    url = reverse("renewal-detail", args=[org.slug, renewal.pk])
    html = client.get(url).content.decode()
    history = between(html, 'data-testid="forecast-history"', "</section>")
    assert "$2,842,215</span> → <strong>$2,500,000</strong>" in history
    assert "Likely</span> → <strong>At risk</strong>" in history
    assert "Forecast ARR" in history and "Forecast arr" not in history and "2842215.00" not in history
    assert "70%</span> → <strong>40%</strong>" in history
    assert 'value="2,500,000.00"' in html and "Forecast ARR (USD)" in html
    # What people paste is understood: a currency sign and grouping commas.
    response = client.post(reverse("renewal-forecast", args=[org.slug, renewal.pk]),
                           {"forecast_category": "at_risk", "forecast_arr": "$2,400,000.50", "probability": "40",
                            "stage": "not_started"})  # fmt: skip
    assert response.status_code == 302
    renewal.refresh_from_db()
    assert renewal.forecast_arr == Decimal("2400000.50")


def test_a_trend_shows_the_sign_and_arrow_of_its_own_number(client, org, bob):
    account = AccountFactory(organization=org, owner=bob, name="Slight Dip")
    HealthScoreFactory(account=account, score=Decimal("62.0"), delta_7=Decimal("-0.5"), trend="flat")
    html = login(client, bob).get(reverse("my-book", args=[org.slug])).content.decode()
    cell = re.search(r'data-testid="trend-cell">(.*?)</td>', html, re.S).group(1)
    assert '<span aria-hidden="true">↓</span> −0.5' in cell and ">=<" not in cell and "-0.5" not in cell


# --- §2 Renewal risk beside health --------------------------------------------------------------------------


def _scored(renewal, score, color, delta=None):
    HealthScoreFactory(account=renewal.account, score=Decimal(score), color=color, computed_color=color,
                       delta_7=None if delta is None else Decimal(delta))  # fmt: skip


def test_upcoming_renewals_come_first_with_health_and_sort_by_every_column(client, org, bob):
    red = open_renewal(org, bob, name="Red Likely", days=47, qty=1, price=2_840_000, category="likely")
    green = open_renewal(org, bob, name="Green Churn", days=20, qty=1, price=50_000, category="churn")
    yellow = open_renewal(org, bob, name="Yellow Commit", days=10, qty=1, price=90_000, category="commit")
    open_renewal(org, bob, name="Unscored", days=15, qty=1, price=10_000, category="at_risk")
    _scored(red, "30.5", "red", "-4.0")
    _scored(green, "98.8", "green", "1.5")
    _scored(yellow, "60.0", "yellow", "-0.5")
    login(client, bob)
    url = reverse("renewals", args=[org.slug])
    html = client.get(url).content.decode()
    assert html.index('id="upcoming"') < html.index('id="disagree"') < html.index('id="pipeline"')
    assert html.index('id="pipeline"') < html.index('id="forecast"') < html.index('id="retention"')
    table = between(html, 'data-testid="renewals-table"', "</table>")
    red_pill = '<span class="hpill hpill-red" data-color="red"><span class="dot dot-red" aria-hidden="true"></span>Red'
    assert red_pill + ' <span class="hpill-score">30.5</span>' in table
    assert "Unscored" in table

    def names(ordering):
        page = client.get(url, {"ordering": ordering})
        return [r.account.name for r in page.context["upcoming"]]

    assert names("due") == ["Yellow Commit", "Unscored", "Green Churn", "Red Likely"]
    assert names("-arr") == ["Red Likely", "Yellow Commit", "Green Churn", "Unscored"]
    assert names("health") == ["Red Likely", "Yellow Commit", "Green Churn", "Unscored"]  # unscored last
    assert names("-health") == ["Green Churn", "Yellow Commit", "Red Likely", "Unscored"]
    assert names("trend") == ["Red Likely", "Yellow Commit", "Green Churn", "Unscored"]
    assert names("category") == ["Yellow Commit", "Red Likely", "Unscored", "Green Churn"]
    assert names("account") == sorted(["Red Likely", "Green Churn", "Yellow Commit", "Unscored"])
    for ordering in ("forecast", "probability", "stage", "owner", "dragging", "-dragging", "-due"):
        assert len(names(ordering)) == 4, ordering
    assert names("nonsense") == names("due")


def test_forecasts_that_disagree_with_health_are_listed_for_the_leader(client, org, bob, make_member):
    red_likely = open_renewal(org, bob, name="Red Likely", days=47, category="likely")
    red_commit = open_renewal(org, bob, name="Red Commit", days=200, category="commit")
    green_churn = open_renewal(org, bob, name="Green Churn", days=20, category="churn")
    red_at_risk = open_renewal(org, bob, name="Red At Risk", days=30, category="at_risk")
    green_commit = open_renewal(org, bob, name="Green Commit", days=30, category="commit")
    for r, color in ((red_likely, "red"), (red_commit, "red"), (green_churn, "green"), (red_at_risk, "red"),
                     (green_commit, "green")):  # fmt: skip
        _scored(r, "20" if color == "red" else "90", color)
    leader = make_member(org, "leader").user
    response = login(client, leader).get(reverse("renewals", args=[org.slug]))
    listed = [r.account.name for r in response.context["conflicts"]]
    assert listed == ["Green Churn", "Red Likely", "Red Commit"]  # any due date, soonest first
    section = between(response.content.decode(), 'data-testid="conflicts"', "</section>")
    assert 'data-testid="conflict-count">3<' in section
    assert reverse("renewal-detail", args=[org.slug, red_likely.pk]) + "#forecast-edit" in section
    # Fixing the forecast takes it off the list.
    update_forecast(red_likely, by=Actor(organization=org, role="admin"), forecast_category="at_risk")
    again = client.get(reverse("renewals", args=[org.slug]))
    assert [r.account.name for r in again.context["conflicts"]] == ["Green Churn", "Red Commit"]


def test_the_renewal_page_shows_health_beside_the_forecast_form_which_comes_before_the_outcome(client, org, bob):
    renewal = open_renewal(org, bob, name="Northwind", days=47, category="likely")
    _scored(renewal, "31.0", "red", "-6.0")
    html = login(client, bob).get(reverse("renewal-detail", args=[org.slug, renewal.pk])).content.decode()
    assert html.index('data-testid="forecast-form"') < html.index('data-testid="outcome-form"')
    panel = between(html, 'data-testid="renewal-health-panel"', "</section>")
    assert "Red <span" in panel and "−6.0" in panel and 'data-testid="health-disagrees"' in panel
    assert html.index('class="col-main"') < html.index('data-testid="forecast-form"') < html.index('class="col-side"')
    assert html.index('class="col-side"') < html.index('data-testid="renewal-health-panel"')


# --- §3 The evidence behind a score ---------------------------------------------------------------------------


def red_account(org, owner):
    """A red account with the facts of the issue: 12 of 300 seats active, events −34 %, NPS −100 from 2
    responses, 12 tickets in 90 days with 1 open P1, $12,400 overdue 45 days."""
    today = TODAY()
    account = AccountFactory(organization=org, owner=owner, name="Red Co", touch_model="high",
                             customer_since=today - dt.timedelta(days=800))  # fmt: skip
    contract = ContractFactory(account=account, start_date=today - dt.timedelta(days=100),
                               end_date=today + dt.timedelta(days=47), seats=300)  # fmt: skip
    ContractLineFactory(contract=contract, quantity=Decimal(1), annual_unit_price=Decimal("2840000"))
    for day in range(60):
        date = today - dt.timedelta(days=day)
        UsageMetricFactory(account=account, date=date, metric="active_users", value=Decimal(12 if day == 3 else 5))
        # 33 events a day in the last 30 days, 50 a day in the 30 before: 990 vs 1,500 = −34 %.
        UsageMetricFactory(account=account, date=date, metric="events", value=Decimal(33 if day < 30 else 50))
    now = timezone.now()
    for i in range(12):
        TicketFactory(account=account, opened_at=now - dt.timedelta(days=2 + i * 5), priority="P1" if i == 0 else "P3",
                      status="open" if i == 0 else "solved", resolved_at=None if i == 0 else now)  # fmt: skip
    InvoiceFactory(account=account, due_date=today - dt.timedelta(days=45), amount=Decimal("12400"), paid_at=None)
    for score in (2, 5):
        SurveyResponse.all_orgs.create(organization=org, account=account, kind="nps", score=score,
                                       responded_at=now - dt.timedelta(days=10))  # fmt: skip
    ContactFactory(account=account, name="Ann Champion", roles=["champion"])
    refresh_current_arr(org)
    recompute_health(org, [account.pk])
    return account


def test_account_360_shows_each_signal_in_the_customers_terms_with_a_link_to_its_rows(client, org, bob):
    account = red_account(org, bob)
    assert HealthScore.objects.for_org(org).get(account=account).color == "red"
    html = login(client, bob).get(reverse("account-detail", args=[org.slug, account.pk])).content.decode()
    table = between(html, 'data-testid="health-components"', "</table>")
    rows = dict(re.findall(r'data-component="([^"]+)">(.*?)</tr>', table, re.S))
    expectations = {
        "adoption": ("12 of 300 licensed users active in 30 days", "rows/usage/?metric=active_users"),
        "usage_trend": ("events −34 % vs the previous 30 days (990 vs 1,500)", "rows/usage/?metric=events"),
        "support": ("12 tickets in 90 days, 1 open P1", "rows/tickets/"),
        "nps": ("NPS −100 from 2 responses in 180 days", "rows/responses/?kind=nps"),
        "financial": ("$12,400 overdue 45 days (1 unpaid invoice)", "rows/invoices/"),
        "relationship": ("champion Ann Champion; no active executive sponsor", "#contacts"),
        "engagement": ("never touched; customer for 800 days", "#timeline"),
        "csm_pulse": ("no CSM pulse in 30 days", "#pulses"),
    }
    for key, (text, link) in expectations.items():
        assert text in rows[key], (key, rows[key])
        assert link in rows[key], key
    why = between(html, 'data-testid="health-why"', "</div>")
    assert "Dragging it down most:" in why and ": " in why


def test_the_rows_behind_a_signal_are_listed_for_the_account_only(client, org, other_org, bob, charlie):
    account = red_account(org, bob)
    TicketFactory(account=AccountFactory(organization=org), external_id="SOMEONE-ELSE", opened_at=timezone.now())
    login(client, bob)
    tickets = client.get(reverse("account-rows", args=[org.slug, account.pk, "tickets"]))
    assert tickets.status_code == 200 and len(tickets.context["rows"]) == 12
    assert "SOMEONE-ELSE" not in tickets.content.decode()
    invoices = client.get(reverse("account-rows", args=[org.slug, account.pk, "invoices"])).content.decode()
    assert "$12,400.00" in invoices and "45 days overdue" in invoices
    usage = client.get(reverse("account-rows", args=[org.slug, account.pk, "usage"]), {"metric": "events"})
    assert {u.metric for u in usage.context["rows"]} == {"events"} and len(usage.context["rows"]) == 60
    responses = client.get(reverse("account-rows", args=[org.slug, account.pk, "responses"]), {"kind": "nps"})
    assert sorted(r.score for r in responses.context["rows"]) == [2, 5]
    assert client.get(reverse("account-rows", args=[org.slug, account.pk, "secrets"])).status_code == 404
    login(client, charlie)
    assert client.get(reverse("account-rows", args=[other_org.slug, account.pk, "tickets"])).status_code == 404


def test_edited_colour_bands_are_previewed_then_change_the_chart_labels(client, org, alice, bob):
    account = red_account(org, bob)
    score = HealthScore.objects.for_org(org).get(account=account).score
    card = Scorecard.objects.for_org(org).get(is_default=True)
    url = reverse("admin-scorecard", args=[org.slug, card.pk])
    login(client, alice)
    page = client.get(url).content.decode()
    assert "Red &lt; 50 · Yellow 50–75 · Green ≥ 75" in page and 'data-testid="unit-0"' in page
    yellow = int(score) - 5  # the red account reads yellow under the new bands
    preview = client.post(url, {"action": "preview-bands", "yellow": str(yellow), "green": "80"})
    assert preview.context["bands_preview"]["accounts_changing"] == 1
    assert preview.context["bands_preview"]["changes"][0]["from"] == "red"
    org.refresh_from_db()
    assert org.health_bands == {"yellow": 50.0, "green": 75.0}  # a preview saves nothing
    bad = client.post(url, {"action": "save-bands", "yellow": "80", "green": "60"})
    assert bad.status_code == 400 and "Green must start above yellow" in bad.content.decode()
    saved = client.post(url, {"action": "save-bands", "yellow": str(yellow), "green": "80"})
    assert saved.status_code == 302
    org.refresh_from_db()
    assert org.health_bands == {"yellow": float(yellow), "green": 80.0}
    html = client.get(reverse("account-detail", args=[org.slug, account.pk])).content.decode()
    chart = between(html, '<svg class="chart score-chart"', "</svg>")
    assert f"Red &lt; {yellow}</text>" in chart and f"Yellow {yellow}–80</text>" in chart
    assert "Green ≥ 80</text>" in chart and "Green ≥ 75" not in chart
    portfolio = client.get(reverse("portfolio", args=[org.slug])).content.decode()
    assert f"Red &lt; {yellow}" in between(portfolio, '<svg class="chart trend-chart"', "</svg>")


# --- Charts: no inline style, units on the axes -------------------------------------------------------------


def test_screens_carry_no_inline_style_and_charts_title_their_axes(client, org, bob):
    renewal = open_renewal(org, bob, name="Northwind", days=30)
    account = red_account(org, bob)
    login(client, bob)
    for url in (
        reverse("renewals", args=[org.slug]),
        reverse("renewal-detail", args=[org.slug, renewal.pk]),
        reverse("portfolio", args=[org.slug]),
        reverse("account-detail", args=[org.slug, account.pk]),
        reverse("my-book", args=[org.slug]),
    ):
        html = client.get(url).content.decode()
        main = between(html, "<main", "</main>")
        assert "style=" not in main, url
    renewals = client.get(reverse("renewals", args=[org.slug])).content.decode()
    assert 'class="axis-title"' in renewals and "Expected ARR (USD)</text>" in renewals
    account_page = client.get(reverse("account-detail", args=[org.slug, account.pk])).content.decode()
    assert "Score (0–100)</text>" in account_page


# --- Issue 12 point 8: the My book export carries health -----------------------------------------------------


def test_my_book_csv_export_has_the_health_columns(client, org, bob):
    scored = AccountFactory(organization=org, owner=bob, name="Scored", external_id="S-1")
    AccountFactory(organization=org, owner=bob, name="Unscored", external_id="U-1")
    HealthScoreFactory(
        account=scored, score=Decimal("42.5"), color="red", computed_color="red", delta_7=Decimal("-3.5")
    )
    response = login(client, bob).get(reverse("my-book", args=[org.slug]), {"export": "csv"})
    rows = {
        r["external_id"]: r
        for r in csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig")))
    }
    assert (rows["S-1"]["health_color"], rows["S-1"]["health_score"], rows["S-1"]["health_delta_7"]) == (
        "red", "42.5", "-3.5"
    )  # fmt: skip
    assert (rows["U-1"]["health_color"], rows["U-1"]["health_score"], rows["U-1"]["health_delta_7"]) == ("", "", "")
    reimport = login(client, bob).get(reverse("my-book", args=[org.slug]), {"export": "csv", "columns": "import"})
    header = b"".join(reimport.streaming_content).decode().splitlines()[0]
    assert "health_color" not in header  # computed, never imported back
