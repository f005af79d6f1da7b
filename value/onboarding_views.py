"""Handoff and onboarding pages under ``/o/<slug>/``: the account's handoff form
(``accounts/<id>/handoff/``), the onboarding list (``onboarding/``) and a project's page
(``onboarding/<id>/``: phases, milestones, the clock, complete/reopen/edit forms), the Account 360 panel,
and Admin → Onboarding templates (``admin/onboarding-templates/``).

Everyone reads; writes go through :mod:`value.onboarding` with ``request.actor`` (whoever may write the
account; templates are admins'), so a page and the API cannot disagree."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.choices import ContactRole
from accounts.models import Account, Membership, Objective
from cs_platform.pages import org_page

from . import onboarding as svc
from .choices import OPEN_ONBOARDING_STATUSES, MilestoneMark, OnboardingStatus
from .models import Handoff, OnboardingMilestone, OnboardingProject, OnboardingTemplate

PAGE_SIZE = 50
WRITERS = ("admin", "leader", "csm")
MEASURE_COLUMNS = ("title", "customer_measure", "baseline", "target", "due_date")
STAKEHOLDER_COLUMNS = ("name", "email", "title", "role")
STATE_LABELS = {"done": "Done", "late": "Late", "stalled": "Stalled", "open": "Open"}


def _org(request: HttpRequest) -> Any:
    return request.organization  # type: ignore[attr-defined]


def _actor(request: HttpRequest) -> Any:
    return request.actor  # type: ignore[attr-defined]


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value.strip()) if value and value.strip() else None
    except ValueError:
        return None


def _account(account_id: int) -> Account:
    account = Account.objects.select_related("owner").filter(pk=account_id).first()
    if account is None:
        raise Http404("No such account")
    return account


# --- Handoff ------------------------------------------------------------------------------------------


def _rows(prefix: str, columns: tuple[str, ...], values: list[dict[str, Any]], errors: dict[str, list[str]],
          key: str) -> list[dict[str, Any]]:  # fmt: skip
    return [
        {
            "index": i,
            "number": i + 1,
            "prefix": f"{prefix}-{i}",
            "values": {c: ("" if row.get(c) is None else row.get(c)) for c in columns},
            "objective": row.get("objective") or "",
            "errors": {c: errors.get(f"{key}.{i}.{c}", []) for c in columns},
            "row_errors": errors.get(f"{key}.{i}", []),
        }
        for i, row in enumerate(values)
    ]


def _posted_rows(request: HttpRequest, prefix: str, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    try:
        count = min(int(request.POST.get(f"{prefix}-count", "0")), 30)
    except ValueError:
        count = 0
    return [{c: request.POST.get(f"{prefix}-{i}-{c}", "") for c in columns} for i in range(count)]


def _handoff_context(
    request: HttpRequest,
    account: Account,
    handoff: Handoff | None,
    *,
    measures: list[dict[str, Any]],
    stakeholders: list[dict[str, Any]],
    go_live_target: Any,
    notes: str,
    errors: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    errors = errors or {}
    # Two blank rows after what is there, so a measure or a person can be added without script.
    measures = [*measures, *({} for _ in range(max(2, 3 - len(measures))))]
    stakeholders = [*stakeholders, *({} for _ in range(max(2, 3 - len(stakeholders))))]
    project = OnboardingProject.objects.filter(account=account).exclude(status=OnboardingStatus.CANCELLED).first()
    return {
        "nav_current": "onboarding",
        "account": account,
        "handoff": handoff,
        "project": project,
        "can_write": _actor(request).can_write_account(account),
        "measures": _rows("m", MEASURE_COLUMNS, measures, errors, "success_measures"),
        "stakeholders": _rows("s", STAKEHOLDER_COLUMNS, stakeholders, errors, "stakeholders"),
        "measure_count": len(measures),
        "stakeholder_count": len(stakeholders),
        "go_live_target": go_live_target or "",
        "notes": notes,
        "errors": errors,
        "top_errors": {k: v for k, v in errors.items() if k in ("success_measures", "stakeholders")},
        "roles": ContactRole.choices,
    }


@org_page()
def handoff_page(request: HttpRequest, account_id: int) -> HttpResponse:
    """The account's handoff: GET shows it; POST saves the draft (``action=save``) or saves and submits it
    (``action=submit``: the success plan, the contacts and the onboarding project are seeded)."""
    account = _account(account_id)
    handoff = Handoff.objects.filter(account=account).first()
    if request.method != "POST":
        context = _handoff_context(
            request,
            account,
            handoff,
            measures=list(handoff.success_measures) if handoff else [],
            stakeholders=list(handoff.stakeholders) if handoff else [],
            go_live_target=handoff.go_live_target.isoformat() if handoff and handoff.go_live_target else "",
            notes=handoff.commercial_notes if handoff else "",
        )
        return render(request, "value/handoff.html", context)
    actor = _actor(request)
    if not actor.can_write_account(account):
        raise PermissionDenied("You can only hand off accounts in your book.")
    measures = _posted_rows(request, "m", (*MEASURE_COLUMNS, "objective"))
    people = _posted_rows(request, "s", STAKEHOLDER_COLUMNS)
    raw_target = request.POST.get("go_live_target", "")
    target = _date(raw_target)
    notes = request.POST.get("commercial_notes", "")[:10000]
    submitting = request.POST.get("action") == "submit"
    errors: dict[str, list[str]] = {}
    if raw_target.strip() and target is None:
        errors["go_live_target"] = ["A date as YYYY-MM-DD."]
    # Each row carries the objective it seeded (a hidden field), so a renamed measure updates its objective;
    # submit_handoff matches only the account's own objectives, whatever id a form sends.
    for row in measures:
        raw = row.pop("objective", "")
        if raw.isdigit():
            row["objective"] = int(raw)
    try:
        svc.clean_handoff(measures, people, complete=submitting, go_live_target=target)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        context = _handoff_context(
            request, account, handoff, measures=measures, stakeholders=people, go_live_target=raw_target,
            notes=notes, errors=errors,
        )  # fmt: skip
        response = render(request, "value/handoff.html", context)
        response.status_code = 400
        return response
    handoff = svc.save_handoff(
        account, by=actor, go_live_target=target, success_measures=measures, stakeholders=people,
        commercial_notes=notes,
    )  # fmt: skip
    if not submitting:
        messages.success(request, "Draft saved. Submit it when the measures and stakeholders are complete.")
        return redirect("account-handoff", _org(request).slug, account.pk)
    result = svc.submit_handoff(handoff, by=actor)
    messages.success(
        request,
        f"Handoff submitted: {result.objectives_created} objective(s) added and {result.objectives_updated} "
        f"updated on the success plan, {result.contacts_created} contact(s) added and {result.contacts_updated} "
        f"updated{', onboarding project started' if result.project_created else ''}.",
    )
    if result.project is not None:
        return redirect("onboarding-project", _org(request).slug, result.project.pk)
    return redirect("account-detail", _org(request).slug, account.pk)


# --- Projects -----------------------------------------------------------------------------------------


def _members(org: Any) -> list[tuple[int, str]]:
    rows = Membership.objects.for_org(org).select_related("user").order_by("user__first_name", "user__email")
    return [(m.user_id, m.user.get_full_name() or m.user.email) for m in rows]


@org_page()
def onboarding_list(request: HttpRequest) -> HttpResponse:
    """Onboarding projects (open ones by default), filtered by CSM, status and flag (late, stalled)."""
    org = _org(request)
    status = request.GET.get("status", "open")
    if status not in {"open", "all", *OnboardingStatus.values}:
        status = "open"
    flag = request.GET.get("flag", "")
    flag = flag if flag in ("late", "stalled") else ""
    members = _members(org)
    owner = request.GET.get("owner", "")
    owner_id = int(owner) if owner.isdigit() and int(owner) in {m[0] for m in members} else None
    projects = (
        svc.projects_with_flags(org)
        .select_related("account", "owner")
        .annotate(
            milestones_total=Count("milestones"),
            milestones_done=Count("milestones", filter=Q(milestones__completed_on__isnull=False)),
        )
        .order_by("target_go_live_on", "pk")
    )
    if status == "open":
        projects = projects.filter(status__in=[s.value for s in OPEN_ONBOARDING_STATUSES])
    elif status != "all":
        projects = projects.filter(status=status)
    if owner_id:
        projects = projects.filter(owner_id=owner_id)
    if flag == "late":
        projects = projects.filter(is_late=True)
    elif flag == "stalled":
        projects = projects.filter(is_stalled=True)
    page = Paginator(projects, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(p, svc.project_clock(p)) for p in page.object_list]
    return render(
        request,
        "value/onboarding_list.html",
        {
            "nav_current": "onboarding",
            "rows": rows,
            "page": page,
            "members": members,
            "statuses": [("open", "Open (onboarding or live)"), *OnboardingStatus.choices, ("all", "All")],
            "filters": {"status": status, "owner": owner_id, "flag": flag},
            "filtered": status != "open" or bool(owner_id or flag),
        },
    )


def _project(project_id: int) -> OnboardingProject:
    project = (
        OnboardingProject.objects.select_related("account__owner", "owner", "template").filter(pk=project_id).first()
    )
    if project is None:
        raise Http404("No such onboarding project")
    return project


@org_page()
def project_page(request: HttpRequest, project_id: int) -> HttpResponse:
    """One project: the clock, the success measures, and the phases with their milestones."""
    project = _project(project_id)
    org = _org(request)
    milestones = list(
        OnboardingMilestone.objects.filter(project=project).select_related("owner").order_by("position", "pk")
    )
    phases: list[dict[str, Any]] = []
    for m in milestones:
        m.state = svc.milestone_state(m)  # type: ignore[attr-defined]
        m.state_label = STATE_LABELS[m.state]  # type: ignore[attr-defined]
        if not phases or phases[-1]["name"] != m.phase:
            phases.append({"name": m.phase, "milestones": []})
        phases[-1]["milestones"].append(m)
    for phase in phases:
        phase["done"] = sum(1 for m in phase["milestones"] if m.completed_on)
    objectives = Objective.objects.filter(plan__account=project.account).order_by("due_date", "pk")
    can_write = _actor(request).can_write_account(project.account) and project.status != OnboardingStatus.CANCELLED
    done = sum(1 for m in milestones if m.completed_on)
    return render(
        request,
        "value/project.html",
        {
            "nav_current": "onboarding",
            "project": project,
            "account": project.account,
            "phases": phases,
            "clock": svc.project_clock(project),
            "objectives": objectives,
            "can_write": can_write,
            "members": _members(org),
            "done": done,
            "total": len(milestones),
            "today": svc._today(),
            "marks": MilestoneMark,
        },
    )


def _milestone(request: HttpRequest, project_id: int, milestone_id: int) -> OnboardingMilestone:
    milestone = (
        OnboardingMilestone.objects.select_related("project__account").filter(pk=milestone_id, project_id=project_id)
    ).first()
    if milestone is None:
        raise Http404("No such milestone")
    if not _actor(request).can_write_account(milestone.project.account):
        raise PermissionDenied("You can only change the onboarding of accounts in your book.")
    return milestone


def _back(request: HttpRequest, project_id: int, message: str, *, error: bool = False) -> HttpResponse:
    (messages.error if error else messages.success)(request, message)
    return redirect(f"{reverse('onboarding-project', args=[_org(request).slug, project_id])}#milestones")


def _run(request: HttpRequest, project_id: int, done: str, fn: Any, *args: Any, **kwargs: Any) -> HttpResponse:
    try:
        fn(*args, by=_actor(request), **kwargs)
    except ValidationError as exc:
        return _back(request, project_id, " ".join(exc.messages), error=True)
    return _back(request, project_id, done)


@require_POST
@org_page(roles=WRITERS)
def milestone_complete(request: HttpRequest, project_id: int, milestone_id: int) -> HttpResponse:
    milestone = _milestone(request, project_id, milestone_id)
    raw = request.POST.get("completed_on", "")
    on = _date(raw)
    if raw.strip() and on is None:
        return _back(request, project_id, "Give the completion day as YYYY-MM-DD.", error=True)
    return _run(request, project_id, f"“{milestone.name}” completed.", svc.complete_milestone, milestone, on=on)


@require_POST
@org_page(roles=WRITERS)
def milestone_reopen(request: HttpRequest, project_id: int, milestone_id: int) -> HttpResponse:
    milestone = _milestone(request, project_id, milestone_id)
    return _run(request, project_id, f"“{milestone.name}” reopened.", svc.reopen_milestone, milestone)


@require_POST
@org_page(roles=WRITERS)
def milestone_edit(request: HttpRequest, project_id: int, milestone_id: int) -> HttpResponse:
    milestone = _milestone(request, project_id, milestone_id)
    raw = request.POST.get("due_on", "")
    due = _date(raw)
    if raw.strip() and due is None:
        return _back(request, project_id, "Give the due date as YYYY-MM-DD.", error=True)
    owner_raw = request.POST.get("owner", "")
    owner = None
    if owner_raw:
        membership = Membership.objects.filter(user_id=owner_raw if owner_raw.isdigit() else 0).select_related("user")
        owner = membership.first().user if membership.exists() else None
        if owner is None:
            return _back(request, project_id, "Choose a member of the organization as the owner.", error=True)
    return _run(
        request, project_id, f"“{milestone.name}” updated.", svc.update_milestone, milestone, due_on=due, owner=owner,
        notes=request.POST.get("notes", "")[:5000],
    )  # fmt: skip


@require_POST
@org_page(roles=WRITERS)
def project_cancel(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(project_id)
    if not _actor(request).can_write_account(project.account):
        raise PermissionDenied("You can only change the onboarding of accounts in your book.")
    return _run(request, project_id, "Onboarding project cancelled.", svc.cancel_project, project)


@require_POST
@org_page(roles=WRITERS)
def project_start(request: HttpRequest, account_id: int) -> HttpResponse:
    """Start an onboarding project from the Account 360 panel (the template chosen, else the default)."""
    account = _account(account_id)
    actor = _actor(request)
    if not actor.can_write_account(account):
        raise PermissionDenied("You can only start the onboarding of accounts in your book.")
    template_id = request.POST.get("template", "")
    template = OnboardingTemplate.objects.filter(pk=template_id).first() if template_id.isdigit() else None
    try:
        project = svc.start_project(
            account, by=actor, template=template, kickoff_on=_date(request.POST.get("kickoff_on"))
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("account-detail", _org(request).slug, account.pk)
    messages.success(request, "Onboarding project started.")
    return redirect("onboarding-project", _org(request).slug, project.pk)


def account_panel(request: HttpRequest, account: Account) -> dict[str, Any]:
    """Account 360's onboarding panel: the latest project that is not cancelled with its progress and clock,
    or (without one) the handoff's state and a button starting one from the default template. One query
    with a project, two without."""
    project = (
        OnboardingProject.objects.filter(account=account)
        .exclude(status=OnboardingStatus.CANCELLED)
        .select_related("owner")
        .annotate(
            milestones_total=Count("milestones"),
            milestones_done=Count("milestones", filter=Q(milestones__completed_on__isnull=False)),
        )
        .order_by("-created_at", "-pk")
        .first()
    )
    handoff = None
    if project is None:
        handoff = Handoff.objects.filter(account=account).only("pk", "submitted_at", "account_id").first()
    return {
        "onboarding_project": project,
        "onboarding_clock": svc.project_clock(project) if project else None,
        "onboarding_handoff": handoff,
        "onboarding_can_write": _actor(request).can_write_account(account),
    }


# --- Admin: templates -----------------------------------------------------------------------------------


@org_page(roles=("admin",))
def templates_page(request: HttpRequest) -> HttpResponse:
    """Admin → Onboarding templates: the list, with how many projects each started."""
    svc.ensure_default_template(_org(request))
    templates = OnboardingTemplate.objects.annotate(projects_count=Count("projects")).order_by("-is_default", "name")
    return render(
        request,
        "value/admin_templates.html",
        {"nav_current": "admin-onboarding", "admin_tab": "onboarding-templates", "templates": templates},
    )


@org_page(roles=("admin",))
def template_edit(request: HttpRequest, template_id: int | None = None) -> HttpResponse:
    """One template (or a new one): name, targets, stall threshold and the phases as validated JSON."""
    if template_id is None:
        template = OnboardingTemplate(phases=svc._clean_phases(svc.DEFAULT_PHASES))
    else:
        template = OnboardingTemplate.objects.filter(pk=template_id).first()
        if template is None:
            raise Http404("No such template")
    errors: dict[str, list[str]] = {}
    phases_text = json.dumps(template.phases, indent=2, ensure_ascii=False)
    if request.method == "POST":
        phases_text = request.POST.get("phases", "")
        template.name = request.POST.get("name", "").strip()[:120]
        template.description = request.POST.get("description", "").strip()[:2000]
        template.is_default = template.is_default or request.POST.get("is_default") == "on"
        for field in ("stall_after_days", "target_go_live_days", "target_first_value_days"):
            raw = request.POST.get(field, "")
            if raw.isdigit() and 1 <= int(raw) <= 3650:
                setattr(template, field, int(raw))
            else:
                errors[field] = ["A whole number of days from 1 to 3650."]
        if not template.name:
            errors["name"] = ["Give the template a name."]
        elif OnboardingTemplate.objects.filter(name=template.name).exclude(pk=template.pk).exists():
            errors["name"] = ["Another template has this name."]
        try:
            template.phases = json.loads(phases_text)
        except ValueError as exc:
            errors["phases"] = [f"Not valid JSON: {exc}."]
        if not errors:
            template.organization_id = _org(request).pk
            try:
                svc.save_template(template, by=_actor(request))
            except ValidationError as exc:
                errors = exc.message_dict
            else:
                messages.success(request, f"Template “{template.name}” saved.")
                return redirect("admin-onboarding-template", _org(request).slug, template.pk)
    response = render(
        request,
        "value/admin_template.html",
        {
            "nav_current": "admin-onboarding",
            "admin_tab": "onboarding-templates",
            "template": template,
            "phases_text": phases_text,
            "errors": errors,
            "phase_errors": sorted((k, v) for k, v in errors.items() if k.startswith("phases")),
            "marks": MilestoneMark.choices,
        },
    )
    if errors:
        response.status_code = 400
    return response
