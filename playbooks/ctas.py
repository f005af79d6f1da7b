"""The work queue's services (spec §5): open CTAs without duplicates, snooze, complete, close, auto-close,
tasks from templates, assignee resolution, priority, notifications, and who may change what.

Noise control, the product's promise:

* **Updated, not duplicated.** :func:`open_or_update_cta` folds a firing into the open CTA of the same
  (account, type, reason). The database enforces it (``playbooks_cta_one_open_per_reason``, a partial
  unique index): two workers firing at once both try to insert, one wins, the other gets an
  ``IntegrityError``, retries and updates the winner's CTA.
* **Snooze suppresses.** A firing on an open CTA snoozed until a day still ahead changes nothing but the
  log (``suppressed``, with the day it wakes).
* **Closes itself.** :func:`auto_close` closes the open CTAs opened for a condition (``condition_key``)
  once it clears, recorded as ``auto_closed`` with the reason.
* **Every firing and every suppression is logged** (:class:`~playbooks.models.CtaLog`).

Every function takes the organization (or an object of it) explicitly and works through
``Model.objects.for_org``; the callers (pages, API, later the playbook engine and its Celery tasks) are
already inside the organization's scope.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from accounts.choices import Role
from accounts.models import Account, Membership, Organization, Team
from accounts.services import Actor

from . import chat
from .choices import AssigneeRule, CtaLogAction, CtaOutcome, CtaPriority, CtaStatus, NotificationKind, SnoozeReason
from .models import AssignmentCursor, Cta, CtaLog, CtaReason, CtaTask, CtaType, Notification

__all__ = [
    "CREATED",
    "SUPPRESSED",
    "UPDATED",
    "CtaPermissionDenied",
    "HealthReading",
    "TaskTemplate",
    "auto_close",
    "auto_close_many",
    "can_write_cta",
    "can_write_task",
    "close",
    "complete",
    "complete_task",
    "mark_notifications_read",
    "notify",
    "open_or_update_cta",
    "open_or_update_many",
    "priority_for",
    "priority_from",
    "read_health",
    "reassign",
    "reopen_task",
    "resolve_assignee",
    "snooze",
    "unread_count",
]

User = get_user_model()

CREATED, UPDATED, SUPPRESSED = "created", "updated", "suppressed"

#: Longest snooze: beyond a year a CTA should be closed, not hidden.
MAX_SNOOZE_DAYS = 365


class CtaPermissionDenied(Exception):
    """The actor may not change this CTA or task (a page answers 403, the API 403)."""


# --- Priority (the formula is in docs/playbooks.md) ------------------------------------------------

#: ARR at or above this earns the full ARR part (spec §5's high-touch threshold).
ARR_FULL_POINTS = Decimal("500000")
#: Renewal urgency: 100 when due (or overdue), falling linearly to 0 at this many days.
RENEWAL_HORIZON_DAYS = 180
#: A health colour's floor on the risk part, so an override (red on a score of 80) still counts as risk.
COLOUR_RISK_FLOOR = {"red": Decimal(70), "yellow": Decimal(40), "green": Decimal(0)}
#: Risk of an account without any health reading: unknown counts as middling.
UNSCORED_RISK = Decimal(50)
WEIGHTS = {"arr": Decimal("0.40"), "health": Decimal("0.35"), "renewal": Decimal("0.25")}
HIGH_AT, MEDIUM_AT = Decimal(60), Decimal(30)


@dataclass(frozen=True)
class HealthReading:
    """An account's latest health as the work queue needs it: the score (0–100) and the effective colour."""

    score: Decimal | None
    color: str


def read_health(organization: Organization | int, account_ids: Iterable[int]) -> dict[int, HealthReading]:
    """The latest health of these accounts, by account id (accounts without a score are absent).

    The one place the work queue reads the health app, so a signal registry can replace it later.
    """
    from health.models import HealthScore

    rows = (
        HealthScore.objects.for_org(organization)
        .filter(account_id__in=list(account_ids))
        .values_list("account_id", "score", "color")
    )
    return {account_id: HealthReading(score, color or "") for account_id, score, color in rows}


