"""The playbook engine (issue 12 §2–4): "health turned red → risk CTA with 3 tasks" fires once, not again on
the next evaluation or recompute, not while snoozed, and closes itself when green again; time-based triggers
fire exactly once per occurrence across a simulated 200 days with a frozen clock; cooldown; preview writes
nothing; validation names every problem."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cs_platform.events import dispatch
from cs_platform.models import DomainEvent
from health.models import CsmPulse, HealthScore, UsageMetric
from health.services import recompute_health
from playbooks import ctas
from playbooks.engine import candidates, evaluate_organization, preview
from playbooks.models import Cta, CtaLog, Playbook, PlaybookFiring
from playbooks.validation import playbook_problems

from .factories import AccountFactory, ActivityFactory, ContactFactory, ContractFactory
from .renewal_factories import RenewalFactory

pytestmark = pytest.mark.django_db

START = dt.date(2026, 3, 2)

RISK_TASKS = [
    {"title": "Call the champion", "due_in_days": 2},
    {"title": "Find the root cause", "due_in_days": 5},
    {"title": "Agree a recovery plan", "due_in_days": 10},
]
RISK_CTA = {"kind": "open_cta", "type": "risk", "reason": "health_red", "tasks": RISK_TASKS}


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def make_playbook(org, trigger, params=None, actions=None, **fields) -> Playbook:
    playbook = Playbook(
        organization=org, name=fields.pop("name", f"{trigger} playbook"), trigger=trigger,
        trigger_params=params or {}, actions=actions or [RISK_CTA], active=fields.pop("active", True), **fields,
    )  # fmt: skip
    assert playbook_problems(playbook) == []
    playbook.save()
    return playbook


def email_template(org, subject="Hi {{ contact.name }}", body="About {{ account.name }}"):
    from playbooks.models import EmailTemplate

    return EmailTemplate.all_orgs.create(
        organization=org, name=f"T{EmailTemplate.all_orgs.count()}", subject=subject, body=body
    )


def turn(account, color: str, day: dt.date) -> None:
    """A CSM pulse of ``color`` on ``day``, then the recompute that day, then the events' dispatch."""
    CsmPulse.all_orgs.create(organization=account.organization, account=account, color=color, created_at=at(day))
    recompute_health(account.organization, as_of=day, latest=True)
    dispatch(account.organization_id)


def firings(playbook, **filters):
    return PlaybookFiring.objects.for_org(playbook.organization_id).filter(playbook=playbook, **filters)


# --- Health turned red → risk CTA with 3 tasks ------------------------------------------------------------


@pytest.fixture
def green(org, bob):
    account = AccountFactory(organization=org, owner=bob, name="Initech")
    with time_machine.travel(at(START), tick=False):
        turn(account, "green", START)
    assert HealthScore.objects.for_org(org).get(account=account).color == "green"
    return account


def test_red_opens_one_risk_cta_with_three_tasks_and_never_twice(org, green):
    playbook = make_playbook(org, "health_color", {"colors": ["red"]})
    day = START + dt.timedelta(days=1)
    with time_machine.travel(at(day), tick=False):
        turn(green, "red", day)
        cta = Cta.objects.for_org(org).get(account=green)
        assert (cta.type.key, cta.reason.key, cta.source, cta.source_ref) == ("risk", "health_red", "playbook",
                                                                              str(playbook.pk))  # fmt: skip
        assert [t.title for t in cta.tasks.order_by("position")] == [t["title"] for t in RISK_TASKS]
        assert [t.due_date for t in cta.tasks.order_by("position")] == [day + dt.timedelta(d) for d in (2, 5, 10)]
        assert cta.owner == green.owner
        firing = firings(playbook).get()
        assert (firing.outcome, firing.cta, firing.event_id is not None) == ("fired", cta, True)
        # The next recompute (no colour change, no event) and the next evaluations change nothing.
        recompute_health(org, as_of=day, latest=True)
        dispatch(org.pk)
        evaluate_organization(org.pk)
        evaluate_organization(org.pk)
        # A replayed event fires nothing either (the receipt, then the occurrence key).
        event = DomainEvent.all_orgs.get(pk=firing.event_id)
        from playbooks.engine import on_event

        on_event(event)
    assert firings(playbook).count() == 1
    assert Cta.objects.for_org(org).filter(account=green).count() == 1
    assert Cta.objects.for_org(org).get().fire_count == 1


