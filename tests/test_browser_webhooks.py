"""In a real headless Chromium, at desktop width and on a 390x844 phone: an admin who registers an
internal address sees why it is refused, and one who presses "Send test" past the organization's
budget is told how long to wait (issue 18, findings 1 and 5).

Reuses the fixtures of ``tests/test_browser.py`` (Debian's ``/usr/bin/chromium``, ``live_server``).
Deliveries are not sent: the page is under test here, and the delivery itself in test_webhooks.py.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache

from playbooks import services
from playbooks.models import WebhookDelivery, WebhookEndpoint
from tests.test_browser import PASSWORD, SCREENSHOTS, browser_page, sync_api  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("viewport", [(1440, 900), (390, 844)], ids=["desktop", "phone"])
def test_admin_sees_refused_addresses_and_the_test_send_limit_in_words(
    org,
    alice,
    live_server,
    browser_page,  # noqa: F811 (the imported fixture)
    settings,
    monkeypatch,
    viewport,
):
    settings.WEBHOOK_TEST_RATE = "2/min"
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    queued: list[tuple] = []
    monkeypatch.setattr(services, "enqueue_try", lambda *args: queued.append(args))
    cache.delete(services.send_test_budget_key(org.pk))  # a fresh budget for this organization id
    page, requests = browser_page
    width, height = viewport
    page.set_viewport_size({"width": width, "height": height})
    alice.set_password(PASSWORD)
    alice.save()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    page.goto(live_server.url + "/login/")
    page.get_by_label("Email or username").fill(alice.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/o/{org.slug}/")
    page.goto(f"{live_server.url}/o/{org.slug}/admin/webhooks/")

    # The cloud metadata service: refused at registration with the reason next to the field.
    page.get_by_label("Endpoint URL").fill("http://169.254.169.254/latest/meta-data/")
    page.get_by_label("Account created (account.created)").check()
    page.get_by_role("button", name="Add endpoint").click()
    sync_api.expect(page.get_by_role("region", name="Add an endpoint")).to_contain_text(
        "Address not allowed: 169.254.169.254 is a cloud metadata"
    )
    # Loopback in a disguise: decoded and refused all the same.
    page.get_by_label("Endpoint URL").fill("http://2130706433:6379/")
    page.get_by_label("Account created (account.created)").check()
    page.get_by_role("button", name="Add endpoint").click()
    sync_api.expect(page.get_by_role("region", name="Add an endpoint")).to_contain_text(
        "127.0.0.1 is a loopback address"
    )
    assert not WebhookEndpoint.all_orgs.filter(organization=org).exists()
    page.screenshot(path=str(SCREENSHOTS / f"webhook_refused_{width}.png"), full_page=True)

    # A public address is accepted (nothing is sent: enqueueing is recorded instead).
    page.get_by_label("Endpoint URL").fill("https://93.184.215.14/hooks/retain?token=abc")
    page.get_by_label("Account created (account.created)").check()
    page.get_by_role("button", name="Add endpoint").click()
    page.wait_for_url("**/admin/webhooks/*/")
    endpoint = WebhookEndpoint.all_orgs.get(organization=org)

    for _ in range(2):
        page.get_by_role("button", name="Send test").click()
        sync_api.expect(page.locator(".flash").first).to_contain_text("Test event queued")
    page.get_by_role("button", name="Send test").click()
    flash = page.locator(".flash").first
    sync_api.expect(flash).to_contain_text("Too many test sends: at most 2 per minute for this organization.")
    sync_api.expect(flash).to_contain_text("Try again in")
    assert flash.is_visible()
    box = flash.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width  # readable on the phone
    page.screenshot(path=str(SCREENSHOTS / f"webhook_test_limit_{width}.png"), full_page=True)
    assert WebhookDelivery.all_orgs.filter(endpoint=endpoint).count() == 2
    assert len(queued) == 2
    assert [url for url in requests if not url.startswith(live_server.url)] == []
