"""Acceptance (issue #5): in a real headless Chromium, a CSM closes a renewal as churned with a reason, then
sees that reason with its lost ARR in the Renewals screen's churn-reasons chart.

Reuses the fixtures of ``tests/test_browser.py`` (Debian's ``/usr/bin/chromium``, ``live_server``).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.services import refresh_current_arr
from renewals.models import Renewal
from tests.factories import MembershipFactory, ProductFactory, UserFactory
from tests.renewal_builders import open_renewal
from tests.test_browser import PASSWORD, SCREENSHOTS, browser_page, sync_api  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def renewals_book(org):
    dana = UserFactory(username="dana@acme.example", email="dana@acme.example", first_name="Dana", last_name="W")
    dana.set_password(PASSWORD)
    dana.save()
    MembershipFactory(organization=org, user=dana, role="csm")
    platform = ProductFactory(organization=org, sku="PLAT", name="Platform")
    support = ProductFactory(organization=org, sku="PREM", name="Premium support")
    # Overdue by a few days: the loss falls inside the default trailing-12-month period however it is dated.
    lost = open_renewal(
        org, dana, name="Blue Harbor Health", days=-5, qty=12, price=3000, category="at_risk", products=[platform]
    )
    open_renewal(org, dana, name="Northwind Logistics", days=25, qty=40, price=1500, category="commit",
                 products=[platform, support])  # fmt: skip
    open_renewal(org, dana, name="Cobalt Robotics", days=70, qty=20, price=900, category="likely", products=[platform])
    refresh_current_arr(org)
    return {"user": dana, "lost": lost}


def test_close_a_renewal_as_churned_and_see_the_reason_in_the_churn_chart(
    org,
    renewals_book,
    live_server,
    browser_page,  # noqa: F811 (the imported fixture)
):
    page, requests = browser_page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    lost = renewals_book["lost"]
    assert lost.current_arr == Decimal("36000")

    page.goto(live_server.url + "/login/")
    page.get_by_label("Email or username").fill("dana@acme.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/o/{org.slug}/")

    # Renewals screen: the pipeline lists the renewal; open its detail from the list.
    page.get_by_role("link", name="Renewals").first.click()
    page.wait_for_url(f"**/o/{org.slug}/renewals/")
    sync_api.expect(page.get_by_test_id("pipeline")).to_contain_text("Commit")
    assert "No contraction or churn" in page.get_by_test_id("churn-reasons").inner_text()
    page.get_by_test_id("renewals-table").get_by_role("link", name="Blue Harbor Health").click()
    page.wait_for_url(f"**/o/{org.slug}/renewals/{lost.pk}/")
    assert page.get_by_test_id("current-arr").inner_text() == "$36,000"

    # Churned without a reason: the error is inline, on the field, and nothing is closed.
    form = page.get_by_test_id("outcome-form")
    form.get_by_label("Outcome").select_option("churned")
    form.get_by_role("button", name="Close renewal").click()
    sync_api.expect(page.locator("#id_churn_reason-error")).to_contain_text("churn reason is required")
    assert Renewal.all_orgs.get(pk=lost.pk).is_open
    page.screenshot(path=str(SCREENSHOTS / "renewal_outcome_error.png"), full_page=True)

    # With the reason: closed, the outcome and the (dropped-line) bridge are shown.
    form = page.get_by_test_id("outcome-form")
    form.get_by_label("Outcome").select_option("churned")
    form.get_by_label("Churn reason").select_option(label="Competitor")
    form.get_by_label("Notes").fill("Moved to a cheaper competitor after the champion left.")
    form.get_by_role("button", name="Close renewal").click()
    sync_api.expect(page.get_by_test_id("outcome-pill")).to_have_text("Churned")
    assert "Competitor" in page.get_by_test_id("churn-reason").inner_text()
    assert "Platform" in page.get_by_test_id("bridge-table").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "renewal_closed.png"), full_page=True)
    closed = Renewal.all_orgs.select_related("churn_reason").get(pk=lost.pk)
    assert (closed.outcome, closed.churn_reason.label, closed.avoidable) == ("churned", "Competitor", True)

    # The Renewals screen's churn-reasons chart now shows the reason with its lost ARR.
    page.get_by_role("link", name="Renewals").first.click()
    page.wait_for_url(f"**/o/{org.slug}/renewals/")
    chart = page.get_by_role("img", name="Churn reasons by lost ARR")
    sync_api.expect(chart.locator("text", has_text="Competitor")).to_have_count(1)
    sync_api.expect(chart).to_contain_text("$36k")
    assert "Competitor · Avoidable: $36k" in chart.inner_html()
    assert "$36,000" in page.get_by_test_id("churn-reasons").inner_text()  # the avoidable total, as text
    page.screenshot(path=str(SCREENSHOTS / "renewals.png"), full_page=True)

    # Account 360 lists the outcome among the account's past renewals, with the reason.
    page.get_by_test_id("renewals-table").get_by_role("link", name="Northwind Logistics").click()
    page.get_by_role("link", name="Northwind Logistics").first.click()
    panel = page.get_by_test_id("account-renewals")
    sync_api.expect(panel).to_contain_text("Commit")
    page.goto(f"{live_server.url}/o/{org.slug}/accounts/{lost.account_id}/")
    sync_api.expect(page.get_by_test_id("account-renewals")).to_contain_text("Churned · Competitor")
    page.screenshot(path=str(SCREENSHOTS / "account_360_renewals.png"), full_page=True)
    assert [url for url in requests if not url.startswith(live_server.url)] == []