def test_green_again_closes_the_cta_itself_and_red_later_opens_a_new_one(org, green):
    playbook = make_playbook(org, "health_color", {"colors": ["red"]})
    for offset, color in ((1, "red"), (3, "green")):
        day = START + dt.timedelta(days=offset)
        with time_machine.travel(at(day), tick=False):
            turn(green, color, day)
    cta = Cta.objects.for_org(org).get(account=green)
    assert cta.status == "auto_closed"
    assert cta.close_reason == "Health is no longer red."
    assert firings(playbook).get().cleared_at is not None
    assert CtaLog.objects.for_org(org).filter(cta=cta, action="auto_closed").count() == 1
    day = START + dt.timedelta(days=5)
    with time_machine.travel(at(day), tick=False):
        turn(green, "red", day)
    assert Cta.objects.for_org(org).filter(account=green, status="open").count() == 1
    assert firings(playbook, outcome="fired").count() == 2


def test_beat_clears_a_condition_the_event_missed(org, green):
    make_playbook(org, "health_color", {"colors": ["red"]})
    day = START + dt.timedelta(days=1)
    with time_machine.travel(at(day), tick=False):
        turn(green, "red", day)
    # The colour goes back to green without an event reaching the engine (e.g. written directly).
    HealthScore.objects.for_org(org).filter(account=green).update(color="green")
    evaluate_organization(org.pk)
    assert Cta.objects.for_org(org).get().status == "auto_closed"


def test_not_while_snoozed_and_the_suppression_is_recorded(org, green):
    playbook = make_playbook(org, "health_color", {"colors": ["red"]})
    day = START + dt.timedelta(days=1)
    with time_machine.travel(at(day), tick=False):
        cta, _ = ctas.open_or_update_cta(account=green, type="risk", reason="health_red")
        ctas.snooze(cta, until=day + dt.timedelta(days=20), reason="customer_unavailable")
        turn(green, "red", day)
    firing = firings(playbook).get()
    assert firing.outcome == "suppressed"
    assert "snoozed until" in firing.reason and firing.cta == cta
    cta.refresh_from_db()
    assert (cta.status, cta.fire_count, cta.tasks.count()) == ("open", 1, 0)
    assert CtaLog.objects.for_org(org).filter(cta=cta, action="suppressed").count() == 1
    # A time-based playbook on the same (type, reason) is suppressed by the snooze as well.
    ActivityFactory(account=green, occurred_at=at(START - dt.timedelta(days=50)))
    quiet = make_playbook(org, "no_touch", {"days": 45}, name="Quiet")
    with time_machine.travel(at(day + dt.timedelta(days=10)), tick=False):
        assert evaluate_organization(org.pk)["suppressed"] == 1
        evaluate_organization(org.pk)
    assert firings(quiet).get().outcome == "suppressed"
    assert Cta.objects.for_org(org).count() == 1


def test_conditions_and_segment_filter_the_event_account(org, green):
    playbook = make_playbook(
        org, "health_color", {"colors": ["red"]},
        conditions={"match": "all", "conditions": [{"field": "touch_model", "op": "eq", "value": "high"}]},
    )  # fmt: skip
    day = START + dt.timedelta(days=1)
    with time_machine.travel(at(day), tick=False):
        turn(green, "red", day)
    firing = firings(playbook).get()
    assert firing.outcome == "skipped" and "conditions" in firing.reason
    assert not Cta.objects.for_org(org).exists()


