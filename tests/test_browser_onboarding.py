"""Handoff → onboarding → go-live → QBR in real headless Chromium (issue 15, item 1), at desktop size and on a
390x844 phone: a CSM fills in and submits the handoff of a new account of their book, lands on the
onboarding project, completes the kickoff … go-live milestones with the page's POST forms, and the account
shows the adoption stage. axe-core finds no serious violation and no page overflows on each page
(``check_page``). After go-live the walk starts the account's first QBR (:func:`qbr_after_go_live`).
The seeded organization and Chromium come from the shared harness (tests/browser.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser import DESKTOP, PHONE, check_page, harness, signed_in  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser]

WALK_TO_GO_LIVE = ("kickoff", "data-import", "training", "go-live")


def new_account(harness: Any, name: str) -> Any:  # noqa: F811
    from tests.factories import AccountFactory

    seeded = harness["seeded"]
    return AccountFactory(organization=seeded.org, owner=seeded.users["csm"], name=name, lifecycle_stage="onboarding")


def fill_handoff(page: Any) -> None:
    """The handoff form: one success measure, two stakeholders, the go-live target, commercial notes."""
    measure = page.get_by_role("group", name="Success measure 1")
    measure.get_by_label("Title", exact=True).fill("Cut the support backlog")
    measure.get_by_label("Customer's measure").fill("Open tickets at month end")
    measure.get_by_label("Baseline").fill("1200")
    measure.get_by_label("Target", exact=True).fill("300")
    measure.get_by_label("Due").fill("2027-06-30")
    sponsor = page.get_by_role("group", name="Stakeholder 1")
    sponsor.get_by_label("Name").fill("Dana Scully")
    sponsor.get_by_label("Email").fill("dana.scully@client.example")
    sponsor.get_by_label("Job title").fill("VP Support")
    sponsor.get_by_label("Role").select_option("executive_sponsor")
    champion = page.get_by_role("group", name="Stakeholder 2")
    champion.get_by_label("Name").fill("Fox Mulder")
    champion.get_by_label("Email").fill("fox.mulder@client.example")
    champion.get_by_label("Role").select_option("champion")
    page.get_by_label("Go-live target").fill("2027-02-01")
    page.get_by_role("textbox", name="Commercial notes").fill("Case study promised in exchange for 10% off")


def complete(page: Any, key: str) -> None:
    """Press the milestone's Complete button (today, the form's default day)."""
    milestone = page.get_by_test_id(f"milestone-{key}")
    milestone.get_by_role("button", name="Complete").click()
    page.wait_for_load_state("load")
    assert "completed" in page.locator("#flash").inner_text()
    assert "Done" in page.get_by_test_id(f"milestone-{key}").inner_text()


def handoff_to_go_live(harness: Any, page: Any, account: Any) -> int:  # noqa: F811
    """Submit the handoff and complete the milestones up to go-live; returns the project's id."""
    from accounts.models import Objective
    from value.models import OnboardingProject

    base = f"{harness['url']}/o/{harness['seeded'].org.slug}"
    page.goto(f"{base}/accounts/{account.pk}/handoff/")
    check_page(page)
    fill_handoff(page)
    page.get_by_role("button", name="Submit handoff").click()
    page.wait_for_load_state("load")
    assert "Handoff submitted" in page.locator("#flash").inner_text()
    project = OnboardingProject.all_orgs.get(account_id=account.pk)
    assert page.url.endswith(f"/onboarding/{project.pk}/")
    assert Objective.all_orgs.get(plan__account_id=account.pk).target == "300"
    check_page(page)
    assert "Cut the support backlog" in page.get_by_test_id("project-measures").inner_text()
    clock = page.get_by_test_id("onboarding-clock").inner_text()
    assert "Not started" in clock and "Feb 1, 2027" in clock  # the handoff's go-live target
    for key in WALK_TO_GO_LIVE:
        complete(page, key)
    meta = page.get_by_test_id("project-meta").inner_text()
    assert "Live, first value pending" in meta and "adoption" in meta
    assert "0 days after kickoff" in page.get_by_test_id("onboarding-clock").inner_text()
    check_page(page)
    page.goto(f"{base}/onboarding/")
    check_page(page)
    assert account.name in page.get_by_test_id("onboarding-table").inner_text()
    return project.pk


