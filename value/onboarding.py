"""Services of the sales → CS handoff and onboarding projects (issue 15, item 1).

* **Templates** — :data:`DEFAULT_PHASES` is every organization's first template (created by the
  ``organization_created`` hook and migration 0003 for existing ones, :func:`ensure_default_template`);
  :func:`validate_phases` checks a template's phases (exactly one ``kickoff`` and one ``go_live`` mark, at
  most one ``first_value``, keys unique slugs, offsets ≥ 0) and reports each problem at its JSON path
  (``phases.0.milestones.1.key``), so the API and the admin page show it at the field.
* **Handoff** — :func:`save_handoff` keeps a draft; :func:`submit_handoff` validates it and, idempotently,
  seeds the success plan's objectives (each measure remembers its objective's id), creates or updates the
  stakeholders' contacts by email (their role added to the contact's roles) and starts the onboarding
  project from the default template unless the account already has one that is not cancelled.
* **Projects** — :func:`start_project` copies a template's milestones (``csm`` owner → the account's
  owner, due = kickoff + offset once the kickoff is known); :func:`complete_milestone`,
  :func:`reopen_milestone` and :func:`update_milestone` move the milestone and the project's clock:
  the ``kickoff`` milestone sets ``kickoff_on`` (and the due dates), ``go_live`` sets ``go_live_on``, status
  ``live`` and the account's lifecycle stage onboarding → adoption, ``first_value`` sets ``first_value_on``
  and status ``completed`` (go-live stands in when the project has no first-value milestone). Every change
  of a milestone sets ``last_changed_at`` and clears ``stalled_on`` (the stall detection that sets it is
  time-to-value's). Reaching go-live and first value record ``onboarding.went_live`` and
  ``onboarding.first_value`` in the change's transaction.

Permissions: whoever may write the account (``Actor.can_write_account``: admins, leaders for their teams'
books and unowned accounts, a CSM for their own accounts; viewers never) may write its handoff, project and
milestones; templates are admins'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from accounts.choices import ContactRole
from accounts.models import Account, Contact, Objective, Organization, SuccessPlan
from accounts.services import Actor
from cs_platform.audit import record_audit
from cs_platform.configdiff import diff
from cs_platform.events import record_event

from .choices import OPEN_ONBOARDING_STATUSES, MilestoneMark, MilestoneOwnerRole, OnboardingStatus
from .models import Handoff, OnboardingMilestone, OnboardingProject, OnboardingTemplate

__all__ = [
    "DEFAULT_PHASES",
    "DEFAULT_TEMPLATE_NAME",
    "OnboardingPermissionDenied",
    "SubmitResult",
    "add_milestone",
    "cancel_project",
    "clean_handoff",
    "complete_milestone",
    "ensure_default_template",
    "milestone_state",
    "project_clock",
    "projects_with_flags",
    "reopen_milestone",
    "save_handoff",
    "save_template",
    "set_kickoff",
    "start_project",
    "submit_handoff",
    "update_milestone",
    "update_project",
    "validate_phases",
]

DEFAULT_TEMPLATE_NAME = "Standard onboarding"

#: The first template of every organization (migration 0003 holds a frozen copy of it).
DEFAULT_PHASES: list[dict[str, Any]] = [
    {
        "name": "Kickoff",
        "milestones": [
            {"key": "kickoff", "name": "Kickoff call: success measures confirmed", "owner_role": "csm",
             "due_offset_days": 0, "mark": "kickoff"},
        ],
    },
    {
        "name": "Configure",
        "milestones": [
            {"key": "data-import", "name": "Data import", "owner_role": "implementation", "due_offset_days": 14,
             "mark": ""},
            {"key": "training", "name": "Admin and user training", "owner_role": "implementation",
             "due_offset_days": 30, "mark": ""},
        ],
    },
    {
        "name": "Launch",
        "milestones": [
            {"key": "go-live", "name": "Go-live", "owner_role": "csm", "due_offset_days": 45, "mark": "go_live"},
        ],
    },
    {
        "name": "Adopt",
        "milestones": [
            {"key": "first-value", "name": "First value confirmed with the sponsor", "owner_role": "customer",
             "due_offset_days": 90, "mark": "first_value"},
        ],
    },
]  # fmt: skip

#: The stage an account leaves and the one it enters at go-live (spec: onboarding → adoption).
STAGE_ONBOARDING = "onboarding"
STAGE_ADOPTION = "adoption"

#: The template fields the audit log diffs.
AUDITED = ("name", "description", "is_default", "phases", "stall_after_days", "target_go_live_days",
           "target_first_value_days")  # fmt: skip

SLUG_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
MAX_MILESTONES = 100
UNSET: Any = object()


class OnboardingPermissionDenied(PermissionDenied):
    """The actor may not make this change (the message says why)."""


def _check_account(actor: Actor, account: Account) -> None:
    if not actor.can_write_account(account):
        raise OnboardingPermissionDenied("You can only change the onboarding of accounts in your book.")


def _today() -> date:
    return timezone.localdate()


# --- Templates ----------------------------------------------------------------------------------------


def validate_phases(phases: Any) -> list[tuple[str, str]]:
    """Every problem of a template's ``phases`` as ``(json path, message)``; ``[]`` when valid."""
    problems: list[tuple[str, str]] = []
    if not isinstance(phases, list) or not phases:
        return [("phases", "Give at least one phase: a list of {name, milestones}.")]
    marks: dict[str, list[str]] = {}
    keys: dict[str, str] = {}
    count = 0
    for p, phase in enumerate(phases):
        where = f"phases.{p}"
        if not isinstance(phase, dict):
            problems.append((where, "A phase is an object with a name and milestones."))
            continue
        unknown = sorted(set(phase) - {"name", "milestones"})
        if unknown:
            problems.append((where, f"Unknown field(s): {', '.join(unknown)}."))
        name = phase.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 120:
            problems.append((f"{where}.name", "A phase needs a name of at most 120 characters."))
        milestones = phase.get("milestones")
        if not isinstance(milestones, list) or not milestones:
            problems.append((f"{where}.milestones", "A phase needs at least one milestone."))
            continue
        for m, item in enumerate(milestones):
            at = f"{where}.milestones.{m}"
            count += 1
            if not isinstance(item, dict):
                problems.append((at, "A milestone is an object: key, name, owner_role, due_offset_days, mark."))
                continue
            unknown = sorted(set(item) - {"key", "name", "owner_role", "due_offset_days", "mark"})
            if unknown:
                problems.append((at, f"Unknown field(s): {', '.join(unknown)}."))
            key = item.get("key")
            if not isinstance(key, str) or not SLUG_RE.match(key) or len(key) > 60:
                problems.append((f"{at}.key", "A key is a slug: lower-case letters, digits, - or _ (≤ 60)."))
            elif key in keys:
                problems.append((f"{at}.key", f"The key {key!r} is already used at {keys[key]}."))
            else:
                keys[key] = at
            title = item.get("name")
            if not isinstance(title, str) or not title.strip() or len(title) > 200:
                problems.append((f"{at}.name", "A milestone needs a name of at most 200 characters."))
            role = item.get("owner_role", MilestoneOwnerRole.CSM)
            if role not in MilestoneOwnerRole.values:
                problems.append((f"{at}.owner_role", f"Use one of: {', '.join(MilestoneOwnerRole.values)}."))
            offset = item.get("due_offset_days", 0)
            if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= 3650:
                problems.append((f"{at}.due_offset_days", "Days after the kickoff: a whole number from 0 to 3650."))
            mark = item.get("mark", "") or ""
            if mark not in MilestoneMark.values:
                problems.append((f"{at}.mark", "Use kickoff, go_live, first_value or leave it empty."))
            elif mark:
                marks.setdefault(mark, []).append(at)
    if count > MAX_MILESTONES:
        problems.append(("phases", f"At most {MAX_MILESTONES} milestones."))
    for mark in (MilestoneMark.KICKOFF, MilestoneMark.GO_LIVE):
        found = marks.get(mark, [])
        if len(found) != 1:
            problems.append(("phases", f"Mark exactly one milestone {mark} (found {len(found)})."))
    if len(marks.get(MilestoneMark.FIRST_VALUE, [])) > 1:
        problems.append(("phases", "Mark at most one milestone first_value."))
    return problems


