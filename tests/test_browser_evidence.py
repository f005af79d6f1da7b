"""In headless Chromium, on the demo organization: a red account's Account 360 shows every health
component's signal in the customer's terms, with its unit and a link to the rows behind it; the charts
of Renewals, Portfolio and Account 360 keep their text at 11 px or more at 1440×900 and at 390×844; and
no screen requests anything from another host."""

from __future__ import annotations

import re

import pytest

from accounts.demo import DEMO_PASSWORD, seed_demo
from health.models import HealthScore, HealthSnapshot
from tests.test_browser import PASSWORD, SCREENSHOTS, browser_page  # noqa: F401  (fixture)

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

#: What each default component's evidence must say: its unit, in the customer's terms (or why it has none).
UNITS = {
    "adoption": r"of [\d,]+ licensed users? active in 30 days|usage not tracked|no licensed seats",
    "usage_trend": r"events [+−]?[\d,]+ % vs the previous 30 days|no baseline",
    "support": r"[\d,]+ tickets? in 90 days, [\d,]+ open P1|no ticket ever recorded",
    "nps": r"NPS [+−]?[\d,]+ from [\d,]+ responses? in 180 days|no NPS response in 180 days",
    "engagement": r"last customer touch .*cadence|never touched|has no touch cadence",
    "relationship": r"champion|executive sponsor|no contacts recorded",
    "financial": r"\$[\d,]+ overdue [\d,]+ days?|nothing overdue|no invoice due yet",
    "csm_pulse": r"pulse by .* on |no CSM pulse in 30 days",
}


@pytest.fixture
def demo(db):
    return seed_demo(slug="demo", accounts=80, seed=7)


def sign_in(page, base: str, email: str, password: str) -> None:
    page.goto(base + "/login/")
    page.get_by_label("Email or username").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/o/demo/.*"))


def red_account_with_most_signals(org) -> int:
    """The red demo account whose latest snapshot has the most scored components (ties: largest ARR)."""
    reds = HealthScore.objects.for_org(org).filter(color="red").select_related("account")
    best = None
    for score in reds:
        snapshot = HealthSnapshot.objects.for_org(org).filter(account=score.account).order_by("-date").first()
        scored = sum(1 for c in (snapshot.components if snapshot else []) if c.get("score") is not None)
        key = (scored, score.account.arr)
        if best is None or key > best[0]:
            best = (key, score.account_id)
    assert best is not None, "the demo has red accounts"
    return best[1]


def min_chart_text_px(page) -> float:
    """The smallest rendered size of any shown text in the page's SVG charts and bars, in CSS pixels."""
    return page.evaluate(
        """() => {
        let smallest = Infinity;
        for (const svg of document.querySelectorAll('svg')) {
          const box = svg.getBoundingClientRect();
          const width = svg.viewBox.baseVal ? svg.viewBox.baseVal.width : 0;
          if (!box.width || !width) continue;
          const scale = box.width / width;
          for (const text of svg.querySelectorAll('text')) {
            if (getComputedStyle(text).display === 'none' || !text.getBoundingClientRect().width) continue;
            const size = parseFloat(getComputedStyle(text).fontSize) * scale;
            smallest = Math.min(smallest, size);
          }
        }
        return smallest;
      }"""
    )


def test_red_account_360_reads_every_signal_with_its_unit_and_a_link_to_its_rows(demo, live_server, browser_page):  # noqa: F811
    page, requests = browser_page
    org = demo.organization
    account_id = red_account_with_most_signals(org)
    sign_in(page, live_server.url, demo.admin_email, DEMO_PASSWORD)
    page.goto(f"{live_server.url}/o/demo/accounts/{account_id}/")
    rows = page.locator('[data-testid="health-components"] tbody tr')
    keys = [rows.nth(i).get_attribute("data-component") for i in range(rows.count())]
    assert set(keys) == set(UNITS)  # the default scorecard's eight components
    for i, key in enumerate(keys):
        evidence = rows.nth(i).locator('[data-testid="evidence"]')
        text = evidence.inner_text()
        assert re.search(UNITS[key], text), (key, text)
        link = evidence.locator('[data-testid="evidence-link"]')
        assert link.get_attribute("href"), key
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator('[data-testid="health-panel"]').screenshot(path=str(SCREENSHOTS / "account-360-evidence.png"))

    # The support evidence leads to the account's tickets; the tickets listed are the ones counted.
    support = page.locator('[data-component="support"] [data-testid="evidence"]')
    counted = re.search(r"([\d,]+) tickets? in 90 days", support.inner_text())
    support.locator("a").click()
    page.wait_for_url(re.compile(rf".*/accounts/{account_id}/rows/tickets/"))
    if counted:
        in_window = page.locator('[data-testid="signal-rows"] tbody tr.in-window').count()
        assert in_window == int(counted.group(1).replace(",", ""))
    assert all(url.startswith(live_server.url) for url in requests), [u for u in requests if live_server.url not in u]


@pytest.mark.parametrize("viewport", [{"width": 1440, "height": 900}, {"width": 390, "height": 844}])
def test_chart_text_is_at_least_11px_and_nothing_comes_from_another_host(demo, live_server, browser_page, viewport):  # noqa: F811
    from django.contrib.auth import get_user_model

    from accounts.services import ensure_membership

    page, requests = browser_page
    org = demo.organization
    leader = ensure_membership(organization=org, email="lead@demo.example", role="leader").user
    user = get_user_model().objects.get(pk=leader.pk)
    user.set_password(PASSWORD)
    user.save()
    page.set_viewport_size(viewport)
    sign_in(page, live_server.url, "lead@demo.example", PASSWORD)
    account_id = red_account_with_most_signals(org)
    for path in ("/o/demo/renewals/", "/o/demo/portfolio/", f"/o/demo/accounts/{account_id}/"):
        page.goto(live_server.url + path)
        assert page.locator("svg.chart").count() > 0, path
        assert min_chart_text_px(page) >= 11 - 0.01, (path, viewport)
        # Every chart that may scroll sideways can be reached by the keyboard.
        for figure in page.locator("figure.chart-scroll").all():
            assert figure.get_attribute("tabindex") == "0"
        if viewport["width"] < 500:
            name = path.strip("/").split("/")[2] if path.count("/") > 3 else path.strip("/").split("/")[-1]
            page.screenshot(path=str(SCREENSHOTS / f"phone-{name}.png"), full_page=False)
    assert requests and all(url.startswith(live_server.url) for url in requests)
