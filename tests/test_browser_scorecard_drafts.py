"""Issue 14 acceptance (configuration as drafts), end to end in headless Chromium: an admin changes a
scorecard as a draft (no score moves), reads its field-by-field diff and preview, publishes it with a note
(the next recompute scores with it), rolls it back (the next recompute restores the previous scores), and
both changes show on the account's health history chart and its table, and in Admin → Audit log. The
editor, Account 360 and the audit log pass check_page at 1440×900 and 390×844."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from health.models import CsmPulse, HealthScore, Scorecard
from health.services import recompute_health
from tests.browser import DESKTOP, PHONE, admin, check_page, sign_in  # noqa: F401  (fixture: admin)
from tests.factories import AccountFactory
from tests.test_browser import SCREENSHOTS, browser_page  # noqa: F401  (fixture)

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def steady(org):
    """Yellow for the last four days: a yellow pulse (50 points) is its only signal."""
    account = AccountFactory(organization=org, name="Steady Co", arr=Decimal("24000"))
    CsmPulse.all_orgs.create(
        organization=org, account=account, color="yellow", created_at=timezone.now() - dt.timedelta(days=10)
    )
    today = timezone.localdate()
    for days_ago in (3, 2, 1):
        recompute_health(org, as_of=today - dt.timedelta(days=days_ago), latest=False)
    recompute_health(org, as_of=today, latest=True)
    return account


def score(account) -> tuple[Decimal | None, str]:
    row = HealthScore.all_orgs.get(account=account)
    return row.score, row.color


def test_draft_publish_rollback_restores_scores_and_marks_the_chart(
    org,
    admin,  # noqa: F811
    steady,
    live_server,
    browser_page,  # noqa: F811
):
    page, requests = browser_page
    sign_in(page, live_server, org, admin)
    card = Scorecard.all_orgs.get(organization=org, is_default=True)
    editor = f"{live_server.url}/o/{org.slug}/admin/scorecards/{card.pk}/"
    before = score(steady)
    assert before == (Decimal("50.0"), "yellow")

    # 1. A draft: a yellow pulse is worth 90 points. Saved, diffed field by field; no score moves.
    page.goto(editor)
    page.get_by_label("Category 2 points of CSM pulse").fill("90")
    page.get_by_role("button", name="Save draft").click()
    draft = page.get_by_test_id("draft")
    sync_api.expect(draft).to_contain_text("Draft version 2")
    change = page.get_by_test_id("draft-diff").locator('tr[data-path="components[csm_pulse].function.points.yellow"]')
    sync_api.expect(change).to_contain_text("changed")
    sync_api.expect(change.locator("td").nth(2)).to_have_text("50")
    sync_api.expect(change.locator("td").nth(3)).to_have_text("90")
    sync_api.expect(page.get_by_test_id("draft-diff").locator("tbody tr")).to_have_count(1)
    recompute_health(org, latest=True)
    assert score(steady) == before  # drafts never score
    assert Scorecard.all_orgs.get(pk=card.pk).current_version.number == 1

    # 2. Its preview: Steady Co would turn green, with its ARR.
    page.get_by_test_id("draft-preview-link").click()
    sync_api.expect(page.get_by_test_id("draft-preview-changing")).to_have_text("1")
    sync_api.expect(page.get_by_test_id("draft-preview-examples")).to_contain_text("Steady Co")
    check_page(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.get_by_test_id("draft").screenshot(path=str(SCREENSHOTS / "scorecard_draft.png"))

    # 3. Publishing needs a note; then the next recompute scores with it.
    page.get_by_role("button", name="Publish version 2").click()
    sync_api.expect(page.locator(".flash-error")).to_contain_text("write a note")
    assert Scorecard.all_orgs.get(pk=card.pk).current_version.number == 1
    page.get_by_label("Why publish it").fill("A yellow pulse is not a risk on its own")
    page.get_by_role("button", name="Publish version 2").click()
    versions = page.get_by_test_id("versions")
    sync_api.expect(versions.locator('tr[data-version="2"]')).to_have_attribute("data-state", "published")
    sync_api.expect(versions.locator('tr[data-version="2"]')).to_contain_text("A yellow pulse is not a risk")
    sync_api.expect(page.get_by_test_id("draft")).to_have_count(0)
    recompute_health(org, latest=True)
    assert score(steady) == (Decimal("90.0"), "green")

    # 4. Roll back (confirmed): a new version 3 copying version 1; the next recompute restores the scores.
    page.get_by_label("Why roll back").fill("Leadership wants yellow pulses flagged again")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Roll back to version 1").click()
    sync_api.expect(versions.locator('tr[data-version="3"]')).to_have_attribute("data-state", "published")
    sync_api.expect(versions.locator('tr[data-version="3"]')).to_contain_text("rollback to v1")
    sync_api.expect(versions.locator('tr[data-version="2"]')).to_have_attribute("data-state", "superseded")
    current = Scorecard.all_orgs.get(pk=card.pk).current_version
    assert (current.number, current.restores.number) == (3, 1)
    recompute_health(org, latest=True)
    assert score(steady) == before

    # 5. Both changes on the account's health chart (a numbered marker with its label) and in its table.
    page.goto(f"{live_server.url}/o/{org.slug}/accounts/{steady.pk}/")
    marker = page.locator("svg.score-chart g.scorecard-change")
    sync_api.expect(marker).to_have_count(1)  # both on today's date: one marker naming both
    sync_api.expect(marker).to_have_attribute("data-date", timezone.localdate().isoformat())
    label = marker.get_attribute("data-label")
    assert "Default v2 published" in label and "Default v3 rolled back to v1" in label
    assert "scorecard changed on" in page.locator("svg.score-chart").get_attribute("aria-label")
    sync_api.expect(page.get_by_test_id("scorecard-changes")).to_contain_text("Default v3 rolled back to v1")
    page.get_by_test_id("health-history-table").locator("summary").click()
    today_row = page.get_by_test_id("health-history-table").locator(f'tr[data-date="{timezone.localdate()}"]')
    sync_api.expect(today_row).to_contain_text("50.0")
    sync_api.expect(today_row.get_by_test_id("history-change")).to_contain_text("Default v2 published")
    sync_api.expect(today_row.get_by_test_id("history-change")).to_contain_text("Default v3 rolled back to v1")
    check_page(page)
    page.get_by_test_id("health-panel").screenshot(path=str(SCREENSHOTS / "health_chart_scorecard_changes.png"))

    # 6. The audit log lists both, with their notes and the field that changed.
    page.goto(f"{live_server.url}/o/{org.slug}/admin/audit/")
    entries = page.get_by_test_id("audit-entries")
    sync_api.expect(entries.locator('li[data-action="scorecard.published"]')).to_contain_text(
        "A yellow pulse is not a risk on its own"
    )
    rolled = entries.locator('li[data-action="scorecard.rolled_back"]')
    sync_api.expect(rolled).to_contain_text("Leadership wants yellow pulses flagged again")
    rolled.locator("summary").click()
    sync_api.expect(rolled).to_contain_text("components[csm_pulse].function.points.yellow")
    check_page(page)
    page.get_by_label("Action").select_option("scorecard.rolled_back")
    page.get_by_role("button", name="Apply").click()
    sync_api.expect(page.get_by_test_id("audit-entries").locator("li")).to_have_count(1)

    # 7. The same screens at phone width.
    page.set_viewport_size(PHONE)
    for path in (f"/o/{org.slug}/admin/scorecards/{card.pk}/", f"/o/{org.slug}/accounts/{steady.pk}/",
                 f"/o/{org.slug}/admin/audit/"):  # fmt: skip
        page.goto(live_server.url + path)
        check_page(page)
    page.screenshot(path=str(SCREENSHOTS / "audit_log_phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    assert all(url.startswith(live_server.url) for url in requests)