def _clean_phases(phases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The phases with every milestone's optional fields spelled out (what projects copy)."""
    return [
        {
            "name": phase["name"].strip(),
            "milestones": [
                {
                    "key": m["key"],
                    "name": m["name"].strip(),
                    "owner_role": m.get("owner_role", MilestoneOwnerRole.CSM),
                    "due_offset_days": m.get("due_offset_days", 0),
                    "mark": m.get("mark", "") or "",
                }
                for m in phase["milestones"]
            ],
        }
        for phase in phases
    ]


def ensure_default_template(organization: Organization | int) -> OnboardingTemplate:
    """The organization's default template, created from :data:`DEFAULT_PHASES` if it has none."""
    org_id = organization if isinstance(organization, int) else organization.pk
    templates = OnboardingTemplate.objects.for_org(org_id)
    current = templates.filter(is_default=True).first()
    if current is not None:
        return current
    name = DEFAULT_TEMPLATE_NAME
    if templates.filter(name=name).exists():
        name = f"{DEFAULT_TEMPLATE_NAME} (default)"
    try:
        with transaction.atomic():
            return OnboardingTemplate.objects.for_org(org_id).create(
                organization_id=org_id,
                name=name,
                is_default=True,
                phases=_clean_phases(DEFAULT_PHASES),
                description="Kickoff, configure, launch and adopt: the starting point every organization gets.",
            )
    except IntegrityError:  # created meanwhile by a concurrent call
        return templates.get(is_default=True)


def save_template(template: OnboardingTemplate, *, by: Actor) -> OnboardingTemplate:
    """Validate and save a template (new or changed); making it the default unsets the previous one."""
    if not by.is_admin:
        raise OnboardingPermissionDenied("Only admins change onboarding templates.")
    problems = validate_phases(template.phases)
    if problems:
        errors: dict[str, list[str]] = {}
        for path, message in problems:
            errors.setdefault(path, []).append(message)
        raise ValidationError(errors)
    template.phases = _clean_phases(template.phases)
    templates = OnboardingTemplate.objects.for_org(by.organization)
    with transaction.atomic():
        before = templates.filter(pk=template.pk).values(*AUDITED).first() if template.pk else None
        if before and before["is_default"] and not template.is_default:
            # Handoffs start projects from the default: there is always one (make another the default).
            raise ValidationError({"is_default": ["Make another template the default instead."]})
        if template.is_default:
            templates.filter(is_default=True).exclude(pk=template.pk).update(
                is_default=False, updated_at=timezone.now()
            )
        template.save()
        after = {f: getattr(template, f) for f in AUDITED}
        changes = diff(before or {}, after)
        if changes:
            # Configuration, like scorecards and segments: who changed which template, field by field.
            record_audit(
                by.organization.pk,
                "onboarding_template.created" if before is None else "onboarding_template.changed",
                subject_type="onboarding_template",
                subject_id=template.pk,
                subject_label=template.name,
                actor=by.user,
                changes=changes,
            )
    return template


# --- Handoff ------------------------------------------------------------------------------------------

MEASURE_FIELDS = ("title", "customer_measure", "baseline", "target", "due_date")
STAKEHOLDER_FIELDS = ("name", "email", "title", "role")
LIMITS = {"title": 200, "customer_measure": 200, "baseline": 80, "target": 80, "name": 200, "email": 254}


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value.strip():
        return date.fromisoformat(value.strip())
    return None


def clean_handoff(
    success_measures: Any, stakeholders: Any, *, complete: bool, go_live_target: date | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Normalised measures and stakeholders, or a ``ValidationError`` naming each problem at its path
    (``success_measures.0.target``). Blank rows are dropped. ``complete``: the rules of a submission (at
    least one measure with a title and a target, at least one stakeholder with a name, an email and a
    role, and a go-live target), not only those of a draft (each row well formed)."""
    errors: dict[str, list[str]] = {}
    measures: list[dict[str, Any]] = []
    if not isinstance(success_measures, list):
        errors["success_measures"] = ["A list of measures."]
        success_measures = []
    if not isinstance(stakeholders, list):
        errors["stakeholders"] = ["A list of stakeholders."]
        stakeholders = []
    for i, row in enumerate(success_measures):
        if not isinstance(row, dict):
            errors[f"success_measures.{i}"] = ["A measure is an object."]
            continue
        values = {f: _text(row.get(f)) for f in ("title", "customer_measure", "baseline", "target")}
        raw_due = row.get("due_date")
        try:
            due = _date(raw_due)
        except (TypeError, ValueError):
            errors[f"success_measures.{i}.due_date"] = ["A date as YYYY-MM-DD."]
            due = None
        if not any(values.values()) and due is None:
            continue  # a blank row of the form
        for f, v in values.items():
            if len(v) > LIMITS[f]:
                errors.setdefault(f"success_measures.{i}.{f}", []).append(f"At most {LIMITS[f]} characters.")
        if not values["title"]:
            errors.setdefault(f"success_measures.{i}.title", []).append("Name the measure.")
        if complete and not values["target"]:
            errors.setdefault(f"success_measures.{i}.target", []).append("Give the target the customer expects.")
        measure = {**values, "due_date": due.isoformat() if due else None}
        objective = row.get("objective")
        if isinstance(objective, int) and not isinstance(objective, bool):
            measure["objective"] = objective  # kept: the objective this measure seeded
        measures.append(measure)
    people: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(stakeholders):
        if not isinstance(row, dict):
            errors[f"stakeholders.{i}"] = ["A stakeholder is an object."]
            continue
        values = {f: _text(row.get(f)) for f in STAKEHOLDER_FIELDS}
        values["email"] = values["email"].lower()
        if not any(values.values()):
            continue
        if not values["name"]:
            errors.setdefault(f"stakeholders.{i}.name", []).append("Name the stakeholder.")
        if values["email"]:
            try:
                validate_email(values["email"])
            except ValidationError:
                errors.setdefault(f"stakeholders.{i}.email", []).append("Enter a valid email address.")
            if values["email"] in seen:
                errors.setdefault(f"stakeholders.{i}.email", []).append(
                    f"Already given for stakeholder {seen[values['email']] + 1}."
                )
            seen[values["email"]] = i
        elif complete:
            errors.setdefault(f"stakeholders.{i}.email", []).append("The email finds or creates the contact.")
        if values["role"] and values["role"] not in ContactRole.values:
            errors.setdefault(f"stakeholders.{i}.role", []).append(f"Use one of: {', '.join(ContactRole.values)}.")
        elif complete and not values["role"]:
            errors.setdefault(f"stakeholders.{i}.role", []).append("Choose the stakeholder's role.")
        for f in ("name", "title"):
            if len(values[f]) > 200:
                errors.setdefault(f"stakeholders.{i}.{f}", []).append("At most 200 characters.")
        people.append(values)
    if complete:
        if not measures and "success_measures" not in errors:
            errors["success_measures"] = ["Give at least one success measure (with its baseline and target)."]
        if not people and "stakeholders" not in errors:
            errors["stakeholders"] = ["Name at least one stakeholder (the sponsor or the champion)."]
        if go_live_target is None:
            errors["go_live_target"] = ["Give the go-live target date sales agreed with the customer."]
    if errors:
        raise ValidationError(errors)
    return measures, people


def save_handoff(
    account: Account,
    *,
    by: Actor,
    go_live_target: date | None | Any = UNSET,
    success_measures: list[dict[str, Any]] | Any = UNSET,
    stakeholders: list[dict[str, Any]] | Any = UNSET,
    commercial_notes: str | Any = UNSET,
) -> Handoff:
    """Create or change the account's handoff (a draft until submitted; a submitted one may be corrected
    and submitted again). Only the given fields change; each row is checked as a draft's."""
    _check_account(by, account)
    with transaction.atomic():
        handoff = Handoff.objects.for_org(account.organization_id).select_for_update().filter(account=account).first()
        if handoff is None:
            handoff = Handoff(organization_id=account.organization_id, account=account)
        measures = handoff.success_measures if success_measures is UNSET else success_measures
        people = handoff.stakeholders if stakeholders is UNSET else stakeholders
        handoff.success_measures, handoff.stakeholders = clean_handoff(measures, people, complete=False)
        if go_live_target is not UNSET:
            handoff.go_live_target = go_live_target
        if commercial_notes is not UNSET:
            handoff.commercial_notes = (commercial_notes or "").strip()
        handoff.save()
    return handoff


@dataclass
class SubmitResult:
    """What a submission did (a second submission of the same handoff creates nothing)."""

    handoff: Handoff
    objectives_created: int = 0
    objectives_updated: int = 0
    contacts_created: int = 0
    contacts_updated: int = 0
    project: OnboardingProject | None = None
    project_created: bool = False


def submit_handoff(handoff: Handoff, *, by: Actor) -> SubmitResult:
    """Validate the handoff and seed the account from it, in one transaction (idempotent).

    Objectives: a measure updates the objective it seeded before (its ``objective`` id), else the plan's
    objective of the same title, else creates one; only title, customer measure, baseline, target and due
    date are written (status, progress and readings are the CSM's). Contacts: the account's contact with
    the stakeholder's email (case-insensitive) gets the name, title (when given) and the role added to
    its roles; none → a new contact. Project: started from the default template when the account has no
    project that is not cancelled; an open one takes the handoff's go-live target."""
    account = handoff.account
    _check_account(by, account)
    org_id = account.organization_id
    with transaction.atomic():
        handoff = Handoff.objects.for_org(org_id).select_for_update().select_related("account").get(pk=handoff.pk)
        account = handoff.account
        measures, people = clean_handoff(
            handoff.success_measures, handoff.stakeholders, complete=True, go_live_target=handoff.go_live_target
        )
        result = SubmitResult(handoff=handoff)
        plan, _ = SuccessPlan.objects.for_org(org_id).get_or_create(organization_id=org_id, account=account)
        existing = {o.pk: o for o in Objective.objects.for_org(org_id).filter(plan=plan)}
        by_title = {o.title.casefold(): o for o in existing.values()}
        for measure in measures:
            objective = existing.get(measure.get("objective")) or by_title.get(measure["title"].casefold())
            values = {
                "title": measure["title"],
                "customer_measure": measure["customer_measure"],
                "baseline": measure["baseline"],
                "target": measure["target"],
                "due_date": _date(measure["due_date"]),
            }
            if objective is None:
                objective = Objective.objects.for_org(org_id).create(organization_id=org_id, plan=plan, **values)
                result.objectives_created += 1
                by_title[objective.title.casefold()] = objective
                existing[objective.pk] = objective
            elif any(getattr(objective, f) != v for f, v in values.items()):
                for f, v in values.items():
                    setattr(objective, f, v)
                objective.save(update_fields=list(values))
                result.objectives_updated += 1
            measure["objective"] = objective.pk
        contacts = Contact.objects.for_org(org_id).filter(account=account).exclude(email="").order_by("pk")
        by_email: dict[str, Contact] = {}
        for contact in contacts:
            by_email.setdefault(contact.email.lower(), contact)
        for person in people:
            contact = by_email.get(person["email"])
            if contact is None:
                Contact.objects.for_org(org_id).create(
                    organization_id=org_id,
                    account=account,
                    name=person["name"],
                    email=person["email"],
                    title=person["title"],
                    roles=[person["role"]],
                )
                result.contacts_created += 1
                continue
            roles = list(contact.roles or [])
            if person["role"] not in roles:
                roles.append(person["role"])
            changes = {"name": person["name"], "roles": roles}
            if person["title"]:
                changes["title"] = person["title"]
            if any(getattr(contact, f) != v for f, v in changes.items()):
                for f, v in changes.items():
                    setattr(contact, f, v)
                # Contact.save: the contact's own signals (health's debounced recompute) see the change.
                contact.save(update_fields=[*changes, "updated_at"])
                result.contacts_updated += 1
        projects = OnboardingProject.objects.for_org(org_id).filter(account=account)
        live = projects.filter(status__in=OPEN_ONBOARDING_STATUSES).first()
        if live is not None:
            result.project = live
            if handoff.go_live_target and live.target_go_live_on != handoff.go_live_target:
                live.target_go_live_on = handoff.go_live_target
                live.save(update_fields=["target_go_live_on", "updated_at"])
        elif not projects.exclude(status=OnboardingStatus.CANCELLED).exists():
            result.project = start_project(
                account, by=by, template=ensure_default_template(org_id), target_go_live_on=handoff.go_live_target
            )
            result.project_created = True
        handoff.success_measures, handoff.stakeholders = measures, people
        handoff.submitted_at = timezone.now()
        handoff.submitted_by = by.user
        handoff.save(update_fields=["success_measures", "stakeholders", "submitted_at", "submitted_by", "updated_at"])
    return result


# --- Projects -----------------------------------------------------------------------------------------


def _target_days(project: OnboardingProject) -> tuple[int, int]:
    template = project.template
    if template is None:
        return 60, 90
    return template.target_go_live_days, template.target_first_value_days


def start_project(
    account: Account,
    *,
    by: Actor,
    template: OnboardingTemplate | None = None,
    kickoff_on: date | None = None,
    target_go_live_on: date | None = None,
    target_first_value_on: date | None = None,
    stall_after_days: int | None = None,
    name: str = "",
    owner: Any = None,
) -> OnboardingProject:
    """Start the account's onboarding from ``template`` (the default one if ``None``): its milestones are
    copied (later template edits leave the project alone). One open project per account."""
    _check_account(by, account)
    org_id = account.organization_id
    template = template or ensure_default_template(org_id)
    if template.organization_id != org_id:  # pragma: no cover - callers resolve it inside the organization
        raise ValidationError({"template": ["No such template."]})
    with transaction.atomic():
        Account.objects.for_org(org_id).select_for_update().filter(pk=account.pk).first()
        if (
            OnboardingProject.objects.for_org(org_id)
            .filter(account=account, status__in=OPEN_ONBOARDING_STATUSES)
            .exists()
        ):
            raise ValidationError({"account": ["This account already has an onboarding project under way."]})
        project = OnboardingProject.objects.for_org(org_id).create(
            organization_id=org_id,
            account=account,
            template=template,
            name=(name or "").strip() or f"{account.name} onboarding",
            owner=owner if owner is not None else account.owner,
            target_go_live_on=target_go_live_on,
            target_first_value_on=target_first_value_on,
            stall_after_days=stall_after_days if stall_after_days is not None else template.stall_after_days,
        )
        now = timezone.now()
        rows = []
        position = 0
        for phase in template.phases:
            for item in phase["milestones"]:
                position += 1
                rows.append(
                    OnboardingMilestone(
                        organization_id=org_id,
                        project=project,
                        phase=phase["name"],
                        position=position,
                        key=item["key"],
                        name=item["name"],
                        mark=item.get("mark", "") or "",
                        owner_role=item.get("owner_role", MilestoneOwnerRole.CSM),
                        owner_id=account.owner_id if item.get("owner_role") == MilestoneOwnerRole.CSM else None,
                        due_offset_days=item.get("due_offset_days", 0),
                        last_changed_at=now,
                    )
                )
        OnboardingMilestone.objects.for_org(org_id).bulk_create(rows)
        if kickoff_on is not None:
            _apply_kickoff(project, kickoff_on)
    return project


def _apply_kickoff(project: OnboardingProject, kickoff_on: date | None) -> None:
    """Set the kickoff day; the milestones whose due date follows the template (an offset, not a date a
    person typed) get kickoff + offset, and missing targets come from the template's."""
    project.kickoff_on = kickoff_on
    fields = ["kickoff_on", "updated_at"]
    if kickoff_on is not None:
        go_live_days, first_value_days = _target_days(project)
        if project.target_go_live_on is None:
            project.target_go_live_on = kickoff_on + timedelta(days=go_live_days)
            fields.append("target_go_live_on")
        if project.target_first_value_on is None:
            project.target_first_value_on = kickoff_on + timedelta(days=first_value_days)
            fields.append("target_first_value_on")
        now = timezone.now()
        # Completed milestones keep the due date they were measured against, unless they had none yet
        # (the kickoff milestone itself, completed before any due date existed).
        for milestone in OnboardingMilestone.objects.for_org(project.organization_id).filter(
            Q(completed_on__isnull=True) | Q(due_on__isnull=True), project=project, due_offset_days__isnull=False
        ):
            due = kickoff_on + timedelta(days=milestone.due_offset_days)
            if milestone.due_on != due:
                milestone.due_on = due
                milestone.last_changed_at = now
                milestone.stalled_on = None
                milestone.save(update_fields=["due_on", "last_changed_at", "stalled_on"])
    project.save(update_fields=fields)


def _check_project(by: Actor, project: OnboardingProject) -> None:
    _check_account(by, project.account)
    if project.status == OnboardingStatus.CANCELLED:
        raise ValidationError({"status": ["This onboarding project is cancelled."]})


def set_kickoff(project: OnboardingProject, kickoff_on: date | None, *, by: Actor) -> OnboardingProject:
    """Set (or clear) the project's kickoff day and recompute the template-driven due dates."""
    _check_project(by, project)
    with transaction.atomic():
        _apply_kickoff(project, kickoff_on)
    return project


def update_project(project: OnboardingProject, *, by: Actor, **fields: Any) -> OnboardingProject:
    """Change a project's name, owner, targets or stall threshold; ``kickoff_on`` goes through
    :func:`set_kickoff` (due dates follow)."""
    _check_project(by, project)
    allowed = {"name", "owner", "target_go_live_on", "target_first_value_on", "stall_after_days"}
    with transaction.atomic():
        kickoff = fields.pop("kickoff_on", UNSET)
        changed = [f for f in fields if f in allowed]
        for f in changed:
            setattr(project, f, fields[f])
        if changed:
            project.save(update_fields=[*changed, "updated_at"])
        if kickoff is not UNSET and kickoff != project.kickoff_on:
            _apply_kickoff(project, kickoff)
    return project


def cancel_project(project: OnboardingProject, *, by: Actor) -> OnboardingProject:
    """Cancel a project: it leaves every figure, and the account may start another."""
    _check_project(by, project)
    project.status = OnboardingStatus.CANCELLED
    project.save(update_fields=["status", "updated_at"])
    return project


def _event_payload(project: OnboardingProject, milestone: OnboardingMilestone) -> dict[str, Any]:
    account = project.account
    return {
        "project": project.pk,
        "project_name": project.name,
        "account": account.pk,
        "account_external_id": account.external_id,
        "account_name": account.name,
        "milestone": milestone.pk,
        "milestone_key": milestone.key,
        "kickoff_on": project.kickoff_on,
    }


def _days(start: date | None, end: date | None) -> int | None:
    return (end - start).days if start and end else None


def _set_stage(account: Account, old: str, new: str) -> None:
    """Move the account's lifecycle stage only if it is still ``old`` (a stage set by hand wins) and the
    organization has the stage ``new`` in its (configurable) list of stages."""
    fresh = (
        Account.objects.for_org(account.organization_id)
        .select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=account.pk)
    )
    if fresh.lifecycle_stage == old and new in (fresh.organization.lifecycle_stages or []):
        fresh.lifecycle_stage = new
        # Account.save records account.updated in the outbox, like an edit through the API.
        fresh.save(update_fields=["lifecycle_stage", "updated_at"])
        account.lifecycle_stage = new


