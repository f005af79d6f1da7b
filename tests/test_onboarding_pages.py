"""Handoff and onboarding pages per role: everyone reads the handoff, the onboarding list and a project;
whoever may write the account fills in and submits the handoff and moves milestones (POST forms); viewers
and CSMs outside the book get 403; another organization's member gets 404; templates are the admins'.
Account 360 shows the onboarding panel."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.urls import reverse

from accounts.models import Account, Contact, Objective
from accounts.services import Actor
from value import onboarding as svc
from value.models import Handoff, OnboardingMilestone, OnboardingProject, OnboardingTemplate

from .factories import AccountFactory

pytestmark = pytest.mark.django_db
ROLES = ("admin", "leader", "csm", "viewer")


@pytest.fixture
def frozen():
    with time_machine.travel(dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC), tick=False):
        yield


@pytest.fixture
def project(org, bob) -> OnboardingProject:
    account = AccountFactory(organization=org, owner=bob, name="Initech", lifecycle_stage="onboarding")
    return svc.start_project(account, by=Actor(organization=org, role="admin"), kickoff_on=dt.date(2026, 11, 1))


def form(**extra: Any) -> dict[str, Any]:
    data = {
        "m-count": "3", "s-count": "3", "go_live_target": "2027-02-01", "commercial_notes": "Case study promised",
        "m-0-title": "Cut backlog", "m-0-customer_measure": "Open tickets", "m-0-baseline": "1200",
        "m-0-target": "300", "m-0-due_date": "2027-06-30",
        "s-0-name": "Dana Scully", "s-0-email": "dana@client.example", "s-0-title": "VP", "s-0-role": "champion",
        "action": "submit",
    }  # fmt: skip
    data.update(extra)
    return data


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_the_pages(client, org, make_member, project, role, frozen):
    client.force_login(make_member(org, role).user)
    account = project.account
    for url in (
        reverse("onboarding", args=[org.slug]),
        reverse("onboarding-project", args=[org.slug, project.pk]),
        reverse("account-handoff", args=[org.slug, account.pk]),
        reverse("account-detail", args=[org.slug, account.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "Initech" in response.content.decode()
    detail = client.get(reverse("onboarding-project", args=[org.slug, project.pk])).content.decode()
    # Writers of this account see the complete buttons: admins, and leaders (the account's owner bob is in no
    # team of this leader, so the leader may not) — the csm here is not bob either.
    assert ("Complete<span" in detail) is (role == "admin")
    panel = client.get(reverse("account-detail", args=[org.slug, account.pk])).content.decode()
    # Kickoff 2026-11-01, today 2026-12-01: day 30 of the clock; no milestone done yet.
    assert 'data-testid="account-onboarding"' in panel and "0 of 5 milestones done" in panel and "day 30" in panel


def test_a_project_without_a_csm_reads_none_on_the_list_and_its_page(client, org, alice, frozen):
    """An unowned account's project (no CSM) once broke both pages: a filter argument read ``owner.email``."""
    account = AccountFactory(organization=org, owner=None, name="Orphan Co", lifecycle_stage="onboarding")
    project = svc.start_project(account, by=Actor(organization=org, role="admin"), kickoff_on=dt.date(2026, 11, 1))
    assert project.owner is None
    client.force_login(alice)
    listing = client.get(reverse("onboarding", args=[org.slug]))
    assert listing.status_code == 200 and "Orphan Co" in listing.content.decode()
    page = client.get(reverse("onboarding-project", args=[org.slug, project.pk]))
    assert page.status_code == 200 and "CSM <strong>none</strong>" in page.content.decode()


def test_the_list_flags_late_projects_and_filters(client, org, alice, bob, project, frozen):
    client.force_login(alice)
    url = reverse("onboarding", args=[org.slug])
    page = client.get(url).content.decode()
    # Kickoff 11-01: data import was due 11-15, so the project is late on 12-01 (flag in words, not colour).
    assert "Initech" in page and "Late" in page
    assert "Initech" in client.get(url, {"flag": "late"}).content.decode()
    assert "Initech" not in client.get(url, {"flag": "stalled"}).content.decode()
    assert "Initech" in client.get(url, {"owner": bob.pk}).content.decode()
    assert "Initech" not in client.get(url, {"owner": alice.pk}).content.decode()
    assert "Initech" not in client.get(url, {"status": "completed"}).content.decode()
    OnboardingMilestone.all_orgs.filter(project=project, key="training").update(stalled_on=dt.date(2026, 11, 30))
    stalled = client.get(url, {"flag": "stalled"}).content.decode()
    assert "Initech" in stalled and "Stalled" in stalled


