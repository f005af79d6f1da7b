"""The handoff and onboarding API: submit, templates (admins write), projects and milestones (whoever may
write the account), filters, and the refused methods. Isolation: tests/test_api_isolation.py; query
budgets: tests/test_api_query_counts.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine

from accounts.models import Account, Contact, Objective
from accounts.services import Actor
from value import onboarding as svc
from value.models import Handoff, OnboardingMilestone, OnboardingProject, OnboardingTemplate

from .factories import AccountFactory, MembershipFactory

pytestmark = pytest.mark.django_db
API = "/api/v1"


@pytest.fixture
def frozen():
    with time_machine.travel(dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC), tick=False):
        yield


@pytest.fixture
def people(org, alice, bob) -> dict[str, Any]:
    return {
        "admin": alice,
        "leader": MembershipFactory(organization=org, role="leader").user,
        "csm": bob,
        "viewer": MembershipFactory(organization=org, role="viewer").user,
        "dave": MembershipFactory(organization=org, role="csm").user,
    }


def body() -> dict[str, Any]:
    return {
        "go_live_target": "2027-02-01",
        "success_measures": [{"title": "Cut backlog", "baseline": "1200", "target": "300", "due_date": "2027-06-30"}],
        "stakeholders": [{"name": "Dana Scully", "email": "dana@client.example", "role": "executive_sponsor"}],
        "commercial_notes": "10% discount for a case study",
    }


def test_handoff_create_submit_twice_and_read_back(org, bob, api, frozen):
    account = AccountFactory(organization=org, owner=bob)
    client = api(org, "csm", bob)
    created = client.post(f"{API}/handoffs/", {"account": account.pk, **body()}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["is_submitted"] is False
    pk = created.json()["id"]
    first = client.post(f"{API}/handoffs/{pk}/submit/")
    assert first.status_code == 200, first.json()
    data = first.json()
    assert (data["objectives_created"], data["contacts_created"], data["project_created"]) == (1, 1, True)
    assert data["handoff"]["is_submitted"] and data["handoff"]["submitted_by"] == bob.email
    objective = Objective.all_orgs.get(plan__account=account)
    assert data["handoff"]["success_measures"][0]["objective"] == objective.pk
    second = client.post(f"{API}/handoffs/{pk}/submit/").json()
    assert (second["objectives_created"], second["contacts_created"], second["project_created"]) == (0, 0, False)
    assert second["project"] == data["project"]
    assert Contact.all_orgs.filter(account=account).count() == 1
    assert OnboardingProject.all_orgs.filter(account=account).count() == 1
    # A handoff belongs to its account for good, and is never deleted.
    other = AccountFactory(organization=org, owner=bob)
    assert client.patch(f"{API}/handoffs/{pk}/", {"account": other.pk}, format="json").json()["account"] == account.pk
    assert client.delete(f"{API}/handoffs/{pk}/").status_code == 405


def test_submit_errors_name_the_field(org, bob, api):
    account = AccountFactory(organization=org, owner=bob)
    client = api(org, "csm", bob)
    pk = client.post(
        f"{API}/handoffs/", {"account": account.pk, "success_measures": [{"title": "Backlog"}]}, format="json"
    ).json()["id"]
    response = client.post(f"{API}/handoffs/{pk}/submit/")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {"success_measures.0.target", "stakeholders", "go_live_target"} <= set(errors)
    assert not Objective.all_orgs.filter(plan__account=account).exists()


def test_one_handoff_per_account(org, bob, api):
    account = AccountFactory(organization=org, owner=bob)
    client = api(org, "csm", bob)
    assert client.post(f"{API}/handoffs/", {"account": account.pk}, format="json").status_code == 201
    again = client.post(f"{API}/handoffs/", {"account": account.pk}, format="json")
    assert again.status_code == 400 and "account" in again.json()["errors"]


@pytest.mark.parametrize(
    ("role", "book", "expected"),
    [("admin", "dave", 201), ("leader", "none", 201), ("csm", "own", 201), ("csm", "dave", 403),
     ("viewer", "own", 403)],
)  # fmt: skip
def test_who_may_write_handoffs_and_projects(org, people, api, role, book, expected):
    owner = {"own": people["csm"], "dave": people["dave"], "none": None}[book]
    client = api(org, role, people[role])
    account = AccountFactory(organization=org, owner=owner)
    assert client.post(f"{API}/handoffs/", {"account": account.pk}, format="json").status_code == expected
    response = client.post(f"{API}/onboarding-projects/", {"account": account.pk}, format="json")
    assert response.status_code == expected
    if expected == 403:
        assert not OnboardingProject.all_orgs.filter(account=account).exists()
        # Objects made by someone allowed still refuse this caller's writes.
        handoff = Handoff.all_orgs.create(organization=org, account=account, go_live_target=dt.date(2027, 1, 1))
        assert client.post(f"{API}/handoffs/{handoff.pk}/submit/").status_code == 403
        project = svc.start_project(account, by=Actor(organization=org, role="admin"))
        milestone = project.milestones.get(key="kickoff")
        assert client.post(f"{API}/onboarding-milestones/{milestone.pk}/complete/").status_code == 403
        assert (
            client.patch(f"{API}/onboarding-milestones/{milestone.pk}/", {"notes": "x"}, format="json").status_code
            == 403
        )
        assert client.post(f"{API}/onboarding-projects/{project.pk}/cancel/").status_code == 403
        assert OnboardingMilestone.all_orgs.get(pk=milestone.pk).completed_on is None
        # Everyone reads.
        assert client.get(f"{API}/onboarding-milestones/", {"project": project.pk}).json()["count"] == 5


@pytest.mark.parametrize(("role", "expected"), [("admin", 201), ("leader", 403), ("csm", 403), ("viewer", 403)])
def test_only_admins_write_templates(org, people, api, role, expected):
    client = api(org, role, people[role])
    response = client.post(
        f"{API}/onboarding-templates/", {"name": "Enterprise", "phases": svc.DEFAULT_PHASES}, format="json"
    )
    assert response.status_code == expected
    assert client.get(f"{API}/onboarding-templates/").json()["count"] == (2 if expected == 201 else 1)


def test_template_validation_and_default_rules(org, alice, api):
    client = api(org, "admin", alice)
    phases = svc._clean_phases(svc.DEFAULT_PHASES)
    phases[2]["milestones"][0]["mark"] = ""  # no go-live any more
    phases[1]["milestones"][1]["key"] = "data-import"  # a duplicate key
    response = client.post(f"{API}/onboarding-templates/", {"name": "Bad", "phases": phases}, format="json")
    assert response.status_code == 400
    text = " ".join(response.json()["errors"]["phases"])
    assert "go_live (found 0)" in text and "phases.1.milestones.1.key" in text
    default = OnboardingTemplate.all_orgs.get(organization=org, is_default=True)
    assert client.delete(f"{API}/onboarding-templates/{default.pk}/").status_code == 400
    undefault = client.patch(f"{API}/onboarding-templates/{default.pk}/", {"is_default": False}, format="json")
    assert undefault.status_code == 400 and "is_default" in undefault.json()["errors"]
    new = client.post(
        f"{API}/onboarding-templates/", {"name": "Light", "phases": svc.DEFAULT_PHASES, "is_default": True},
        format="json",
    )  # fmt: skip
    assert new.status_code == 201
    default.refresh_from_db()
    assert not default.is_default
    assert client.delete(f"{API}/onboarding-templates/{default.pk}/").status_code == 204


def test_milestones_complete_reopen_patch_and_the_account_stage(org, bob, api, frozen):
    account = AccountFactory(organization=org, owner=bob, lifecycle_stage="onboarding")
    client = api(org, "csm", bob)
    project = client.post(f"{API}/onboarding-projects/", {"account": account.pk}, format="json").json()
    milestones = {
        m["key"]: m for m in client.get(f"{API}/onboarding-milestones/", {"project": project["id"]}).json()["results"]
    }
    assert [m["state"] for m in milestones.values()] == ["open"] * 5
    kickoff = client.post(
        f"{API}/onboarding-milestones/{milestones['kickoff']['id']}/complete/", {"completed_on": "2026-11-01"},
        format="json",
    )  # fmt: skip
    assert kickoff.status_code == 200 and kickoff.json()["state"] == "done"
    fetched = client.get(f"{API}/onboarding-projects/{project['id']}/").json()
    assert (fetched["kickoff_on"], fetched["target_go_live_on"], fetched["milestones_done"]) == (
        "2026-11-01", "2026-12-31", 1,  # kickoff + the template's 60 days
    )  # fmt: skip
    # Data import is due 2026-11-15 (kickoff + 14): late on 2026-12-01.
    data_import = client.get(f"{API}/onboarding-milestones/{milestones['data-import']['id']}/").json()
    assert (data_import["due_on"], data_import["state"]) == ("2026-11-15", "late")
    patched = client.patch(
        f"{API}/onboarding-milestones/{data_import['id']}/", {"due_on": "2026-12-10", "notes": "CSV ready"},
        format="json",
    )  # fmt: skip
    assert patched.status_code == 200 and (patched.json()["state"], patched.json()["due_offset_days"]) == ("open", None)
    assert (
        client.patch(f"{API}/onboarding-milestones/{data_import['id']}/", {"mark": "go_live"}, format="json").json()[
            "mark"
        ]
        == ""
    )  # read-only
    live = client.post(f"{API}/onboarding-milestones/{milestones['go-live']['id']}/complete/", {}, format="json")
    assert live.status_code == 200
    assert Account.all_orgs.get(pk=account.pk).lifecycle_stage == "adoption"
    assert client.get(f"{API}/onboarding-projects/", {"status": "live"}).json()["count"] == 1
    reopened = client.post(f"{API}/onboarding-milestones/{milestones['go-live']['id']}/reopen/")
    assert reopened.status_code == 200 and reopened.json()["completed_on"] is None
    assert Account.all_orgs.get(pk=account.pk).lifecycle_stage == "onboarding"
    future = client.post(
        f"{API}/onboarding-milestones/{milestones['training']['id']}/complete/", {"completed_on": "2027-01-01"},
        format="json",
    )  # fmt: skip
    assert future.status_code == 400 and "completed_on" in future.json()["errors"]
    assert client.delete(f"{API}/onboarding-milestones/{data_import['id']}/").status_code == 405


def test_projects_filter_by_account_and_status_and_cancel(org, bob, api, frozen):
    a, b = AccountFactory(organization=org, owner=bob), AccountFactory(organization=org, owner=bob)
    client = api(org, "csm", bob)
    pa = client.post(f"{API}/onboarding-projects/", {"account": a.pk}, format="json").json()["id"]
    client.post(f"{API}/onboarding-projects/", {"account": b.pk}, format="json")
    again = client.post(f"{API}/onboarding-projects/", {"account": a.pk}, format="json")
    assert again.status_code == 400 and "account" in again.json()["errors"]
    assert [p["id"] for p in client.get(f"{API}/onboarding-projects/", {"account": a.pk}).json()["results"]] == [pa]
    cancelled = client.post(f"{API}/onboarding-projects/{pa}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert client.get(f"{API}/onboarding-projects/", {"status": "cancelled"}).json()["count"] == 1
    assert client.get(f"{API}/onboarding-projects/", {"open": "true"}).json()["count"] == 1
    assert client.get(f"{API}/onboarding-projects/", {"status": "nope"}).status_code == 400
    assert client.delete(f"{API}/onboarding-projects/{pa}/").status_code == 405


def test_a_project_starts_with_every_writable_field(org, bob, api, frozen):
    account = AccountFactory(organization=org, owner=bob)
    client = api(org, "csm", bob)
    body = {
        "account": account.pk, "name": "Pilot", "owner": bob.email, "kickoff_on": "2026-11-01",
        "target_go_live_on": "2026-12-15", "target_first_value_on": "2027-01-15", "stall_after_days": 7,
    }  # fmt: skip
    response = client.post(f"{API}/onboarding-projects/", body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert {k: data[k] for k in body if k != "account"} == {k: v for k, v in body.items() if k != "account"}
    due = client.get(f"{API}/onboarding-milestones/", {"project": data["id"], "ordering": "position"}).json()
    assert [m["due_on"] for m in due["results"]][:2] == ["2026-11-01", "2026-11-15"]  # kickoff + 0, + 14