def _touch(milestone: OnboardingMilestone) -> list[str]:
    milestone.last_changed_at = timezone.now()
    milestone.stalled_on = None
    return ["last_changed_at", "stalled_on"]


def _has_first_value(project: OnboardingProject) -> bool:
    return (
        OnboardingMilestone.objects.for_org(project.organization_id)
        .filter(project=project, mark=MilestoneMark.FIRST_VALUE)
        .exists()
    )


def _locked(milestone: OnboardingMilestone) -> tuple[OnboardingMilestone, OnboardingProject]:
    org_id = milestone.organization_id
    project = (
        OnboardingProject.objects.for_org(org_id)
        .select_for_update(of=("self",))
        .select_related("account", "template")
        .get(pk=milestone.project_id)
    )
    milestone = OnboardingMilestone.objects.for_org(org_id).select_for_update().get(pk=milestone.pk)
    milestone.project = project
    return milestone, project


def _reach_go_live(project: OnboardingProject, milestone: OnboardingMilestone, on: date) -> None:
    project.go_live_on = on
    if project.status == OnboardingStatus.ACTIVE:
        project.status = OnboardingStatus.LIVE
    payload = _event_payload(project, milestone)
    payload.update(
        go_live_on=on,
        target_go_live_on=project.target_go_live_on,
        days_to_go_live=_days(project.kickoff_on, on),
        on_time=None if project.target_go_live_on is None else on <= project.target_go_live_on,
    )
    record_event(
        project.organization_id, "onboarding.went_live", project.pk, payload, subject_type="onboarding_project"
    )
    _set_stage(project.account, STAGE_ONBOARDING, STAGE_ADOPTION)
    if not _has_first_value(project):
        _reach_first_value(project, milestone, on)