def priority_from(
    *, arr: Decimal | None, health: HealthReading | None, days_to_renewal: int | None
) -> tuple[Decimal, str]:
    """``(score 0–100 to one decimal, "high" | "medium" | "low")`` from the three inputs.

    score = 0.40 × ARR part + 0.35 × health-risk part + 0.25 × renewal part, each 0–100:

    * ARR part = min(ARR / 500,000, 1) × 100;
    * health-risk part = max(100 − score, the colour's floor: red 70, yellow 40, green 0); 50 unscored;
    * renewal part = 100 × (180 − days) / 180 clamped to 0–100 (overdue counts as due); 0 without a renewal.

    high ≥ 60, medium ≥ 30, else low.
    """
    arr_part = min(max(arr or Decimal(0), Decimal(0)) / ARR_FULL_POINTS, Decimal(1)) * 100
    if health is None or (health.score is None and not health.color):
        risk_part = UNSCORED_RISK
    else:
        from_score = Decimal(100) - Decimal(health.score) if health.score is not None else Decimal(0)
        risk_part = max(from_score, COLOUR_RISK_FLOOR.get(health.color, Decimal(0)))
    if days_to_renewal is None:
        renewal_part = Decimal(0)
    else:
        renewal_part = Decimal(100) * (RENEWAL_HORIZON_DAYS - days_to_renewal) / RENEWAL_HORIZON_DAYS
        renewal_part = min(max(renewal_part, Decimal(0)), Decimal(100))
    raw = WEIGHTS["arr"] * arr_part + WEIGHTS["health"] * risk_part + WEIGHTS["renewal"] * renewal_part
    score = raw.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    if score >= HIGH_AT:
        return score, CtaPriority.HIGH
    if score >= MEDIUM_AT:
        return score, CtaPriority.MEDIUM
    return score, CtaPriority.LOW


def priority_for(account: Account, *, today: dt.date | None = None) -> tuple[Decimal, str]:
    """The priority of work on ``account`` now: its ARR, its latest health and the days to its next renewal."""
    today = today or timezone.localdate()
    health = read_health(account.organization_id, [account.pk]).get(account.pk)
    days = (account.next_renewal_date - today).days if account.next_renewal_date else None
    return priority_from(arr=account.arr, health=health, days_to_renewal=days)


# --- Assignees --------------------------------------------------------------------------------------


def _active_member_ids(organization_id: int, user_ids: Iterable[int | None]) -> set[int]:
    """Of these users, those who are members with a role that can work (never a viewer)."""
    ids = {u for u in user_ids if u is not None}
    if not ids:
        return set()
    return set(
        Membership.objects.for_org(organization_id)
        .filter(user_id__in=ids)
        .exclude(role=Role.VIEWER)
        .values_list("user_id", flat=True)
    )


def _round_robin(organization_id: int, team: Team) -> Any:
    """The next member of ``team`` after the stored cursor (ascending user id, wrapping); moves the cursor.

    The cursor row is locked, so two concurrent assignments never give the same turn twice.
    """
    members = list(
        Membership.objects.for_org(organization_id)
        .filter(team=team)
        .exclude(role=Role.VIEWER)
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )
    if not members:
        return None
    with transaction.atomic():
        AssignmentCursor.all_orgs.get_or_create(organization_id=organization_id, team=team)
        cursor = AssignmentCursor.objects.for_org(organization_id).select_for_update().get(team=team)
        following = [m for m in members if cursor.last_user_id is None or m > cursor.last_user_id]
        chosen = following[0] if following else members[0]
        cursor.last_user_id = chosen
        cursor.save(update_fields=["last_user_id", "updated_at"])
    return User.objects.get(pk=chosen)


def resolve_assignee(account: Account, rule: str, *, team: Team | None = None) -> Any:
    """Who gets work on ``account`` under ``rule`` (an :class:`~playbooks.choices.AssigneeRule`).

    ``owner``: the account's owner if they still work in the organization; ``manager``: the manager of the
    owner's team (else the owner); ``round_robin``: the next member of ``team``. ``None`` when nobody fits:
    the work stays unassigned rather than going to someone arbitrary.
    """
    org_id = account.organization_id
    if rule == AssigneeRule.ROUND_ROBIN:
        if team is None or team.organization_id != org_id:
            raise ValidationError({"team": "Round-robin needs a team of this organization."})
        return _round_robin(org_id, team)
    owner_id = account.owner_id if account.owner_id in _active_member_ids(org_id, [account.owner_id]) else None
    if rule == AssigneeRule.MANAGER and owner_id is not None:
        manager_id = (
            Membership.objects.for_org(org_id)
            .filter(user_id=owner_id)
            .values_list("team__manager_id", flat=True)
            .first()
        )
        if manager_id in _active_member_ids(org_id, [manager_id]):
            return User.objects.get(pk=manager_id)
    elif rule not in AssigneeRule.values:
        raise ValidationError({"assignee": f"Unknown assignee rule {rule!r}."})
    return User.objects.get(pk=owner_id) if owner_id is not None else None


@dataclass(frozen=True)
class TaskTemplate:
    """A task to create with a new CTA: due ``due_in_days`` after the CTA opens; assigned by ``assignee``
    (an :class:`~playbooks.choices.AssigneeRule`; ``None`` gives it to the CTA's owner)."""

    title: str
    due_in_days: int | None = None
    assignee: str | None = None


