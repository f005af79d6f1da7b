"""Issue 12 acceptance, end to end in headless Chromium: an admin builds a segment in the editor and sees its
live count, creates a playbook on it (renewal due in 90 days → open a renewal-prep CTA with a task for the
account owner), previews it and sees how many CTAs it would open (nothing written), activates it; the engine
runs as the beat runs it; the admin completes the resulting task in the work queue and sees it done. The
editor and the list at 390×844 keep their layout, and axe-core finds no serious violation on the way."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Account, Segment
from playbooks.models import Cta, CtaTask, Playbook
from tests.browser import admin, check_page, sign_in  # noqa: F401  (fixture: admin)
from tests.factories import AccountFactory, ContractFactory
from tests.renewal_factories import RenewalFactory
from tests.test_browser import browser_page  # noqa: F401  (fixture)

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def book(org, admin):  # noqa: F811
    """Four accounts owned by the admin; all but Tiny renew in 60 days."""
    today = timezone.localdate()
    for name, arr, region, renews in [("Globex", "900000", "EMEA", 60), ("Initech", "300000", "EMEA", 60),
                                      ("Umbrella", "250000", "NA", 60), ("Tiny", "1000", "EMEA", None)]:  # fmt: skip
        account = AccountFactory(organization=org, name=name, region=region, owner=admin)
        if renews is not None:
            contract = ContractFactory(organization=org, account=account, end_date=today + dt.timedelta(days=renews))
            RenewalFactory(contract=contract)
        Account.all_orgs.filter(pk=account.pk).update(arr=Decimal(arr))


def test_segment_to_playbook_to_done_task(org, admin, book, live_server, browser_page):  # noqa: F811
    from playbooks.engine import evaluate_organization

    page, requests = browser_page
    csp: list[str] = []
    page.on("console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None)
    sign_in(page, live_server, org, admin)

    # 1. A segment, built in the editor, with its live count before saving.
    page.goto(f"{live_server.url}/o/{org.slug}/admin/segments/new/")
    page.get_by_label("Name", exact=True).fill("EMEA enterprise")
    page.get_by_label("Field 1").select_option("arr")
    page.get_by_label("Condition 1").select_option("gte")
    page.get_by_label("Value 1").fill("200000")
    page.get_by_label("Field 2").select_option("region")
    page.get_by_label("Condition 2").select_option("eq")
    page.get_by_label("Value 2").fill("EMEA")
    sync_api.expect(page.get_by_test_id("preview-count")).to_have_text("2")
    page.get_by_test_id("save-segment").click()
    page.wait_for_url("**/admin/segments/*/")
    segment = Segment.all_orgs.get(organization=org, name="EMEA enterprise")

    # 2. "Create a playbook on this segment": the editor opens with the segment filter set.
    page.get_by_test_id("segment-new-playbook").click()
    page.wait_for_url("**/admin/playbooks/new/?segment=*")
    sync_api.expect(page.get_by_label("Only accounts in segment")).to_have_value(str(segment.pk))
    check_page(page)
    page.get_by_label("Name", exact=True).fill("EMEA renewal prep")
    page.get_by_label("Trigger").select_option("renewal_due")
    days = page.locator("#id_tp_renewal_due_days")
    sync_api.expect(days).to_be_visible()  # the script opened the chosen trigger's parameters
    days.fill("90")
    page.locator("#id_a0-kind").select_option("open_cta")
    page.locator("#id_a0-cta_reason").select_option("lifecycle/renewal_prep")
    page.locator("#id_a0-task0_title").fill("Book the renewal call")
    page.locator("#id_a0-task0_due_in_days").fill("7")
    page.locator("#id_a0-task0_assignee").select_option("owner")
    # Preview before saving: how many CTAs it would open; nothing saved, nothing written.
    page.get_by_test_id("preview-changes").click()
    sync_api.expect(page.get_by_test_id("preview-draft")).to_be_visible()
    sync_api.expect(page.get_by_test_id("preview-ctas-to-open")).to_have_text("2")
    assert not Playbook.all_orgs.exists() and not Cta.all_orgs.exists()
    page.get_by_test_id("save-playbook").click()

    # 3. Saved inactive; the preview says what it would do, and nothing was done.
    page.wait_for_url("**/admin/playbooks/*/?preview=1*")
    playbook = Playbook.all_orgs.get(organization=org, name="EMEA renewal prep")
    assert (playbook.active, playbook.segment_id, playbook.trigger_params) == (False, segment.pk, {"days": 90})
    sync_api.expect(page.get_by_test_id("playbook-status")).to_have_text("Inactive")
    sync_api.expect(page.get_by_test_id("preview-matching")).to_have_text("2")
    sync_api.expect(page.get_by_test_id("preview-ctas-to-open")).to_have_text("2")
    sample = page.get_by_test_id("preview-sample")
    sync_api.expect(sample.locator("tbody tr").first).to_contain_text("Globex")
    sync_api.expect(sample).not_to_contain_text("Umbrella")  # renews, but not in the segment
    assert not Cta.all_orgs.exists()
    check_page(page)

    # 4. Activate; the engine evaluates as the beat does (playbooks.tasks.evaluate_playbooks).
    page.get_by_test_id("toggle-active").click()
    sync_api.expect(page.get_by_test_id("playbook-status")).to_have_text("Active")
    playbook.refresh_from_db()
    assert playbook.active
    evaluate_organization(org.pk)
    ctas = Cta.all_orgs.filter(organization=org, source="playbook", source_ref=str(playbook.pk))
    assert sorted(ctas.values_list("account__name", flat=True)) == ["Globex", "Initech"]
    task = CtaTask.all_orgs.get(cta__account__name="Globex")
    assert (task.title, task.assignee_id) == ("Book the renewal call", admin.pk)
    evaluate_organization(org.pk)  # the next evaluation: once per renewal
    assert ctas.count() == 2

    # 5. The work queue: complete the task, see it done.
    page.goto(f"{live_server.url}/o/{org.slug}/work/")
    card = page.get_by_test_id("cta-card").filter(has_text="Globex")
    card.get_by_role("button", name="Mark done task Book the renewal call").click()
    page.wait_for_load_state("load")
    card = page.get_by_test_id("cta-card").filter(has_text="Globex")
    sync_api.expect(card.get_by_test_id("task").first).to_contain_text("(done)")
    task.refresh_from_db()
    assert task.done_at is not None

    # The list counts the firings.
    page.goto(f"{live_server.url}/o/{org.slug}/admin/playbooks/")
    row = page.get_by_test_id("playbook-row").filter(has_text="EMEA renewal prep")
    sync_api.expect(row).to_contain_text("Renewal due in N days (days: 90)")
    sync_api.expect(row.locator("td").nth(4)).to_have_text("2")
    assert all(url.startswith(live_server.url) for url in requests)
    assert csp == []


def test_editor_and_list_at_phone_width(org, admin, book, live_server, browser_page):  # noqa: F811
    page, _ = browser_page
    sign_in(page, live_server, org, admin)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/o/{org.slug}/admin/playbooks/new/")
    page.locator("#id_a0-kind").select_option("open_cta")  # the widest group open
    page.get_by_label("Trigger").select_option("health_color")
    check_page(page)
    # A refused save: the per-field messages fit too, and are announced.
    page.get_by_test_id("save-playbook").click()
    page.wait_for_load_state("load")
    sync_api.expect(page.get_by_test_id("editor-errors")).to_be_visible()
    sync_api.expect(page.locator(".field-error").first).to_be_visible()
    check_page(page)
    page.goto(f"{live_server.url}/o/{org.slug}/admin/playbooks/")
    check_page(page)