def _reach_first_value(project: OnboardingProject, milestone: OnboardingMilestone, on: date) -> None:
    project.first_value_on = on
    if project.go_live_on is not None:
        project.status = OnboardingStatus.COMPLETED
    payload = _event_payload(project, milestone)
    payload.update(
        first_value_on=on,
        target_first_value_on=project.target_first_value_on,
        days_to_first_value=_days(project.kickoff_on, on),
        go_live_on=project.go_live_on,
    )
    record_event(
        project.organization_id, "onboarding.first_value", project.pk, payload, subject_type="onboarding_project"
    )


PROJECT_CLOCK_FIELDS = ["kickoff_on", "go_live_on", "first_value_on", "status", "updated_at"]


def complete_milestone(milestone: OnboardingMilestone, *, by: Actor, on: date | None = None) -> OnboardingMilestone:
    """Complete a milestone on ``on`` (today by default); its mark moves the project's clock."""
    on = on or _today()
    if on > _today():
        raise ValidationError({"completed_on": ["A milestone cannot be completed in the future."]})
    with transaction.atomic():
        milestone, project = _locked(milestone)
        _check_project(by, project)
        if milestone.completed_on is not None:
            return milestone  # completing twice changes nothing (a double click, a retried request)
        milestone.completed_on = on
        milestone.save(update_fields=["completed_on", *_touch(milestone)])
        if milestone.mark == MilestoneMark.KICKOFF:
            _apply_kickoff(project, on)
        elif milestone.mark == MilestoneMark.GO_LIVE and project.go_live_on is None:
            _reach_go_live(project, milestone, on)
        elif milestone.mark == MilestoneMark.FIRST_VALUE and project.first_value_on is None:
            _reach_first_value(project, milestone, on)
        project.save(update_fields=PROJECT_CLOCK_FIELDS)
    return milestone


