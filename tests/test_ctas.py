"""The work queue's services (issue 12 §3, noise control): one open CTA per (account, type, reason), also
under concurrency; snooze suppresses re-firing until its day; condition-based CTAs close themselves; the
priority formula against a hand-computed table; round-robin; permissions; notifications."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction

from accounts.models import Account, Membership
from accounts.services import Actor, create_organization
from playbooks import ctas
from playbooks.ctas import HealthReading, TaskTemplate, open_or_update_cta, priority_from
from playbooks.models import Cta, CtaLog, CtaReason, CtaTask, CtaType, Notification

from .factories import AccountFactory, MembershipFactory, TeamFactory, UserFactory
from .signal_factories import HealthScoreFactory

pytestmark = pytest.mark.django_db

DAY = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def fire(account, reason="health_red", **kwargs):
    return open_or_update_cta(account=account, type="risk", reason=reason, **kwargs)


def actions(cta) -> list[str]:
    return list(
        CtaLog.objects.for_org(cta.organization_id)
        .filter(cta=cta)
        .order_by("at", "pk")
        .values_list("action", flat=True)
    )


# --- Defaults ---------------------------------------------------------------------------------------


def test_every_organization_gets_the_builtin_types_with_reasons(org, other_org):
    keys = set(CtaType.objects.for_org(org).values_list("key", flat=True))
    assert keys == {"risk", "lifecycle", "expansion", "objective", "activity"}
    assert CtaReason.objects.for_org(org).filter(type__key="risk", key="health_red").exists()
    # Each organization has its own rows: nothing is shared.
    assert not CtaType.objects.for_org(org).filter(pk__in=CtaType.objects.for_org(other_org).values("pk")).exists()


# --- Updated, not duplicated -----------------------------------------------------------------------


def test_same_account_type_reason_updates_the_open_cta(org, account):
    tasks = [TaskTemplate("Call the champion", 2), TaskTemplate("Plan the recovery", 7)]
    with time_machine.travel(DAY, tick=False):
        first, how = fire(account, tasks=tasks, condition_key="health_red")
        assert how == ctas.CREATED
        again, how_again = fire(account, tasks=tasks)
        third, _ = fire(account)
    assert how_again == ctas.UPDATED and again.pk == third.pk == first.pk
    assert Cta.objects.for_org(org).count() == 1
    first.refresh_from_db()
    assert first.fire_count == 3
    assert CtaTask.objects.for_org(org).filter(cta=first).count() == 2  # tasks are not added twice
    assert [t.due_date for t in first.tasks.order_by("position")] == [dt.date(2026, 3, 4), dt.date(2026, 3, 9)]
    assert actions(first) == ["opened", "updated", "updated"]


def test_another_reason_or_a_closed_cta_opens_a_new_one(org, account, bob):
    first, _ = fire(account)
    other, how = fire(account, reason="usage_drop")
    assert how == ctas.CREATED and other.pk != first.pk
    ctas.complete(first, outcome="resolved", by=Actor(organization=org, role="csm", user=bob))
    reopened, how = fire(account)
    assert how == ctas.CREATED and reopened.pk != first.pk
    assert Cta.objects.for_org(org).filter(status="open").count() == 2


def test_the_database_refuses_a_second_open_cta(org, account):
    cta, _ = fire(account)
    from django.db import IntegrityError

    with pytest.raises(IntegrityError), transaction.atomic():
        Cta.all_orgs.create(organization=org, account=account, type=cta.type, reason=cta.reason, title="dup")


def test_a_reason_of_another_type_is_refused(org, account):
    with pytest.raises(ValidationError):
        open_or_update_cta(
            account=account, type="expansion", reason=CtaReason.objects.for_org(org).get(key="health_red")
        )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_connections_firing_at_once_open_one_cta(monkeypatch):
    """Both transactions look, find nothing, and insert: the unique index makes one wait and fail, and its
    retry updates the winner's CTA."""
    if connection.vendor != "postgresql":
        pytest.skip("needs two real connections (Postgres)")
    org = create_organization(slug="race", name="Race")[0]
    account = AccountFactory(organization=org)
    barrier, errors, results = threading.Barrier(2), [], []
    first_call = threading.local()
    real_priority_for = ctas.priority_for

    def priority_after_both_looked(acct, **kwargs):
        # Called after the look-up and before the insert: hold both threads here once, so both insert.
        if not getattr(first_call, "done", False):
            first_call.done = True
            barrier.wait(timeout=10)
        return real_priority_for(acct, **kwargs)

    monkeypatch.setattr(ctas, "priority_for", priority_after_both_looked)

    def run() -> None:
        try:
            results.append(fire(Account.all_orgs.get(pk=account.pk))[1])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == ["created", "updated"]
    cta = Cta.objects.for_org(org).get()
    assert cta.fire_count == 2


