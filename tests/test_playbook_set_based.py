"""The engine fires time-based occurrences set-based (``engine._fire_many``, ``ctas.open_or_update_many``,
``ctas.auto_close_many``): the same outcomes and the same rows as firing them one by one (``engine.fire``),
in a number of queries that does not grow with the number of accounts (issue 12's benchmark)."""

from __future__ import annotations

import datetime as dt
import logging
import re
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Membership
from accounts.services import create_organization
from playbooks import ctas, engine
from playbooks.engine import evaluate_organization
from playbooks.models import Cta, CtaLog, CtaTask, Notification, PlaybookFiring

from .factories import AccountFactory, ActivityFactory, MembershipFactory, TeamFactory, UserFactory
from .signal_factories import HealthScoreFactory, InvoiceFactory
from .test_playbook_engine import at, make_playbook

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 6, 10)
ACTION = {
    "kind": "open_cta",
    "type": "risk",
    "reason": "invoice_overdue",
    "assignee": "owner",
    "tasks": [{"title": "Chase", "due_in_days": 2}, {"title": "Escalate", "due_in_days": 5, "assignee": "manager"}],
}


def build(slug: str) -> dict:
    """One organization with every case the firing distinguishes; the same in every organization built."""
    org = create_organization(slug=slug, name=slug.title())[0]
    manager = MembershipFactory(organization=org, role="leader", user=UserFactory(first_name="Mia")).user
    team = TeamFactory(organization=org, manager=manager)
    owner = MembershipFactory(organization=org, role="csm", team=team, user=UserFactory(first_name="Bob")).user
    loner = MembershipFactory(organization=org, role="csm", user=UserFactory(first_name="Lou")).user
    gone = UserFactory(first_name="Gone")  # not a member: work on their accounts stays unassigned
    names = ["new", "open", "snoozed", "woken", "cooling", "unowned", "twice", "loner", "no-invoice"]
    owners = {"unowned": gone, "loner": loner}
    accounts = {}
    for n, name in enumerate(names):
        account = AccountFactory(
            organization=org,
            owner=owners.get(name, owner),
            name=name,
            arr=Decimal(40_000 * n),
            next_renewal_date=DAY + dt.timedelta(days=20 * n),
        )
        accounts[name] = account
        if name != "no-invoice":
            InvoiceFactory(account=account, due_date=DAY - dt.timedelta(days=40))
        if n % 2:
            HealthScoreFactory(account=account, organization=org, score=Decimal(30 + 5 * n), color="red")
    InvoiceFactory(account=accounts["twice"], due_date=DAY - dt.timedelta(days=35))
    playbook = make_playbook(org, "invoice_overdue", {"days": 30}, [ACTION], cooldown_days=10)
    with time_machine.travel(at(DAY - dt.timedelta(days=5)), tick=False):
        for name in ("open", "snoozed", "woken"):
            cta, _ = ctas.open_or_update_cta(account=accounts[name], type="risk", reason="invoice_overdue")
            if name == "snoozed":
                ctas.snooze(cta, until=DAY + dt.timedelta(days=3), reason="customer_unavailable")
            if name == "woken":
                ctas.snooze(cta, until=DAY - dt.timedelta(days=1), reason="customer_unavailable")
        PlaybookFiring.all_orgs.create(
            organization=org,
            playbook=playbook,
            account=accounts["cooling"],
            occurrence_key="invoice:old",
            outcome="fired",
            fired_at=at(DAY - dt.timedelta(days=4)),
        )
    return {"org": org, "playbook": playbook, "accounts": accounts}