def reopen_milestone(milestone: OnboardingMilestone, *, by: Actor) -> OnboardingMilestone:
    """Reopen a completed milestone, undoing what its mark did: the kickoff day is cleared; go-live back
    means status ``active``, the account back to onboarding (if it is still in adoption) and, when go-live
    stood in for first value, first value cleared too; first value back means ``live`` (or ``active``)."""
    with transaction.atomic():
        milestone, project = _locked(milestone)
        _check_project(by, project)
        if milestone.completed_on is None:
            return milestone
        milestone.completed_on = None
        milestone.save(update_fields=["completed_on", *_touch(milestone)])
        if milestone.mark == MilestoneMark.KICKOFF:
            project.kickoff_on = None
        elif milestone.mark == MilestoneMark.GO_LIVE:
            project.go_live_on = None
            if not _has_first_value(project):
                project.first_value_on = None
            project.status = OnboardingStatus.ACTIVE
            _set_stage(project.account, STAGE_ADOPTION, STAGE_ONBOARDING)
        elif milestone.mark == MilestoneMark.FIRST_VALUE:
            project.first_value_on = None
            project.status = OnboardingStatus.LIVE if project.go_live_on else OnboardingStatus.ACTIVE
        project.save(update_fields=PROJECT_CLOCK_FIELDS)
    return milestone


