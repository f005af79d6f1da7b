"""End to end in headless Chromium: an admin sends a test event with a write key and reads, on the
Ingestion tab, that it was counted — and why a bad request was refused — at desktop width and on a
390×844 phone."""

from __future__ import annotations

import base64
import json

import pytest
from django.test import Client

from accounts.models import WriteKey
from tests.factories import AccountFactory
from tests.test_browser import PASSWORD, SCREENSHOTS, browser_page, member_who_signs_in  # noqa: F401  (fixture)

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def admin(org):
    return member_who_signs_in(org, "admin", "ops@acme.example", "Olu", "Ops")


def send(key: str, batch: list[dict]) -> int:
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    body = json.dumps({"batch": batch})
    return Client().post("/v1/batch", data=body, content_type="application/json", HTTP_AUTHORIZATION=auth).status_code


@pytest.mark.parametrize("viewport", [(1440, 900), (390, 844)], ids=["desktop", "phone"])
def test_admin_sees_a_test_event_counted_and_a_refusal_explained(org, admin, live_server, browser_page, viewport):  # noqa: F811
    from health.rollups import rollup_usage

    AccountFactory(organization=org, external_id="ACME-1")
    key = WriteKey.issue(organization=org)[1]
    group = {"type": "group", "userId": "u1", "groupId": "ACME-1", "messageId": "g1"}
    assert send(key, [group, {"type": "track", "userId": "u1", "event": "Test Event", "messageId": "t1"}]) == 200
    assert send(key, [{"type": "track", "userId": "u2", "messageId": "no-event-name"}]) == 400
    rollup_usage(org.pk)

    page, _ = browser_page
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    page.goto(live_server.url + "/login/")
    page.get_by_label("Email or username").fill(admin.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/o/{org.slug}/**")
    page.goto(f"{live_server.url}/o/{org.slug}/admin/ingestion/")
    assert page.get_by_role("heading", name="Right now").is_visible()
    counted = page.get_by_test_id("ingestion-totals").locator('tr[data-counter="counted"]')
    assert counted.locator("td.num").inner_text() == "1"
    refusals = page.get_by_test_id("ingestion-refusals")
    refusals.scroll_into_view_if_needed()
    assert "no-event-name" in refusals.inner_text() and "event name" in refusals.inner_text()
    # The page's own panels fit the width (a wide table scrolls inside its panel, not the page).
    for heading in ("h-now", "h-totals", "h-daily", "h-refused"):
        box = page.locator(f"section[aria-labelledby={heading}]").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport[0] + 1, (heading, box)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"admin_ingestion_{viewport[0]}.png"), full_page=True)