def test_cooldown_suppresses_and_records_why(org, green):
    playbook = make_playbook(org, "health_color", {"colors": ["red"]}, cooldown_days=30)
    for offset, color in ((1, "red"), (2, "green"), (3, "red"), (40, "green"), (41, "red")):
        day = START + dt.timedelta(days=offset)
        with time_machine.travel(at(day), tick=False):
            turn(green, color, day)
    outcomes = list(firings(playbook).order_by("fired_at").values_list("outcome", flat=True))
    assert outcomes == ["fired", "suppressed", "fired"]
    suppressed = firings(playbook, outcome="suppressed").get()
    assert "Cooldown" in suppressed.reason and "30 days" in suppressed.reason


# --- Time-based: exactly once, on the right day, across 200 days ------------------------------------------


def simulate(org, days: int = 200, start: dt.date = START, each_day=None) -> None:
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        with time_machine.travel(at(day, 6), tick=False):
            if each_day:
                each_day(day)
            evaluate_organization(org.pk)


def test_renewal_due_in_90_days_fires_once_per_renewal_on_the_right_day(org, bob):
    playbook = make_playbook(
        org, "renewal_due", {"days": 90},
        [{"kind": "open_cta", "type": "lifecycle", "reason": "renewal_prep", "tasks": [{"title": "Prep"}]}],
    ) if _has_reason(org, "lifecycle", "renewal_prep") else make_playbook(org, "renewal_due", {"days": 90})  # fmt: skip
    account = AccountFactory(organization=org, owner=bob)
    first = RenewalFactory(contract=ContractFactory(account=account, end_date=START + dt.timedelta(days=120)))
    second = RenewalFactory(contract=ContractFactory(account=account, end_date=START + dt.timedelta(days=170)))
    simulate(org)
    rows = list(firings(playbook).order_by("fired_at").values_list("occurrence_key", "fired_at", "outcome"))
    assert [(k, timezone.localdate(f), o) for k, f, o in rows] == [
        (f"renewal:{first.pk}", START + dt.timedelta(days=30), "fired"),
        (f"renewal:{second.pk}", START + dt.timedelta(days=80), "fired"),
    ]


def _has_reason(org, type_key, reason_key) -> bool:
    from playbooks.models import CtaReason

    return CtaReason.objects.for_org(org).filter(type__key=type_key, key=reason_key).exists()


def test_no_touch_in_45_days_fires_once_per_silence_and_closes_on_the_next_touch(org, bob):
    playbook = make_playbook(org, "no_touch", {"days": 45})
    account = AccountFactory(organization=org, owner=bob)
    ActivityFactory(account=account, occurred_at=at(START))
    touched = START + dt.timedelta(days=100)

    def touch(day):
        if day == touched:
            ActivityFactory(account=account, occurred_at=at(day, 5))

    simulate(org, each_day=touch)
    rows = list(firings(playbook).order_by("fired_at").values_list("fired_at", "outcome", "cleared_at"))
    # Silent since START 10:00: fires on day 46 at the 06:00 evaluation (45 days have passed on day 45 only at
    # 10:00), clears on the touch of day 100 (05:00), fires again 45 days after that touch, at 06:00.
    assert [timezone.localdate(f) for f, _, _ in rows] == [START + dt.timedelta(46), touched + dt.timedelta(45)]
    assert timezone.localdate(rows[0][2]) == touched
    assert [c.status for c in Cta.objects.for_org(org).order_by("pk")] == ["auto_closed", "open"]