def after_go_live(harness: Any, page: Any, account: Any, project_id: int) -> None:  # noqa: F811
    """The account after go-live: Account 360 shows the adoption stage and the onboarding panel links the
    project. (The QBR walk continues from here.)"""
    from accounts.models import Account

    base = f"{harness['url']}/o/{harness['seeded'].org.slug}"
    page.goto(f"{base}/accounts/{account.pk}/")
    check_page(page)
    assert Account.all_orgs.get(pk=account.pk).lifecycle_stage == "adoption"
    assert "Adoption" in page.locator(".acct-meta, .facts, main").first.inner_text()
    panel = page.get_by_test_id("account-onboarding")
    assert "Live, first value pending" in panel.inner_text() and "4 of 5 milestones done" in panel.inner_text()
    panel.get_by_role("link", name=f"{account.name} onboarding").click()
    page.wait_for_load_state("load")
    assert page.url.endswith(f"/onboarding/{project_id}/")


def qbr_after_go_live(harness: Any, page: Any, account: Any) -> None:  # noqa: F811
    """From Account 360 the CSM starts the account's first QBR: its value report holds the success measure the
    handoff seeded (baseline and target as sales handed them over), and its PDF link serves a PDF."""
    from value.models import BusinessReview

    base = f"{harness['url']}/o/{harness['seeded'].org.slug}"
    page.goto(f"{base}/accounts/{account.pk}/")
    page.get_by_test_id("account-reviews").get_by_role("link", name="All reviews · start a QBR").click()
    page.wait_for_url(f"**/accounts/{account.pk}/reviews/")
    check_page(page)
    page.get_by_test_id("start-review").get_by_role("button", name="Start review").click()
    page.wait_for_url(f"**/accounts/{account.pk}/reviews/*/")
    check_page(page)
    review = BusinessReview.all_orgs.get(account=account)
    assert page.url.endswith(f"/reviews/{review.pk}/")
    measures = page.get_by_test_id("review-objectives").inner_text()
    assert "Cut the support backlog" in measures and "1200" in measures and "300" in measures
    pdf = page.request.get(harness["url"] + page.get_by_test_id("download-pdf").get_attribute("href"))
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF-")


@pytest.mark.parametrize(("size", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_csm_walks_handoff_to_go_live_and_the_qbr(harness, size, viewport):  # noqa: F811
    """Issue 15's walk: handoff → onboarding → go-live → QBR page."""
    account = new_account(harness, f"Handoff Walk {size.title()}")
    page = signed_in(harness, "csm", viewport)
    try:
        project_id = handoff_to_go_live(harness, page, account)
        after_go_live(harness, page, account, project_id)
        qbr_after_go_live(harness, page, account)
    finally:
        page.context.close()


@pytest.mark.parametrize(("size", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_admin_template_pages_and_a_refused_template(harness, size, viewport):  # noqa: F811
    base = f"{harness['url']}/o/{harness['seeded'].org.slug}"
    page = signed_in(harness, "admin", viewport)
    try:
        page.goto(f"{base}/admin/onboarding-templates/")
        check_page(page)
        page.get_by_role("link", name="Standard onboarding").click()
        page.wait_for_load_state("load")
        check_page(page)
        phases = page.get_by_label("Phases (JSON)")
        phases.fill(phases.input_value().replace('"go_live"', '""'))
        page.get_by_role("button", name="Save template").click()
        page.wait_for_load_state("load")
        assert "go_live (found 0)" in page.get_by_test_id("template-errors").inner_text()
        check_page(page)
    finally:
        page.context.close()


@pytest.mark.parametrize("role", ["viewer", "leader"])
def test_readers_see_the_onboarding_pages_on_a_phone(harness, role):  # noqa: F811
    """A viewer (and a leader outside this book) reads the list, the project and the handoff on a phone:
    no complete buttons, nothing overflowing, axe-core clean."""
    from accounts.services import Actor
    from value.onboarding import save_handoff, start_project

    seeded = harness["seeded"]
    account = new_account(harness, f"Reader Walk {role.title()}")
    admin = Actor(organization=seeded.org, role="admin", user=seeded.users["admin"])
    save_handoff(account, by=admin, success_measures=[{"title": "Fewer escalations", "target": "5 a month"}])
    project = start_project(account, by=admin)
    base = f"{harness['url']}/o/{seeded.org.slug}"
    page = signed_in(harness, role, PHONE)
    try:
        for path in ("/onboarding/", f"/onboarding/{project.pk}/", f"/accounts/{account.pk}/handoff/"):
            page.goto(base + path)
            check_page(page)
            assert account.name in page.locator("main").inner_text()
        page.goto(f"{base}/onboarding/{project.pk}/")
        writable = Actor(organization=seeded.org, role=role, user=seeded.users[role]).can_write_account(account)
        assert (page.get_by_role("button", name="Complete").count() > 0) is writable
    finally:
        page.context.close()