# --- Opening: updated, not duplicated -----------------------------------------------------------


def _log(cta: Cta | None, account: Account, action: str, reason: str = "", *, by: Any = None, **extra: Any) -> CtaLog:
    """One audit row; ``extra`` keys other than ``source``, ``source_ref`` and ``at`` go to ``details``."""
    source = extra.pop("source", cta.source if cta else "")
    source_ref = extra.pop("source_ref", cta.source_ref if cta else "")
    at = extra.pop("at", None) or timezone.now()
    return CtaLog.all_orgs.create(
        organization_id=account.organization_id, cta=cta, account=account, action=action, reason=reason,
        source=source, source_ref=source_ref, actor=by, details=extra, at=at,
    )  # fmt: skip


def cta_url(cta: Cta, *, slug: str | None = None) -> str:
    """Where a CTA is worked: its card in the work queue (``slug``: the organization's, when known)."""
    if slug is None:
        slug = Organization.objects.filter(pk=cta.organization_id).values_list("slug", flat=True).get()
    return reverse("work", args=[slug]) + f"?status=all&cta={cta.pk}#cta-{cta.pk}"


class InactiveCta(ValidationError):
    """The CTA type or reason is deactivated: no CTA of it is opened (a playbook records ``skipped``)."""


def _check_active(cta_type: CtaType, cta_reason: CtaReason) -> None:
    if not cta_type.is_active:
        raise InactiveCta("CTA type inactive")
    if not cta_reason.is_active:
        raise InactiveCta("CTA reason inactive")


