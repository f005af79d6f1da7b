"""Health pages: Portfolio (figures, drill-down, roles, constant queries), the Account 360 health panel
(explanation, override and pulse forms by role), My book's health columns and filters."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Segment
from health.models import CsmPulse, HealthOverride, HealthScore

from .factories import AccountFactory, TeamFactory
from .signal_factories import HealthScoreFactory, HealthSnapshotFactory, components

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache():
    """The trend of past days is cached per organization id and day; ids repeat across tests on SQLite."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def people(org, make_member) -> dict[str, Any]:
    lena = make_member(org, "leader").user
    bob = make_member(org, "csm", first_name="Bob").user
    dave = make_member(org, "csm", first_name="Dave").user
    team = TeamFactory(organization=org, name="North", manager=lena)
    Membership.all_orgs.filter(organization=org, user=bob).update(team=team)
    return {
        "admin": make_member(org, "admin").user,
        "leader": lena,
        "csm": bob,
        "bob": bob,
        "dave": dave,
        "viewer": make_member(org, "viewer").user,
    }


def build_portfolio(org: Any, owners: list[Any], n: int, *, days: int = 3) -> list[Any]:
    """``n`` accounts with latest scores (cycling red/yellow/green), ``days`` of snapshots each."""
    today = timezone.localdate()
    accounts = []
    for i in range(n):
        account = AccountFactory(organization=org, owner=owners[i % len(owners)], arr=Decimal(1000 * (i + 1)))
        score = Decimal([20, 60, 90][i % 3])
        HealthScoreFactory(account=account, score=score, delta_7=Decimal(-i), trend="down" if i else "flat")
        for d in range(days):
            HealthSnapshotFactory(account=account, date=today - dt.timedelta(days=d + 1))
        accounts.append(account)
    return accounts


