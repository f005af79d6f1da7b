"""End to end in headless Chromium: Portfolio → a red segment cell → the filtered account list → an
account's 360 → its health explanation (dragging component and contributions)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Segment
from tests.factories import AccountFactory, MembershipFactory, UserFactory
from tests.signal_factories import HealthScoreFactory, HealthSnapshotFactory, components
from tests.test_browser import PASSWORD, SCREENSHOTS, browser_page  # noqa: F401  (fixture)

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def leader(org):
    user = UserFactory(username="lee@acme.example", email="lee@acme.example", first_name="Lee", last_name="Park")
    user.set_password(PASSWORD)
    user.save()
    MembershipFactory(organization=org, user=user, role="leader")
    return user


@pytest.fixture
def portfolio(org, leader):
    """Six tech-touch accounts (ARR < 50k): two red, two yellow, two green, with a week of snapshots."""
    from django.core.cache import cache

    cache.clear()
    today = timezone.localdate()
    weights = {"adoption": 25.0, "usage_trend": 15.0, "csm_pulse": 10.0}
    specs = [
        ("Harbor Freight Co", {"adoption": 20.0, "usage_trend": 40.0, "csm_pulse": 50.0}),
        ("Juniper Analytics", {"adoption": 35.0, "usage_trend": 10.0, "csm_pulse": 0.0}),
        ("Maple Retail", {"adoption": 60.0, "usage_trend": 70.0, "csm_pulse": 50.0}),
        ("Orbit Labs", {"adoption": 70.0, "usage_trend": 60.0, "csm_pulse": 50.0}),
        ("Quartz Health", {"adoption": 95.0, "usage_trend": 90.0, "csm_pulse": 100.0}),
        ("Summit Works", {"adoption": 85.0, "usage_trend": 80.0, "csm_pulse": 100.0}),
    ]
    accounts = {}
    for i, (name, scores) in enumerate(specs):
        account = AccountFactory(organization=org, name=name, arr=Decimal(10_000 + 1000 * i), touch_model="tech")
        HealthSnapshotFactory(
            account=account,
            date=today - dt.timedelta(days=7),
            components=components({k: min(v + 20, 100.0) for k, v in scores.items()}, weights),
        )
        snapshot = HealthSnapshotFactory(account=account, date=today, components=components(scores, weights))
        HealthScoreFactory(account=account, score=snapshot.score, delta_7=Decimal("-10.0"), trend="down")
        accounts[name] = account
    return accounts


def test_portfolio_to_account_explanation(org, leader, portfolio, live_server, browser_page):  # noqa: F811
    page, _requests = browser_page
    page.goto(live_server.url + "/login/")
    page.get_by_label("Email or username").fill(leader.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/o/{org.slug}/")

    page.get_by_role("link", name="Portfolio").click()
    sync_api.expect(page.get_by_test_id("tile-red")).to_contain_text("2")
    sync_api.expect(page.get_by_test_id("arr-at-risk")).to_contain_text("$21k")  # 10k + 11k
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "portfolio_health.png"), full_page=True)

    tech = Segment.all_orgs.get(organization=org, name="Tech touch")
    page.get_by_test_id(f"seg-{tech.pk}-red").click()
    page.wait_for_url("**health_color=red**")
    table = page.get_by_test_id("accounts-table")
    sync_api.expect(table).to_contain_text("Harbor Freight Co")
    sync_api.expect(table).to_contain_text("Juniper Analytics")
    assert "Quartz Health" not in table.inner_text()

    table.get_by_role("link", name="Harbor Freight Co").click()
    panel = page.get_by_test_id("health-panel")
    # adoption 20 × 0.5 + usage 40 × 0.3 + pulse 50 × 0.2 = 32.0; adoption loses 0.5 × 80 = 40 points
    sync_api.expect(page.get_by_test_id("health-score")).to_have_text("32.0")
    sync_api.expect(panel.get_by_test_id("dragging")).to_have_text("Adoption")
    rows = panel.get_by_test_id("health-components")
    sync_api.expect(rows).to_contain_text("Adoption")
    sync_api.expect(rows.get_by_role("row").filter(has_text="Adoption")).to_contain_text("10.0")
    sync_api.expect(rows.get_by_role("row").filter(has_text="Usage trend")).to_contain_text("12.0")
    sync_api.expect(panel.get_by_test_id("health-why")).to_contain_text("Adoption")
    page.screenshot(path=str(SCREENSHOTS / "account_health.png"), full_page=True)
