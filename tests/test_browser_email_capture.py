"""In a real headless Chromium, desktop and 390×844: an admin opens Admin → Email capture, sees the capture
address, assigns an unmatched email to an account and discards another; the page is CSP-clean, fits the phone
width and axe-core finds nothing serious (tests/browser.py ``check_page``)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import Activity
from integrations import email_capture as ec
from integrations.models import CapturedEmail
from tests.browser import admin, check_page, sign_in  # noqa: F401 (fixture)
from tests.test_browser import browser_page, sync_api  # noqa: F401 (fixture)

from .factories import AccountFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("viewport", [(1440, 900), (390, 844)], ids=["desktop", "phone"])
def test_admin_assigns_and_discards_from_the_unmatched_inbox(org, admin, live_server, browser_page, viewport):  # noqa: F811
    page, _requests = browser_page
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    capture = ec.ensure_capture(org)
    account = AccountFactory(organization=org, name="Initech")
    for n, subject in enumerate(("Pricing question", "Newsletter")):
        CapturedEmail.all_orgs.create(
            organization=org, message_id=f"<b{n}@x.example>", subject=subject, from_address="x@unknown.example",
            sent_at=timezone.now(), status="unmatched", body_excerpt="Hello",
        )  # fmt: skip
    sign_in(page, live_server, org, admin)
    page.goto(f"{live_server.url}/o/{org.slug}/admin/integrations/email/")
    sync_api.expect(page.get_by_test_id("capture-address")).to_have_text(ec.capture_address(capture))
    check_page(page)

    first = page.locator("article", has_text="Pricing question")
    first.get_by_label("Account").select_option(label="Initech")
    first.get_by_role("button", name="Assign").click()
    sync_api.expect(page.locator(".flash").first).to_contain_text("On Initech's timeline")
    assert Activity.all_orgs.get(account=account).type == "email"
    page.locator("article", has_text="Newsletter").get_by_role("button", name="Discard").click()
    sync_api.expect(page.locator(".flash").first).to_contain_text("Discarded")
    sync_api.expect(page.locator("main")).to_contain_text("Nothing unmatched")
    check_page(page)