# --- Snooze --------------------------------------------------------------------------------------


def test_snooze_suppresses_re_firing_until_its_day(org, account, bob):
    csm = Actor(organization=org, role="csm", user=bob)
    with time_machine.travel(DAY, tick=False):
        cta, _ = fire(account)
        ctas.snooze(cta, until=dt.date(2026, 3, 9), reason="customer_unavailable", note="On holiday", by=csm)
    with time_machine.travel(DAY + dt.timedelta(days=6), tick=False):
        same, how = fire(account)
        assert how == ctas.SUPPRESSED and same.pk == cta.pk
    suppressed = CtaLog.objects.for_org(org).get(cta=cta, action="suppressed")
    assert "2026-03-09" in suppressed.reason
    cta.refresh_from_db()
    assert cta.fire_count == 1 and cta.snoozed_until == dt.date(2026, 3, 9)
    with time_machine.travel(DAY + dt.timedelta(days=7), tick=False):
        woken, how = fire(account)
    assert how == ctas.UPDATED and woken.pk == cta.pk
    cta.refresh_from_db()
    assert cta.snoozed_until is None and cta.fire_count == 2
    assert actions(cta) == ["opened", "snoozed", "suppressed", "woken", "updated"]


def test_snooze_needs_a_day_ahead_a_known_reason_and_an_open_cta(org, account):
    cta, _ = fire(account)
    today = dt.date.today()
    with pytest.raises(ValidationError):
        ctas.snooze(cta, until=today, reason="other")
    with pytest.raises(ValidationError):
        ctas.snooze(cta, until=today + dt.timedelta(days=400), reason="other")
    with pytest.raises(ValidationError):
        ctas.snooze(cta, until=today + dt.timedelta(days=3), reason="bored")
    ctas.close(cta, reason="Not relevant")
    with pytest.raises(ValidationError):
        ctas.snooze(cta, until=today + dt.timedelta(days=3), reason="other")


# --- Closing -------------------------------------------------------------------------------------


def test_auto_close_records_the_reason_and_leaves_other_conditions(org, account, bob):
    other = AccountFactory(organization=org)
    red, _ = fire(account, condition_key="health_red")
    ctas.snooze(red, until=dt.date.today() + dt.timedelta(days=5), reason="other")
    elsewhere, _ = fire(other, condition_key="health_red")
    usage, _ = fire(account, reason="usage_drop", condition_key="usage_drop")
    closed = ctas.auto_close(org, condition_key="health_red", account=account, reason="Health is green again (74).")
    assert [c.pk for c in closed] == [red.pk]
    red.refresh_from_db()
    assert (red.status, red.close_reason, red.closed_by) == ("auto_closed", "Health is green again (74).", None)
    log = CtaLog.objects.for_org(org).get(cta=red, action="auto_closed")
    assert log.reason == "Health is green again (74)." and log.actor is None
    assert Cta.objects.for_org(org).get(pk=elsewhere.pk).status == "open"
    assert Cta.objects.for_org(org).get(pk=usage.pk).status == "open"
    # Once closed, the condition firing again opens a fresh CTA.
    assert fire(account, condition_key="health_red")[1] == ctas.CREATED


