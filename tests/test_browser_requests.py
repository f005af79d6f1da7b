"""Feature requests in real headless Chromium (issue 13 §5): a CSM adds a request from Account 360 on a phone
and finds it on the board; an admin changes a request's status and merges a duplicate at desktop size; the
board, the request page and the integrations page keep their layout, and axe-core finds no serious violation.
The seeded organization and Chromium come from the shared harness (tests/browser.py)."""

from __future__ import annotations

import pytest

from tests.browser import DESKTOP, PHONE, check_page, harness, signed_in  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser]


def test_csm_adds_a_request_from_account_360_on_a_phone(harness):  # noqa: F811
    from feedback.models_requests import FeatureRequest, FeatureRequestLink

    seeded = harness["seeded"]
    base = f"{harness['url']}/o/{seeded.org.slug}"
    page = signed_in(harness, "csm", PHONE)
    try:
        page.goto(f"{base}/accounts/{seeded.red_account}/")
        panel = page.get_by_test_id("account-requests")
        assert "Usage report times out" in panel.inner_text()
        panel.locator("summary").filter(has_text="Add a feature request").click()
        form = panel.get_by_test_id("account-request-form")
        check_page(page)
        form.get_by_label("Or a new request: title").fill("Bulk export of timelines")
        form.get_by_label("Importance").select_option("critical")
        form.get_by_label("Comment").fill("Their auditors need it before renewal")
        form.get_by_role("button", name="Add").click()
        page.wait_for_load_state("load")
        assert "is linked to" in page.locator("#flash").inner_text()
        fr = FeatureRequest.all_orgs.get(organization=seeded.org, title="Bulk export of timelines")
        link = FeatureRequestLink.all_orgs.get(request=fr)
        assert (link.account_id, link.importance, link.requested_by_id) == (
            seeded.red_account,
            "critical",
            seeded.users["csm"].pk,
        )
        assert "Bulk export of timelines" in page.get_by_test_id("account-requests").inner_text()

        page.goto(f"{base}/voice/requests/")
        check_page(page)
        table = page.get_by_test_id("requests-table")
        assert "Bulk export of timelines" in table.inner_text()
        filters = page.get_by_role("search", name="Filter feature requests")
        filters.get_by_label("Type").select_option("bug")
        filters.get_by_role("button", name="Apply").click()
        page.wait_for_load_state("load")
        rows = page.get_by_test_id("requests-table").locator("tbody tr")
        assert rows.count() == 1 and "Usage report times out" in rows.first.inner_text()
        rows.first.get_by_role("link").click()
        page.wait_for_load_state("load")
        check_page(page)
        assert "ZD-1001" in page.get_by_test_id("request-tickets").inner_text()
        assert page.get_by_test_id("status-form").count() == 0  # a CSM does not decide the status
    finally:
        page.context.close()


def test_admin_ships_a_request_and_merges_a_duplicate_at_desktop(harness):  # noqa: F811
    from feedback.models_requests import FeatureRequest

    seeded = harness["seeded"]
    base = f"{harness['url']}/o/{seeded.org.slug}"
    page = signed_in(harness, "admin", DESKTOP)
    try:
        page.goto(f"{base}/voice/requests/{seeded.feature_request}/")
        check_page(page)
        form = page.get_by_test_id("status-form")
        form.get_by_label("Status").select_option("shipped")
        form.get_by_label("Note").fill("Released in 4.2")
        form.get_by_role("button", name="Change status").click()
        page.wait_for_load_state("load")
        assert "linked accounts' CSMs are notified" in page.locator("#flash").inner_text()
        assert FeatureRequest.all_orgs.get(pk=seeded.feature_request).status == "shipped"
        assert "Shipped" in page.get_by_test_id("request-meta").inner_text()
        assert "Released in 4.2" in page.get_by_test_id("request-history").inner_text()

        page.goto(f"{base}/voice/requests/")
        page.get_by_role("link", name="Bulk export of timelines").click() if page.get_by_role(
            "link", name="Bulk export of timelines"
        ).count() else page.get_by_role("link", name="SSO with Okta").click()
        page.wait_for_load_state("load")
        duplicate_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
        merge = page.get_by_test_id("merge-form")
        merge.get_by_label("Merge this request into").select_option(str(seeded.feature_request))
        page.once("dialog", lambda dialog: dialog.accept())
        merge.get_by_role("button", name="Merge").click()
        page.wait_for_load_state("load")
        assert "every account link moved there" in page.locator("#flash").inner_text()
        assert FeatureRequest.all_orgs.get(pk=duplicate_id).merged_into_id == seeded.feature_request
        check_page(page)

        page.goto(f"{base}/admin/integrations/")
        check_page(page)
        assert "Unsigned request." in page.get_by_test_id("inbound-log").inner_text()
    finally:
        page.context.close()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_viewer_reads_the_board_and_a_request_without_forms(harness, size):  # noqa: F811
    seeded = harness["seeded"]
    base = f"{harness['url']}/o/{seeded.org.slug}"
    page = signed_in(harness, "viewer", DESKTOP if size == "desktop" else PHONE)
    try:
        page.goto(f"{base}/voice/requests/")
        check_page(page)
        assert page.get_by_test_id("new-request").count() == 0
        page.goto(f"{base}/voice/requests/{seeded.feature_request}/")
        check_page(page)
        assert page.get_by_test_id("link-form").count() == 0 and page.get_by_test_id("merge-form").count() == 0
    finally:
        page.context.close()
