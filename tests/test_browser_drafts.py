"""End to end in headless Chromium, per kind of configuration: an admin saves a draft in the editor (nothing
changes live), sees the diff field by field and the preview, publishes with a note, then rolls back from the
history. The version page and the editor are checked at desktop width and at 390×844 (fits, axe, CSP)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import Account, Segment
from cs_platform.models import AuditEntry
from playbooks.models import Playbook
from tests.browser import admin, check_page, sign_in  # noqa: F401  (fixture: admin)
from tests.factories import AccountFactory
from tests.test_browser import browser_page  # noqa: F401  (fixture)

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BIG = {"match": "all", "conditions": [{"field": "arr", "op": "gte", "value": "200000"}]}


@pytest.fixture
def book(org):
    for name, arr in [("Globex", "900000"), ("Initech", "300000"), ("Umbrella", "120000"), ("Tiny", "1000")]:
        account = AccountFactory(organization=org, name=name)
        Account.all_orgs.filter(pk=account.pk).update(arr=Decimal(arr))


def check_both_widths(page) -> None:
    check_page(page)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    check_page(page)
    page.set_viewport_size({"width": 1440, "height": 900})


def publish_then_roll_back(page) -> None:
    """On a draft's version page: publish with a note, then roll back from the editor's history."""
    page.get_by_test_id("publish").click()  # the note is required: the browser refuses an empty one
    assert page.get_by_label("What changes and why").evaluate("el => el.validity.valueMissing")
    page.get_by_label("What changes and why").fill("Mid-market too")
    page.get_by_test_id("publish").click()
    page.wait_for_url("**/")
    sync_api.expect(page.get_by_test_id("version-2").get_by_test_id("version-state")).to_have_text("Published (live)")
    sync_api.expect(page.get_by_test_id("version-1").get_by_test_id("version-state")).to_have_text("Superseded")
    page.get_by_label("Why roll back").fill("Too wide")
    page.get_by_test_id("rollback").click()
    page.wait_for_url("**/")
    sync_api.expect(page.get_by_test_id("version-3").get_by_test_id("version-state")).to_have_text("Published (live)")


def test_segment_draft_diff_publish_rollback(org, admin, book, live_server, browser_page):  # noqa: F811
    page, requests = browser_page
    segment = Segment.all_orgs.create(organization=org, name="Big", rules=BIG)
    sign_in(page, live_server, org, admin)
    page.goto(f"{live_server.url}/o/{org.slug}/admin/segments/{segment.pk}/")
    page.get_by_label("Value 1").fill("100000")
    page.get_by_test_id("save-draft").click()
    page.wait_for_url("**/versions/2/")
    segment.refresh_from_db()
    assert segment.rules == BIG  # a draft changes nothing live

    diff = page.get_by_test_id("version-diff")
    sync_api.expect(diff.get_by_test_id("diff-row")).to_have_count(1)
    sync_api.expect(diff).to_contain_text("rules.conditions[0].value")
    sync_api.expect(diff).to_contain_text("200000")
    sync_api.expect(page.get_by_test_id("version-preview-count")).to_have_text("3")
    sync_api.expect(page.get_by_test_id("preview-entering")).to_contain_text("1")
    sync_api.expect(page.get_by_test_id("preview-entering-sample")).to_contain_text("Umbrella")
    check_both_widths(page)

    publish_then_roll_back(page)
    segment.refresh_from_db()
    assert segment.rules == BIG
    assert list(AuditEntry.all_orgs.filter(organization=org).order_by("pk").values_list("action", flat=True)) == [
        "segment.published",
        "segment.rolled_back",
    ]
    check_both_widths(page)  # the editor with its history
    assert all(url.startswith(live_server.url) for url in requests)


def test_playbook_draft_diff_publish_rollback(org, admin, book, live_server, browser_page):  # noqa: F811
    page, _ = browser_page
    playbook = Playbook.all_orgs.create(
        organization=org,
        name="Big accounts",
        trigger="account_created",
        conditions=BIG,
        actions=[{"kind": "open_cta", "type": "risk", "reason": "health_red", "assignee": "owner", "tasks": []}],
    )  # fmt: skip  (the actions as the editor writes them: its defaults explicit)
    sign_in(page, live_server, org, admin)
    page.goto(f"{live_server.url}/o/{org.slug}/admin/playbooks/{playbook.pk}/")
    page.get_by_label("Cooldown", exact=False).first.fill("30")
    page.get_by_test_id("save-draft").click()
    page.wait_for_url("**/versions/2/")
    playbook.refresh_from_db()
    assert playbook.cooldown_days == 0  # the engine keeps the published playbook

    diff = page.get_by_test_id("version-diff")
    sync_api.expect(diff.get_by_test_id("diff-row")).to_have_count(1)
    sync_api.expect(diff).to_contain_text("cooldown_days")
    sync_api.expect(page.get_by_test_id("version-preview-count")).to_have_text("2")
    check_both_widths(page)

    publish_then_roll_back(page)
    playbook.refresh_from_db()
    assert playbook.cooldown_days == 0
    assert AuditEntry.all_orgs.filter(organization=org, action="playbook.published", note="Mid-market too").exists()
    assert AuditEntry.all_orgs.filter(organization=org, action="playbook.rolled_back").exists()
    check_both_widths(page)