def test_the_csm_submits_the_handoff_and_lands_on_the_project(client, org, bob, frozen):
    account = AccountFactory(organization=org, owner=bob, name="Globex Retail")
    client.force_login(bob)
    url = reverse("account-handoff", args=[org.slug, account.pk])
    response = client.post(url, form())
    project = OnboardingProject.all_orgs.get(account=account)
    assert response.status_code == 302 and response.url == reverse("onboarding-project", args=[org.slug, project.pk])
    assert Objective.all_orgs.get(plan__account=account).target == "300"
    assert Contact.all_orgs.get(account=account).roles == ["champion"]
    assert project.target_go_live_on == dt.date(2027, 2, 1)
    # The form again: the measure shows, and a second submission adds nothing.
    page = client.get(url).content.decode()
    assert 'value="Cut backlog"' in page and "Submitted" in page
    client.post(url, form())
    assert Objective.all_orgs.filter(plan__account=account).count() == 1
    assert OnboardingProject.all_orgs.filter(account=account).count() == 1
    # Renamed in the form: the row's hidden objective id still finds its objective (no second one).
    objective = Objective.all_orgs.get(plan__account=account)
    assert f'name="m-0-objective" value="{objective.pk}"' in page
    client.post(url, form(**{"m-0-title": "Cut the backlog", "m-0-objective": str(objective.pk)}))
    assert list(Objective.all_orgs.filter(plan__account=account).values_list("pk", "title")) == [
        (objective.pk, "Cut the backlog")
    ]


def test_handoff_errors_show_at_their_fields_and_nothing_is_saved(client, org, bob):
    account = AccountFactory(organization=org, owner=bob)
    client.force_login(bob)
    url = reverse("account-handoff", args=[org.slug, account.pk])
    response = client.post(url, form(**{"m-0-target": "", "s-0-email": "not-an-email", "go_live_target": ""}))
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="err-m-0-target"' in page and 'id="err-s-0-email"' in page and 'id="err-go_live_target"' in page
    assert 'value="Cut backlog"' in page  # what was typed is kept
    assert not Handoff.all_orgs.filter(account=account).exists()
    # A draft needs less: saved without a target or a go-live date.
    draft = client.post(url, form(**{"m-0-target": "", "go_live_target": "", "action": "save"}))
    assert draft.status_code == 302
    assert Handoff.all_orgs.get(account=account).submitted_at is None


@pytest.mark.parametrize("role", ["viewer", "csm"])
def test_viewers_and_csms_outside_the_book_cannot_write(client, org, make_member, project, role, frozen):
    client.force_login(make_member(org, role).user)
    account = project.account
    assert client.post(reverse("account-handoff", args=[org.slug, account.pk]), form()).status_code == 403
    kickoff = project.milestones.get(key="data-import")
    url = reverse("onboarding-milestone-complete", args=[org.slug, project.pk, kickoff.pk])
    assert client.post(url).status_code == 403
    assert client.post(reverse("onboarding-project-cancel", args=[org.slug, project.pk])).status_code == 403
    assert OnboardingMilestone.all_orgs.get(pk=kickoff.pk).completed_on is None
    assert not Handoff.all_orgs.filter(account=account).exists()


