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

    # Change what the channel receives: open its form, tick a notification kind, save (phone width too).
    channel_id = ChatChannel.all_orgs.get(organization=org).pk
    section.get_by_text("Change", exact=False).first.click()
    receives = page.get_by_test_id(f"chat-receives-{channel_id}")
    receives.get_by_label("A CTA assigned to someone").check()
    check_page(page)  # the open form fits the screen and passes axe
    receives.get_by_role("button", name="Save #cs-alerts").click()
    sync_api.expect(page.locator(".flash").first).to_contain_text("#cs-alerts now receives what you chose")
    sync_api.expect(page.get_by_test_id(f"chat-kinds-{channel_id}")).to_contain_text("A CTA assigned to someone")
    assert ChatChannel.all_orgs.get(pk=channel_id).notification_kinds == ["cta_assigned"]
    assert [url for url in requests if not url.startswith(live_server.url)] == []