def open_or_update_cta(
    *,
    account: Account,
    type: CtaType | str,
    reason: CtaReason | str,
    title: str = "",
    description: str = "",
    owner: Any = None,
    assignee_rule: str = AssigneeRule.OWNER,
    team: Team | None = None,
    priority: str | None = None,
    due_in_days: int | None = None,
    tasks: Sequence[TaskTemplate] = (),
    source: str = "manual",
    source_ref: str = "",
    condition_key: str = "",
    by: Any = None,
    now: dt.datetime | None = None,
) -> tuple[Cta, str]:
    """Open a CTA on ``account``, or fold this firing into the open one of the same (type, reason).

    Returns ``(cta, "created" | "updated" | "suppressed")``:

    * **created**: no open CTA of that (account, type, reason): one is opened with its tasks (due dates are
      offsets from today), an owner (``owner``, else ``assignee_rule``), a priority (``priority``, else
      :func:`priority_for`), and its owner is notified (unless they opened it themselves);
    * **updated**: an open one exists and is not snoozed: its ``fire_count``, ``last_fired_at`` and
      computed priority are refreshed (title, owner and tasks are left as the CSM may have changed them);
      an expired snooze is cleared;
    * **suppressed**: the open one is snoozed until a day still ahead: nothing changes but the log.

    Safe under concurrency (see the module docstring): a lost race on the unique index is retried once
    and becomes an update. ``by`` is the user who fired it (``None`` for automation).
    """
    now = now or timezone.now()
    org_id = account.organization_id
    cta_type = type if isinstance(type, CtaType) else CtaType.objects.for_org(org_id).get(key=type)
    cta_reason = (
        reason if isinstance(reason, CtaReason) else CtaReason.objects.for_org(org_id).get(type=cta_type, key=reason)
    )
    if cta_type.organization_id != org_id or cta_reason.organization_id != org_id:
        raise ValidationError("The CTA type and reason must belong to the account's organization.")
    _check_active(cta_type, cta_reason)
    if cta_reason.type_id != cta_type.pk:
        raise ValidationError({"reason": f"“{cta_reason.label}” is not a reason of the type “{cta_type.label}”."})
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                return _open_or_update(
                    account, cta_type, cta_reason, now=now, title=title, description=description, owner=owner,
                    assignee_rule=assignee_rule, team=team, priority=priority, due_in_days=due_in_days,
                    tasks=tasks, source=source, source_ref=source_ref, condition_key=condition_key, by=by,
                )  # fmt: skip
        except IntegrityError:
            # Another transaction opened the same CTA between our look and our insert: it is there now.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _open_or_update(
    account: Account, cta_type: CtaType, cta_reason: CtaReason, *, now: dt.datetime, by: Any, **spec: Any
) -> tuple[Cta, str]:
    org_id = account.organization_id
    today = timezone.localdate(now)
    existing = (
        Cta.objects.for_org(org_id)
        .select_for_update()
        .filter(account=account, type=cta_type, reason=cta_reason, status=CtaStatus.OPEN)
        .first()
    )
    source, source_ref = spec["source"], spec["source_ref"]
    if existing is not None:
        if existing.is_snoozed(today):
            _log(existing, account, CtaLogAction.SUPPRESSED,
                 f"Snoozed until {existing.snoozed_until.isoformat()} ({existing.get_snooze_reason_display()}).",
                 by=by, source=source, source_ref=source_ref, at=now)  # fmt: skip
            return existing, SUPPRESSED
        fields = ["fire_count", "last_fired_at", "updated_at"]
        if existing.snoozed_until is not None:
            _log(
                existing,
                account,
                CtaLogAction.WOKEN,
                f"The snooze ended on {existing.snoozed_until.isoformat()}.",
                at=now,
            )
            existing.snoozed_until, existing.snooze_reason = None, ""
            fields += ["snoozed_until", "snooze_reason"]
        existing.fire_count += 1
        existing.last_fired_at = now
        if spec["priority"] is None:
            existing.priority_score, existing.priority = priority_for(account, today=today)
            fields += ["priority_score", "priority"]
        if spec["condition_key"] and not existing.condition_key:
            existing.condition_key = spec["condition_key"]
            fields.append("condition_key")
        existing.save(update_fields=fields)
        _log(existing, account, CtaLogAction.UPDATED, "Already open for this account, type and reason.",
             by=by, source=source, source_ref=source_ref, at=now, fire_count=existing.fire_count)  # fmt: skip
        return existing, UPDATED

    owner = spec["owner"] or resolve_assignee(account, spec["assignee_rule"], team=spec["team"])
    score, computed = priority_for(account, today=today)
    due_in = spec["due_in_days"]
    with transaction.atomic():  # a savepoint: a lost race leaves the outer transaction usable
        cta = Cta.all_orgs.create(
            organization_id=org_id, account=account, type=cta_type, reason=cta_reason,
            title=(spec["title"] or f"{cta_reason.label}: {account.name}")[:200], description=spec["description"],
            priority=spec["priority"] or computed, priority_score=score, owner=owner,
            due_date=today + dt.timedelta(days=due_in) if due_in is not None else None,
            source=source, source_ref=source_ref, condition_key=spec["condition_key"], opened_at=now, last_fired_at=now,
        )  # fmt: skip
    tasks = [
        CtaTask(
            organization_id=org_id,
            cta=cta,
            title=t.title[:200],
            position=i,
            due_date=today + dt.timedelta(days=t.due_in_days) if t.due_in_days is not None else None,
            assignee=resolve_assignee(account, t.assignee, team=spec["team"]) if t.assignee else owner,
        )  # fmt: skip
        for i, t in enumerate(spec["tasks"])
    ]
    CtaTask.all_orgs.bulk_create(tasks)
    _log(cta, account, CtaLogAction.OPENED, f"Opened by {source}.", by=by, at=now,
         owner=owner.pk if owner else None, priority=cta.priority, priority_score=str(score))  # fmt: skip
    if owner is not None and owner != by:
        notify(
            owner,
            organization=org_id,
            message=f"New {cta_type.label.lower()} CTA on {account.name}: {cta.title}",
            cta=cta,
            kind=NotificationKind.CTA_OPENED,
        )
    for task in tasks:
        if task.assignee is not None and task.assignee != owner and task.assignee != by:
            notify(task.assignee, organization=org_id, message=f"Task for you on {account.name}: {task.title}", cta=cta,
                   kind=NotificationKind.TASK_ASSIGNED)  # fmt: skip
    return cta, CREATED


def _resolve_many(organization_id: int, accounts: Sequence[Account], rule: str) -> dict[int, int | None]:
    """:func:`resolve_assignee` for many accounts at once (``owner`` and ``manager`` rules only), as user ids by
    account id: two queries whatever the number of accounts."""
    if rule not in (AssigneeRule.OWNER, AssigneeRule.MANAGER):
        raise ValueError(f"set-based assignment does not support {rule!r}")
    owners = _active_member_ids(organization_id, [a.owner_id for a in accounts])
    managers: dict[int, int | None] = {}
    if rule == AssigneeRule.MANAGER and owners:
        rows = (
            Membership.objects.for_org(organization_id)
            .filter(user_id__in=owners)
            .order_by("pk")
            .values_list("user_id", "team__manager_id")
        )
        for user_id, manager_id in rows:
            managers.setdefault(user_id, manager_id)
        working = _active_member_ids(organization_id, managers.values())
        managers = {u: m for u, m in managers.items() if m in working}
    out = {}
    for account in accounts:
        owner_id = account.owner_id if account.owner_id in owners else None
        out[account.pk] = managers.get(owner_id, owner_id) if owner_id is not None else None
    return out