def test_complete_needs_an_outcome_and_close_a_reason(org, account):
    cta, _ = fire(account)
    with pytest.raises(ValidationError):
        ctas.complete(cta, outcome="")
    with pytest.raises(ValidationError):
        ctas.close(cta, reason="  ")
    done = ctas.complete(cta, outcome="resolved", note="Exec call went well")
    assert (done.status, done.outcome, done.close_reason) == ("completed", "resolved", "Exec call went well")
    with pytest.raises(ValidationError):
        ctas.complete(cta, outcome="resolved")


# --- Priority: the formula of docs/playbooks.md against hand-computed values --------------------------

# (ARR, health score, colour, days to renewal) → (score, priority); every value worked out by hand:
# 0.40 × min(ARR/500k, 1)·100 + 0.35 × max(100 − score, floor(colour)) + 0.25 × clamp(100·(180 − d)/180).
ORACLE = [
    ("500000", "20.0", "red", 0, "93.0", "high"),  # 40 + 0.35·80 + 25
    ("250000", "60.0", "yellow", 90, "46.5", "medium"),  # 20 + 0.35·40 + 12.5
    ("0", "90.0", "green", None, "3.5", "low"),  # 0 + 0.35·10 + 0
    ("1000000", None, "", 200, "57.5", "medium"),  # capped 40 + unscored 0.35·50 + 0
    ("100000", "80.0", "red", -10, "57.5", "medium"),  # 8 + 0.35·max(20, 70) + overdue 25
    ("500000", "100.0", "green", 36, "60.0", "high"),  # 40 + 0 + 0.25·80: exactly the high threshold
    ("0", "50.0", "", 90, "30.0", "medium"),  # 0 + 17.5 + 12.5: exactly the medium threshold
    ("0", "50.3", "", 90, "29.9", "low"),  # 17.395 + 12.5 = 29.895 → 29.9 (half up)
    ("125000", "35.0", "yellow", 180, "32.8", "medium"),  # 10 + 0.35·65 + 0 = 32.75 → 32.8
    ("-5", None, "red", 400, "24.5", "low"),  # negative ARR counts as 0; red alone floors risk at 70
]


@pytest.mark.parametrize(("arr", "score", "color", "days", "expected", "priority"), ORACLE)
def test_priority_formula_matches_the_table(arr, score, color, days, expected, priority):
    health = None if score is None and not color else HealthReading(Decimal(score) if score else None, color)
    assert priority_from(arr=Decimal(arr), health=health, days_to_renewal=days) == (Decimal(expected), priority)


def test_priority_for_reads_arr_health_and_renewal_of_the_account(org):
    account = AccountFactory(organization=org)
    Account.all_orgs.filter(pk=account.pk).update(arr=Decimal("250000"), next_renewal_date=dt.date(2026, 5, 31))
    HealthScoreFactory(account=account, score=Decimal("60.0"), color="yellow")
    account.refresh_from_db()
    assert ctas.priority_for(account, today=dt.date(2026, 3, 2)) == (Decimal("46.5"), "medium")
    with time_machine.travel(DAY, tick=False):
        cta, _ = fire(account)
    assert (cta.priority, cta.priority_score) == ("medium", Decimal("46.5"))


# --- Assignees -----------------------------------------------------------------------------------


def test_round_robin_is_deterministic_and_remembers_its_place(org):
    team = TeamFactory(organization=org)
    members = [MembershipFactory(organization=org, team=team, role="csm").user for _ in range(3)]
    MembershipFactory(organization=org, team=team, role="viewer")  # viewers never get work
    account = AccountFactory(organization=org)
    rule = "round_robin"
    got = [ctas.resolve_assignee(account, rule, team=team) for _ in range(4)]
    ordered = sorted(members, key=lambda u: u.pk)
    assert got == [*ordered, ordered[0]]
    # A member leaving: the turn passes to the next one by id, the cursor is kept.
    Membership.all_orgs.filter(organization=org, user=ordered[1]).delete()
    assert ctas.resolve_assignee(account, rule, team=team) == ordered[2]
    assert ctas.resolve_assignee(account, rule, team=team) == ordered[0]


