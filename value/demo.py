"""Demo handoffs and onboarding projects (``manage.py seed_demo``; hooks of :mod:`accounts.demo`, order 60).

Every live demo account that became a customer in the last :data:`RECENT_DAYS` days gets a submitted handoff
(success measures with baselines and targets, stakeholders from its key contacts, a go-live target) and, once
its kickoff has happened, an onboarding project from the organization's default template (or, when it has
none, a "Standard onboarding" template made here), with its milestones:

* the pace of each project is drawn once: fast (70–95 % of the target time to go-live), on target
  (95–105 %) or slow (110–160 %), so the on-time rate, the distributions and the trend all mean something;
* a project whose go-live date falls after today is still ``active``, one whose first value falls after
  today is ``live``, else ``completed``; about 3 % are ``cancelled``;
* of the running projects, about one in five is **stuck**: their next milestone unchanged for longer than the
  project's stall window. Open milestones that are late or stuck carry ``stalled_on`` (the day the stall
  detection would have raised them), so the demo starts with stalled milestones but no burst of events.

Deterministic: each account draws from ``random.Random(f"{seed}:value:{external_id}")`` and dates are
relative to the seed's ``today``. Set-based: a handful of queries and one ``bulk_create`` per table.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from accounts.models import Account, Contact, Organization

from .choices import MilestoneMark, OnboardingStatus
from .models import Handoff, OnboardingMilestone, OnboardingProject, OnboardingTemplate

__all__ = ["DEFAULT_PHASES", "RECENT_DAYS", "seed", "wipe"]

#: Accounts that became customers this many days before the seed's today get an onboarding.
RECENT_DAYS = 300
TEMPLATE_NAME = "Standard onboarding"
#: The demo's template when the organization has no default one: phases of milestones with due offsets (days
#: from the kickoff) and the marks that start and stop the clocks.
DEFAULT_PHASES: list[dict[str, Any]] = [
    {"name": "Kickoff", "milestones": [
        {"key": "kickoff", "name": "Kickoff call: success measures validated", "owner_role": "csm",
         "due_offset_days": 0, "mark": "kickoff"}]},
    {"name": "Technical setup", "milestones": [
        {"key": "sso", "name": "SSO and user provisioning", "owner_role": "implementation", "due_offset_days": 14,
         "mark": ""},
        {"key": "data-import", "name": "Data import", "owner_role": "implementation", "due_offset_days": 24,
         "mark": ""},
        {"key": "integrations", "name": "CRM and helpdesk integrations", "owner_role": "customer",
         "due_offset_days": 34, "mark": ""}]},
    {"name": "Rollout", "milestones": [
        {"key": "training", "name": "Admin and team training", "owner_role": "csm", "due_offset_days": 44,
         "mark": ""},
        {"key": "go-live", "name": "Go-live", "owner_role": "csm", "due_offset_days": 55, "mark": "go_live"}]},
    {"name": "Value", "milestones": [
        {"key": "first-value", "name": "First success measure reached", "owner_role": "customer",
         "due_offset_days": 85, "mark": "first_value"}]},
]  # fmt: skip
MEASURES = [
    ("Cut first-response time", "Median first response (hours)", "9", "4"),
    ("Roll out to the support team", "Active support agents", "40", "120"),
    ("Automate renewal reporting", "Hours of manual reporting per month", "30", "5"),
    ("Raise weekly active usage", "Weekly active users", "35%", "70%"),
    ("Retire the legacy tool", "Teams still on the legacy tool", "6", "0"),
]
NOTES = [
    "Multi-year option discussed; priced per seat with a ramp in the first year.",
    "Procurement asked for a security review before go-live.",
    "Champion drove the evaluation; the sponsor wants a quarterly value review.",
    "Competitive deal: the customer is replacing an in-house tool.",
]
PACES = [("fast", 0.45, (0.7, 0.95)), ("on_target", 0.25, (0.95, 1.05)), ("slow", 0.30, (1.1, 1.6))]


def wipe(organization: Organization) -> None:
    """Delete the organization's handoffs and onboarding projects before its accounts go (templates stay:
    they are the organization's configuration)."""
    for model in (OnboardingMilestone, OnboardingProject, Handoff):
        model.all_orgs.filter(organization_id=organization.pk)._raw_delete(model.all_orgs.db)


