"""The work queue (cockpit, spec §7.5) and the notifications page, under ``/o/<slug>/work/``.

Who sees what: a CSM their own CTAs and the tasks given to them; a leader their teams' (``Team.manager``);
an admin and a viewer everyone's, the viewer without any form. Every change goes through
:mod:`playbooks.ctas`, whose permission checks are the same as the API's.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import F, Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts.choices import Role
from accounts.models import Membership
from cs_platform.pages import org_page

from . import ctas, digest
from .choices import CtaOutcome, CtaPriority, CtaStatus, SnoozeReason
from .filtersets import due_window
from .models import Cta, CtaTask, CtaType, Notification

PAGE_SIZE = 50
STATUS_CHOICES = [
    ("open", "Open"),
    ("snoozed", "Snoozed"),
    ("completed", "Completed"),
    ("closed", "Closed"),
    ("auto_closed", "Closed automatically"),
    ("all", "All"),
]
DUE_CHOICES = [
    ("overdue", "Overdue"),
    ("today", "Today"),
    ("week", "Next 7 days"),
    ("later", "Later"),
    ("none", "No date"),
]


def _scope_user_ids(request: HttpRequest) -> set[int] | None:
    """Whose work the page shows: ``None`` for everyone (admins, viewers), else a set of user ids."""
    actor = request.actor  # type: ignore[attr-defined]
    if actor.role in (Role.ADMIN, Role.VIEWER):
        return None
    if actor.role == Role.LEADER:
        return actor.team_user_ids()
    return {request.user.pk}


def _owner_choices(request: HttpRequest, scope: set[int] | None) -> list[Membership]:
    """Members whose work can be filtered on (and given work, in the bulk form): never viewers."""
    members = Membership.objects.filter(~Q(role=Role.VIEWER)).select_related("user").order_by("user__first_name")
    return list(members if scope is None else members.filter(user_id__in=scope))


def _filtered(request: HttpRequest, scope: set[int] | None, today: dt.date) -> tuple[QuerySet, dict[str, str]]:
    params = {k: request.GET.get(k, "").strip() for k in ("status", "type", "priority", "owner", "due", "cta")}
    params["status"] = params["status"] or "open"
    queryset = Cta.objects.select_related("account", "type", "reason", "owner").prefetch_related(
        Prefetch("tasks", queryset=CtaTask.objects.select_related("assignee").order_by("position", "pk"))
    )
    if scope is not None:
        queryset = queryset.filter(owner_id__in=scope)
    if params["cta"].isdigit():
        return queryset.filter(pk=int(params["cta"])), {**params, "status": "all"}
    status = params["status"]
    if status == "open":
        queryset = queryset.filter(status=CtaStatus.OPEN).exclude(snoozed_until__gt=today)
    elif status == "snoozed":
        queryset = queryset.filter(status=CtaStatus.OPEN, snoozed_until__gt=today)
    elif status in CtaStatus.values:
        queryset = queryset.filter(status=status)
    else:
        params["status"] = "all"
    if params["type"]:
        queryset = queryset.filter(type__key=params["type"])
    if params["priority"] in CtaPriority.values:
        queryset = queryset.filter(priority=params["priority"])
    if params["owner"] == "me":
        queryset = queryset.filter(owner=request.user)
    elif params["owner"].isdigit():
        queryset = queryset.filter(owner_id=int(params["owner"]))
    if params["due"]:
        queryset = queryset.filter(**due_window(params["due"], today))
    # Most urgent first: by due date (none last), then the priority score.
    ordered = queryset.order_by(F("due_date").asc(nulls_last=True), "-priority_score", "pk")
    return ordered, params


@org_page()
@require_GET
def work_queue(request: HttpRequest) -> HttpResponse:
    """The cockpit: CTAs by due date and priority with their tasks, filters, snooze, complete, bulk actions;
    and the open tasks given to the people in scope."""
    today = timezone.localdate()
    actor = request.actor  # type: ignore[attr-defined]
    scope = _scope_user_ids(request)
    queryset, params = _filtered(request, scope, today)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    cards = [{"cta": cta, "can_write": cta.is_open and ctas.can_write_cta(actor, cta)} for cta in page.object_list]
    tasks = CtaTask.objects.filter(cta__status=CtaStatus.OPEN, done_at__isnull=True).exclude(
        cta__snoozed_until__gt=today
    )
    tasks = tasks.filter(assignee_id__in=scope) if scope is not None else tasks
    tasks = list(
        tasks.select_related("cta__account", "assignee").order_by(F("due_date").asc(nulls_last=True), "pk")[:PAGE_SIZE]
    )
    open_ctas = Cta.objects.filter(status=CtaStatus.OPEN)
    open_ctas = open_ctas.filter(owner_id__in=scope) if scope is not None else open_ctas
    summary = {
        "open": open_ctas.exclude(snoozed_until__gt=today).count(),
        "overdue": open_ctas.exclude(snoozed_until__gt=today).filter(due_date__lt=today).count(),
        "snoozed": open_ctas.filter(snoozed_until__gt=today).count(),
    }
    can_act = actor.can_write_anything and actor.user is not None
    context = {
        "cards": cards,
        "page": page,
        "tasks": tasks,
        "summary": summary,
        "filters": params,
        "any_filter": any(params[k] for k in ("type", "priority", "owner", "due", "cta")) or params["status"] != "open",
        "statuses": STATUS_CHOICES,
        "types": CtaType.objects.filter(is_active=True),
        "priorities": CtaPriority.choices,
        "dues": DUE_CHOICES,
        "owners": _owner_choices(request, scope) if actor.role != Role.CSM else [],
        "snooze_reasons": SnoozeReason.choices,
        "outcomes": CtaOutcome.choices,
        "can_act": can_act,
        "can_reassign": can_act and actor.role in (Role.ADMIN, Role.LEADER),
        "today": today,
        "min_snooze": today + dt.timedelta(days=1),
        "default_snooze": today + dt.timedelta(days=7),
        "scope_label": {
            Role.CSM: "Your CTAs and tasks",
            Role.LEADER: "Your teams' CTAs and tasks",
            Role.ADMIN: "Everyone's CTAs and tasks",
            Role.VIEWER: "Everyone's CTAs and tasks (read only)",
        }[actor.role],
        "next": request.get_full_path(),
    }
    return render(request, "playbooks/work_queue.html", context)


def _back(request: HttpRequest) -> HttpResponse:
    """Back to the page the form was on: the work queue, or an Account 360 (its CTA panel) of this organization."""
    target = request.POST.get("next", "")
    slug = request.organization.slug  # type: ignore[attr-defined]
    work = reverse("work", args=[slug])
    accounts = f"/o/{slug}/accounts/"
    allowed = target.startswith(work) or target.startswith(accounts)
    if allowed and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(work)


def _errors(exc: ValidationError) -> str:
    return " ".join(str(m) for m in exc.messages)


def _parse_date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def _apply(request: HttpRequest, cta: Cta, action: str) -> str | None:
    """Run one action of the page on one CTA; returns an error message, or ``None`` when done."""
    actor = request.actor  # type: ignore[attr-defined]
    post = request.POST
    try:
        if action == "snooze":
            until = _parse_date(post.get("until", ""))
            if until is None:
                return "Choose the day the CTA should come back."
            ctas.snooze(
                cta, until=until, reason=post.get("snooze_reason", ""), note=post.get("note", "")[:500], by=actor
            )
        elif action == "complete":
            ctas.complete(cta, outcome=post.get("outcome", ""), note=post.get("note", "")[:2000], by=actor)
        elif action == "reassign":
            raw_owner = post.get("owner", "")
            owner = (
                Membership.objects.filter(user_id=int(raw_owner)).select_related("user").first()
                if raw_owner.isdigit()
                else None
            )
            if owner is None:
                return "Choose who gets the CTA."
            ctas.reassign(cta, owner=owner.user, by=actor)
        else:
            return "Choose an action."
    except ctas.CtaPermissionDenied as exc:
        return str(exc)
    except ValidationError as exc:
        return _errors(exc)
    return None


DONE_MESSAGES = {"snooze": "snoozed", "complete": "completed", "reassign": "reassigned"}


@org_page(roles=[Role.ADMIN, Role.LEADER, Role.CSM])
@require_POST
def cta_action(request: HttpRequest, cta_id: int, action: str) -> HttpResponse:
    """Snooze or complete one CTA from its card."""
    cta = get_object_or_404(Cta.objects.select_related("account"), pk=cta_id)
    if not ctas.can_write_cta(request.actor, cta):  # type: ignore[attr-defined]
        raise PermissionDenied("You may not change this CTA.")
    error = _apply(request, cta, action)
    if error:
        messages.error(request, f"“{cta.title}” was not {DONE_MESSAGES.get(action, 'changed')}: {error}")
    else:
        messages.success(request, f"“{cta.title}” {DONE_MESSAGES[action]}.")
    return _back(request)


@org_page(roles=[Role.ADMIN, Role.LEADER, Role.CSM])
@require_POST
def bulk_action(request: HttpRequest) -> HttpResponse:
    """Snooze, complete or reassign the selected CTAs; each is checked on its own, failures are reported."""
    action = request.POST.get("action", "")
    ids = [int(v) for v in request.POST.getlist("cta") if v.isdigit()]
    if action not in DONE_MESSAGES or not ids:
        messages.error(request, "Select at least one CTA and an action.")
        return _back(request)
    done, failed = 0, []
    for cta in Cta.objects.filter(pk__in=ids).select_related("account").order_by("pk"):
        error = _apply(request, cta, action)
        if error:
            failed.append(f"“{cta.title}”: {error}")
        else:
            done += 1
    if done:
        messages.success(request, f"{done} CTA{'s' if done != 1 else ''} {DONE_MESSAGES[action]}.")
    if failed:
        messages.error(request, f"Not {DONE_MESSAGES[action]}: " + " ".join(failed))
    return _back(request)


@org_page(roles=[Role.ADMIN, Role.LEADER, Role.CSM])
@require_POST
def task_toggle(request: HttpRequest, task_id: int) -> HttpResponse:
    """Mark a task done, or open again."""
    task = get_object_or_404(CtaTask.objects.select_related("cta__account"), pk=task_id)
    try:
        if request.POST.get("done") == "0":
            ctas.reopen_task(task, by=request.actor)  # type: ignore[attr-defined]
            messages.success(request, f"Task “{task.title}” is open again.")
        else:
            ctas.complete_task(task, by=request.actor)  # type: ignore[attr-defined]
            messages.success(request, f"Task “{task.title}” done.")
    except ctas.CtaPermissionDenied as exc:
        raise PermissionDenied(str(exc)) from None
    return _back(request)


@org_page()
@require_GET
def notifications(request: HttpRequest) -> HttpResponse:
    """The member's notifications, newest first (the last 100)."""
    rows = list(Notification.objects.filter(user=request.user).select_related("cta")[:100])
    actor = request.actor  # type: ignore[attr-defined]
    context = {
        "notifications": rows,
        "can_mark": actor.can_write_anything,
        "unread": sum(1 for n in rows if not n.read_at),
        "daily_digest": digest.digest_enabled(request.membership),  # type: ignore[attr-defined]
        "digest_hour": settings.DIGEST_HOUR,
    }
    return render(request, "playbooks/notifications.html", context)


@org_page()
@require_POST
def notifications_digest(request: HttpRequest) -> HttpResponse:
    """Turn the member's daily digest email on (``daily_digest=on``) or off: their own setting, any role."""
    enabled = request.POST.get("daily_digest") == "on"
    digest.set_daily_digest(request.membership, enabled)  # type: ignore[attr-defined]
    messages.success(request, "Daily digest email turned on." if enabled else "Daily digest email turned off.")
    return redirect("notifications", org_slug=request.organization.slug)  # type: ignore[attr-defined]


@org_page(roles=[Role.ADMIN, Role.LEADER, Role.CSM])
@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    """Mark one notification (``id``) or all of them read."""
    raw = request.POST.get("id", "")
    ids: list[int] | None = [int(raw)] if raw.isdigit() else None
    marked = ctas.mark_notifications_read(request.organization, request.user, ids)  # type: ignore[attr-defined]
    messages.success(request, f"{marked} notification{'s' if marked != 1 else ''} marked read.")
    return redirect("notifications", org_slug=request.organization.slug)  # type: ignore[attr-defined]
