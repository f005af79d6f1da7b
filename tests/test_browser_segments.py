"""End to end in headless Chromium: an admin builds a segment in the editor and sees its live count and
sample change as they choose conditions, before saving; saving stores it and its members are refreshed.
Also at 390×844 (phone): the editor fits and axe finds nothing (the screen walk covers both widths too)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from accounts.models import Account, Segment
from tests.browser import AXE, AXE_RUN, admin, sign_in  # noqa: F401  (fixture: admin)
from tests.factories import AccountFactory
from tests.test_browser import browser_page  # noqa: F401  (fixture)

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def book(org):
    for name, arr, region in [("Globex", "900000", "EMEA"), ("Initech", "300000", "EMEA"),
                              ("Umbrella", "250000", "NA"), ("Tiny", "1000", "EMEA")]:  # fmt: skip
        account = AccountFactory(organization=org, name=name, region=region)
        Account.all_orgs.filter(pk=account.pk).update(arr=Decimal(arr))


def test_build_a_segment_and_see_its_live_count_before_saving(org, admin, book, live_server, browser_page):  # noqa: F811
    page, requests = browser_page
    sign_in(page, live_server, org, admin)
    page.goto(f"{live_server.url}/o/{org.slug}/admin/segments/")
    page.get_by_test_id("new-segment").click()
    page.get_by_label("Name", exact=True).fill("EMEA enterprise")

    page.get_by_label("Field 1").select_option("arr")
    page.get_by_label("Condition 1").select_option("gte")
    page.get_by_label("Value 1").fill("200000")
    count = page.get_by_test_id("preview-count")
    sync_api.expect(count).to_have_text("3")  # live, nothing saved yet
    assert not Segment.all_orgs.filter(name="EMEA enterprise").exists()

    page.get_by_label("Field 2").select_option("region")
    page.get_by_label("Condition 2").select_option("eq")
    page.get_by_label("Value 2").fill("EMEA")
    sync_api.expect(count).to_have_text("2")
    sample = page.get_by_test_id("preview-sample")
    sync_api.expect(sample.locator("tbody tr").first).to_contain_text("Globex")  # the first by ARR
    sync_api.expect(sample.locator("tbody tr")).to_have_count(2)

    page.get_by_test_id("save-segment").click()
    page.wait_for_url("**/admin/segments/*/")
    segment = Segment.all_orgs.get(organization=org, name="EMEA enterprise")
    assert segment.rules["conditions"] == [
        {"field": "arr", "op": "gte", "value": "200000"},
        {"field": "region", "op": "eq", "value": "EMEA"},
    ]
    sync_api.expect(page.get_by_test_id("preview-count")).to_have_text("2")  # the saved rules, shown again
    assert all(url.startswith(live_server.url) for url in requests)


def test_the_editor_at_phone_width_fits_and_passes_axe(org, admin, book, live_server, browser_page):  # noqa: F811
    page, _ = browser_page
    sign_in(page, live_server, org, admin)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/o/{org.slug}/admin/segments/new/")
    page.get_by_label("Field 1").select_option("health_color")
    page.get_by_label("Condition 1").select_option("is_empty")
    sync_api.expect(page.get_by_test_id("preview-count")).to_have_text("4")
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width
    page.evaluate(AXE.read_text())  # evaluated by the harness's way: not an inline script, so CSP allows it
    result = page.evaluate(AXE_RUN)
    assert result == [], json.dumps(result, indent=1)
