"""In a real headless Chromium, at desktop width and on a 390x844 phone: an admin connects HubSpot (a local
fake HubSpot's URL), tests the connection, runs the dry run, runs the sync, and sees the accounts and the sync
history with the record that could not be applied (issue 21).

Runs are executed in the test (``sync.execute_run``) where a worker would: the page is under test here, the
engine in test_integrations_hubspot.py.
"""

from __future__ import annotations

import pytest

from integrations import services
from integrations.models import SyncRun
from integrations.sync import execute_run
from tests.test_browser import PASSWORD, SCREENSHOTS, browser_page, sync_api  # noqa: F401 (fixture)

from .fake_hubspot import TOKEN, FakeHubSpot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("viewport", [(1440, 900), (390, 844)], ids=["desktop", "phone"])
def test_admin_connects_hubspot_dry_runs_syncs_and_sees_the_history(
    org,
    alice,
    live_server,
    browser_page,  # noqa: F811 (the imported fixture)
    settings,
    monkeypatch,
    viewport,  # noqa: F811
):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    monkeypatch.setattr(services, "queue_run", lambda run, countdown=0: None)  # executed below instead
    page, _requests = browser_page
    width, height = viewport
    page.set_viewport_size({"width": width, "height": height})
    alice.set_password(PASSWORD)
    alice.save()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with FakeHubSpot() as hubspot:
        hubspot.add_company("0001", name="Globex Parent")
        hubspot.add_company("0002", name="Initech", hs_parent_company_id="0001")
        hubspot.add_company("0003", name="Broken Co", numberofemployees="lots")

        page.goto(live_server.url + "/login/")
        page.get_by_label("Email or username").fill(alice.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"**/o/{org.slug}/")
        page.goto(f"{live_server.url}/o/{org.slug}/admin/integrations/connectors/")

        page.get_by_label("Kind").select_option("hubspot")
        page.get_by_label("Name").fill("HubSpot")
        page.get_by_label("Base url").fill(hubspot.url)
        page.get_by_label("Access token").fill(TOKEN)
        page.get_by_role("button", name="Connect").click()
        sync_api.expect(page.locator(".flash").first).to_contain_text("HubSpot connected")
        page.get_by_role("button", name="Test connection").click()
        sync_api.expect(page.locator(".flash").first).to_contain_text("Connected: HubSpot answered")
        assert TOKEN not in page.content()

        page.get_by_role("link", name="companies").click()
        page.get_by_role("button", name="Dry run").click()
        sync_api.expect(page.locator(".flash").first).to_contain_text("Dry run queued")
        execute_run(SyncRun.all_orgs.get(organization=org, mode="dry_run").pk, sleep=lambda s: None)
        page.reload()
        runs = page.get_by_test_id("runs")
        sync_api.expect(runs).to_contain_text("Dry run")
        sync_api.expect(runs).to_contain_text("Succeeded")

        page.get_by_role("button", name="Run now").click()
        execute_run(SyncRun.all_orgs.get(organization=org, mode="sync").pk, sleep=lambda s: None)
        page.reload()
        page.get_by_text("1 record(s) not applied").first.click()
        sync_api.expect(page.get_by_test_id("runs")).to_contain_text("is not a whole number")
        page.screenshot(path=str(SCREENSHOTS / f"connector_sync_{width}.png"), full_page=True)

        page.goto(f"{live_server.url}/o/{org.slug}/?scope=all")
        sync_api.expect(page.locator("main")).to_contain_text("Initech")
        sync_api.expect(page.locator("main")).to_contain_text("Globex Parent")