def test_complete_go_live_reopen_and_edit_through_the_page(client, org, bob, project, frozen):
    client.force_login(bob)
    go_live = project.milestones.get(key="go-live")
    url = reverse("onboarding-milestone-complete", args=[org.slug, project.pk, go_live.pk])
    response = client.post(url, {"completed_on": "2026-11-28"})
    assert response.status_code == 302
    assert Account.all_orgs.get(pk=project.account_id).lifecycle_stage == "adoption"
    page = client.get(reverse("onboarding-project", args=[org.slug, project.pk])).content.decode()
    # Kickoff 11-01 → go-live 11-28: 27 days; target 12-31 (kickoff + 60), so on time.
    assert "27 days after kickoff" in page and "on time" in page
    assert client.post(url, {"completed_on": "tomorrow"}).status_code == 302  # refused with a message
    client.post(reverse("onboarding-milestone-reopen", args=[org.slug, project.pk, go_live.pk]))
    assert Account.all_orgs.get(pk=project.account_id).lifecycle_stage == "onboarding"
    training = project.milestones.get(key="training")
    client.post(
        reverse("onboarding-milestone-edit", args=[org.slug, project.pk, training.pk]),
        {"due_on": "2026-12-20", "owner": str(bob.pk), "notes": "Booked"},
    )
    training.refresh_from_db()
    assert (training.due_on, training.owner, training.notes, training.due_offset_days) == (
        dt.date(2026, 12, 20), bob, "Booked", None,
    )  # fmt: skip


def test_another_organizations_member_gets_404(client, org, charlie, project):
    client.force_login(charlie)
    for url in (
        reverse("onboarding-project", args=[org.slug, project.pk]),
        reverse("account-handoff", args=[org.slug, project.account_id]),
        reverse("onboarding", args=[org.slug]),
    ):
        assert client.get(url).status_code == 404
    # Their own organization's URL with our project's id: 404 too.
    assert client.get(reverse("onboarding-project", args=["globex", project.pk])).status_code == 404


@pytest.mark.parametrize("role", ROLES)
def test_templates_admin_pages(client, org, make_member, role):
    client.force_login(make_member(org, role).user)
    url = reverse("admin-onboarding-templates", args=[org.slug])
    response = client.get(url)
    assert response.status_code == (200 if role == "admin" else 403)
    if role != "admin":
        return
    assert svc.DEFAULT_TEMPLATE_NAME in response.content.decode()
    new_url = reverse("admin-onboarding-template-new", args=[org.slug])
    bad = client.post(new_url, {"name": "Light", "phases": '[{"name": "Only", "milestones": []}]',
                                "stall_after_days": "14", "target_go_live_days": "60",
                                "target_first_value_days": "90"})  # fmt: skip
    assert bad.status_code == 400
    assert "phases.0.milestones" in bad.content.decode() and "kickoff (found 0)" in bad.content.decode()
    broken = client.post(new_url, {"name": "Light", "phases": "[{", "stall_after_days": "14",
                                   "target_go_live_days": "60", "target_first_value_days": "90"})  # fmt: skip
    assert broken.status_code == 400 and "Not valid JSON" in broken.content.decode()
    import json

    good = client.post(new_url, {"name": "Light", "phases": json.dumps(svc.DEFAULT_PHASES), "stall_after_days": "7",
                                 "target_go_live_days": "30", "target_first_value_days": "60"})  # fmt: skip
    assert good.status_code == 302
    template = OnboardingTemplate.all_orgs.get(organization=org, name="Light")
    assert (template.stall_after_days, template.target_go_live_days, template.is_default) == (7, 30, False)


def test_start_onboarding_from_account_360(client, org, bob, make_member):
    account = AccountFactory(organization=org, owner=bob)
    detail = reverse("account-detail", args=[org.slug, account.pk])
    start_url = reverse("account-onboarding-start", args=[org.slug, account.pk])
    client.force_login(make_member(org, "viewer").user)
    assert 'data-testid="onboarding-start"' not in client.get(detail).content.decode()
    assert client.post(start_url).status_code == 403
    client.force_login(bob)
    assert 'data-testid="onboarding-start"' in client.get(detail).content.decode()
    response = client.post(start_url)
    project = OnboardingProject.all_orgs.get(account=account)
    assert response.url == reverse("onboarding-project", args=[org.slug, project.pk])
    assert project.template.is_default and project.milestones.count() == 5
    again = client.post(start_url)  # one open project per account: refused with a message
    assert again.status_code == 302 and OnboardingProject.all_orgs.filter(account=account).count() == 1