def state(org) -> dict:
    """Everything the firing wrote, with ids replaced by names, so two organizations compare."""
    users = {m.user_id: m.user.first_name for m in Membership.objects.for_org(org).select_related("user")}

    def clean(text: str) -> str:
        return re.sub(r"\d{3,}|cta=\d+|cta-\d+|invoice:\d+", "#", text)

    def details(d: dict) -> dict:
        return {k: (users.get(v, v) if k == "owner" else v) for k, v in d.items()}

    return {
        "firings": sorted(
            (
                f.account.name,
                f.outcome,
                clean(f.reason),
                [r["status"] for r in f.results],
                f.cta.title if f.cta else None,
                f.condition_key == "",
                f.cleared_at,
            )
            for f in PlaybookFiring.objects.for_org(org)
            .select_related("account", "cta")
            .exclude(occurrence_key="invoice:old")
        ),
        "ctas": sorted(
            (
                c.account.name,
                c.status,
                c.fire_count,
                c.priority,
                c.priority_score,
                users.get(c.owner_id),
                c.due_date,
                c.snoozed_until,
                c.snooze_reason,
                c.source,
                c.condition_key.split(":")[0],
                c.title,
                c.close_reason,
                [(t.title, t.position, t.due_date, users.get(t.assignee_id)) for t in c.tasks.order_by("position")],
            )
            for c in Cta.objects.for_org(org).select_related("account")
        ),
        "log": sorted(
            (g.account.name, g.action, clean(g.reason), g.source, details(g.details))
            for g in CtaLog.objects.for_org(org).select_related("account")
        ),
        "notifications": sorted(
            (users.get(n.user_id), clean(n.message), clean(n.url.replace(org.slug, "ORG")), n.cta.account.name)
            for n in Notification.objects.for_org(org).select_related("cta__account")
        ),
    }


def test_set_based_firing_writes_what_one_by_one_firing_writes(monkeypatch):
    bulk, single = build("bulk"), build("single")
    calls = {"many": 0}
    original = engine._fire_many

    def counted(*args, **kwargs):
        calls["many"] += 1
        result = original(*args, **kwargs)
        assert result is not None, "the set-based path fell back"
        return result

    monkeypatch.setattr(engine, "_fire_many", counted)
    with time_machine.travel(at(DAY), tick=False):
        got = evaluate_organization(bulk["org"].pk)
        with monkeypatch.context() as m:
            m.setattr(engine, "_set_based", lambda playbook: False)
            expected = evaluate_organization(single["org"].pk)
    assert calls["many"] == 2  # two rounds: "twice" has two overdue invoices
    assert got == expected == {"playbooks": 1, "fired": 7, "suppressed": 2, "skipped": 0, "cleared": 0}
    assert state(bulk["org"]) == state(single["org"])
    # Spot checks of the cases, on the set-based side.
    org, accounts = bulk["org"], bulk["accounts"]
    by_account = {
        f.account.name: f
        for f in PlaybookFiring.objects.for_org(org)
        .select_related("account")
        .exclude(occurrence_key="invoice:old")
        .order_by("pk")
    }
    assert by_account["snoozed"].outcome == "suppressed" and "snoozed until" in by_account["snoozed"].reason
    assert by_account["cooling"].outcome == "suppressed" and "Cooldown" in by_account["cooling"].reason
    twice = Cta.objects.for_org(org).get(account=accounts["twice"])
    assert twice.fire_count == 2 and CtaTask.objects.for_org(org).filter(cta=twice).count() == 2
    assert Cta.objects.for_org(org).get(account=accounts["unowned"]).owner is None
    woken = Cta.objects.for_org(org).get(account=accounts["woken"])
    assert woken.snoozed_until is None and woken.fire_count == 2
    assert [
        t.assignee.first_name for t in Cta.objects.for_org(org).get(account=accounts["new"]).tasks.order_by("position")
    ] == ["Bob", "Mia"]
    # The loner has no team: "manager" falls back to the owner, who is not notified twice.
    assert Notification.objects.for_org(org).filter(cta__account=accounts["loner"]).count() == 1


