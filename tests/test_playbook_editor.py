"""The playbook editor pages (issue 12 §5 "playbook editor with preview"): the list and the editor per role,
organization isolation, per-field validation with the API's validator, saving never activates, the preview
writes nothing, activation is admin-only."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, Segment
from cs_platform.models import DomainEvent
from playbooks.models import Cta, CtaTask, EmailTemplate, Notification, Playbook, PlaybookFiring

from .factories import AccountFactory, ContractFactory
from .renewal_factories import RenewalFactory
from .survey_factories import make_survey

pytestmark = pytest.mark.django_db


def edit_url(org, playbook=None) -> str:
    if playbook is None:
        return reverse("admin-playbook-new", args=[org.slug])
    return reverse("admin-playbook", args=[org.slug, playbook.pk])


def form_data(**overrides) -> dict:
    """A valid editor POST: renewal due in 90 days → a renewal-prep CTA with two tasks for the owner."""
    data = {
        "name": "Renewal prep",
        "description": "",
        "trigger": "renewal_due",
        "tp_renewal_due_days": "90",
        "segment": "",
        "cooldown_days": "0",
        "conditions": "",
        "a0-kind": "open_cta",
        "a0-cta_reason": "lifecycle/renewal_prep",
        "a0-cta_title": "",
        "a0-cta_priority": "",
        "a0-cta_due_in_days": "14",
        "a0-cta_assignee": "owner",
        "a0-cta_team": "",
        "a0-task0_title": "Review usage",
        "a0-task0_due_in_days": "3",
        "a0-task0_assignee": "",
        "a0-task1_title": "Book the renewal call",
        "a0-task1_due_in_days": "7",
        "a0-task1_assignee": "owner",
        "a0-task2_title": "",
        "a0-task2_due_in_days": "",
        "a0-task2_assignee": "",
        "op": "save",
    }
    data.update(overrides)
    return data


@pytest.fixture
def playbook(org, alice):
    return Playbook.all_orgs.create(
        organization=org,
        name="Risk",
        trigger="health_color",
        trigger_params={"colors": ["red"]},
        actions=[{"kind": "open_cta", "type": "risk", "reason": "health_red", "tasks": [{"title": "Call"}]}],
        created_by=alice,
    )


@pytest.fixture
def renewing(org, bob):
    """Two accounts owned by Bob renewing in 60 days, one in 200."""
    today = timezone.localdate()
    accounts = []
    for name, days in [("Globex", 60), ("Initech", 60), ("Umbrella", 200)]:
        account = AccountFactory(organization=org, owner=bob, name=name)
        contract = ContractFactory(organization=org, account=account, end_date=today + dt.timedelta(days=days))
        RenewalFactory(contract=contract)
        accounts.append(account)
    return accounts


# --- Roles and isolation -------------------------------------------------------------------------------


def test_admin_creates_a_playbook_inactive_with_real_fields(client, org, alice):
    client.force_login(alice)
    page = client.get(edit_url(org))
    assert page.status_code == 200
    html = page.content.decode()
    # Fields generated from the trigger registry: renewal_due's "days", health_color's colours as checkboxes.
    assert 'name="tp_renewal_due_days"' in html and 'name="tp_health_color_colors"' in html
    assert "<script>" not in html  # CSP: no inline script
    response = client.post(edit_url(org), form_data())
    assert response.status_code == 302
    playbook = Playbook.objects.for_org(org).get(name="Renewal prep")
    assert response["Location"] == edit_url(org, playbook) + "?preview=1#preview"
    assert playbook.active is False  # saving never activates
    assert (playbook.trigger, playbook.trigger_params, playbook.created_by) == ("renewal_due", {"days": 90}, alice)
    assert playbook.actions == [
        {
            "kind": "open_cta", "type": "lifecycle", "reason": "renewal_prep", "due_in_days": 14, "assignee": "owner",
            "tasks": [{"title": "Review usage", "due_in_days": 3},
                      {"title": "Book the renewal call", "due_in_days": 7, "assignee": "owner"}],
        }
    ]  # fmt: skip
    # Round trip: the stored playbook fills the editor again.
    html = client.get(edit_url(org, playbook)).content.decode()
    assert 'value="Book the renewal call"' in html and 'value="90"' in html


def test_editing_an_active_playbook_keeps_it_active_and_saves_changes(client, org, alice, playbook):
    Playbook.all_orgs.filter(pk=playbook.pk).update(active=True)
    client.force_login(alice)
    response = client.post(edit_url(org, playbook), form_data(name="Risk, renamed"))
    assert response.status_code == 302
    playbook.refresh_from_db()
    assert (playbook.name, playbook.trigger, playbook.active) == ("Risk, renamed", "renewal_due", True)


def test_leader_reads_but_cannot_write(client, org, make_member, playbook):
    leader = make_member(org, "leader").user
    client.force_login(leader)
    listing = client.get(reverse("admin-playbooks", args=[org.slug]))
    assert listing.status_code == 200 and "Risk" in listing.content.decode()
    html = client.get(edit_url(org, playbook)).content.decode()
    assert "<fieldset disabled>" in html and 'data-testid="save-playbook"' not in html
    assert 'data-testid="toggle-active"' not in html
    assert "preview" not in client.get(edit_url(org, playbook) + "?preview=1").context  # admins preview
    assert client.post(edit_url(org, playbook), form_data()).status_code == 403
    assert client.get(edit_url(org)).status_code == 403  # creating is writing
    assert client.post(edit_url(org), form_data(name="Other")).status_code == 403
    activation = reverse("admin-playbook-activation", args=[org.slug, playbook.pk])
    assert client.post(activation, {"active": "1"}).status_code == 403
    playbook.refresh_from_db()
    assert (playbook.name, playbook.active) == ("Risk", False)
    assert not Playbook.all_orgs.filter(name="Other").exists()


@pytest.mark.parametrize("role", ["csm", "viewer"])
def test_csm_and_viewer_get_403(client, org, make_member, playbook, role):
    client.force_login(make_member(org, role).user)
    for url in [reverse("admin-playbooks", args=[org.slug]), edit_url(org), edit_url(org, playbook)]:
        assert client.get(url).status_code == 403, url
    assert client.post(edit_url(org), form_data()).status_code == 403
    activation = reverse("admin-playbook-activation", args=[org.slug, playbook.pk])
    assert client.post(activation, {"active": "1"}).status_code == 403
    assert Playbook.all_orgs.count() == 1 and not Playbook.all_orgs.get().active


def test_another_orgs_playbook_is_404_and_untouched(client, org, other_org, charlie, playbook):
    client.force_login(charlie)
    assert client.get(edit_url(other_org, playbook)).status_code == 404
    assert client.post(edit_url(other_org, playbook), form_data()).status_code == 404
    activation = reverse("admin-playbook-activation", args=[other_org.slug, playbook.pk])
    assert client.post(activation, {"active": "1"}).status_code == 404
    # Through the other organization's URL: not a member, 404 as for a missing organization.
    assert client.get(reverse("admin-playbooks", args=[org.slug])).status_code == 404
    playbook.refresh_from_db()
    assert (playbook.name, playbook.active, playbook.trigger) == ("Risk", False, "health_color")
    assert "Risk" not in client.get(reverse("admin-playbooks", args=[other_org.slug])).content.decode()


def test_another_orgs_segment_cta_type_and_template_are_refused(client, org, other_org, alice):
    foreign_segment = Segment.all_orgs.create(organization=other_org, name="Theirs", rules={})
    foreign_template = EmailTemplate.all_orgs.create(organization=other_org, name="T", subject="S", body="B")
    # A CTA type only the other organization has.
    from playbooks.models import CtaReason, CtaType

    theirs = CtaType.all_orgs.create(organization=other_org, key="advocacy", label="Advocacy")
    CtaReason.all_orgs.create(organization=other_org, type=theirs, key="case_study", label="Case study")
    client.force_login(alice)
    data = form_data(
        segment=str(foreign_segment.pk),
        **{
            "a0-cta_reason": "advocacy/case_study",
            "a1-kind": "send_email",
            "a1-email_template": str(foreign_template.pk),
        },
    )
    response = client.post(edit_url(org), data)
    assert response.status_code == 400
    assert not Playbook.all_orgs.exists()
    errors = response.context["form"].errors
    assert "segment" in errors
    actions = response.context["actions"]
    assert "cta_reason" in actions[0].errors and "email_template" in actions[1].errors
    # Foreign ids are not even offered.
    html = client.get(edit_url(org)).content.decode()
    assert "Theirs" not in html and "Case study" not in html
    # The segment trigger's parameter too.
    response = client.post(
        edit_url(org), form_data(trigger="segment_entered", tp_segment_entered_segment=str(foreign_segment.pk))
    )
    assert response.status_code == 400 and "tp_segment_entered_segment" in response.context["form"].errors


# --- Validation: the API's validator, messages per field ---------------------------------------------


def test_validation_messages_per_field(client, org, alice):
    client.force_login(alice)
    data = form_data(
        tp_renewal_due_days="9999",
        cooldown_days="400",
        conditions='{"match": "all", "conditions": [{"field": "nope", "op": "eq", "value": 1}]}',
        **{"a0-cta_reason": "", "a0-task1_due_in_days": "soon", "a0-cta_assignee": "round_robin"},
    )
    response = client.post(edit_url(org), data)
    assert response.status_code == 400
    form, actions = response.context["form"], response.context["actions"]
    # The same words as the API (playbooks.validation / triggers / actions).
    assert form.errors["tp_renewal_due_days"] == ["Expected a number from 1 to 730."]
    assert form.errors["cooldown_days"] == ["Expected a number of days from 0 to 365."]
    assert form.errors["conditions"][0].startswith("conditions.0.field: ")
    assert actions[0].errors["cta_reason"] == ["Unknown CTA type."]
    assert actions[0].errors["cta_team"] == ["Round-robin needs a team."]
    assert actions[0].errors["task1_due_in_days"] == ["Expected a whole number from 0 to 365."]
    html = response.content.decode()
    assert "Expected a number from 1 to 730." in html and "Nothing was saved" in html
    assert 'value="Book the renewal call"' in html  # what was typed is kept
    assert not Playbook.all_orgs.exists()


def test_no_action_and_bad_json_and_missing_name(client, org, alice):
    client.force_login(alice)
    response = client.post(edit_url(org), form_data(name=" ", conditions="{oops", **{"a0-kind": ""}))
    assert response.status_code == 400
    assert "Add at least one action." in response.context["loose"]
    assert response.context["form"].errors["conditions"][0].startswith("Not valid JSON")
    assert "name" in response.context["form"].errors
    assert not Playbook.all_orgs.exists()


def test_duplicate_name_is_refused_on_the_field(client, org, alice, playbook):
    client.force_login(alice)
    response = client.post(edit_url(org), form_data(name="Risk"))
    assert response.status_code == 400
    assert response.context["form"].errors["name"] == ["Another playbook has this name."]


def test_add_another_action_saves_nothing_and_adds_a_slot(client, org, alice):
    client.force_login(alice)
    response = client.post(edit_url(org), form_data(op="add_action"))
    assert response.status_code == 200
    assert len(response.context["actions"]) == 2 and not Playbook.all_orgs.exists()
    data = form_data(
        **{"a1-kind": "notify", "a1-notify_to": "owner", "a1-notify_message": "{{ account.name }} renews soon",
           "a2-kind": "send_email", "a2-email_roles": ["champion"], "a3-kind": "set_field", "a3-set_field": "tags",
           "a3-set_value": "renewing", "a3-set_op": "add", "a4-kind": "webhook"},
    )  # fmt: skip
    template = EmailTemplate.all_orgs.create(organization=org, name="Renewal", subject="Hi", body="Renewing")
    data["a2-email_template"] = str(template.pk)
    assert client.post(edit_url(org), data).status_code == 302
    kinds = [a["kind"] for a in Playbook.objects.for_org(org).get().actions]
    assert kinds == ["open_cta", "notify", "send_email", "set_field", "webhook"]
    assert Playbook.objects.for_org(org).get().actions[2] == {"kind": "send_email", "template": template.pk,
                                                             "roles": ["champion"]}  # fmt: skip


# --- Preview, activation --------------------------------------------------------------------------------


def counts() -> dict[str, int]:
    models = [Cta, CtaTask, PlaybookFiring, Notification, DomainEvent, Account, Playbook]
    return {m.__name__: m.all_orgs.count() for m in models}


def test_preview_shows_what_it_would_do_and_writes_nothing(client, org, alice, renewing):
    client.force_login(alice)
    client.post(edit_url(org), form_data(**{"a1-kind": "notify", "a1-notify_to": "owner", "a1-notify_message": "x"}))
    playbook = Playbook.objects.for_org(org).get()
    before = counts()
    response = client.get(edit_url(org, playbook) + "?preview=1")
    assert response.status_code == 200
    preview = response.context["preview"]
    assert (preview["matching"], preview["ctas_to_open"], preview["notifications"]) == (2, 2, 2)
    html = response.content.decode()
    assert 'data-testid="preview-ctas-to-open">2<' in html and "Globex" in html and "Umbrella" not in html
    assert counts() == before  # nothing written


def test_activate_and_deactivate_admin_only(client, org, alice, playbook, caplog):
    caplog.set_level("INFO", logger="playbooks.activation")
    client.force_login(alice)
    activation = reverse("admin-playbook-activation", args=[org.slug, playbook.pk])
    assert client.get(activation).status_code == 405
    response = client.post(activation, {"active": "1"}, follow=True)
    playbook.refresh_from_db()
    assert playbook.active and "is active" in response.content.decode()
    client.post(activation, {"active": "0"})
    playbook.refresh_from_db()
    assert not playbook.active
    # Recorded: who switched it, each time; a repeated POST changes and records nothing.
    client.post(activation, {"active": "0"})
    lines = [r.getMessage() for r in caplog.records if r.name == "playbooks.activation"]
    assert lines == [
        f"playbook {playbook.pk} (Risk) activated by user {alice.pk} in organization {org.pk}",
        f"playbook {playbook.pk} (Risk) deactivated by user {alice.pk} in organization {org.pk}",
    ]


def test_the_api_patch_of_active_is_recorded_the_same_way(org, api, playbook, caplog):
    caplog.set_level("INFO", logger="playbooks.activation")
    response = api(org).patch(f"/api/v1/playbooks/{playbook.pk}/", {"active": True}, format="json")
    assert response.status_code == 200
    api(org).patch(f"/api/v1/playbooks/{playbook.pk}/", {"description": "x"}, format="json")
    lines = [r.getMessage() for r in caplog.records if r.name == "playbooks.activation"]
    assert lines == [f"playbook {playbook.pk} (Risk) activated by user None in organization {org.pk}"]


def test_a_playbook_with_problems_is_not_activated(client, org, alice, playbook):
    Playbook.all_orgs.filter(pk=playbook.pk).update(actions=[{"kind": "open_cta", "type": "gone", "reason": "x"}])
    client.force_login(alice)
    activation = reverse("admin-playbook-activation", args=[org.slug, playbook.pk])
    response = client.post(activation, {"active": "1"}, follow=True)
    playbook.refresh_from_db()
    assert not playbook.active and "Not activated" in response.content.decode()
    assert "Unknown CTA type." in response.content.decode()  # the stored problems are listed


def test_list_shows_trigger_in_words_and_counts(client, org, alice, playbook, account):
    PlaybookFiring.all_orgs.create(organization=org, playbook=playbook, account=account, occurrence_key="a",
                                   outcome="fired")  # fmt: skip
    PlaybookFiring.all_orgs.create(organization=org, playbook=playbook, account=account, occurrence_key="b",
                                   outcome="suppressed")  # fmt: skip
    client.force_login(alice)
    response = client.get(reverse("admin-playbooks", args=[org.slug]))
    html = response.content.decode()
    assert "Health turned red/yellow (colours: red)" in html
    row = response.context["playbooks"][0]
    effect = row.effect
    assert (effect["fired"], effect["suppressed"], effect["completed"]) == (1, 1, 0) and row.last_fired is not None
    assert effect["median_days_to_complete"] is None and "none yet" in html


def test_segment_editor_links_to_a_new_playbook_on_it(client, org, alice):
    segment = Segment.all_orgs.create(organization=org, name="Enterprise", rules={"match": "all", "conditions": []})
    client.force_login(alice)
    html = client.get(reverse("admin-segment", args=[org.slug, segment.pk])).content.decode()
    link = f"{edit_url(org)}?segment={segment.pk}"
    assert link in html
    response = client.get(link)
    assert f'<option value="{segment.pk}" selected>' in response.content.decode()


def test_an_api_playbook_round_trips_through_the_editor(client, org, alice):
    """What the API can store and the editor shows (a CTA's description, priority, task assignees) survives."""
    template = EmailTemplate.all_orgs.create(organization=org, name="Hello", subject="Hi", body="Hello")
    make_survey(org, name="NPS")  # enrol_survey names a survey of the organization
    actions = [
        {"kind": "open_cta", "type": "risk", "reason": "health_red", "description": "Why it matters",
         "priority": "high", "tasks": [{"title": "Call", "due_in_days": 1, "assignee": "manager"}],
         "assignee": "owner"},
        {"kind": "send_email", "template": template.pk, "roles": ["champion"]},
        {"kind": "set_field", "field": "tags", "value": "at-risk", "op": "remove"},
        {"kind": "notify", "to": "user", "user": alice.pk, "message": "{{ account.name }} is red"},
        {"kind": "enrol_survey", "survey": "NPS"},
    ]  # fmt: skip
    playbook = Playbook.all_orgs.create(
        organization=org, name="From the API", trigger="health_drop", trigger_params={"points": 10, "days": 7},
        cooldown_days=30, actions=actions,
    )  # fmt: skip
    client.force_login(alice)
    page = client.get(edit_url(org, playbook))
    data = {}
    for form in [page.context["form"], *page.context["actions"]]:
        for bound in form:
            value = bound.value()
            if value not in (None, "", []):
                data[bound.html_name] = [str(v) for v in value] if isinstance(value, list) else str(value)
    data["op"] = "save"
    response = client.post(edit_url(org, playbook), data)
    assert response.status_code == 302, response.context and response.context["form"].errors
    playbook.refresh_from_db()
    assert playbook.actions == actions
    assert (playbook.trigger_params, playbook.cooldown_days) == ({"points": 10, "days": 7}, 30)


@pytest.mark.parametrize(("role", "linked"), [("admin", True), ("leader", True), ("csm", False), ("viewer", False)])
def test_the_work_queue_links_admins_and_leaders_to_the_playbooks(client, org, make_member, role, linked):
    client.force_login(make_member(org, role).user)
    html = client.get(reverse("work", args=[org.slug])).content.decode()
    assert (reverse("admin-playbooks", args=[org.slug]) in html) is linked


def test_activation_needs_the_csrf_token(org, alice, playbook):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    activation = reverse("admin-playbook-activation", args=[org.slug, playbook.pk])
    assert client.post(activation, {"active": "1"}).status_code == 403
    playbook.refresh_from_db()
    assert not playbook.active


def test_preview_of_unsaved_changes_saves_and_writes_nothing(client, org, alice, renewing):
    client.force_login(alice)
    before = counts()
    response = client.post(edit_url(org), form_data(op="preview"))
    assert response.status_code == 200 and response.context["draft"]
    assert (response.context["preview"]["matching"], response.context["preview"]["ctas_to_open"]) == (2, 2)
    assert 'data-testid="preview-draft"' in response.content.decode()
    assert counts() == before  # no playbook, no CTA, nothing
    client.post(edit_url(org), form_data())
    playbook = Playbook.objects.for_org(org).get()
    before = counts()
    # The edit (renewals within 30 days: none) is previewed; the stored playbook keeps its 90 days.
    response = client.post(edit_url(org, playbook), form_data(op="preview", tp_renewal_due_days="30"))
    assert response.context["preview"]["matching"] == 0
    playbook.refresh_from_db()
    assert playbook.trigger_params == {"days": 90} and counts() == before
    # A refused edit is not previewed: the problems are shown instead.
    response = client.post(edit_url(org, playbook), form_data(op="preview", tp_renewal_due_days="0"))
    assert response.status_code == 400 and "preview" not in response.context


def test_the_list_costs_the_same_queries_for_1_or_4_segment_triggered_playbooks(client, org, alice):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(alice)
    url = reverse("admin-playbooks", args=[org.slug])

    def add(n: int) -> None:
        segment = Segment.all_orgs.create(organization=org, name=f"Seg {n}", rules={"match": "all", "conditions": []})
        Playbook.all_orgs.create(
            organization=org, name=f"Entered {n}", trigger="segment_entered", trigger_params={"segment": segment.pk},
            actions=[{"kind": "open_cta", "type": "risk", "reason": "health_red"}], created_by=alice,
        )  # fmt: skip

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            page = client.get(url)
        assert page.status_code == 200
        return len(captured)

    add(1)
    one = queries()
    for n in (2, 3, 4):
        add(n)
    page = client.get(url).content.decode()
    assert "Seg 1" in page and "Seg 4" in page
    assert queries() == one