def test_usage_dropped_30_percent_fires_once_per_drop(org, bob):
    playbook = make_playbook(org, "usage_drop", {"percent": 30})
    account = AccountFactory(organization=org, owner=bob)
    steady = AccountFactory(organization=org, owner=bob)
    rows = []
    for offset in range(-60, 200):
        day = START + dt.timedelta(days=offset)
        # 100 active users a day; from day 50 to day 120, 60 a day (a 40 % drop), then back to 100.
        value = 60 if 50 <= offset < 120 else 100
        rows.append(UsageMetric(organization=org, account=account, date=day, metric="active_users", value=value))
        rows.append(UsageMetric(organization=org, account=steady, date=day, metric="active_users", value=100))
    UsageMetric.all_orgs.bulk_create(rows)
    simulate(org)
    fired = list(firings(playbook).values_list("account_id", "fired_at", "cleared_at"))
    assert len(fired) == 1
    account_id, fired_at, cleared_at = fired[0]
    assert account_id == account.pk
    # Last 30 days ≤ 70 % of the 30 before: 30 × 100 = 3000 prior; recent ≤ 2100 once 23 of its 30 days are at 60
    # (23×60 + 7×100 = 2080): day 50 + 22 = 72.
    assert timezone.localdate(fired_at) == START + dt.timedelta(days=72)
    assert cleared_at is not None


# --- Preview, matching ------------------------------------------------------------------------------------


def test_preview_counts_and_writes_nothing(org, bob):
    playbook = make_playbook(
        org, "no_touch", {"days": 45},
        [RISK_CTA, {"kind": "send_email", "template": email_template(org).pk},
         {"kind": "set_field", "field": "tags", "value": "quiet"}],
        active=False,
    )  # fmt: skip
    quiet = [AccountFactory(organization=org, owner=bob) for _ in range(3)]
    ContactFactory(account=quiet[0], email="a@x.example")
    ContactFactory(account=quiet[0], email="b@x.example", unsubscribed=True)
    with time_machine.travel(timezone.now() + dt.timedelta(days=60), tick=False):
        ctas.open_or_update_cta(account=quiet[1], type="risk", reason="health_red")
        counts = {m: m.all_orgs.count() for m in (Cta, PlaybookFiring, CtaLog, DomainEvent)}
        result = preview(playbook)
        assert {m: m.all_orgs.count() for m in (Cta, PlaybookFiring, CtaLog, DomainEvent)} == counts
    assert result["matching"] == 3
    assert (result["ctas_to_open"], result["ctas_to_update"], result["ctas_suppressed"]) == (2, 1, 0)
    assert (result["emails"], result["field_changes"]) == (1, 3)
    assert len(mail.outbox) == 0


def test_matching_is_one_query_per_playbook(org, bob):
    playbook = make_playbook(org, "no_touch", {"days": 45}, cooldown_days=10)
    for _ in range(30):
        AccountFactory(organization=org, owner=bob)
    with time_machine.travel(timezone.now() + dt.timedelta(days=60), tick=False):
        with CaptureQueriesContext(connection) as queries:
            rows = list(candidates(playbook))
    assert len(rows) == 30
    assert len(queries) == 1


def test_email_action_skips_unsubscribed_and_departed_contacts(org, bob, django_capture_on_commit_callbacks):
    template = email_template(
        org, subject="Welcome {{ account.name }}", body="Hello {{ contact.name }}, {{ csm.email }} is your CSM."
    )
    playbook = make_playbook(
        org, "account_created", {}, [{"kind": "send_email", "roles": ["champion"], "template": template.pk}],
    )  # fmt: skip
    account = AccountFactory(organization=org, owner=bob, name="Globex")
    ContactFactory(account=account, name="Ann", email="ann@g.example", roles=["champion"])
    ContactFactory(account=account, name="Out", email="out@g.example", roles=["champion"], unsubscribed=True)
    ContactFactory(account=account, name="Gone", email="gone@g.example", roles=["champion"], is_active=False)
    ContactFactory(account=account, name="User", email="user@g.example", roles=["end_user"])
    with django_capture_on_commit_callbacks(execute=True):
        dispatch(org.pk)
    assert [m.to for m in mail.outbox] == [["ann@g.example"]]
    assert mail.outbox[0].subject == "Welcome Globex"
    assert "Hello Ann" in mail.outbox[0].body and bob.email in mail.outbox[0].body
    assert firings(playbook).get().results[0]["status"] == "done"