class TestPortfolio:
    def url(self, org):
        return reverse("portfolio", args=[org.slug])

    @pytest.mark.parametrize("role", ["admin", "leader", "csm", "viewer"])
    def test_every_member_reads(self, client, org, people, role):
        build_portfolio(org, [people["bob"]], 3)
        client.force_login(people[role])
        response = client.get(self.url(org))
        assert response.status_code == 200
        html = response.content.decode()
        assert 'data-testid="arr-at-risk"' in html and "<svg" in html

    def test_other_org_is_404(self, client, org, other_org, charlie):
        client.force_login(charlie)
        assert client.get(self.url(org)).status_code == 404

    def test_figures_and_drill_down_links(self, client, org, people):
        build_portfolio(org, [people["bob"], people["dave"]], 6)
        client.force_login(people["leader"])
        response = client.get(self.url(org))
        ctx = response.context
        assert ctx["overall"]["counts"] == {"red": 2, "yellow": 2, "green": 2, "unscored": 0}
        # red accounts are #0 and #3: ARR 1000 + 4000
        assert ctx["overall"]["arr_at_risk"] == Decimal("5000")
        html = response.content.decode()
        tech = Segment.all_orgs.get(organization=org, name="Tech touch")
        link = f"?scope=all&amp;segment={tech.pk}&amp;health_color=red"
        assert link in html
        assert f"?scope=all&amp;owner={people['bob'].pk}&amp;health_color=red" in html
        # movers: the largest 7-day drops first
        assert [m.delta_7 for m in ctx["movers"]][:3] == [Decimal(-5), Decimal(-4), Decimal(-3)]
        # the trend has one point per past day with snapshots, plus today from the latest scores
        assert ctx["trend_days"] == 4

    def test_drill_down_reaches_the_accounts(self, client, org, people):
        accounts = build_portfolio(org, [people["bob"]], 6)
        client.force_login(people["leader"])
        tech = Segment.all_orgs.get(organization=org, name="Tech touch")
        response = client.get(
            reverse("my-book", args=[org.slug]), {"scope": "all", "segment": tech.pk, "health_color": "red"}
        )
        names = {a.name for a in response.context["accounts"]}
        assert names == {accounts[0].name, accounts[3].name}

    def test_name_and_unscored_links_list_the_live_accounts_they_count(self, client, org, people):
        """Regression: the segment and CSM rows count live accounts, but their links listed churned ones too
        (the demo's "Tech touch 145" opened 189 accounts)."""
        import html as html_lib
        import re

        build_portfolio(org, [people["bob"]], 3)
        AccountFactory(organization=org, owner=people["bob"], churned_at=timezone.localdate(), touch_model="tech")
        AccountFactory(organization=org, owner=people["bob"], touch_model="tech")  # live, not scored yet
        client.force_login(people["leader"])
        page = client.get(self.url(org)).content.decode()
        tech = Segment.all_orgs.get(organization=org, name="Tech touch")
        rows = {
            f"?scope=all&segment={tech.pk}&churned=false": 4,
            f"?scope=all&owner={people['bob'].pk}&churned=false": 4,
            "?scope=all&health_color=none&churned=false": 1,
            f"?scope=all&segment={tech.pk}&health_color=none&churned=false": 1,
        }
        links = {html_lib.unescape(h).split("/")[-1] for h in re.findall(r'href="([^"]*churned=false[^"]*)"', page)}
        assert set(rows) <= links
        for query, count in rows.items():
            response = client.get(reverse("my-book", args=[org.slug]) + query)
            assert response.context["summary"]["count"] == count, query
            assert 'name="churned" value="false"' in response.content.decode()  # kept when filters change

    def test_query_count_is_constant(self, client, org, people, django_assert_num_queries):
        client.force_login(people["leader"])
        build_portfolio(org, [people["bob"]], 3, days=2)
        client.get(self.url(org))  # warm the trend cache like any second visit
        with django_assert_num_queries(PORTFOLIO_QUERIES):
            assert client.get(self.url(org)).status_code == 200
        build_portfolio(org, [people["bob"], people["dave"], people["leader"]], 30, days=5)
        Segment.all_orgs.create(
            organization=org, name="Big", rules={"conditions": [{"field": "arr", "op": "gte", "value": 10000}]}
        )
        with django_assert_num_queries(PORTFOLIO_QUERIES):
            assert client.get(self.url(org)).status_code == 200

    def test_trend_label_counts_the_days_spanned_not_the_points(self, client, org, people):
        """Regression: snapshots on 3 days over 11 read "last 3 days" under a chart spanning 11."""
        today = timezone.localdate()
        account = AccountFactory(organization=org, owner=people["bob"])
        HealthScoreFactory(account=account, score=Decimal(50))
        for days_ago in (10, 1):
            HealthSnapshotFactory(account=account, date=today - dt.timedelta(days=days_ago))
        client.force_login(people["leader"])
        response = client.get(self.url(org))
        assert response.context["trend_days"] == 11
        assert "last 11 days" in response.content.decode()

    def test_capacity_says_which_limit_a_book_breaks(self, client, org, people):
        """Regression: a 33%-loaded book over the ARR limit read "33% load · over", with no hint of what it
        was over: the load is flagged only when over, the ARR limit gets its own pill."""
        AccountFactory(organization=org, owner=people["bob"], touch_model="high", arr=Decimal("6000000"))
        AccountFactory.create_batch(16, organization=org, owner=people["dave"], touch_model="high", arr=Decimal(1))
        client.force_login(people["leader"])
        html = client.get(self.url(org)).content.decode()
        rows = {
            name: html[html.index(f">{name}</a>") :].split("</tr>")[0]
            for name in (people["bob"].get_full_name(), people["dave"].get_full_name())
        }
        bob, dave = rows[people["bob"].get_full_name()], rows[people["dave"].get_full_name()]
        assert "7% load</span>" in bob and "ARR &gt; $5M</span>" in bob and "load · over" not in bob
        assert "107% load · over</span>" in dave and "ARR &gt;" not in dave


# Session, user, membership, org switcher; segments, the one scan of the accounts (overall, segments,
# owners, today's trend point, capacity), owners' names; movers (ids, rows); capacity targets. The
# trend's past days are cached (one more query on a cold cache).
# The notification bell's unread count. The onboarding section (value's page panel): the onboarding projects,
# their first-value milestones and their open milestones' stalls and lateness (value.analytics.portfolio_summary).
PORTFOLIO_QUERIES = 14


