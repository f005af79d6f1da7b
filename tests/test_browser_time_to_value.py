"""The time-to-value report and Portfolio's onboarding section in headless Chromium at 390x844 and 1440x900:
no sideways scroll, title uncovered, axe-core clean, no CSP violation; a drill-down opens the accounts behind
a figure (tests/browser.py's harness: one seeded organization with onboarding projects)."""

from __future__ import annotations

import pytest

from tests.browser import DESKTOP, PHONE, check_page, harness, signed_in  # noqa: F401

pytestmark = [pytest.mark.browser]


@pytest.mark.parametrize("role,viewport", [("leader", PHONE), ("viewer", PHONE), ("csm", DESKTOP)])
def test_report_and_portfolio_section_work_at_phone_and_desktop_width(harness, role, viewport):  # noqa: F811
    slug = harness["seeded"].org.slug
    page = signed_in(harness, role, viewport)
    try:
        page.goto(f"{harness['url']}/o/{slug}/portfolio/", wait_until="load")
        section = page.get_by_test_id("portfolio-onboarding")
        assert "Onboarding accounts" in section.inner_text()
        check_page(page)
        section.get_by_test_id("ttv-report-link").click()
        page.wait_for_url(f"**/o/{slug}/reports/time-to-value/")
        assert page.get_by_role("heading", name="Time to value", level=1).is_visible()
        check_page(page)
        page.get_by_test_id("tile-at-risk").click()
        page.wait_for_url("**show=at_risk**")
        drill = page.get_by_test_id("ttv-drill")
        assert drill.get_by_role("link").count() >= 1  # the stalled project's account, linked to its page
        check_page(page)
    finally:
        page.context.close()