def open_or_update_many(
    *,
    organization_id: int,
    accounts: Sequence[Account],
    type: str,
    reason: str,
    title: str = "",
    description: str = "",
    assignee_rule: str = AssigneeRule.OWNER,
    priority: str | None = None,
    due_in_days: int | None = None,
    tasks: Sequence[TaskTemplate] = (),
    source: str = "manual",
    source_ref: str = "",
    condition_key: str = "",
    now: dt.datetime | None = None,
) -> dict[int, tuple[Cta, str]]:
    """:func:`open_or_update_cta` (by automation: ``by=None``) for many accounts at once, each at most once:
    the same CTAs, tasks, log rows and notifications, with the same outcome per account (``created``,
    ``updated`` or ``suppressed`` by a snooze), in a fixed number of queries whatever the number of accounts
    (the open CTAs of the (type, reason) read in one query, bulk inserts and one bulk update).

    Assignee rules ``owner`` and ``manager`` only (round-robin turns a cursor per CTA: use
    :func:`open_or_update_cta`). Call it inside a transaction: a concurrent opening of one of these CTAs
    raises ``IntegrityError`` (the partial unique index), and the caller then takes the one-by-one path,
    which resolves the race."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    org_id = organization_id
    if len({a.pk for a in accounts}) != len(accounts):
        raise ValueError("open_or_update_many takes each account once")
    rules = {assignee_rule, *(t.assignee for t in tasks if t.assignee)}
    if AssigneeRule.ROUND_ROBIN in rules or not rules <= set(AssigneeRule.values):
        raise ValueError(f"set-based opening does not support the assignee rules {sorted(rules)}")
    cta_type = CtaType.objects.for_org(org_id).get(key=type)
    cta_reason = CtaReason.objects.for_org(org_id).get(type=cta_type, key=reason)
    _check_active(cta_type, cta_reason)
    ids = [a.pk for a in accounts]
    existing = {
        cta.account_id: cta
        for cta in Cta.objects.for_org(org_id)
        .select_for_update()
        .filter(account_id__in=ids, type=cta_type, reason=cta_reason, status=CtaStatus.OPEN)
        .order_by("pk")  # locks taken in one order: two evaluations at once wait, they do not deadlock
    }
    health = read_health(org_id, ids)

    def priority_of(account: Account) -> tuple[Decimal, str]:
        days = (account.next_renewal_date - today).days if account.next_renewal_date else None
        return priority_from(arr=account.arr, health=health.get(account.pk), days_to_renewal=days)

    out: dict[int, tuple[Cta, str]] = {}
    logs: list[CtaLog] = []

    def log(cta: Cta, account: Account, action: str, text: str, **details: Any) -> None:
        logs.append(CtaLog(organization_id=org_id, cta=cta, account=account, action=action, reason=text,
                           source=source, source_ref=source_ref, details=details, at=now))  # fmt: skip

    updated, fields = [], {"fire_count", "last_fired_at", "updated_at"}
    for account in accounts:
        cta = existing.get(account.pk)
        if cta is None:
            continue
        if cta.is_snoozed(today):
            log(cta, account, CtaLogAction.SUPPRESSED,
                f"Snoozed until {cta.snoozed_until.isoformat()} ({cta.get_snooze_reason_display()}).")  # fmt: skip
            out[account.pk] = (cta, SUPPRESSED)
            continue
        if cta.snoozed_until is not None:
            logs.append(CtaLog(organization_id=org_id, cta=cta, account=account, action=CtaLogAction.WOKEN,
                               reason=f"The snooze ended on {cta.snoozed_until.isoformat()}.", source=cta.source,
                               source_ref=cta.source_ref, details={}, at=now))  # fmt: skip
            cta.snoozed_until, cta.snooze_reason = None, ""
            fields |= {"snoozed_until", "snooze_reason"}
        cta.fire_count += 1
        cta.last_fired_at = now
        cta.updated_at = timezone.now()
        if priority is None:
            cta.priority_score, cta.priority = priority_of(account)
            fields |= {"priority_score", "priority"}
        if condition_key and not cta.condition_key:
            cta.condition_key = condition_key
            fields.add("condition_key")
        updated.append(cta)
        log(cta, account, CtaLogAction.UPDATED, "Already open for this account, type and reason.",
            fire_count=cta.fire_count)  # fmt: skip
        out[account.pk] = (cta, UPDATED)
    if updated:
        Cta.all_orgs.bulk_update(updated, sorted(fields), batch_size=1000)

    new = [a for a in accounts if a.pk not in existing]
    owners = _resolve_many(org_id, new, assignee_rule) if new else {}
    task_rules = {t.assignee for t in tasks if t.assignee}
    by_rule = {rule: _resolve_many(org_id, new, rule) for rule in task_rules} if new else {}
    created = []
    for account in new:
        score, computed = priority_of(account)
        created.append(Cta(
            organization_id=org_id, account=account, type=cta_type, reason=cta_reason,
            title=(title or f"{cta_reason.label}: {account.name}")[:200], description=description,
            priority=priority or computed, priority_score=score, owner_id=owners[account.pk],
            due_date=today + dt.timedelta(days=due_in_days) if due_in_days is not None else None,
            source=source, source_ref=source_ref, condition_key=condition_key, opened_at=now, last_fired_at=now,
        ))  # fmt: skip
    Cta.all_orgs.bulk_create(created, batch_size=1000)
    new_tasks, notifications = [], []
    slug = Organization.objects.filter(pk=org_id).values_list("slug", flat=True).get() if created else ""
    verb = cta_type.label.lower()
    for account, cta in zip(new, created, strict=True):
        out[account.pk] = (cta, CREATED)
        log(cta, account, CtaLogAction.OPENED, f"Opened by {source}.", owner=cta.owner_id, priority=cta.priority,
            priority_score=str(cta.priority_score))  # fmt: skip
        url = cta_url(cta, slug=slug)
        if cta.owner_id is not None:
            message = f"New {verb} CTA on {account.name}: {cta.title}"
            notifications.append(Notification(organization_id=org_id, user_id=cta.owner_id, cta=cta, url=url,
                                              message=message[:300], kind=NotificationKind.CTA_OPENED))  # fmt: skip
        for i, t in enumerate(tasks):
            assignee = by_rule[t.assignee][account.pk] if t.assignee else cta.owner_id
            new_tasks.append(CtaTask(
                organization_id=org_id, cta=cta, title=t.title[:200], position=i, assignee_id=assignee,
                due_date=today + dt.timedelta(days=t.due_in_days) if t.due_in_days is not None else None,
            ))  # fmt: skip
            if assignee is not None and assignee != cta.owner_id:
                message = f"Task for you on {account.name}: {t.title[:200]}"
                notifications.append(Notification(organization_id=org_id, user_id=assignee, cta=cta, url=url,
                                                  message=message[:300],
                                                  kind=NotificationKind.TASK_ASSIGNED))  # fmt: skip
    CtaTask.all_orgs.bulk_create(new_tasks, batch_size=2000)
    CtaLog.all_orgs.bulk_create(logs, batch_size=2000)
    Notification.all_orgs.bulk_create(notifications, batch_size=2000)
    chat.queue_notifications(org_id, [n.pk for n in notifications])
    return out


# --- Changing a CTA -----------------------------------------------------------------------------


def can_write_cta(actor: Actor, cta: Cta) -> bool:
    """Admins: every CTA; leaders: CTAs owned in their teams or on accounts they may write; CSMs: their own
    CTAs and those on their accounts; viewers and user-less keys of other roles: nothing."""
    if cta.organization_id != actor.organization.pk or not actor.can_write_anything:
        return False
    if actor.is_admin:
        return True
    if actor.user is None:
        return False
    if actor.role == Role.LEADER and cta.owner_id is not None and cta.owner_id in actor.team_user_ids():
        return True
    return cta.owner_id == actor.user.pk or actor.can_write_account(cta.account)


def can_write_task(actor: Actor, task: CtaTask) -> bool:
    """Whoever may change the CTA, and the task's assignee (spec §1: "tasks assigned to them")."""
    if task.organization_id != actor.organization.pk or not actor.can_write_anything:
        return False
    if actor.user is not None and task.assignee_id == actor.user.pk:
        return True
    return can_write_cta(actor, task.cta)