def _template(organization: Organization) -> OnboardingTemplate:
    default = OnboardingTemplate.objects.for_org(organization).filter(is_default=True).first()
    if default is not None:
        return default
    template, _ = OnboardingTemplate.all_orgs.get_or_create(
        organization=organization,
        name=TEMPLATE_NAME,
        defaults={
            "description": "Kickoff, technical setup, rollout and first value (the demo's template).",
            "phases": DEFAULT_PHASES,
            "stall_after_days": 14,
            "target_go_live_days": 60,
            "target_first_value_days": 90,
            # The default only when nothing else claims it (one default per organization).
            "is_default": not OnboardingTemplate.objects.for_org(organization).filter(is_default=True).exists(),
        },
    )
    return template


def _milestones(template: OnboardingTemplate) -> list[dict[str, Any]]:
    rows = []
    for phase in template.phases or DEFAULT_PHASES:
        for m in phase.get("milestones", []):
            rows.append({**m, "phase": phase.get("name", "")})
    return rows


def _pace(rng: random.Random) -> tuple[str, float]:
    roll, acc = rng.random(), 0.0
    for name, share, (low, high) in PACES:
        acc += share
        if roll < acc:
            return name, rng.uniform(low, high)
    name, _, (low, high) = PACES[-1]
    return name, rng.uniform(low, high)


def _at(day: dt.date, hour: int = 15) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


class _Builder:
    """One account's handoff, project and milestones (unsaved), from its own random stream."""

    def __init__(self, org: Organization, seed: int, today: dt.date, template: OnboardingTemplate) -> None:
        self.org, self.seed, self.today, self.template = org, seed, today, template
        self.plan = _milestones(template)
        marks = {m.get("mark") for m in self.plan}
        self.has_first_value = MilestoneMark.FIRST_VALUE in marks
        self.go_live_offset = next(
            (m["due_offset_days"] for m in self.plan if m.get("mark") == MilestoneMark.GO_LIVE),
            template.target_go_live_days,
        )

    def handoff(self, rng: random.Random, account: dict[str, Any], contacts: list[dict[str, Any]],
                kickoff: dt.date) -> Handoff:  # fmt: skip
        measures = rng.sample(MEASURES, k=rng.randint(1, 3))
        key = [c for c in contacts if set(c["roles"]) & {"champion", "executive_sponsor", "economic_buyer"}]
        return Handoff(
            organization_id=self.org.pk,
            account_id=account["pk"],
            go_live_target=kickoff + dt.timedelta(days=self.template.target_go_live_days),
            success_measures=[
                {
                    "title": title,
                    "customer_measure": measure,
                    "baseline": baseline,
                    "target": target,
                    "due_date": (kickoff + dt.timedelta(days=self.template.target_first_value_days + 30)).isoformat(),
                }
                for title, measure, baseline, target in measures
            ],  # fmt: skip
            stakeholders=[
                {"name": c["name"], "email": c["email"], "title": c["title"], "role": (c["roles"] or ["end_user"])[0]}
                for c in key[:3]
            ],
            commercial_notes=rng.choice(NOTES),
            submitted_by_id=account["owner_id"],
            submitted_at=_at(kickoff - dt.timedelta(days=rng.randint(2, 7)), 11),
        )

    def project(self, rng: random.Random, account: dict[str, Any], kickoff: dt.date) -> tuple[OnboardingProject, list]:
        today, template = self.today, self.template
        pace_name, factor = _pace(rng)
        go_live_days = max(7, round(template.target_go_live_days * factor))
        value_days = go_live_days + rng.randint(15, 45)
        go_live = kickoff + dt.timedelta(days=go_live_days)
        first_value = kickoff + dt.timedelta(days=value_days)
        cancelled = rng.random() < 0.03
        if cancelled:
            status = OnboardingStatus.CANCELLED
        elif go_live > today:
            status = OnboardingStatus.ACTIVE
        elif self.has_first_value and first_value > today:
            status = OnboardingStatus.LIVE
        else:
            status = OnboardingStatus.COMPLETED
        stuck = status in (OnboardingStatus.ACTIVE, OnboardingStatus.LIVE) and rng.random() < 0.2
        project = OnboardingProject(
            organization_id=self.org.pk,
            account_id=account["pk"],
            template=template,
            name=f"{account['name']} onboarding",
            owner_id=account["owner_id"],
            status=status,
            kickoff_on=kickoff,
            target_go_live_on=kickoff + dt.timedelta(days=template.target_go_live_days),
            target_first_value_on=kickoff + dt.timedelta(days=template.target_first_value_days),
            go_live_on=go_live if go_live <= today and not cancelled else None,
            first_value_on=first_value if self.has_first_value and first_value <= today and not cancelled else None,
            stall_after_days=template.stall_after_days,
        )
        milestones = []
        # Milestones before go-live are done in proportion of the project's pace; after it, up to first value.
        stop_offset = max((m["due_offset_days"] for m in self.plan), default=self.go_live_offset)
        last_done = kickoff
        for position, m in enumerate(self.plan):
            offset = m["due_offset_days"]
            if m.get("mark") == MilestoneMark.GO_LIVE:
                done = go_live
            elif m.get("mark") == MilestoneMark.FIRST_VALUE:
                done = first_value
            elif offset <= self.go_live_offset:
                done = kickoff + dt.timedelta(days=round(go_live_days * offset / max(self.go_live_offset, 1)))
            else:
                span = max(stop_offset - self.go_live_offset, 1)
                done = go_live + dt.timedelta(
                    days=round((value_days - go_live_days) * (offset - self.go_live_offset) / span)
                )
            completed = done if done <= today and not cancelled else None
            if completed is not None:
                changed = _at(completed)
                last_done = max(last_done, completed)
            elif stuck:  # untouched since the last milestone was done, and for longer than the stall window
                changed = _at(min(last_done, today - dt.timedelta(days=template.stall_after_days + rng.randint(1, 20))))
            else:  # worked on recently
                changed = _at(today - dt.timedelta(days=rng.randint(0, min(10, template.stall_after_days - 1))))
            due = kickoff + dt.timedelta(days=offset)
            milestones.append(
                OnboardingMilestone(
                    organization_id=self.org.pk, phase=m["phase"], position=position * 10, key=m["key"],
                    name=m["name"], mark=m.get("mark") or "", owner_role=m.get("owner_role") or "csm",
                    owner_id=account["owner_id"] if (m.get("owner_role") or "csm") == "csm" else None,
                    due_on=due, completed_on=completed, last_changed_at=changed,
                    stalled_on=self._stalled_on(project, due, changed, completed),
                )
            )  # fmt: skip
        return project, milestones

    def _stalled_on(self, project: OnboardingProject, due: dt.date, changed: dt.datetime,
                    completed: dt.date | None) -> dt.date | None:  # fmt: skip
        """The day the stall detection would have raised this milestone (value.stalls' rules), or None."""
        if completed is not None or project.status not in (OnboardingStatus.ACTIVE, OnboardingStatus.LIVE):
            return None
        days = [due + dt.timedelta(days=1)]
        days.append((changed + dt.timedelta(days=project.stall_after_days)).date() + dt.timedelta(days=1))
        first = min(days)
        return first if first <= self.today else None