def test_a_race_in_the_set_based_path_falls_back_one_by_one_with_the_same_outcome(monkeypatch, caplog):
    bulk, single = build("raced"), build("calm")

    def lost_race(**kwargs):
        raise IntegrityError("duplicate key value violates unique constraint")

    with time_machine.travel(at(DAY), tick=False):
        with monkeypatch.context() as m:
            m.setattr(ctas, "open_or_update_many", lost_race)
            with caplog.at_level(logging.INFO, logger="playbooks.engine"):
                got = evaluate_organization(bulk["org"].pk)
        with monkeypatch.context() as m:
            m.setattr(engine, "_set_based", lambda playbook: False)
            expected = evaluate_organization(single["org"].pk)
        again = evaluate_organization(bulk["org"].pk)  # nothing fires twice
    assert got == expected == {"playbooks": 1, "fired": 7, "suppressed": 2, "skipped": 0, "cleared": 0}
    assert again["fired"] == 0
    assert state(bulk["org"]) == state(single["org"])
    assert Cta.objects.for_org(bulk["org"]).filter(account=bulk["accounts"]["new"]).count() == 1
    fallbacks = [r for r in caplog.records if "fell back to one by one" in r.getMessage()]
    assert fallbacks and all(r.levelno == logging.WARNING for r in fallbacks)
    assert "IntegrityError" in fallbacks[0].getMessage() and "occurrence(s)" in fallbacks[0].getMessage()


def test_an_unexpected_error_in_the_set_based_path_is_not_swallowed(monkeypatch):
    bulk = build("broken")

    def bug(**kwargs):
        raise KeyError("a bug, not a race")

    monkeypatch.setattr(ctas, "open_or_update_many", bug)
    with time_machine.travel(at(DAY), tick=False), pytest.raises(KeyError, match="a bug"):
        evaluate_organization(bulk["org"].pk)


def _fresh_queries(org, playbook, accounts: int) -> int:
    owner = MembershipFactory(organization=org, role="csm").user
    for _ in range(accounts):
        ActivityFactory(
            account=AccountFactory(organization=org, owner=owner), occurred_at=at(DAY - dt.timedelta(days=60))
        )
    with time_machine.travel(at(DAY), tick=False):
        with CaptureQueriesContext(connection) as queries:
            counts = evaluate_organization(org.pk)
    assert counts["fired"] == accounts
    return len(queries)


def test_an_evaluation_costs_the_same_queries_for_5_or_40_fresh_occurrences():
    small, large = (create_organization(slug=s, name=s)[0] for s in ("small", "large"))
    action = {**ACTION, "reason": "no_touch"}
    counts = []
    for org, n in ((small, 5), (large, 40)):
        counts.append(_fresh_queries(org, make_playbook(org, "no_touch", {"days": 45}, [action], cooldown_days=30), n))
    assert counts[0] == counts[1], counts


def test_clearing_closes_many_ctas_at_once_with_the_reason(org, bob):
    playbook = make_playbook(org, "no_touch", {"days": 45}, [{**ACTION, "reason": "no_touch"}])
    quiet = [AccountFactory(organization=org, owner=bob) for _ in range(6)]
    for account in quiet:
        ActivityFactory(account=account, occurred_at=at(DAY - dt.timedelta(days=60)))
    with time_machine.travel(at(DAY), tick=False):
        assert evaluate_organization(org.pk)["fired"] == 6
    for account in quiet[:4]:
        ActivityFactory(account=account, occurred_at=at(DAY + dt.timedelta(days=1)))
    with time_machine.travel(at(DAY + dt.timedelta(days=2)), tick=False):
        with CaptureQueriesContext(connection) as queries:
            assert evaluate_organization(org.pk)["cleared"] == 4
    closed = Cta.objects.for_org(org).filter(status="auto_closed")
    assert sorted(c.account_id for c in closed) == sorted(a.pk for a in quiet[:4])
    assert {c.close_reason for c in closed} == {"The customer was touched (an activity was logged)."}
    assert CtaLog.objects.for_org(org).filter(action="auto_closed").count() == 4
    assert Cta.objects.for_org(org).filter(status="open").count() == 2
    assert PlaybookFiring.objects.for_org(org).filter(playbook=playbook, cleared_at__isnull=False).count() == 4
    assert len(queries) < 20
