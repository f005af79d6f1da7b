"""The handoff and onboarding services (value/onboarding.py): the default template, phase validation, the
handoff's idempotent seeding, the onboarding clock, the lifecycle stage at go-live and reopening."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import Account, Contact, Objective
from accounts.services import Actor, create_organization
from cs_platform.models import AuditEntry, DomainEvent
from value import onboarding as svc
from value.models import Handoff, OnboardingMilestone, OnboardingProject, OnboardingTemplate

from .factories import AccountFactory, ContactFactory, MembershipFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 12, 1)


def actor(org: Any, role: str, user: Any = None) -> Actor:
    return Actor(organization=org, role=role, user=user)


@pytest.fixture
def frozen():
    with time_machine.travel(dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC), tick=False) as traveller:
        yield traveller


def measures() -> list[dict[str, Any]]:
    return [
        {"title": "Cut ticket backlog", "customer_measure": "Open tickets", "baseline": "1200", "target": "300",
         "due_date": "2027-06-30"},
        {"title": "Faster onboarding of agents", "baseline": "10 days", "target": "3 days"},
    ]  # fmt: skip


def people() -> list[dict[str, Any]]:
    return [
        {"name": "Dana Scully", "email": "Dana@Client.example", "title": "VP Support", "role": "executive_sponsor"},
        {"name": "Fox Mulder", "email": "fox@client.example", "title": "", "role": "champion"},
    ]


def handoff_for(account: Account, by: Actor, **extra: Any) -> Handoff:
    values = {"go_live_target": dt.date(2027, 2, 1), "success_measures": measures(), "stakeholders": people()}
    return svc.save_handoff(account, by=by, **{**values, **extra})


# --- Templates ---------------------------------------------------------------------------------------------


def test_every_new_organization_gets_the_default_template():
    org = create_organization(slug="initech", name="Initech")[0]
    template = OnboardingTemplate.all_orgs.get(organization=org)
    assert template.is_default and template.name == svc.DEFAULT_TEMPLATE_NAME
    assert [p["name"] for p in template.phases] == ["Kickoff", "Configure", "Launch", "Adopt"]
    assert svc.validate_phases(template.phases) == []
    assert svc.ensure_default_template(org) == template  # idempotent: no second default
    assert OnboardingTemplate.all_orgs.filter(organization=org).count() == 1


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [
        (lambda p: p[0]["milestones"][0].update(mark=""), "phases", "kickoff (found 0)"),
        (lambda p: p[1]["milestones"][0].update(mark="go_live"), "phases", "go_live (found 2)"),
        (lambda p: p[1]["milestones"][1].update(key="data-import"), "phases.1.milestones.1.key", "already used"),
        (lambda p: p[1]["milestones"][0].update(key="Data Import"), "phases.1.milestones.0.key", "slug"),
        (lambda p: p[2]["milestones"][0].update(due_offset_days=-1), "phases.2.milestones.0.due_offset_days", "0"),
        (lambda p: p[2]["milestones"][0].update(owner_role="boss"), "phases.2.milestones.0.owner_role", "one of"),
        (lambda p: p[3].update(milestones=[]), "phases.3.milestones", "at least one"),
        (lambda p: p[0].update(colour="red"), "phases.0", "Unknown field"),
    ],
)
def test_phase_validation_names_the_problem_at_its_path(change, path, fragment):
    phases = svc._clean_phases(svc.DEFAULT_PHASES)
    change(phases)
    problems = svc.validate_phases(phases)
    assert any(p == path and fragment in m for p, m in problems), problems


def test_only_admins_save_templates_and_a_new_default_replaces_the_old(org, alice, bob):
    old = OnboardingTemplate.all_orgs.get(organization=org, is_default=True)
    new = OnboardingTemplate(organization=org, name="Enterprise", is_default=True, phases=svc.DEFAULT_PHASES)
    with pytest.raises(PermissionDenied):
        svc.save_template(new, by=actor(org, "leader", bob))
    svc.save_template(new, by=actor(org, "admin", alice))
    old.refresh_from_db()
    assert (old.is_default, new.is_default) == (False, True)
    new.stall_after_days = 7
    svc.save_template(new, by=actor(org, "admin", alice))
    entries = list(AuditEntry.all_orgs.filter(subject_type="onboarding_template").order_by("pk"))
    assert [e.action for e in entries] == ["onboarding_template.created", "onboarding_template.changed"]
    assert [(c["path"], c["before"], c["after"]) for c in entries[1].changes] == [("stall_after_days", 14, 7)]
    bad = OnboardingTemplate(organization=org, name="Bad", phases=[{"name": "Only", "milestones": []}])
    with pytest.raises(ValidationError) as exc:
        svc.save_template(bad, by=actor(org, "admin", alice))
    assert "phases.0.milestones" in exc.value.message_dict


# --- Handoff -----------------------------------------------------------------------------------------------


def test_submit_seeds_objectives_contacts_and_a_project_once(org, bob, frozen):
    account = AccountFactory(organization=org, owner=bob, lifecycle_stage="onboarding")
    existing = ContactFactory(account=account, email="dana@client.example", name="D. Scully", roles=["champion"])
    by = actor(org, "csm", bob)
    handoff = handoff_for(account, by)
    result = svc.submit_handoff(handoff, by=by)
    assert (result.objectives_created, result.contacts_created, result.contacts_updated) == (2, 1, 1)
    assert result.project_created and result.project.target_go_live_on == dt.date(2027, 2, 1)
    objective = Objective.all_orgs.get(plan__account=account, title="Cut ticket backlog")
    assert (objective.customer_measure, objective.baseline, objective.target, objective.due_date) == (
        "Open tickets", "1200", "300", dt.date(2027, 6, 30),
    )  # fmt: skip
    existing.refresh_from_db()
    # Matched by email whatever its case: the name and title are the handoff's, the role is added.
    assert (existing.name, existing.title, existing.roles) == (
        "Dana Scully",
        "VP Support",
        ["champion", "executive_sponsor"],
    )
    assert Contact.all_orgs.get(account=account, email="fox@client.example").roles == ["champion"]
    handoff.refresh_from_db()
    assert handoff.submitted_at is not None and handoff.submitted_by == bob
    assert [m["objective"] for m in handoff.success_measures] == list(
        Objective.all_orgs.filter(plan__account=account).order_by("pk").values_list("pk", flat=True)
    )

    again = svc.submit_handoff(handoff, by=by)  # a second submission: nothing new
    assert (again.objectives_created, again.objectives_updated, again.contacts_created, again.contacts_updated) == (
        0, 0, 0, 0,
    )  # fmt: skip
    assert not again.project_created and again.project == result.project
    assert Objective.all_orgs.filter(plan__account=account).count() == 2
    assert Contact.all_orgs.filter(account=account).count() == 2
    assert OnboardingProject.all_orgs.filter(account=account).count() == 1


def test_resubmitting_a_corrected_handoff_updates_what_it_seeded(org, bob, frozen):
    account = AccountFactory(organization=org, owner=bob)
    by = actor(org, "csm", bob)
    handoff = handoff_for(account, by)
    first = svc.submit_handoff(handoff, by=by)
    handoff.refresh_from_db()
    rows = handoff.success_measures
    rows[0]["title"] = "Cut the ticket backlog"  # renamed: the stored objective id still finds it
    rows[0]["target"] = "250"
    svc.save_handoff(account, by=by, success_measures=rows, go_live_target=dt.date(2027, 3, 1))
    again = svc.submit_handoff(Handoff.all_orgs.get(pk=handoff.pk), by=by)
    assert (again.objectives_created, again.objectives_updated) == (0, 1)
    assert sorted(Objective.all_orgs.filter(plan__account=account).values_list("title", "target")) == [
        ("Cut the ticket backlog", "250"), ("Faster onboarding of agents", "3 days"),
    ]  # fmt: skip
    first.project.refresh_from_db()
    assert first.project.target_go_live_on == dt.date(2027, 3, 1)  # the open project follows the handoff


def test_submit_refuses_an_incomplete_handoff_and_writes_nothing(org, bob):
    account = AccountFactory(organization=org, owner=bob)
    by = actor(org, "csm", bob)
    handoff = svc.save_handoff(
        account, by=by, success_measures=[{"title": "Backlog", "target": ""}],
        stakeholders=[{"name": "Dana", "email": "dana@client.example", "role": ""}],
    )  # fmt: skip
    with pytest.raises(ValidationError) as exc:
        svc.submit_handoff(handoff, by=by)
    errors = exc.value.message_dict
    assert set(errors) == {"success_measures.0.target", "stakeholders.0.role", "go_live_target"}
    assert not Objective.all_orgs.filter(plan__account=account).exists()
    assert not OnboardingProject.all_orgs.filter(account=account).exists()
    assert Handoff.all_orgs.get(pk=handoff.pk).submitted_at is None


def test_a_draft_still_checks_each_row(org, bob):
    account = AccountFactory(organization=org, owner=bob)
    with pytest.raises(ValidationError) as exc:
        svc.save_handoff(account, by=actor(org, "csm", bob), stakeholders=[{"name": "X", "email": "nope", "role": "x"}])
    assert set(exc.value.message_dict) == {"stakeholders.0.email", "stakeholders.0.role"}


@pytest.mark.parametrize(("role", "own", "allowed"), [
    ("admin", False, True), ("leader", False, True), ("csm", True, True), ("csm", False, False),
    ("viewer", True, False),
])  # fmt: skip
def test_who_may_write_a_handoff(org, role, own, allowed):
    user = MembershipFactory(organization=org, role=role).user
    other = MembershipFactory(organization=org, role="csm").user
    # A leader writes unowned accounts and their teams' books (Actor.can_write_account).
    account = AccountFactory(organization=org, owner=user if own else (None if role == "leader" else other))
    if allowed:
        svc.save_handoff(account, by=actor(org, role, user), commercial_notes="x")
    else:
        with pytest.raises(PermissionDenied):
            svc.save_handoff(account, by=actor(org, role, user), commercial_notes="x")


# --- Projects and the clock ------------------------------------------------------------------------------


def start(org: Any, owner: Any, **kwargs: Any) -> tuple[OnboardingProject, dict[str, OnboardingMilestone]]:
    account = AccountFactory(organization=org, owner=owner, lifecycle_stage="onboarding")
    project = svc.start_project(account, by=actor(org, "admin"), **kwargs)
    return project, {m.key: m for m in OnboardingMilestone.all_orgs.filter(project=project)}


def test_a_project_copies_the_template_with_owners_and_due_dates_from_the_kickoff(org, bob, frozen):
    project, ms = start(org, bob)
    assert list(ms) == ["kickoff", "data-import", "training", "go-live", "first-value"]
    assert ms["kickoff"].owner == bob and ms["data-import"].owner is None  # csm → the account's owner
    assert all(m.due_on is None for m in ms.values())  # no kickoff yet: no due date
    svc.complete_milestone(ms["kickoff"], by=actor(org, "csm", bob), on=dt.date(2026, 11, 2))
    project.refresh_from_db()
    # Kickoff 2026-11-02: data import +14 → 11-16, training +30 → 12-02, go-live +45 → 12-17; targets
    # from the template (60 and 90 days): go-live 2027-01-01, first value 2027-01-31.
    dues = dict(OnboardingMilestone.all_orgs.filter(project=project).values_list("key", "due_on"))
    assert dues["data-import"] == dt.date(2026, 11, 16) and dues["go-live"] == dt.date(2026, 12, 17)
    assert dues["kickoff"] == dt.date(2026, 11, 2)
    assert (project.kickoff_on, project.target_go_live_on, project.target_first_value_on) == (
        dt.date(2026, 11, 2), dt.date(2027, 1, 1), dt.date(2027, 1, 31),
    )  # fmt: skip
    # Today is 2026-12-01: 29 days since the kickoff; data import (due 11-16) is late, training is not.
    clock = svc.project_clock(project)
    assert clock.days_since_kickoff == 29 and clock.go_live_slip is None
    states = {m.key: svc.milestone_state(m) for m in OnboardingMilestone.all_orgs.filter(project=project)}
    assert states == {"kickoff": "done", "data-import": "late", "training": "open", "go-live": "open",
                      "first-value": "open"}  # fmt: skip
    flagged = svc.projects_with_flags(org).get(pk=project.pk)
    assert (flagged.is_late, flagged.is_stalled) == (True, False)


def test_a_typed_due_date_survives_a_new_kickoff(org, bob, frozen):
    project, ms = start(org, bob, kickoff_on=dt.date(2026, 11, 1))
    by = actor(org, "csm", bob)
    svc.update_milestone(ms["training"], by=by, due_on=dt.date(2027, 1, 15))
    svc.set_kickoff(project, dt.date(2026, 11, 10), by=by)
    dues = dict(OnboardingMilestone.all_orgs.filter(project=project).values_list("key", "due_on"))
    assert dues["training"] == dt.date(2027, 1, 15)  # typed by a person: kept
    assert dues["data-import"] == dt.date(2026, 11, 24)  # 11-10 + 14


def test_any_change_moves_last_changed_and_clears_the_stall(org, bob, frozen):
    project, ms = start(org, bob)
    milestone = ms["training"]
    OnboardingMilestone.all_orgs.filter(pk=milestone.pk).update(
        stalled_on=dt.date(2026, 11, 20), last_changed_at=dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    )
    assert svc.projects_with_flags(org).get(pk=project.pk).is_stalled
    svc.update_milestone(milestone, by=actor(org, "csm", bob), notes="Scheduled with their admins")
    milestone.refresh_from_db()
    assert milestone.stalled_on is None and milestone.notes == "Scheduled with their admins"
    assert milestone.last_changed_at == dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
    assert not svc.projects_with_flags(org).get(pk=project.pk).is_stalled


def test_go_live_moves_the_stage_and_first_value_completes_with_events(org, bob, frozen):
    project, ms = start(org, bob, target_go_live_on=dt.date(2026, 11, 25))
    by = actor(org, "csm", bob)
    svc.complete_milestone(ms["kickoff"], by=by, on=dt.date(2026, 10, 1))
    svc.complete_milestone(ms["go-live"], by=by, on=dt.date(2026, 11, 20))
    project.refresh_from_db()
    assert (project.status, project.go_live_on) == ("live", dt.date(2026, 11, 20))
    assert Account.all_orgs.get(pk=project.account_id).lifecycle_stage == "adoption"
    event = DomainEvent.all_orgs.get(name="onboarding.went_live")
    # Kickoff 10-01 → go-live 11-20 = 50 days; target 11-25, so on time.
    assert (event.payload["days_to_go_live"], event.payload["on_time"], event.payload["account"]) == (
        50, True, project.account_id,
    )  # fmt: skip
    svc.complete_milestone(ms["first-value"], by=by, on=dt.date(2026, 11, 30))
    project.refresh_from_db()
    assert (project.status, project.first_value_on) == ("completed", dt.date(2026, 11, 30))
    assert DomainEvent.all_orgs.get(name="onboarding.first_value").payload["days_to_first_value"] == 60
    # The clock stops at first value: 10-01 → 11-30 = 60 days, not 61 (today).
    assert svc.project_clock(project).days_since_kickoff == 60
    svc.complete_milestone(ms["go-live"], by=by)  # completing twice: no second event
    assert DomainEvent.all_orgs.filter(name__startswith="onboarding.").count() == 2


def test_go_live_leaves_a_stage_set_by_hand_alone(org, bob, frozen):
    project, ms = start(org, bob)
    Account.all_orgs.filter(pk=project.account_id).update(lifecycle_stage="mature")
    svc.complete_milestone(ms["go-live"], by=actor(org, "csm", bob))
    assert Account.all_orgs.get(pk=project.account_id).lifecycle_stage == "mature"


def test_without_a_first_value_milestone_go_live_completes_the_project(org, alice, bob, frozen):
    phases = svc._clean_phases(svc.DEFAULT_PHASES)[:3]
    template = svc.save_template(
        OnboardingTemplate(organization=org, name="Light", phases=phases), by=actor(org, "admin", alice)
    )
    project, ms = start(org, bob, template=template, kickoff_on=dt.date(2026, 11, 1))
    svc.complete_milestone(ms["go-live"], by=actor(org, "csm", bob), on=dt.date(2026, 11, 21))
    project.refresh_from_db()
    assert (project.status, project.go_live_on, project.first_value_on) == (
        "completed", dt.date(2026, 11, 21), dt.date(2026, 11, 21),
    )  # fmt: skip
    assert set(DomainEvent.all_orgs.values_list("name", flat=True)) >= {
        "onboarding.went_live",
        "onboarding.first_value",
    }
    svc.reopen_milestone(ms["go-live"], by=actor(org, "csm", bob))
    project.refresh_from_db()
    assert (project.status, project.go_live_on, project.first_value_on) == ("active", None, None)


def test_reopening_reverses_the_clock_and_the_stage(org, bob, frozen):
    project, ms = start(org, bob)
    by = actor(org, "csm", bob)
    for key in ("kickoff", "go-live", "first-value"):
        svc.complete_milestone(ms[key], by=by)
    svc.reopen_milestone(ms["first-value"], by=by)
    project.refresh_from_db()
    assert (project.status, project.first_value_on) == ("live", None)
    svc.reopen_milestone(ms["go-live"], by=by)
    project.refresh_from_db()
    assert (project.status, project.go_live_on) == ("active", None)
    assert Account.all_orgs.get(pk=project.account_id).lifecycle_stage == "onboarding"
    svc.reopen_milestone(ms["kickoff"], by=by)
    project.refresh_from_db()
    assert project.kickoff_on is None and svc.project_clock(project).days_since_kickoff is None
    milestone = OnboardingMilestone.all_orgs.get(pk=ms["kickoff"].pk)
    assert milestone.completed_on is None


def test_one_open_project_per_account_and_cancel_frees_it(org, bob, frozen):
    project, ms = start(org, bob)
    by = actor(org, "csm", bob)
    with pytest.raises(ValidationError):
        svc.start_project(project.account, by=by)
    svc.cancel_project(project, by=by)
    with pytest.raises(ValidationError):
        svc.complete_milestone(ms["kickoff"], by=by)  # a cancelled project no longer moves
    assert svc.start_project(project.account, by=by).status == "active"


def test_a_milestone_cannot_be_completed_in_the_future(org, bob, frozen):
    _, ms = start(org, bob)
    with pytest.raises(ValidationError):
        svc.complete_milestone(ms["kickoff"], by=actor(org, "csm", bob), on=TODAY + dt.timedelta(days=1))


def test_a_viewer_moves_nothing(org, bob, frozen):
    _, ms = start(org, bob)
    viewer = MembershipFactory(organization=org, role="viewer").user
    with pytest.raises(PermissionDenied):
        svc.complete_milestone(ms["kickoff"], by=actor(org, "viewer", viewer))
    assert OnboardingMilestone.all_orgs.get(pk=ms["kickoff"].pk).completed_on is None


def test_go_live_keeps_the_stage_when_the_organization_has_no_adoption_stage(org, bob, frozen):
    org.lifecycle_stages = ["onboarding", "live", "churned"]
    org.save(update_fields=["lifecycle_stages"])
    project, ms = start(org, bob)
    svc.complete_milestone(ms["go-live"], by=actor(org, "csm", bob))
    assert Account.all_orgs.get(pk=project.account_id).lifecycle_stage == "onboarding"
    assert OnboardingProject.all_orgs.get(pk=project.pk).status == "live"


def test_the_data_migration_gives_existing_organizations_their_default_template(org, other_org):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("value.migrations.0003_default_onboarding_templates")
    OnboardingTemplate.all_orgs.filter(organization=org).delete()
    kept = OnboardingTemplate.all_orgs.get(organization=other_org)
    migration.create_default_templates(apps, None)
    created = OnboardingTemplate.all_orgs.get(organization=org)
    assert created.is_default and created.phases == svc.DEFAULT_PHASES
    assert list(OnboardingTemplate.all_orgs.filter(organization=other_org)) == [kept]  # not a second default
