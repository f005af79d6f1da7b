"""End to end in headless Chromium: an admin edits a scorecard weight in the structured editor (the
share updates as they type), previews the colour changes, saves with a note and sees the new version."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from feedback.models import SurveyResponse
from health.models import CsmPulse, Scorecard
from health.services import recompute_health
from tests.browser import admin  # noqa: F401  (fixture)
from tests.factories import AccountFactory
from tests.test_browser import PASSWORD, SCREENSHOTS, browser_page  # noqa: F401  (fixture)

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def promoter(org):
    """Green today: a yellow pulse (50, weight 10) and an NPS of 100 (100, weight 15) → 80."""
    account = AccountFactory(organization=org, name="Promoter Inc", arr=Decimal("7000"))
    now = timezone.now()
    CsmPulse.all_orgs.create(organization=org, account=account, color="yellow", created_at=now)
    SurveyResponse.all_orgs.create(organization=org, account=account, kind="nps", score=10, responded_at=now)
    recompute_health(org, as_of=timezone.localdate(), latest=True)
    return account


def test_edit_weight_preview_and_save(org, admin, promoter, live_server, browser_page):  # noqa: F811
    page, requests = browser_page
    page.goto(live_server.url + "/login/")
    page.get_by_label("Email or username").fill(admin.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/o/{org.slug}/")
    card = Scorecard.all_orgs.get(organization=org, is_default=True)
    page.goto(f"{live_server.url}/o/{org.slug}/admin/scorecards/{card.pk}/")

    nps_row = page.get_by_test_id("component-3")
    sync_api.expect(nps_row.get_by_test_id("share-3")).to_have_text("15.0%")
    weight = page.get_by_label("Weight of Sentiment (NPS)")
    weight.fill("0")  # NPS no longer counts: the pulse alone scores 50, yellow
    sync_api.expect(nps_row.get_by_test_id("share-3")).to_have_text("0.0%")  # recomputed as typed
    sync_api.expect(page.get_by_test_id("share-0")).to_have_text(f"{25 / 85 * 100:.1f}%")
    # Only the chosen function's parameters are visible (the others wait, hidden, with their values).
    sync_api.expect(page.get_by_label("Value scoring 100 (Sentiment (NPS))")).to_be_visible()
    sync_api.expect(page.get_by_label("Band 1 threshold of Financial")).to_be_visible()
    sync_api.expect(page.get_by_label("Value scoring 0 (Financial)")).to_be_hidden()

    page.get_by_role("button", name="Preview colour changes").click()
    preview = page.get_by_test_id("preview")
    sync_api.expect(page.get_by_test_id("preview-changing")).to_have_text("1")
    changes = page.get_by_test_id("preview-changes")
    sync_api.expect(changes.get_by_role("row").filter(has_text="Green")).to_contain_text("Yellow")  # labelled pills
    sync_api.expect(preview.get_by_test_id("preview-examples")).to_contain_text("Promoter Inc")
    sync_api.expect(page.get_by_label("Weight of Sentiment (NPS)")).to_have_value("0")  # form state kept
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "scorecard_editor_preview.png"), full_page=True)

    page.get_by_label("What changed").fill("NPS paused while the survey is redesigned")
    page.get_by_role("button", name="Publish", exact=True).click()
    versions = page.get_by_test_id("versions")
    sync_api.expect(versions.get_by_role("row").filter(has_text="v2")).to_contain_text(
        "NPS paused while the survey is redesigned"
    )
    sync_api.expect(versions.get_by_role("row").filter(has_text="v2")).to_contain_text("current")
    card.refresh_from_db()
    assert card.current_version.number == 2
    assert card.current_version.definition["components"][3]["weight"] == 0
    # Keyboard: Enter in any field previews (never saves).
    page.get_by_label("Weight of Adoption").fill("30")
    page.get_by_label("Weight of Adoption").press("Enter")
    sync_api.expect(page.get_by_test_id("preview")).to_be_visible()
    sync_api.expect(page.get_by_label("Weight of Adoption")).to_have_value("30")
    card.refresh_from_db()
    assert card.current_version.number == 2
    assert not [url for url in requests if not url.startswith(live_server.url)]  # no CDN
    assert any(url.endswith("/static/js/scorecard_editor.js") for url in requests)