def update_milestone(
    milestone: OnboardingMilestone,
    *,
    by: Actor,
    due_on: date | None | Any = UNSET,
    owner: Any = UNSET,
    notes: str | Any = UNSET,
    name: str | Any = UNSET,
) -> OnboardingMilestone:
    """Change a milestone's due date, owner, notes or name. A due date typed by a person is kept from then
    on (the kickoff no longer recomputes it). Any change moves ``last_changed_at`` and clears the stall."""
    with transaction.atomic():
        milestone, project = _locked(milestone)
        _check_project(by, project)
        fields: list[str] = []
        if due_on is not UNSET and due_on != milestone.due_on:
            milestone.due_on, milestone.due_offset_days = due_on, None
            fields += ["due_on", "due_offset_days"]
        if owner is not UNSET and (owner.pk if owner else None) != milestone.owner_id:
            milestone.owner = owner
            fields.append("owner")
        if notes is not UNSET and (notes or "") != milestone.notes:
            milestone.notes = notes or ""
            fields.append("notes")
        if name is not UNSET and name and name.strip() != milestone.name:
            milestone.name = name.strip()
            fields.append("name")
        if fields:
            milestone.save(update_fields=[*fields, *_touch(milestone)])
    return milestone


def add_milestone(
    project: OnboardingProject,
    *,
    by: Actor,
    key: str,
    name: str,
    phase: str = "",
    due_on: date | None = None,
    owner: Any = None,
    owner_role: str = MilestoneOwnerRole.CSM,
    notes: str = "",
) -> OnboardingMilestone:
    """Add a milestone of the project's own (no clock mark: the template's marks stay the only ones)."""
    _check_project(by, project)
    org_id = project.organization_id
    if not SLUG_RE.match(key or ""):
        raise ValidationError({"key": ["A key is a slug: lower-case letters, digits, - or _."]})
    milestones = OnboardingMilestone.objects.for_org(org_id).filter(project=project)
    if milestones.filter(key=key).exists():
        raise ValidationError({"key": ["This project already has a milestone with this key."]})
    last = milestones.order_by("-position").first()
    return OnboardingMilestone.objects.for_org(org_id).create(
        organization_id=org_id,
        project=project,
        phase=phase or (last.phase if last else "Onboarding"),
        position=(last.position + 1) if last else 1,
        key=key,
        name=name,
        owner_role=owner_role,
        owner=owner,
        due_on=due_on,
        due_offset_days=None,
        notes=notes or "",
    )