class TestAccountHealthPanel:
    def account_with_history(self, org, owner):
        account = AccountFactory(organization=org, owner=owner)
        today = timezone.localdate()
        weights = {"adoption": 25.0, "support": 10.0}
        HealthSnapshotFactory(
            account=account,
            date=today - dt.timedelta(days=7),
            components=components({"adoption": 90.0, "support": 50.0}, weights),
        )
        snap = HealthSnapshotFactory(
            account=account, date=today, components=components({"adoption": 30.0, "support": 80.0}, weights)
        )
        HealthScoreFactory(account=account, score=snap.score)
        return account

    def test_panel_explains(self, client, org, people):
        account = self.account_with_history(org, people["bob"])
        client.force_login(people["viewer"])
        response = client.get(reverse("account-detail", args=[org.slug, account.pk]))
        html = response.content.decode()
        assert 'data-testid="health-panel"' in html
        assert response.context["health"]["dragging"]["key"] == "adoption"
        assert 'data-testid="dragging">Adoption<' in html
        # The move says its own sign (a real minus) and arrow, never "= -0.5"-style contradictions.
        assert 'Adoption <span class="trend trend-down"><span aria-hidden="true">↓</span> −60.0</span>' in html
        assert "override-form" not in html  # viewers read only

    def test_panel_weights_and_scores_are_precise_enough_to_check_the_arithmetic(self, client, org, people):
        """Regression: weights were rounded to whole percents ("12% × (100 − 50.0)" next to 5.88 points lost)
        and a component's score showed raw decimals (88.56 beside 100.0)."""
        import re

        account = AccountFactory(organization=org, owner=people["bob"])
        snap = HealthSnapshotFactory(
            account=account,
            date=timezone.localdate(),
            components=components({"adoption": 100.0, "usage_trend": 88.56, "relationship": 50.0}),
        )
        HealthScoreFactory(account=account, score=snap.score)
        client.force_login(people["bob"])
        html = client.get(reverse("account-detail", args=[org.slug, account.pk])).content.decode()
        assert len(re.findall(r">33\.3\d%<", html)) == 3 and ">33%<" not in html  # three equal weights
        assert ">88.6<" in html and ">88.56<" not in html
        # the "dragging" sentence: relationship loses ⅓ × 50 points, and says so with its weight
        assert "scores 50.0 of 100, costing 16.66 points (weight 33.33%)" in html

    @pytest.mark.parametrize(
        ("role", "own", "allowed"),
        [
            ("admin", False, True),
            ("leader", True, True),
            ("leader", False, False),
            ("csm", True, True),
            ("csm", False, False),
            ("viewer", True, False),
        ],
    )
    def test_override_by_role(self, client, org, people, role, own, allowed):
        account = self.account_with_history(org, people["bob"] if own else people["dave"])
        client.force_login(people[role])
        detail = client.get(reverse("account-detail", args=[org.slug, account.pk])).content.decode()
        assert ('data-testid="override-form"' in detail) is allowed
        response = client.post(
            reverse("account-override", args=[org.slug, account.pk]),
            {"color": "green", "reason_code": "relationship", "reason": "Exec loves us"},
        )
        assert response.status_code == (302 if allowed else 403)
        health = HealthScore.all_orgs.get(account=account)
        assert (health.color == "green") is allowed
        if allowed:
            page = client.get(reverse("account-detail", args=[org.slug, account.pk])).content.decode()
            assert 'data-testid="override-badge"' in page and "Exec loves us" in page
            override = HealthOverride.all_orgs.get(account=account)
            clear = client.post(reverse("account-clear-override", args=[org.slug, account.pk, override.pk]))
            assert clear.status_code == 302
            assert HealthScore.all_orgs.get(account=account).color == health.computed_color

    def test_override_needs_a_reason(self, client, org, people):
        account = self.account_with_history(org, people["bob"])
        client.force_login(people["bob"])
        response = client.post(
            reverse("account-override", args=[org.slug, account.pk]),
            {"color": "green", "reason_code": "other", "reason": ""},
        )
        assert response.status_code == 400
        assert HealthOverride.all_orgs.count() == 0

    def test_override_reason_is_not_preselected_and_never_flips_the_chosen_colour(self, client, org, people):
        """Regression: the reason defaulted to "customer will churn", which forces red, so choosing green and
        writing a reason saved a red override."""
        account = self.account_with_history(org, people["bob"])
        client.force_login(people["bob"])
        page = client.get(reverse("account-detail", args=[org.slug, account.pk])).content.decode()
        form = page[page.index('data-testid="override-form"') :].split("</form>")[0]
        assert '<option value="" selected>Choose a reason…</option>' in form
        url = reverse("account-override", args=[org.slug, account.pk])
        no_reason = client.post(url, {"color": "green", "reason": "Exec sponsor confirmed"})
        assert no_reason.status_code == 400
        conflicting = client.post(url, {"color": "green", "reason_code": "customer_will_churn", "reason": "x"})
        assert conflicting.status_code == 400 and "always sets red" in conflicting.content.decode()
        assert HealthOverride.all_orgs.count() == 0
        red = client.post(url, {"color": "red", "reason_code": "customer_will_churn", "reason": "Told us"})
        assert red.status_code == 302 and HealthOverride.all_orgs.get().color == "red"

    def test_pulse(self, client, org, people):
        account = self.account_with_history(org, people["bob"])
        client.force_login(people["bob"])
        response = client.post(
            reverse("account-pulse", args=[org.slug, account.pk]),
            {"color": "red", "reason_codes": ["competitor", "budget_pressure"], "note": "RFP"},
        )
        assert response.status_code == 302
        pulse = CsmPulse.all_orgs.get(account=account)
        assert pulse.reason_codes == ["competitor", "budget_pressure"] and pulse.author == people["bob"]
        client.force_login(people["dave"])
        assert client.post(reverse("account-pulse", args=[org.slug, account.pk]), {"color": "red"}).status_code == 403

    def test_other_org_account_is_404(self, client, org, other_org, charlie, people):
        account = self.account_with_history(org, people["bob"])
        client.force_login(charlie)
        assert (
            client.post(
                reverse("account-override", args=[other_org.slug, account.pk]),
                {"color": "red", "reason_code": "other", "reason": "x"},
            ).status_code
            == 404
        )


