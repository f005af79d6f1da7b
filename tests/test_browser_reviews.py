"""Business reviews in real headless Chromium (issue 15, item 3): a CSM starts a QBR from Account 360, reads the
value report (charts beside their tables, the PDF link serves a PDF), and closes it with the next review's
objectives at desktop size; the list, an open report with its close form and the closed report keep their
layout at 390×844; axe-core finds nothing serious and the CSP reports nothing. The seeded organization and
Chromium come from the shared harness (tests/browser.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.browser import DESKTOP, PHONE, check_page, harness, signed_in  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser]


def _prepare(seeded) -> dict:
    """The red account in the CSM's book, with a quarter of usage and a success plan with a reading."""
    from accounts.models import Account, Objective, SuccessPlan
    from health.models import UsageMetric
    from value.reviews import default_period

    org = seeded.org
    account = Account.all_orgs.get(pk=seeded.red_account)
    account.owner = seeded.users["csm"]
    account.save()
    start, end = default_period(org)
    day, rows = start, []
    while day <= end:
        if day.day in (3, 17):
            users = 10 + (day.month % 3) * 4
            rows += [
                UsageMetric(organization=org, account=account, date=day, metric="active_users", value=users),
                UsageMetric(organization=org, account=account, date=day, metric="events", value=users * 9),
            ]
        day += dt.timedelta(days=1)
    UsageMetric.all_orgs.bulk_create(rows, ignore_conflicts=True)
    plan, _ = SuccessPlan.all_orgs.get_or_create(organization=org, account=account)
    Objective.all_orgs.get_or_create(
        organization=org, plan=plan, title="Cut first-response time",
        defaults={"customer_measure": "Median first response (hours)", "baseline": "9", "target": "4",
                  "current": "6", "progress": 60, "status": "on_track"},
    )  # fmt: skip
    return {"account": account, "start": start, "end": end}


def test_csm_starts_reads_and_closes_a_qbr_at_desktop(harness):  # noqa: F811
    from accounts.models import Activity, Objective
    from value.models import BusinessReview

    seeded = harness["seeded"]
    prepared = _prepare(seeded)
    account = prepared["account"]
    base = f"{harness['url']}/o/{seeded.org.slug}"
    page = signed_in(harness, "csm", DESKTOP)
    try:
        page.goto(f"{base}/accounts/{account.pk}/")
        panel = page.get_by_test_id("account-reviews")
        assert "No QBR or EBR yet" in panel.inner_text()
        panel.get_by_role("link", name="All reviews · start a QBR").click()
        page.wait_for_url(f"**/accounts/{account.pk}/reviews/")
        check_page(page)
        form = page.get_by_test_id("start-review")
        # The period defaults to the last full quarter.
        assert form.get_by_label("Period start").input_value() == prepared["start"].isoformat()
        assert form.get_by_label("Period end").input_value() == prepared["end"].isoformat()
        form.get_by_role("button", name="Start review").click()
        page.wait_for_url(f"**/accounts/{account.pk}/reviews/*/")
        review = BusinessReview.all_orgs.get(organization=seeded.org, account=account)

        # The report: measures, the charts each beside a table of the same numbers, and the PDF link.
        check_page(page)
        assert "Cut first-response time" in page.get_by_test_id("review-objectives").inner_text()
        usage = page.get_by_test_id("review-usage")
        assert usage.locator("svg[data-chart='usage']").count() == 1
        bars = usage.locator("svg rect[data-value]")
        table = page.get_by_test_id("usage-table").locator("tbody tr")
        assert bars.count() == table.count() == 3
        for i in range(3):
            assert table.nth(i).locator("td").first.inner_text() == bars.nth(i).get_attribute("data-value")
        assert page.get_by_test_id("review-health").locator("svg[data-chart='health']").count() == 1
        href = page.get_by_test_id("download-pdf").get_attribute("href")
        pdf = page.request.get(harness["url"] + href)
        assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.body().startswith(b"%PDF-")

        # Closing: a row with a target but no title is an inline error, and nothing is closed.
        close = page.get_by_test_id("close-review")
        close.get_by_label("Summary").fill("Reviewed adoption with the sponsor; agreed to expand to finance.")
        close.get_by_label("Target 1").fill("25")
        close.get_by_role("button", name="Close review").click()
        page.wait_for_load_state("load")
        assert "Give the objective a title" in page.get_by_test_id("close-review").inner_text()
        assert BusinessReview.all_orgs.get(pk=review.pk).status == "open"
        check_page(page)

        close = page.get_by_test_id("close-review")
        close.get_by_label("Objective 1").fill("Expand to finance")
        close.get_by_label("Customer's measure 1").fill("Finance users")
        close.get_by_label("Baseline 1").fill("0")
        close.get_by_label("Next review on").fill((dt.date.today() + dt.timedelta(days=90)).isoformat())
        close.get_by_role("button", name="Close review").click()
        page.wait_for_load_state("load")
        assert "Review closed" in page.locator("#flash").inner_text()
        assert "Expand to finance" in page.get_by_test_id("review-closed").inner_text()
        assert page.get_by_test_id("close-review").count() == 0
        check_page(page)
        review.refresh_from_db()
        frozen = {o["title"]: o["current"] for o in review.snapshot["report"]["objectives"]}
        assert review.status == "closed" and frozen["Cut first-response time"] == "6"
        logged = Activity.all_orgs.filter(account=account, type="qbr", summary__startswith="Reviewed adoption")
        assert [a.pk for a in logged] == [review.activity_id]
        assert Objective.all_orgs.filter(plan__account=account, title="Expand to finance", target="25").exists()
        page.goto(f"{base}/accounts/{account.pk}/")
        assert "Closed" in page.get_by_test_id("account-reviews").inner_text()
    finally:
        page.context.close()


def test_review_pages_at_phone_width(harness):  # noqa: F811
    from value.models import BusinessReview

    seeded = harness["seeded"]
    prepared = _prepare(seeded)
    account = prepared["account"]
    open_review = BusinessReview.all_orgs.create(
        organization=seeded.org, account=account, period_start=prepared["start"], period_end=prepared["end"],
        created_by=seeded.users["csm"],
    )  # fmt: skip
    closed = BusinessReview.all_orgs.filter(organization=seeded.org, status="closed").first()
    base = f"{harness['url']}/o/{seeded.org.slug}/accounts/{account.pk}/reviews/"
    for role in ("csm", "viewer"):
        page = signed_in(harness, role, PHONE)
        try:
            page.goto(base)
            check_page(page)
            page.goto(f"{base}{open_review.pk}/")
            check_page(page)
            has_form = page.get_by_test_id("close-review").count() == 1
            assert has_form is (role == "csm")  # a viewer reads only
            if closed is not None:
                page.goto(f"{base}{closed.pk}/")
                check_page(page)
        finally:
            page.context.close()
