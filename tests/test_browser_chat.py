"""In a real headless Chromium at desktop width and on a 390x844 phone: an admin adds a Slack channel in the
Webhooks page's "Slack and Teams channels" section, sees only its hint (never the URL), and the page passes
axe-core with no serious violation. The message itself is tested in tests/test_chat.py."""

from __future__ import annotations

import pytest

from playbooks import chat
from playbooks.models import ChatChannel
from tests.browser import check_page
from tests.test_browser import PASSWORD, browser_page, sync_api  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("viewport", [(1440, 900), (390, 844)], ids=["desktop", "phone"])
def test_admin_adds_a_channel_and_sees_only_its_hint(org, alice, live_server, browser_page, monkeypatch, viewport):  # noqa: F811
    queued: list[tuple] = []
    monkeypatch.setattr(chat, "enqueue_try", lambda *args: queued.append(args))
    page, requests = browser_page
    width, height = viewport
    page.set_viewport_size({"width": width, "height": height})
    alice.set_password(PASSWORD)
    alice.save()
    page.goto(live_server.url + "/login/")
    page.get_by_label("Email or username").fill(alice.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/o/{org.slug}/")
    page.goto(f"{live_server.url}/o/{org.slug}/admin/webhooks/")

    section = page.get_by_test_id("chat-channels")
    section.get_by_label("Chat app").select_option("slack")
    section.get_by_label("Channel name").fill("#cs-alerts")
    section.get_by_label("Incoming webhook URL").fill("https://93.184.215.14/services/T1/B2/verySECRETxyz1")
    section.get_by_label("Post the daily digest here").check()
    section.get_by_role("button", name="Add channel").click()
    sync_api.expect(page.locator(".flash").first).to_contain_text("Chat channel #cs-alerts added")
    section = page.get_by_test_id("chat-channels")
    sync_api.expect(section).to_contain_text("93.184.215.14 …xyz1")
    assert "verySECRET" not in page.content()
    section.get_by_role("button", name="Send test message to #cs-alerts").click()
    sync_api.expect(page.locator(".flash").first).to_contain_text("Test message to #cs-alerts queued")
    check_page(page)
    assert len(queued) == 1
    assert ChatChannel.all_orgs.get(organization=org).daily_digest is True
    assert [url for url in requests if not url.startswith(live_server.url)] == []