class TestMyBookHealth:
    def test_columns_sort_and_filter(self, client, org, people):
        accounts = build_portfolio(org, [people["bob"]], 3)
        AccountFactory(organization=org, owner=people["bob"], name="Zed unscored")
        client.force_login(people["bob"])
        url = reverse("my-book", args=[org.slug])
        response = client.get(url, {"ordering": "-health"})
        names = [a.name for a in response.context["accounts"]]
        assert names[:3] == [accounts[2].name, accounts[1].name, accounts[0].name]
        assert names[-1] == "Zed unscored"  # unscored last
        html = response.content.decode()
        assert html.count('data-testid="health-cell"') == 4
        # Colour never alone: the pill carries the colour's shape and name beside the score.
        pill = (
            '<span class="hpill hpill-green" data-color="green"><span class="dot dot-green" aria-hidden="true"></span>'
        )
        assert pill + 'Green <span class="hpill-score">90.0</span>' in html
        unscored = client.get(url, {"health_color": "none"})
        assert [a.name for a in unscored.context["accounts"]] == ["Zed unscored"]


def test_charts_place_points_by_date_and_escape_labels():
    from health.charts import score_line, split_bar, trend_area

    day = dt.date(2026, 11, 1)
    points = [{"date": day, "red": 1, "yellow": 0, "green": 1},
              {"date": day + dt.timedelta(days=1), "red": 1, "yellow": 1, "green": 0},
              {"date": day + dt.timedelta(days=10), "red": 0, "yellow": 0, "green": 2}]  # fmt: skip
    svg = str(trend_area(points, width=140, height=100))
    # x runs from 44 to 132 over 10 days: the second day sits at 52.8, not half-way (88)
    assert "52.8," in svg and "88," not in svg
    line = str(score_line([{"date": day, "score": 40.0, "color": "red"},
                           {"date": day + dt.timedelta(days=4), "score": 80.0, "color": "green"}]))  # fmt: skip
    assert line.count("<circle") == 2 and "<path" in line
    assert "&lt;b&gt;" in str(split_bar([("red", 2, "<b>2 red</b>")]))
    assert "No snapshots yet" in str(trend_area([]))


def test_trend_counts_each_past_day_once_until_invalidated(org, django_assert_num_queries):
    from health.portfolio import color_trend, invalidate_trend

    today = timezone.localdate()
    account = AccountFactory(organization=org)
    HealthSnapshotFactory(account=account, date=today - dt.timedelta(days=3))
    first = color_trend(org, today=today, today_counts={"red": 0, "yellow": 0, "green": 0})
    assert [p["date"] for p in first] == [today - dt.timedelta(days=3), today]
    with django_assert_num_queries(0):  # every past day cached
        assert color_trend(org, today=today, today_counts={"red": 0, "yellow": 0, "green": 0}) == first
    HealthSnapshotFactory(account=account, date=today - dt.timedelta(days=5))  # a backfill
    assert len(color_trend(org, today=today, today_counts={"red": 0, "yellow": 0, "green": 0})) == 2
    invalidate_trend(org)
    assert len(color_trend(org, today=today, today_counts={"red": 0, "yellow": 0, "green": 0})) == 3
    # the next day: only yesterday is new, one query
    with django_assert_num_queries(1):
        color_trend(org, today=today + dt.timedelta(days=1), today_counts={"red": 0, "yellow": 0, "green": 0})


def test_missing_components_are_named_as_the_admin_named_them(client, org, bob):
    account = AccountFactory(organization=org, owner=bob)
    snap = HealthSnapshotFactory(
        account=account, components=components({"adoption": 80.0, "csm_pulse": None, "usage_trend": None})
    )
    HealthScoreFactory(account=account, score=snap.score, computed_color=snap.color, color=snap.color)
    client.force_login(bob)
    html = client.get(reverse("account-detail", args=[org.slug, account.pk])).content.decode()
    assert "No data for: Csm pulse, Usage trend — their weight" in html
