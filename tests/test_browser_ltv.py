"""The lifetime value report in real headless Chromium, at desktop size and on a 390×844 phone: nothing
overflows, axe-core finds no serious violation, no CSP violation, the drill-down opens from a segment's row,
and the wallet chart carries the numbers of the table beside it."""

from __future__ import annotations

import pytest

from tests.browser import DESKTOP, PHONE, check_page, harness, signed_in  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_lifetime_value_report(harness, viewport):  # noqa: F811
    seeded = harness["seeded"]
    page = signed_in(harness, "viewer", viewport)
    try:
        page.goto(f"{harness['url']}/o/{seeded.org.slug}/reports/lifetime-value/")
        check_page(page)
        drawn = page.get_by_test_id("wallet-chart").locator("[data-value]").evaluate_all(
            "els => els.map(e => Number(e.dataset.value))")  # fmt: skip
        listed = page.get_by_test_id("wallet-table").locator("td[data-value]").evaluate_all(
            "els => els.map(e => Number(e.dataset.value))")  # fmt: skip
        assert drawn == listed
        link = page.get_by_test_id("ltv-segment-table").locator("tbody th a").first
        name = link.inner_text()
        link.click()
        page.wait_for_load_state("load")
        assert name in page.get_by_test_id("ltv-drill").inner_text()
        check_page(page)
    finally:
        page.context.close()