def _locked(cta: Cta, actor: Actor | None) -> Cta:
    if actor is not None and not can_write_cta(actor, cta):
        raise CtaPermissionDenied("You may not change this CTA.")
    return Cta.objects.for_org(cta.organization_id).select_for_update().select_related("account").get(pk=cta.pk)


def _require_open(cta: Cta) -> None:
    if not cta.is_open:
        raise ValidationError(f"This CTA is already {cta.get_status_display().lower()}.")


@transaction.atomic
def snooze(cta: Cta, *, until: dt.date, reason: str, note: str = "", by: Actor | None = None) -> Cta:
    """Hide an open CTA from the queue until ``until`` and suppress re-firing until then.

    ``until`` must be after today and at most a year ahead; ``reason`` is a
    :class:`~playbooks.choices.SnoozeReason`. ``by=None`` is the system (no permission check).
    """
    cta = _locked(cta, by)
    _require_open(cta)
    today = timezone.localdate()
    if until <= today:
        raise ValidationError({"until": "Snooze until a day after today."})
    if until > today + dt.timedelta(days=MAX_SNOOZE_DAYS):
        raise ValidationError({"until": f"Snooze for at most {MAX_SNOOZE_DAYS} days; close the CTA instead."})
    if reason not in SnoozeReason.values:
        raise ValidationError({"reason": f"Choose a snooze reason: {', '.join(SnoozeReason.values)}."})
    cta.snoozed_until, cta.snooze_reason = until, reason
    cta.save(update_fields=["snoozed_until", "snooze_reason", "updated_at"])
    _log(cta, cta.account, CtaLogAction.SNOOZED, note or SnoozeReason(reason).label,
         by=_user(by), until=until.isoformat(), snooze_reason=reason)  # fmt: skip
    return cta