def test_webhook_action_records_playbook_fired(org, bob):
    make_playbook(org, "account_created", {}, [{"kind": "webhook"}, {"kind": "set_field", "field": "touch_model",
                                                                     "value": "high"}])  # fmt: skip
    account = AccountFactory(organization=org, owner=bob, touch_model="low")
    dispatch(org.pk)
    event = DomainEvent.all_orgs.get(organization=org, name="playbook.fired")
    assert event.payload["account"] == account.pk
    account.refresh_from_db()
    assert account.touch_model == "high"


def test_validation_names_every_problem(org):
    playbook = Playbook(
        organization=org, name="Bad", trigger="renewal_due", trigger_params={"days": 0, "extra": 1},
        conditions={"match": "all", "conditions": [{"field": "nope", "op": "eq", "value": 1}]},
        actions=[{"kind": "open_cta", "type": "risk", "reason": "nope", "tasks": [{"due_in_days": -1}]},
                 {"kind": "teleport"}, {"kind": "send_email", "template": 0, "subject": "inline"}],
    )  # fmt: skip
    paths = {path for path, _ in playbook_problems(playbook)}
    assert {
        "trigger_params.days", "trigger_params.extra", "conditions.conditions.0.field", "actions.0.reason",
        "actions.0.tasks.0.title", "actions.0.tasks.0.due_in_days", "actions.1.kind", "actions.2.subject",
        "actions.2.template",
    } <= paths  # fmt: skip


# --- Effectiveness ----------------------------------------------------------------------------------------


def test_effectiveness_counts_completion_and_recovery_against_the_comparison_group(org, bob):
    from health.models import HealthSnapshot
    from playbooks.effectiveness import effectiveness

    playbook = make_playbook(org, "health_color", {"colors": ["red"]})
    treated, recovers, stays = (AccountFactory(organization=org, owner=bob) for _ in range(3))
    day = START
    snapshots = []
    for account, later in ((treated, "green"), (recovers, "green"), (stays, "red")):
        snapshots.append(HealthSnapshot(organization=org, account=account, date=day, color="red", score=30,
                                        computed_at=at(day)))  # fmt: skip
        snapshots.append(HealthSnapshot(organization=org, account=account, date=day + dt.timedelta(days=12),
                                        color=later, score=70, computed_at=at(day)))  # fmt: skip
    HealthSnapshot.all_orgs.bulk_create(snapshots)
    with time_machine.travel(at(day), tick=False):
        cta, _ = ctas.open_or_update_cta(account=treated, type="risk", reason="health_red")
        PlaybookFiring.all_orgs.create(organization=org, playbook=playbook, account=treated, occurrence_key="x",
                                       outcome="fired", cta=cta, fired_at=at(day))  # fmt: skip
        PlaybookFiring.all_orgs.create(organization=org, playbook=playbook, account=recovers, occurrence_key="y",
                                       outcome="suppressed", fired_at=at(day))  # fmt: skip
    with time_machine.travel(at(day + dt.timedelta(days=3)), tick=False):
        ctas.complete(cta, outcome="resolved")
    with time_machine.travel(at(day + dt.timedelta(days=40)), tick=False):
        figures = effectiveness(playbook)
    assert (figures["fired"], figures["suppressed"], figures["completed"]) == (1, 1, 1)
    assert figures["median_days_to_complete"] == Decimal("3.0")
    recovery = figures["recovery"]
    assert (recovery["accounts"], recovery["recovered"], recovery["share"]) == (1, 1, Decimal("1.000"))
    # The comparison: red the same day, no CTA within 30 days: `recovers` (green later) and `stays` (red).
    assert (recovery["comparison_accounts"], recovery["comparison_recovered"]) == (2, 1)
    assert recovery["comparison_share"] == Decimal("0.500")