def seed(
    organization: Organization, *, seed: int, today: dt.date, log: Callable[[str], None] | None = None
) -> dict[str, int]:
    """accounts.demo.seed_demo's hook: handoffs and onboarding projects for the recent customers."""
    say = log or (lambda message: None)
    template = _template(organization)
    builder = _Builder(organization, seed, today, template)
    accounts = list(
        Account.objects.for_org(organization)
        .filter(churned_at__isnull=True, customer_since__gte=today - dt.timedelta(days=RECENT_DAYS))
        .order_by("external_id")
        .values("pk", "external_id", "name", "owner_id", "customer_since")
    )
    contacts: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for c in (
        Contact.objects.for_org(organization)
        .filter(account_id__in=[a["pk"] for a in accounts], is_active=True)
        .order_by("pk")
        .values("account_id", "name", "email", "title", "roles")
    ):
        contacts[c["account_id"]].append(c)
    handoffs, projects, milestones = [], [], []
    for account in accounts:
        rng = random.Random(f"{seed}:value:{account['external_id']}")
        kickoff = account["customer_since"] + dt.timedelta(days=rng.randint(3, 14))
        handoffs.append(builder.handoff(rng, account, contacts[account["pk"]], kickoff))
        if kickoff >= today:  # signed, handed off, kickoff still to come: no project yet
            continue
        project, rows = builder.project(rng, account, kickoff)
        projects.append(project)
        milestones.append(rows)
    Handoff.all_orgs.bulk_create(handoffs, batch_size=1000)
    OnboardingProject.all_orgs.bulk_create(projects, batch_size=1000)  # ids come back (Postgres, SQLite)
    for project, rows in zip(projects, milestones, strict=True):
        for row in rows:
            row.project_id = project.pk
    flat = [row for rows in milestones for row in rows]
    OnboardingMilestone.all_orgs.bulk_create(flat, batch_size=2000)
    stalled = sum(1 for m in flat if m.stalled_on)
    say(f"  onboarding: {len(handoffs)} handoffs, {len(projects)} projects, {stalled} stalled milestones")
    return {"handoffs": len(handoffs), "onboarding_projects": len(projects), "onboarding_milestones": len(flat)}