def _user(actor: Actor | None) -> Any:
    return actor.user if actor is not None else None


def _finish(cta: Cta, status: str, action: str, reason: str, *, by: Actor | None, outcome: str = "") -> Cta:
    cta.status, cta.closed_at, cta.closed_by = status, timezone.now(), _user(by)
    cta.outcome, cta.close_reason = outcome, reason
    cta.save(update_fields=["status", "closed_at", "closed_by", "outcome", "close_reason", "updated_at"])
    _log(cta, cta.account, action, reason, by=_user(by), outcome=outcome)
    return cta


@transaction.atomic
def complete(cta: Cta, *, outcome: str, note: str = "", by: Actor | None = None) -> Cta:
    """Mark an open CTA done with an :class:`~playbooks.choices.CtaOutcome` (and an optional note)."""
    cta = _locked(cta, by)
    _require_open(cta)
    if outcome not in CtaOutcome.values:
        raise ValidationError({"outcome": f"Choose an outcome: {', '.join(CtaOutcome.values)}."})
    return _finish(cta, CtaStatus.COMPLETED, CtaLogAction.COMPLETED, note, by=by, outcome=outcome)


@transaction.atomic
def close(cta: Cta, *, reason: str, by: Actor | None = None) -> Cta:
    """Close an open CTA without completing it (no longer relevant, duplicate of other work); ``reason`` is required."""
    cta = _locked(cta, by)
    _require_open(cta)
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say why the CTA is closed."})
    return _finish(cta, CtaStatus.CLOSED, CtaLogAction.CLOSED, reason.strip(), by=by)


def auto_close(
    organization: Organization | int, *, condition_key: str, reason: str, account: Account | int | None = None
) -> list[Cta]:
    """Close every open CTA opened for ``condition_key`` (of one account, or all) because the condition
    cleared: status ``auto_closed`` with ``reason``, snoozed ones included. Returns the closed CTAs."""
    if not condition_key:
        raise ValueError("auto_close needs a condition_key")
    closed = []
    with transaction.atomic():
        queryset = Cta.objects.for_org(organization).filter(condition_key=condition_key, status=CtaStatus.OPEN)
        if account is not None:
            queryset = queryset.filter(account_id=account if isinstance(account, int) else account.pk)
        for cta in queryset.select_for_update().select_related("account").order_by("pk"):
            closed.append(_finish(cta, CtaStatus.AUTO_CLOSED, CtaLogAction.AUTO_CLOSED, reason, by=None))
    return closed


def auto_close_many(
    organization: Organization | int, *, condition_key: str, reason: str, account_ids: Iterable[int]
) -> int:
    """:func:`auto_close` for the open CTAs of ``condition_key`` on many accounts at once: one locking read,
    one bulk update, one bulk insert of their log rows. Returns how many closed."""
    if not condition_key:
        raise ValueError("auto_close_many needs a condition_key")
    org_id = organization if isinstance(organization, int) else organization.pk
    with transaction.atomic():
        closing = list(
            Cta.objects.for_org(org_id)
            .filter(condition_key=condition_key, status=CtaStatus.OPEN, account_id__in=list(account_ids))
            .select_for_update()
            .order_by("pk")
        )
        if not closing:
            return 0
        now = timezone.now()
        for cta in closing:
            cta.status, cta.closed_at, cta.closed_by = CtaStatus.AUTO_CLOSED, now, None
            cta.outcome, cta.close_reason, cta.updated_at = "", reason, now
        Cta.all_orgs.bulk_update(
            closing, ["status", "closed_at", "closed_by", "outcome", "close_reason", "updated_at"], batch_size=1000
        )
        CtaLog.all_orgs.bulk_create(
            [
                CtaLog(
                    organization_id=org_id,
                    cta=cta,
                    account_id=cta.account_id,
                    action=CtaLogAction.AUTO_CLOSED,
                    reason=reason,
                    source=cta.source,
                    source_ref=cta.source_ref,
                    details={"outcome": ""},
                    at=now,
                )
                for cta in closing
            ],  # fmt: skip
            batch_size=2000,
        )
    return len(closing)


