"""The work queue in real headless Chromium at phone size (issue 12 §5): a CSM snoozes a CTA with a reason and a
date, ticks a task off and completes a CTA with an outcome, using the keyboard-reachable forms; the page keeps
its phone layout and axe-core finds no serious violation on the way. The seeded organization and Chromium come
from the shared harness (tests/browser.py)."""

from __future__ import annotations

import pytest

from tests.browser import PHONE, check_page, harness, signed_in  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser]


def test_csm_snoozes_a_cta_and_completes_a_task_on_a_phone(harness):  # noqa: F811
    from playbooks.models import Cta

    seeded = harness["seeded"]
    page = signed_in(harness, "csm", PHONE)
    try:
        page.goto(f"{harness['url']}/o/{seeded.org.slug}/work/")
        check_page(page)
        cards = page.get_by_test_id("cta-card")
        assert cards.count() == 2  # the third one is snoozed
        first, second = cards.nth(0), cards.nth(1)
        first_id, second_id = int(first.get_attribute("data-cta")), int(second.get_attribute("data-cta"))

        # Snooze the first with a reason and a date, from the keyboard-reachable disclosure.
        first.locator("summary").filter(has_text="Snooze").click()
        form = first.get_by_test_id("snooze-form")
        form.get_by_label("Snooze until").fill("2099-01-01")  # beyond a year: refused, nothing changes
        form.get_by_label("Reason").select_option("waiting_on_customer")
        form.get_by_role("button", name="Snooze CTA").click()
        page.wait_for_load_state("load")
        assert "was not snoozed" in page.locator("#flash").inner_text()
        assert Cta.all_orgs.get(pk=first_id).snoozed_until is None
        first = page.locator(f"#cta-{first_id}")
        first.locator("summary").filter(has_text="Snooze").click()
        form = first.get_by_test_id("snooze-form")
        form.get_by_label("Reason").select_option("waiting_on_customer")
        form.get_by_role("button", name="Snooze CTA").click()
        page.wait_for_load_state("load")
        assert "snoozed." in page.locator("#flash").inner_text()
        assert page.locator(f"#cta-{first_id}").count() == 0  # out of the open queue
        assert Cta.all_orgs.get(pk=first_id).snooze_reason == "waiting_on_customer"

        # Tick a task of the second one off, then complete it with an outcome.
        second = page.locator(f"#cta-{second_id}")
        second.get_by_role("button", name="Mark done task Call the champion").click()
        page.wait_for_load_state("load")
        second = page.locator(f"#cta-{second_id}")
        assert "(done)" in second.get_by_test_id("task").first.inner_text()
        second.locator("summary").filter(has_text="Complete").click()
        form = second.get_by_test_id("complete-form")
        form.get_by_label("Outcome").select_option("resolved")
        form.get_by_label("Note").fill("Champion back on board")
        form.get_by_role("button", name="Complete CTA").click()
        page.wait_for_load_state("load")
        check_page(page)
        done = Cta.all_orgs.get(pk=second_id)
        assert (done.status, done.outcome, done.close_reason) == ("completed", "resolved", "Champion back on board")
        assert done.tasks.filter(done_at__isnull=False).count() == 1
        assert page.get_by_test_id("no-ctas").count() == 1
    finally:
        page.context.close()