def test_owner_and_manager_rules(org, bob, make_member):
    manager = make_member(org, "leader").user
    team = TeamFactory(organization=org, manager=manager)
    Membership.all_orgs.filter(organization=org, user=bob).update(team=team)
    account = AccountFactory(organization=org, owner=bob)
    assert ctas.resolve_assignee(account, "owner") == bob
    assert ctas.resolve_assignee(account, "manager") == manager
    # An owner who left the organization gets nothing: the work stays unassigned.
    gone = AccountFactory(organization=org, owner=UserFactory())
    assert ctas.resolve_assignee(gone, "owner") is None
    with pytest.raises(ValidationError):
        ctas.resolve_assignee(account, "round_robin", team=None)


def test_tasks_get_their_own_assignees_and_people_are_notified(org, bob, make_member):
    manager = make_member(org, "leader").user
    team = TeamFactory(organization=org, manager=manager)
    Membership.all_orgs.filter(organization=org, user=bob).update(team=team)
    account = AccountFactory(organization=org, owner=bob)
    cta, _ = fire(account, tasks=[TaskTemplate("Call", 1), TaskTemplate("Escalate", 3, assignee="manager")])
    assert [t.assignee for t in cta.tasks.order_by("position")] == [bob, manager]
    assert cta.owner == bob
    assert ctas.unread_count(org, bob) == 1 and ctas.unread_count(org, manager) == 1
    note = Notification.objects.for_org(org).get(user=bob)
    assert note.cta == cta and f"#cta-{cta.pk}" in note.url
    assert ctas.mark_notifications_read(org, manager, ids=[note.pk]) == 0  # not theirs
    assert ctas.mark_notifications_read(org, bob) == 1
    assert ctas.unread_count(org, bob) == 0
    # Whoever opens a CTA for themselves is not told about it.
    fire(account, reason="usage_drop", by=bob)
    assert ctas.unread_count(org, bob) == 0


# --- Permissions ---------------------------------------------------------------------------------


def test_who_may_change_a_cta(org, bob, make_member):
    lena = make_member(org, "leader").user
    dave = make_member(org, "csm").user
    vic = make_member(org, "viewer").user
    team = TeamFactory(organization=org, manager=lena)
    Membership.all_orgs.filter(organization=org, user=bob).update(team=team)
    cta, _ = fire(AccountFactory(organization=org, owner=bob))
    task = cta.tasks.create(organization=org, title="Help", assignee=dave)

    def actor(user, role):
        return Actor(organization=org, role=role, user=user)

    assert ctas.can_write_cta(actor(bob, "csm"), cta)
    assert ctas.can_write_cta(actor(lena, "leader"), cta)
    assert ctas.can_write_cta(Actor(organization=org, role="admin"), cta)
    assert not ctas.can_write_cta(actor(dave, "csm"), cta)
    assert not ctas.can_write_cta(actor(vic, "viewer"), cta)
    assert ctas.can_write_task(actor(dave, "csm"), task)  # assigned to him
    with pytest.raises(ctas.CtaPermissionDenied):
        ctas.snooze(cta, until=dt.date.today() + dt.timedelta(days=2), reason="other", by=actor(dave, "csm"))
    ctas.complete_task(task, by=actor(dave, "csm"))
    task.refresh_from_db()
    assert task.done_by == dave
    # A CSM cannot hand work to someone else; a leader can, within the team.
    with pytest.raises(ctas.CtaPermissionDenied):
        ctas.reassign(cta, owner=dave, by=actor(bob, "csm"))
    with pytest.raises(ValidationError):
        ctas.reassign(cta, owner=vic, by=Actor(organization=org, role="admin"))
    ctas.reassign(cta, owner=lena, by=actor(lena, "leader"))
    cta.refresh_from_db()
    assert cta.owner == lena
