"""The other triggers of spec §5 (issue 12 §2), each with its occurrence key: fires once per occurrence across
simulated days, and what its parameters select."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from cs_platform.events import CATALOGUE, dispatch
from health.models import UsageMetric
from playbooks.engine import evaluate_organization
from playbooks.models import Cta, PlaybookFiring
from playbooks.triggers import CONSUMED_EVENTS, period_key, validate_trigger

from .factories import AccountFactory, ContactFactory, ContractFactory
from .signal_factories import InvoiceFactory, TicketFactory
from .test_playbook_engine import START, at, make_playbook, simulate

pytestmark = pytest.mark.django_db


def keys(playbook) -> list[tuple[str, dt.date, str]]:
    rows = PlaybookFiring.objects.for_org(playbook.organization_id).filter(playbook=playbook).order_by("fired_at", "pk")
    return [(f.occurrence_key, f.fired_at.date(), f.outcome) for f in rows]


def test_schedule_fires_once_per_quarter_for_the_accounts_in_scope(org, bob):
    high = {"match": "all", "conditions": [{"field": "touch_model", "op": "eq", "value": "high"}]}
    playbook = make_playbook(
        org, "schedule", {"every": "quarter"},
        [{"kind": "open_cta", "type": "lifecycle", "reason": "qbr", "tasks": [{"title": "QBR"}]}], conditions=high,
    )  # fmt: skip
    account = AccountFactory(organization=org, owner=bob, touch_model="high")
    AccountFactory(organization=org, owner=bob, touch_model="low")
    simulate(org, days=200)  # 2026-03-02 → 2026-09-17: Q1, Q2, Q3
    assert [(k, d) for k, d, _ in keys(playbook)] == [
        ("period:2026-Q1", START), ("period:2026-Q2", dt.date(2026, 4, 1)), ("period:2026-Q3", dt.date(2026, 7, 1)),
    ]  # fmt: skip
    assert {f.account_id for f in PlaybookFiring.all_orgs.filter(playbook=playbook)} == {account.pk}
    assert period_key("month", dt.date(2026, 12, 5)) == "period:2026-12"
    assert period_key("year", dt.date(2026, 12, 5)) == "period:2026"


def test_invoice_overdue_fires_once_per_invoice_n_days_after_due(org, bob):
    playbook = make_playbook(org, "invoice_overdue", {"days": 30})
    account = AccountFactory(organization=org, owner=bob)
    late = InvoiceFactory(account=account, due_date=START + dt.timedelta(days=10))
    paid = InvoiceFactory(account=account, due_date=START + dt.timedelta(days=10), paid_at=START)
    simulate(org, days=100)
    assert keys(playbook) == [(f"invoice:{late.pk}", START + dt.timedelta(days=40), "fired")]
    assert paid.pk != late.pk


def test_p1_ticket_fires_once_per_ticket(org, bob):
    playbook = make_playbook(org, "p1_ticket", {})
    account = AccountFactory(organization=org, owner=bob)
    p1 = TicketFactory(account=account, priority="P1", opened_at=at(START + dt.timedelta(days=3), 8))
    TicketFactory(account=account, priority="P2", opened_at=at(START + dt.timedelta(days=3), 8))
    TicketFactory(account=account, priority="P1", opened_at=at(START - dt.timedelta(days=30)))  # too old
    simulate(org, days=20)  # one evaluation a day at 06:00: the 08:00 ticket is found the next morning
    assert keys(playbook) == [(f"ticket:{p1.pk}", START + dt.timedelta(days=4), "fired")]


def test_seats_over_fires_once_per_episode(org, bob):
    playbook = make_playbook(
        org, "seats_over", {},
        [{"kind": "open_cta", "type": "expansion", "reason": "seats_over_licence"}],
    )  # fmt: skip
    account = AccountFactory(organization=org, owner=bob)
    ContractFactory(account=account, seats=50, start_date=START - dt.timedelta(days=100),
                    end_date=START + dt.timedelta(days=300))  # fmt: skip
    UsageMetric.all_orgs.bulk_create(
        UsageMetric(
            organization=org,
            account=account,
            date=START + dt.timedelta(days=d),
            metric="active_users",
            value=60 if 10 <= d < 20 else 40,
        )  # fmt: skip
        for d in range(60)
    )
    simulate(org, days=60)
    rows = list(PlaybookFiring.all_orgs.filter(playbook=playbook).values_list("fired_at", "cleared_at"))
    assert len(rows) == 1
    fired_at, cleared_at = rows[0]
    assert fired_at.date() == START + dt.timedelta(days=10)
    # Cleared once the peak of the last 7 days is back within the seats: day 26.
    assert cleared_at.date() == START + dt.timedelta(days=26)
    assert Cta.objects.for_org(org).get().status == "auto_closed"


def test_stage_unchanged_counts_from_when_the_stage_was_first_seen(org, bob):
    playbook = make_playbook(org, "stage_unchanged", {"days": 30, "stages": ["onboarding"]},
                             [{"kind": "open_cta", "type": "lifecycle", "reason": "stage_stalled"}])  # fmt: skip
    account = AccountFactory(organization=org, owner=bob, lifecycle_stage="onboarding")
    moved = START + dt.timedelta(days=40)

    def move(day):
        if day == moved:
            account.lifecycle_stage = "adoption"
            account.save(update_fields=["lifecycle_stage"])
        if day == moved + dt.timedelta(days=10):
            account.lifecycle_stage = "onboarding"
            account.save(update_fields=["lifecycle_stage"])

    simulate(org, days=100, each_day=move)
    back = moved + dt.timedelta(days=10)
    assert keys(playbook) == [
        (f"stage:onboarding:{START}", START + dt.timedelta(days=30), "fired"),
        (f"stage:onboarding:{back}", back + dt.timedelta(days=30), "fired"),
    ]


def test_stage_unchanged_counts_from_the_first_sight_not_from_the_account_age(org, bob):
    """An account long in its stage when the playbook starts watching waits N days from then; a stage changed
    while nothing watched (the mark is stale) counts from when the change was seen; inactive playbooks keep no
    marks."""
    from playbooks.models import AccountStageMark

    with time_machine.travel(at(START - dt.timedelta(days=300)), tick=False):
        old = AccountFactory(organization=org, owner=bob, lifecycle_stage="onboarding")
        moving = AccountFactory(organization=org, owner=bob, lifecycle_stage="onboarding")
    stalled = [{"kind": "open_cta", "type": "lifecycle", "reason": "stage_stalled"}]
    playbook = make_playbook(org, "stage_unchanged", {"days": 30}, stalled, active=False)
    with time_machine.travel(at(START), tick=False):
        evaluate_organization(org.pk)
    assert not AccountStageMark.objects.for_org(org).exists()  # nothing watches yet
    playbook.active = True
    playbook.save(update_fields=["active"])
    simulate(org, days=5)  # first seen on START
    assert dict(AccountStageMark.objects.for_org(org).values_list("account_id", "since")) == {
        old.pk: START,
        moving.pk: START,
    }
    playbook.active = False
    playbook.save(update_fields=["active"])
    moving.lifecycle_stage = "adoption"
    moving.save(update_fields=["lifecycle_stage"])
    playbook.active = True
    playbook.save(update_fields=["active"])
    seen = START + dt.timedelta(days=10)
    simulate(org, days=60, start=seen)
    assert AccountStageMark.objects.for_org(org).get(account=moving).since == seen
    fired = dict(PlaybookFiring.objects.for_org(org).filter(playbook=playbook).values_list("account_id", "fired_at"))
    assert {k: v.date() for k, v in fired.items()} == {
        old.pk: START + dt.timedelta(days=30),
        moving.pk: seen + dt.timedelta(days=30),
    }


def test_health_drop_fires_once_per_drop(org, bob):
    from health.models import HealthScore, HealthSnapshot

    playbook = make_playbook(org, "health_drop", {"points": 10, "days": 7},
                             [{"kind": "open_cta", "type": "risk", "reason": "health_drop"}])  # fmt: skip
    account = AccountFactory(organization=org, owner=bob)
    score = HealthScore.all_orgs.create(organization=org, account=account, score=80, color="green",
                                        computed_at=at(START))  # fmt: skip
    HealthSnapshot.all_orgs.bulk_create(
        HealthSnapshot(
            organization=org,
            account=account,
            date=START + dt.timedelta(days=d),
            score=80,
            color="green",
            computed_at=at(START),
        )  # fmt: skip
        for d in range(-10, 30)
    )
    with time_machine.travel(at(START + dt.timedelta(days=2)), tick=False):
        evaluate_organization(org.pk)
        HealthScore.all_orgs.filter(pk=score.pk).update(score=65, color="yellow")
        evaluate_organization(org.pk)
        evaluate_organization(org.pk)
    assert [o for _, _, o in keys(playbook)] == ["fired"]


def test_contact_departed_fires_once_for_a_key_contact(org, bob):
    playbook = make_playbook(org, "contact_departed", {},
                             [{"kind": "open_cta", "type": "risk", "reason": "key_contact_departed"}])  # fmt: skip
    account = AccountFactory(organization=org, owner=bob)
    champion = ContactFactory(account=account, roles=["champion"])
    user = ContactFactory(account=account, roles=["end_user"])
    dispatch(org.pk)
    for contact in (champion, user):
        contact.is_active = False
        contact.save()
    dispatch(org.pk)
    assert keys(playbook) == [(f"contact:{champion.pk}", keys(playbook)[0][1], "fired")]
    assert Cta.objects.for_org(org).get().reason.key == "key_contact_departed"


def test_segment_triggers_are_accepted_and_guarded_until_their_events_exist(org):
    names = {spec.name for spec in CATALOGUE}
    assert set(CONSUMED_EVENTS) <= names
    assert ("segment.entered" in CONSUMED_EVENTS) == ("segment.entered" in names)
    assert [p for p, _ in validate_trigger("segment_entered", {}, organization=org)] == ["trigger_params.segment"]