@transaction.atomic
def reassign(cta: Cta, *, owner: Any, by: Actor | None = None) -> Cta:
    """Give an open CTA (and its tasks that were the old owner's) to ``owner``, and notify them.

    A CSM may only take work themselves, a leader hands it within their teams, an admin to anyone who
    works in the organization (never a viewer).
    """
    cta = _locked(cta, by)
    _require_open(cta)
    if owner is not None and owner.pk not in _active_member_ids(cta.organization_id, [owner.pk]):
        raise ValidationError({"owner": "Assign to a member who works in this organization (not a viewer)."})
    if by is not None and not by.can_assign_owner(owner.pk if owner else None):
        raise CtaPermissionDenied("You may not give this CTA to that person.")
    previous = cta.owner_id
    if previous == (owner.pk if owner else None):
        return cta
    cta.owner = owner
    cta.save(update_fields=["owner", "updated_at"])
    CtaTask.objects.for_org(cta.organization_id).filter(cta=cta, assignee_id=previous, done_at__isnull=True).update(
        assignee=owner
    )
    _log(
        cta,
        cta.account,
        CtaLogAction.REASSIGNED,
        "",
        by=_user(by),
        previous=previous,
        owner=owner.pk if owner else None,
    )
    if owner is not None and owner != _user(by):
        notify(
            owner,
            organization=cta.organization_id,
            message=f"CTA assigned to you on {cta.account.name}: {cta.title}",
            cta=cta,
            kind=NotificationKind.CTA_ASSIGNED,
        )
    return cta


def _locked_task(task: CtaTask, actor: Actor | None) -> CtaTask:
    if actor is not None and not can_write_task(actor, task):
        raise CtaPermissionDenied("You may not change this task.")
    return (
        CtaTask.objects.for_org(task.organization_id).select_for_update().select_related("cta__account").get(pk=task.pk)
    )


@transaction.atomic
def complete_task(task: CtaTask, *, by: Actor | None = None) -> CtaTask:
    """Mark a task done (idempotent: a done task keeps its first completion)."""
    task = _locked_task(task, by)
    if task.done_at is None:
        task.done_at, task.done_by = timezone.now(), _user(by)
        task.save(update_fields=["done_at", "done_by"])
        _log(task.cta, task.cta.account, CtaLogAction.TASK_DONE, task.title, by=_user(by), task=task.pk)
    return task


@transaction.atomic
def reopen_task(task: CtaTask, *, by: Actor | None = None) -> CtaTask:
    """Undo a task's completion."""
    task = _locked_task(task, by)
    if task.done_at is not None:
        task.done_at, task.done_by = None, None
        task.save(update_fields=["done_at", "done_by"])
        _log(task.cta, task.cta.account, CtaLogAction.TASK_REOPENED, task.title, by=_user(by), task=task.pk)
    return task


# --- Notifications ------------------------------------------------------------------------------


def notify(
    user: Any,
    *,
    organization: Organization | int,
    message: str,
    url: str = "",
    cta: Cta | None = None,
    kind: str = NotificationKind.OTHER,
) -> Notification:
    """An in-app notification for ``user`` in the organization (linked to the CTA's card when given). After the
    commit, the chat channels subscribed to ``kind`` get it too (:func:`playbooks.chat.queue_notifications`)."""
    org_id = organization if isinstance(organization, int) else organization.pk
    notification = Notification.all_orgs.create(
        organization_id=org_id, user=user, message=message[:300], url=url or (cta_url(cta) if cta else ""), cta=cta,
        kind=kind,
    )  # fmt: skip
    chat.queue_notifications(org_id, [notification.pk])
    return notification


def unread_count(organization: Organization | int, user: Any) -> int:
    """How many of ``user``'s notifications in the organization are unread (one indexed COUNT)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return 0
    return Notification.objects.for_org(organization).filter(user=user, read_at__isnull=True).count()


def mark_notifications_read(organization: Organization | int, user: Any, ids: Iterable[int] | None = None) -> int:
    """Mark ``user``'s unread notifications read (only those ``ids`` when given); returns how many changed.
    Another member's notification ids match nothing."""
    queryset: QuerySet = Notification.objects.for_org(organization).filter(user=user, read_at__isnull=True)
    if ids is not None:
        queryset = queryset.filter(pk__in=list(ids))
    return queryset.update(read_at=timezone.now())
