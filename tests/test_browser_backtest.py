"""Scorecard backtests in real headless Chromium: the scorecard page's backtest section and the backtests page
(start, compare) at desktop size and on a 390×844 phone — nothing overflows, axe-core finds no serious
violation, no CSP violation, and the charts carry the numbers of the tables beside them."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from tests.browser import DESKTOP, PHONE, check_page, harness, signed_in  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser]
DUE = dt.date(2026, 6, 30)


def _backtests(org):
    """Two finished backtests of the default scorecard: a useful version and a poor one."""
    from health.defaults import ensure_default_scorecard
    from health.services import save_scorecard_version
    from renewals.backtest import run_backtest
    from renewals.models import Backtest
    from tests.backtest_builders import Row, build_history, one_component

    rng = np.random.default_rng(4)
    rows = [Row({"a": float(x), "b": float(y)}, "churned" if x < 35 else "renewed", DUE + dt.timedelta(days=i))
            for i, (x, y) in enumerate(rng.uniform(0, 100, (60, 2)))]  # fmt: skip
    build_history(org, rows, prefix="BRW")
    card = ensure_default_scorecard(org.pk)
    out = []
    for definition in ({"components": [one_component("a")]},
                       {"components": [one_component("a", 10), one_component("b", 90)]}):  # fmt: skip
        version = save_scorecard_version(card, definition, user=None, note="browser test")
        backtest = Backtest.all_orgs.create(organization=org, scorecard=card, scorecard_version=version,
                                            date_from=DUE, date_to=DUE + dt.timedelta(days=90))  # fmt: skip
        run_backtest(org, backtest)
        out.append(backtest)
    return card, out


def _same_numbers(page, chart, table):
    drawn = [float(v) for v in page.get_by_test_id(chart).locator("[data-value]").evaluate_all(
        "els => els.map(e => e.dataset.value)")]  # fmt: skip
    listed = [float(v) for v in page.get_by_test_id(table).locator("td[data-value]").evaluate_all(
        "els => els.map(e => e.dataset.value)") if v and float(v)]  # fmt: skip
    assert drawn == listed and drawn


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_backtest_section_and_page(harness, viewport):  # noqa: F811
    seeded = harness["seeded"]
    card, (first, second) = _backtests(seeded.org) if viewport is DESKTOP else _existing(seeded.org)
    base = f"{harness['url']}/o/{seeded.org.slug}"
    page = signed_in(harness, "admin", viewport)
    try:
        page.goto(f"{base}/admin/scorecards/{card.pk}/")
        section = page.get_by_test_id("scorecard-backtest")
        section.scroll_into_view_if_needed()
        check_page(page)
        _same_numbers(page, "bt-band-chart", "bt-band-table")
        _same_numbers(page, "bt-calibration-chart", "bt-calibration-table")
        section.get_by_test_id("backtests-link").click()
        page.wait_for_load_state("load")
        check_page(page)
        page.get_by_label(f"Compare backtest {first.pk} (v{first.scorecard_version.number})").check()
        page.get_by_label(f"Compare backtest {second.pk} (v{second.scorecard_version.number})").check()
        page.get_by_role("button", name="Compare the two ticked").click()
        page.wait_for_load_state("load")
        compare = page.get_by_test_id("backtest-compare")
        assert str(first.result["auc"]) in compare.inner_text() and str(second.result["auc"]) in compare.inner_text()
        check_page(page)
        page.goto(f"{base}/admin/scorecards/{card.pk}/backtests/?shown={first.pk}")
        check_page(page)
    finally:
        page.context.close()


def _existing(org):
    from health.defaults import ensure_default_scorecard
    from renewals.models import Backtest

    card = ensure_default_scorecard(org.pk)
    return card, list(Backtest.all_orgs.filter(organization=org).order_by("pk"))


def test_leader_reads_backtests_on_a_phone(harness):  # noqa: F811
    seeded = harness["seeded"]
    card, backtests = _existing(seeded.org)
    page = signed_in(harness, "leader", PHONE)
    try:
        page.goto(f"{harness['url']}/o/{seeded.org.slug}/admin/scorecards/{card.pk}/backtests/?shown={backtests[0].pk}")
        assert page.get_by_test_id("backtest-form").count() == 0
        assert page.get_by_test_id(f"backtest-result-{backtests[0].pk}").count() == 1
        check_page(page)
    finally:
        page.context.close()