# --- Reading --------------------------------------------------------------------------------------------


def milestone_state(milestone: OnboardingMilestone, today: date | None = None) -> str:
    """``done``, ``stalled`` (raised by the stall detection), ``late`` (open past its due date) or ``open``."""
    today = today or _today()
    if milestone.completed_on is not None:
        return "done"
    if milestone.stalled_on is not None:
        return "stalled"
    if milestone.due_on is not None and milestone.due_on < today:
        return "late"
    return "open"


def projects_with_flags(organization: Organization | int, today: date | None = None) -> QuerySet:
    """Projects annotated with ``is_late`` (an open milestone past due, or no go-live past the target) and
    ``is_stalled`` (an open milestone the stall detection flagged): two ``EXISTS``, no per-row query."""
    today = today or _today()
    milestones = OnboardingMilestone.all_orgs.filter(project=OuterRef("pk"), completed_on__isnull=True)
    return (
        OnboardingProject.objects.for_org(organization)
        .annotate(
            late_milestone=Exists(milestones.filter(due_on__lt=today)),
            is_stalled=Exists(milestones.filter(stalled_on__isnull=False)),
        )
        .annotate(is_late=Q(late_milestone=True) | Q(go_live_on__isnull=True, target_go_live_on__lt=today))
    )


@dataclass(frozen=True)
class Clock:
    """The onboarding clock of one project, in days (``None`` where it has not started or stopped)."""

    days_since_kickoff: int | None
    days_to_go_live: int | None
    days_to_first_value: int | None
    go_live_target: date | None
    go_live_actual: date | None
    go_live_slip: int | None  # actual (or today while pending) minus target: > 0 late, ≤ 0 on time


def project_clock(project: OnboardingProject, today: date | None = None) -> Clock:
    """Days since the kickoff (until first value or today), days to go-live and first value, and the
    go-live target against the actual day (or today while it is pending and overdue)."""
    today = today or _today()
    kickoff = project.kickoff_on
    end = project.first_value_on or today
    slip = None
    if project.target_go_live_on is not None:
        if project.go_live_on is not None:
            slip = (project.go_live_on - project.target_go_live_on).days
        elif today > project.target_go_live_on:
            slip = (today - project.target_go_live_on).days
    return Clock(
        days_since_kickoff=_days(kickoff, end) if kickoff else None,
        days_to_go_live=_days(kickoff, project.go_live_on),
        days_to_first_value=_days(kickoff, project.first_value_on),
        go_live_target=project.target_go_live_on,
        go_live_actual=project.go_live_on,
        go_live_slip=slip,
    )
