"""Demo playbooks and the work queue they make (``seed_demo``'s playbooks part, issue 12 §7).

Registered in ``PlaybooksConfig.ready`` with :func:`accounts.demo.register_demo_module` (order 30: after the
renewals and the health signals it reads). Its hooks:

* :func:`wipe`: the organization's firings, stage marks, playbooks, notifications, CTA log, tasks, CTAs and
  email send log, one raw ``DELETE`` per table, before the accounts go;
* :func:`seed`: installs :data:`DEFAULT_PLAYBOOKS` (active) and :data:`EXTRA_PLAYBOOKS` (inactive, to show
  an email playbook a newcomer can preview and switch on), then **runs them through the engine**, exactly
  as production would, and finally plays a few weeks of CSM work on the result.

Running them: the time-based playbooks (renewal in 120 days, seats over licence, no touch for 45 days) are
evaluated by :func:`playbooks.engine.evaluate_organization`, the beat's entry. The event-driven ones react to
domain events, and the demo's history was loaded without any (a health backfill announces nothing, and the
health demo's departed champions are written in bulk): so the demo records what production would have
recorded — ``health.color_changed`` (from the last colour the account had, to red) for every account red
today, and ``contact.departed`` for key contacts who left in the last :data:`DEPARTED_WINDOW_DAYS` days —
and dispatches them with :func:`cs_platform.events.dispatch`, the dispatcher every consumer of the stream
runs under (the engine's ``on_event`` among them). No CTA is written by hand.

Then, from the seed's own random stream (deterministic with ``--seed``): about a fifth of the CTAs are
completed by their owner with an outcome (their tasks ticked off first), about one in eight is snoozed with
a reason, some tasks of the open ones are done, and each CSM has read part of their notifications (those of
the completed CTAs, and a few more); the rest stay unread, so the bell shows a count.

Demos above :data:`BIG` accounts (the benchmarks' organizations, which install and measure their own
playbooks) get none of this.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from accounts.choices import KEY_CONTACT_ROLES
from accounts.events import departed_data
from accounts.models import Account, Contact, Organization, Segment
from accounts.services import Actor
from cs_platform.events import NewEvent, dispatch, record_events

from . import ctas
from .choices import CtaOutcome, CtaStatus, SnoozeReason
from .defaults import ensure_default_cta_types, ensure_default_segments
from .engine import evaluate_organization
from .models import (
    AccountStageMark,
    Cta,
    CtaLog,
    CtaTask,
    EmailSendLog,
    EmailTemplate,
    Notification,
    Playbook,
    PlaybookFiring,
)
from .validation import playbook_problems

__all__ = ["DEFAULT_PLAYBOOKS", "EXTRA_PLAYBOOKS", "seed", "wipe"]

#: Demos with more accounts than this get no playbooks (see the module doc).
BIG = 5000
#: Key contacts who left this recently are announced (``contact.departed``) when the demo is seeded.
DEPARTED_WINDOW_DAYS = 30


def _cta(type_: str, reason: str, title: str, due_in_days: int, tasks: list[tuple[str, int]]) -> dict[str, Any]:
    return {
        "kind": "open_cta",
        "type": type_,
        "reason": reason,
        "title": title,
        "due_in_days": due_in_days,
        "tasks": [{"title": t, "due_in_days": d} for t, d in tasks],
    }


#: The default playbooks: (name, description, trigger, trigger params, segment name or None, cooldown, actions).
DEFAULT_PLAYBOOKS: list[tuple[str, str, str, dict[str, Any], str | None, int, list[dict[str, Any]]]] = [
    (
        "Health turned red",
        "A risk CTA with three tasks as soon as an account turns red; it closes itself when the account is "
        "green or yellow again.",
        "health_color",
        {"colors": ["red"]},
        None,
        0,
        [
            _cta(
                "risk",
                "health_red",
                "Health turned red",
                10,
                [("Call the champion", 2), ("Find the root cause", 5), ("Agree a recovery plan", 10)],
            )
        ],
    ),
    (
        "Renewal in 120 days",
        "Renewal preparation four months before the due date: time to fix what is wrong before the paperwork.",
        "renewal_due",
        {"days": 120},
        None,
        0,
        [
            _cta(
                "lifecycle",
                "renewal_prep",
                "Prepare the renewal",
                30,
                [
                    ("Review usage, health and open issues", 7),
                    ("Confirm the decision maker and the buying process", 14),
                    ("Send the renewal proposal", 30),
                ],
            )
        ],
    ),
    (
        "Seats over licence",
        "More active users than licensed seats: an expansion conversation, at most once a quarter per account.",
        "seats_over",
        {},
        None,
        90,
        [
            _cta(
                "expansion",
                "seats_over_licence",
                "More active users than seats",
                14,
                [("Check who the extra users are", 5), ("Propose a seat true-up", 14)],
            )
        ],
    ),
    (
        "Champion departed",
        "A key contact (champion, executive sponsor, economic buyer) left: find their successor quickly; the "
        "team manager hears about it too.",
        "contact_departed",
        {},
        None,
        0,
        [
            _cta(
                "risk",
                "key_contact_departed",
                "Key contact departed",
                7,
                [("Find the new champion", 3), ("Walk them through the success plan", 10)],
            ),
            {"kind": "notify", "to": "manager", "message": "{{ account.name }} lost a key contact."},
        ],
    ),
    (
        "No touch in 45 days (high touch)",
        "A high-touch account nobody has spoken to in 45 days; closes itself when a touch is logged.",
        "no_touch",
        {"days": 45},
        "High touch",
        0,
        [_cta("activity", "follow_up", "No customer touch in 45 days", 5, [("Schedule a check-in call", 3)])],
    ),
]

#: An email template the demo installs, and the inactive playbook that would send it.
DEMO_TEMPLATE = (
    "Renewal check-in",
    '{{ account.name }}: your renewal on {{ renewal.date|date:"j F Y" }}',
    'Hi {{ contact.first_name|default:"there" }},\n\n'
    'Your subscription renews on {{ renewal.date|date:"j F Y" }}. Before then I would like to review how '
    "{{ account.name }} uses the product and what you need next year.\n\n"
    "Could we find 30 minutes in the next two weeks?\n\n"
    "{{ csm.name }}\n{{ csm.email }}",
)
EXTRA_PLAYBOOKS = ["Renewal check-in email (90 days)"]

COMPLETE_NOTES = {
    CtaOutcome.RESOLVED: "Spoke with the customer; agreed next steps are in place.",
    CtaOutcome.PARTLY_RESOLVED: "Some progress; follow-up planned at the next check-in.",
    CtaOutcome.NOT_RESOLVED: "Customer did not engage; escalated to the team lead.",
    CtaOutcome.NO_ACTION_NEEDED: "Already handled in last week's call.",
}
OUTCOMES = [
    (CtaOutcome.RESOLVED, 5),
    (CtaOutcome.PARTLY_RESOLVED, 3),
    (CtaOutcome.NOT_RESOLVED, 1),
    (CtaOutcome.NO_ACTION_NEEDED, 1),
]
SNOOZES = [
    (SnoozeReason.CUSTOMER_UNAVAILABLE, "Champion on holiday until later this month."),
    (SnoozeReason.WAITING_ON_CUSTOMER, "Waiting for their usage review."),
    (SnoozeReason.WAITING_INTERNAL, "Waiting on the product team's answer."),
]


def wipe(organization: Organization) -> None:
    """Delete the organization's playbook and work-queue rows before its accounts go (raw deletes, in the
    order their references need). CTA types and reasons, segments and email templates are configuration:
    they stay."""
    for model in (
        PlaybookFiring,
        AccountStageMark,
        Playbook,
        Notification,
        CtaLog,
        CtaTask,
        Cta,
        EmailSendLog,
    ):
        model.all_orgs.filter(organization_id=organization.pk)._raw_delete(model.all_orgs.db)


def _install(organization: Organization) -> list[Playbook]:
    ensure_default_segments(organization.pk)
    ensure_default_cta_types(organization.pk)
    segments = dict(Segment.objects.for_org(organization).values_list("name", "pk"))
    playbooks = []
    for name, description, trigger, params, segment, cooldown, actions in DEFAULT_PLAYBOOKS:
        playbooks.append(
            Playbook(
                organization=organization, name=name, description=description, active=True, trigger=trigger,
                trigger_params=params, segment_id=segments[segment] if segment else None, cooldown_days=cooldown,
                actions=actions,
            )
        )  # fmt: skip
    name, subject, body = DEMO_TEMPLATE
    template, _ = EmailTemplate.objects.for_org(organization).get_or_create(
        organization=organization, name=name, defaults={"subject": subject, "body": body}
    )
    playbooks.append(
        Playbook(
            organization=organization, name=EXTRA_PLAYBOOKS[0], active=False, trigger="renewal_due",
            description="Emails the champion and the economic buyer 90 days before a renewal. Inactive: preview "
            "it, then switch it on.", trigger_params={"days": 90},
            actions=[{"kind": "send_email", "template": template.pk, "roles": ["champion", "economic_buyer"]}],
        )
    )  # fmt: skip
    for playbook in playbooks:
        problems = playbook_problems(playbook)
        if problems:  # a default that no longer validates is a bug of this module, not the admin's
            raise RuntimeError(f"demo playbook {playbook.name!r} is invalid: {problems}")
    Playbook.all_orgs.bulk_create(playbooks)
    return playbooks


def _color_events(organization: Organization, today: dt.date) -> list[NewEvent]:
    """``health.color_changed`` to red for every account red today, from the last other colour it had."""
    from health.models import HealthScore, HealthSnapshot

    before = (
        HealthSnapshot.all_orgs.filter(organization_id=organization.pk, account_id=OuterRef("account_id"))
        .filter(date__lt=today)
        .exclude(color__in=["", "red"])
        .order_by("-date")
        .values("color")[:1]
    )
    reds = (
        HealthScore.objects.for_org(organization)
        .filter(color="red", account__churned_at__isnull=True)
        .annotate(previous=Subquery(before))
        .order_by("account_id")
        .values_list("account_id", "account__external_id", "account__name", "previous", "score")
    )
    return [
        NewEvent(
            "health.color_changed",
            account_id,
            {"id": account_id, "external_id": external_id, "name": name, "from": previous, "to": "red", "score": score},
        )
        for account_id, external_id, name, previous, score in reds
    ]


def _departure_events(organization: Organization, today: dt.date) -> list[NewEvent]:
    """``contact.departed`` for key contacts who left in the last :data:`DEPARTED_WINDOW_DAYS` days."""
    contacts = (
        Contact.objects.for_org(organization)
        .filter(departed_at__gt=today - dt.timedelta(days=DEPARTED_WINDOW_DAYS), departed_at__lte=today)
        .filter(account__churned_at__isnull=True)
        .select_related("account")
        .order_by("pk")
    )
    return [
        NewEvent("contact.departed", contact.pk, departed_data(contact, contact.account.external_id))
        for contact in contacts
        if set(contact.roles or []) & set(KEY_CONTACT_ROLES)
    ]


def _work(organization: Organization, rng: random.Random, today: dt.date) -> dict[str, int]:
    """The CSMs' work on the fresh queue: completions with outcomes, snoozes, tasks ticked off, notifications
    read. Returns what was done."""
    done = {"ctas_completed": 0, "ctas_snoozed": 0, "tasks_done": 0}
    actors: dict[int, Actor] = {}
    snooze_from = max(today, timezone.localdate())  # a snooze must end after the real today
    open_ctas = (
        Cta.objects.for_org(organization)
        .filter(status=CtaStatus.OPEN, owner__isnull=False)
        .select_related("owner", "account")
        # Not by id: the events' dispatch order (and so the ids) is not deterministic; this is (one open CTA
        # per account, type and reason).
        .order_by("account__external_id", "type__key", "reason__key")
    )
    completed = []
    for cta in open_ctas:
        actor = actors.setdefault(cta.owner_id, Actor(organization=organization, role="csm", user=cta.owner))
        draw = rng.random()
        tasks = list(CtaTask.objects.for_org(organization).filter(cta=cta).order_by("position", "pk"))
        if draw < 0.2:
            for task in tasks:
                ctas.complete_task(task, by=actor)
                done["tasks_done"] += 1
            outcome = rng.choices([o for o, _ in OUTCOMES], weights=[w for _, w in OUTCOMES])[0]
            ctas.complete(cta, outcome=outcome, note=COMPLETE_NOTES[outcome], by=actor)
            completed.append(cta.pk)
            done["ctas_completed"] += 1
        elif draw < 0.32:
            reason, note = rng.choice(SNOOZES)
            until = snooze_from + dt.timedelta(days=rng.randint(7, 28))
            ctas.snooze(cta, until=until, reason=reason, note=note, by=actor)
            done["ctas_snoozed"] += 1
        elif tasks and draw < 0.6:
            ctas.complete_task(tasks[0], by=actor)
            done["tasks_done"] += 1
    # Notifications: those of completed CTAs were read (the CSM worked them), and about a third of the rest.
    unread = (
        Notification.objects.for_org(organization)
        .filter(read_at__isnull=True)
        .order_by("cta__account__external_id", "cta__type__key", "cta__reason__key", "user_id", "message", "pk")
    )
    worked = set(completed)
    read_ids = [pk for pk, cta_id in unread.values_list("pk", "cta_id") if cta_id in worked or rng.random() < 0.3]
    done["notifications_read"] = unread.filter(pk__in=read_ids).update(read_at=timezone.now())
    return done


def seed(
    organization: Organization, *, seed: int, today: dt.date, log: Callable[[str], None] | None = None
) -> dict[str, int]:
    """accounts.demo.seed_demo's hook: install the default playbooks, run them, work the queue a little."""
    say = log or (lambda message: None)
    if Account.objects.for_org(organization).count() > BIG:
        say("  playbooks: none on a demo this big (benchmarks install their own)")
        return {}
    playbooks = _install(organization)
    say(f"  playbooks: {len(playbooks)} installed; announcing today's reds and departures…")
    events = record_events(
        organization.pk, [*_color_events(organization, today), *_departure_events(organization, today)]
    )
    # The dispatcher every consumer runs under: the engine's on_event fires the event-driven playbooks.
    dispatch(organization.pk, [str(event.pk) for event in events])
    # The beat's entry, as of the seed's day: the time-based playbooks, set-based.
    now = timezone.now()
    if today != timezone.localdate(now):
        now = dt.datetime.combine(today, dt.time(12), tzinfo=dt.UTC)
    totals = evaluate_organization(organization.pk, now=now)
    say(f"  playbooks: {len(events)} events dispatched, evaluation fired {totals['fired']}; the CSMs' work…")
    work = _work(organization, random.Random(f"{seed}:playbooks"), today)
    return {
        "playbooks": len(playbooks),
        "playbook_firings": PlaybookFiring.objects.for_org(organization).count(),
        "ctas": Cta.objects.for_org(organization).count(),
        "cta_tasks": CtaTask.objects.for_org(organization).count(),
        "notifications": Notification.objects.for_org(organization).count(),
        **work,
    }
