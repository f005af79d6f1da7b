"""Stalled onboarding milestones (issue 15, item 1): set-based detection per organization, its domain event, and
the ``onboarding_stalled`` playbook trigger firing exactly once per stall (frozen clock, redelivered events)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from cs_platform.events import CATALOGUE, dispatch
from cs_platform.models import DomainEvent, EventReceipt
from playbooks.engine import on_event
from playbooks.models import Cta, PlaybookFiring
from playbooks.triggers import CONSUMED_EVENTS, validate_trigger
from value.models import OnboardingMilestone, OnboardingProject
from value.stalls import STALL_EVENT, detect_stalls
from value.tasks import detect_all_stalls, detect_stalls_task

from .factories import AccountFactory
from .test_playbook_engine import make_playbook
from .ttv_helpers import at

pytestmark = pytest.mark.django_db

D0 = dt.date(2026, 3, 2)
ONBOARDING_CTA = {"kind": "open_cta", "type": "lifecycle", "reason": "onboarding",
                  "tasks": [{"title": "Unblock the milestone", "due_in_days": 2}]}  # fmt: skip


def project_with(account, *milestones, status="active", stall_after_days=14) -> OnboardingProject:
    project = OnboardingProject.all_orgs.create(
        organization=account.organization, account=account, name="Onboarding", status=status,
        kickoff_on=D0 - dt.timedelta(days=10), stall_after_days=stall_after_days,
    )  # fmt: skip
    for i, fields in enumerate(milestones):
        OnboardingMilestone.all_orgs.create(
            organization=account.organization, project=project, phase="Setup", position=i, key=f"m{i}",
            name=f"Milestone {i}", **{"last_changed_at": at(D0), **fields},
        )  # fmt: skip
    return project


def events(org):
    return list(DomainEvent.objects.for_org(org).filter(name=STALL_EVENT).order_by("occurred_at", "pk"))


def test_late_or_unchanged_open_milestones_are_marked_once_with_one_event_each(org, bob):
    account = AccountFactory(organization=org, owner=bob, name="Initech")
    project = project_with(
        account,
        {"due_on": D0 + dt.timedelta(days=3)},                                    # 0: late from D0+4
        {"due_on": D0 + dt.timedelta(days=30)},                                   # 1: unchanged from D0+15
        {"due_on": D0 + dt.timedelta(days=1), "completed_on": D0},                # 2: done: never
        {"due_on": None, "last_changed_at": at(D0 + dt.timedelta(days=10))},      # 3: unchanged from D0+25
    )  # fmt: skip
    cancelled = project_with(AccountFactory(organization=org), {"due_on": D0}, status="cancelled")
    marked = {}
    for offset in range(0, 30):
        day = D0 + dt.timedelta(days=offset)
        with time_machine.travel(at(day, 6), tick=False):
            for _ in range(2):  # the beat may run twice: nothing more the second time
                detect_stalls(org)
        for m in OnboardingMilestone.objects.for_org(org).filter(stalled_on__isnull=False):
            marked.setdefault(m.key, m.stalled_on)
    # Late: the first day past D0+3 is D0+4. Unchanged: last change D0 10:00, 14 days → older than that at
    # D0+15 06:00 (D0+14 06:00 is still 4 hours short). m3 changed at D0+10 10:00 → stalled at D0+25 06:00.
    assert marked == {"m0": D0 + dt.timedelta(days=4), "m1": D0 + dt.timedelta(days=15),
                      "m3": D0 + dt.timedelta(days=25)}  # fmt: skip
    raised = events(org)
    assert [(e.payload["key"], e.payload["stalled_on"], e.payload["reasons"]) for e in raised] == [
        ("m0", "2026-03-06", ["late"]), ("m1", "2026-03-17", ["unchanged"]), ("m3", "2026-03-27", ["unchanged"]),
    ]  # fmt: skip
    first = raised[0].payload
    assert first["account"] == account.pk and first["account_name"] == "Initech" and first["project"] == project.pk
    assert set(first) == set(next(s for s in CATALOGUE if s.name == STALL_EVENT).payload)
    assert not OnboardingMilestone.objects.for_org(org).filter(project=cancelled, stalled_on__isnull=False).exists()


def test_today_is_the_organizations_day(org, bob):
    org.time_zone = "Pacific/Auckland"  # UTC+13 in March
    org.save()
    account = AccountFactory(organization=org, owner=bob)
    project_with(account, {"due_on": D0})
    # 2026-03-02 12:00 UTC is already 2026-03-03 01:00 in Auckland: past the due date there.
    with time_machine.travel(dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC), tick=False):
        assert detect_stalls(org) == 1
    assert OnboardingMilestone.objects.for_org(org).get().stalled_on == dt.date(2026, 3, 3)
    assert timezone.localtime(at(D0, 12), ZoneInfo("Pacific/Auckland")).date() == dt.date(2026, 3, 3)


def test_detection_is_per_organization_and_the_beat_queues_each(org, other_org, bob):
    mine = project_with(AccountFactory(organization=org, owner=bob), {"due_on": D0})
    theirs = project_with(AccountFactory(organization=other_org), {"due_on": D0})
    with time_machine.travel(at(D0 + dt.timedelta(days=1)), tick=False):
        assert detect_stalls(org) == 1
        assert not OnboardingMilestone.all_orgs.filter(project=theirs, stalled_on__isnull=False).exists()
        assert detect_all_stalls.apply().get() == 2
        detect_stalls_task.apply(args=[other_org.pk])
    assert OnboardingMilestone.all_orgs.filter(project=theirs, stalled_on__isnull=False).count() == 1
    assert [e.organization_id for e in DomainEvent.all_orgs.filter(name=STALL_EVENT)] == [org.pk, other_org.pk]
    assert mine.pk != theirs.pk


def test_the_trigger_is_validated_and_consumes_the_stall_event(org):
    assert STALL_EVENT in CONSUMED_EVENTS
    assert validate_trigger("onboarding_stalled", {}) == []
    assert validate_trigger("onboarding_stalled", {"reasons": ["late"]}) == []
    assert [p for p, _ in validate_trigger("onboarding_stalled", {"reasons": ["slow"]})] == ["trigger_params.reasons"]
    assert [p for p, _ in validate_trigger("onboarding_stalled", {"reasons": []})] == ["trigger_params.reasons"]


def test_a_stalled_milestone_fires_the_playbook_exactly_once_and_again_after_it_changed_and_stalled_again(org, bob):
    """Acceptance (issue 15): frozen clock; the milestone goes stale; detection runs twice and the event is
    dispatched twice (and handed to the engine again, as a redelivery without its receipt would) → one firing,
    one CTA. The milestone changes (stalled_on cleared, as the onboarding services do), stalls again later →
    one more firing."""
    playbook = make_playbook(org, "onboarding_stalled", {}, [ONBOARDING_CTA])
    late_only = make_playbook(org, "onboarding_stalled", {"reasons": ["late"]}, [ONBOARDING_CTA], name="Late only")
    account = AccountFactory(organization=org, owner=bob)
    project_with(account, {"due_on": D0 + dt.timedelta(days=30)})  # unchanged since D0 10:00: stale at D0+15
    milestone = OnboardingMilestone.objects.for_org(org).get()
    dispatch(org.pk)  # account.created

    with time_machine.travel(at(D0 + dt.timedelta(days=14), 6), tick=False):
        assert detect_stalls(org) == 0 and dispatch(org.pk) == 0  # not yet stale: 14 days less 4 hours
    day1 = D0 + dt.timedelta(days=15)
    with time_machine.travel(at(day1, 6), tick=False):
        assert detect_stalls(org) == 1
        assert detect_stalls(org) == 0
        assert dispatch(org.pk) == 1
        assert dispatch(org.pk) == 0  # the redelivered message: already dispatched
        (event,) = events(org)
        EventReceipt.all_orgs.filter(event=event).delete()  # a consumer run whose receipt was lost
        on_event(event)
    fired = PlaybookFiring.objects.for_org(org).filter(playbook=playbook)
    assert [(f.occurrence_key, f.outcome) for f in fired] == [(f"milestone:{milestone.pk}:{day1}", "fired")]
    (cta,) = Cta.objects.for_org(org)
    assert (cta.account_id, cta.reason.key, cta.fire_count, cta.tasks.count()) == (account.pk, "onboarding", 1, 1)
    assert not PlaybookFiring.objects.for_org(org).filter(playbook=late_only).exists()  # unchanged, not late

    # The milestone changes (its owner updates it): stalled_on is cleared and the clock restarts.
    changed = D0 + dt.timedelta(days=20)
    OnboardingMilestone.all_orgs.filter(pk=milestone.pk).update(stalled_on=None, last_changed_at=at(changed))
    with time_machine.travel(at(changed + dt.timedelta(days=5), 6), tick=False):
        assert detect_stalls(org) == 0  # changed 5 days ago: not stale
    day2 = changed + dt.timedelta(days=15)  # 2026-04-06: unchanged 14 days and 20 hours, and past due (04-01)
    with time_machine.travel(at(day2, 6), tick=False):
        assert detect_stalls(org) == 1
        assert detect_stalls(org) == 0
        dispatch(org.pk)
        dispatch(org.pk)
    keys = list(fired.filter(outcome="fired").order_by("fired_at").values_list("occurrence_key", flat=True))
    assert keys == [f"milestone:{milestone.pk}:{day1}", f"milestone:{milestone.pk}:{day2}"]
    assert [e.payload["reasons"] for e in events(org)] == [["unchanged"], ["late", "unchanged"]]
    # The late-only playbook fires for the second stall only (late then), once.
    late_firings = PlaybookFiring.objects.for_org(org).filter(playbook=late_only)
    assert list(late_firings.values_list("occurrence_key", "outcome")) == [
        (f"milestone:{milestone.pk}:{day2}", "fired")
    ]


def test_the_playbook_editor_offers_the_trigger_and_its_reasons(client, org, alice):
    from django.urls import reverse

    from playbooks.models import Playbook

    from .test_playbook_editor import form_data

    url = reverse("admin-playbook-new", args=[org.slug])
    client.force_login(alice)
    html = client.get(url).content.decode()
    assert 'value="onboarding_stalled"' in html and 'name="tp_onboarding_stalled_reasons"' in html
    data = form_data(name="Stalled onboarding", trigger="onboarding_stalled", tp_onboarding_stalled_reasons=["late"])
    assert client.post(url, data).status_code == 302
    playbook = Playbook.objects.for_org(org).get(name="Stalled onboarding")
    assert (playbook.trigger, playbook.trigger_params) == ("onboarding_stalled", {"reasons": ["late"]})
