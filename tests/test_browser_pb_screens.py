"""Account 360's CTA panel, My book's work panels and the email-template admin in real headless Chromium at
phone size (issue 12 §5): a CSM reads their work on My book and completes a CTA from Account 360; an admin
previews an email template against an account and adds a CTA type. Each page keeps its phone layout, has no
CSP violation and no serious axe-core violation. The seeded organization comes from tests/browser.py."""

from __future__ import annotations

import pytest

from tests.browser import PHONE, harness, signed_in  # noqa: F401  (fixture)
from tests.test_browser_work import check_page

pytestmark = [pytest.mark.browser]


def test_csm_sees_their_work_on_my_book_and_completes_a_cta_from_account_360(harness):  # noqa: F811
    from playbooks.models import Cta

    seeded = harness["seeded"]
    base = f"{harness['url']}/o/{seeded.org.slug}"
    page = signed_in(harness, "csm", PHONE)
    try:
        page.goto(f"{base}/?scope=mine")
        check_page(page)
        assert page.get_by_test_id("book-ctas").is_visible()
        assert page.get_by_test_id("book-tasks").count() == 1 and page.get_by_test_id("book-renewals").count() == 1
        assert "overdue" in page.get_by_test_id("book-ctas").inner_text()

        page.goto(f"{base}/accounts/{seeded.red_account}/")
        check_page(page)
        panel = page.get_by_test_id("account-ctas")
        card = panel.get_by_test_id("account-cta").first
        assert "High" in card.inner_text() or "Medium" in card.inner_text() or "Low" in card.inner_text()
        assert "Send the notes" not in card.inner_text()  # the closed one is under "Recently closed"
        assert "Notes sent and acknowledged" in panel.get_by_test_id("recent-ctas").inner_text()
        card.locator("summary").filter(has_text="Complete").click()
        form = card.get_by_test_id("complete-form")
        form.get_by_label("Outcome").select_option("partly_resolved")
        form.get_by_role("button", name="Complete CTA").click()
        page.wait_for_load_state("load")
        assert page.url.startswith(f"{base}/accounts/{seeded.red_account}/")
        assert "completed." in page.locator("#flash").inner_text()
        check_page(page)
        assert not Cta.all_orgs.filter(account_id=seeded.red_account, status="open").exists()
        assert page.get_by_test_id("no-open-ctas").count() == 1
    finally:
        page.context.close()


def test_admin_previews_an_email_template_and_adds_a_cta_type(harness):  # noqa: F811
    from playbooks.models import CtaType, EmailTemplate

    seeded = harness["seeded"]
    base = f"{harness['url']}/o/{seeded.org.slug}"
    page = signed_in(harness, "admin", PHONE)
    try:
        page.goto(f"{base}/admin/email-templates/{seeded.email_template}/")
        check_page(page)
        from accounts.models import Account

        red = Account.all_orgs.get(pk=seeded.red_account)
        page.locator("#preview-account").fill(red.name[:6])
        page.get_by_role("button", name="Preview").click()
        page.wait_for_load_state("load")
        preview = page.get_by_test_id("email-preview").inner_text()
        assert f"{red.name} renews on" in preview and "Your renewal is on" in preview
        assert red.name in page.get_by_test_id("preview-for").inner_text()
        page.get_by_label("Body").fill("Hi {% debug %}")
        page.get_by_role("button", name="Save template").click()
        page.wait_for_load_state("load")
        assert "only merge fields" in page.locator(".field-error").first.inner_text()
        page.evaluate("window.scrollTo(0, 0)")  # Chromium keeps the scroll position of the form it posted
        check_page(page)
        assert "debug" not in EmailTemplate.all_orgs.get(pk=seeded.email_template).body

        page.goto(f"{base}/admin/cta-types/")
        check_page(page)
        page.get_by_label("Type name").fill("Advocacy")
        page.get_by_role("button", name="Add type").click()
        page.wait_for_load_state("load")
        assert "Advocacy" in page.locator("#flash").inner_text()
        assert CtaType.all_orgs.filter(organization=seeded.org, key="advocacy").exists()
        check_page(page)
    finally:
        page.context.close()
