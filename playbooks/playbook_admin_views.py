"""The playbook admin pages: ``/o/<slug>/admin/playbooks/`` (list with effectiveness counts) and the editor
``…/new/`` and ``…/<id>/`` (trigger and its parameters, segment filter, conditions, cooldown, actions; the
preview of what it would do now; Activate/Deactivate). Admins edit; leaders read (the editor is shown
disabled, without preview or buttons); other roles get 403.

Validation is the API's (``playbooks.validation.validate_playbook``), every problem shown on its field.
Saving never activates: a new playbook is created inactive, and activating is its own button.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.choices import Role, VersionState
from accounts.models import Account, Segment
from accounts.version_pages import VersionPages
from cs_platform.pages import org_page

from . import drafts, engine
from .actions import MAX_ACTIONS
from .activation import set_active
from .effectiveness import effectiveness, effectiveness_many
from .models_engine import FiringOutcome, Playbook, PlaybookFiring, PlaybookVersion
from .playbook_forms import PlaybookForm, action_forms, apply_problems, trigger_in_words
from .validation import playbook_problems, validate_playbook

reader_page = org_page(roles=[Role.ADMIN, Role.LEADER])
admin_page = org_page(roles=[Role.ADMIN])


def _is_admin(request: HttpRequest) -> bool:
    return request.membership.role == Role.ADMIN  # type: ignore[attr-defined]


@reader_page
@require_GET
def playbooks(request: HttpRequest) -> HttpResponse:
    """Every playbook: trigger in words, segment, active, and its effectiveness (fired, suppressed, completed,
    median days to complete, recovery against the comparison) from ``effectiveness_many`` (constant queries
    whatever the number of playbooks), plus when it last fired."""
    rows = list(Playbook.objects.select_related("segment").order_by("-active", "name"))
    effect = effectiveness_many(request.organization.pk, rows)  # type: ignore[attr-defined]
    last_fired = dict(
        PlaybookFiring.objects.filter(outcome=FiringOutcome.FIRED)
        .values("playbook_id")
        .annotate(at=Max("fired_at"))
        .values_list("playbook_id", "at")
    )
    segment_names = dict(Segment.objects.values_list("pk", "name"))  # once, not once per segment trigger
    for p in rows:
        p.effect = effect[p.pk]  # type: ignore[attr-defined]
        p.last_fired = last_fired.get(p.pk)  # type: ignore[attr-defined]
        p.trigger_words = trigger_in_words(p, segment_names)  # type: ignore[attr-defined]
    context = {"playbooks": rows, "admin_tab": "playbooks", "can_edit": _is_admin(request)}
    return render(request, "playbooks/admin_playbooks.html", context)


def _preview(playbook: Playbook) -> dict[str, Any]:
    """``engine.preview`` (writes nothing), its sample with ARR and owner."""
    result = engine.preview(playbook)
    ids = [row["id"] for row in result["sample"]]
    result["accounts"] = list(Account.objects.filter(pk__in=ids).select_related("owner").order_by("-arr", "name"))
    return result


def _context(request: HttpRequest, playbook: Playbook | None, form: PlaybookForm, actions: list, **extra: Any) -> dict:
    return {
        "playbook": playbook,
        "form": form,
        "actions": actions,
        "admin_tab": "playbooks",
        "can_edit": _is_admin(request),
        "max_actions": MAX_ACTIONS,
        **extra,
    }


@reader_page
@require_http_methods(["GET", "POST"])
def playbook(request: HttpRequest, playbook_id: int | None = None) -> HttpResponse:
    """Create or edit a playbook (admins); read an existing one (leaders). ``?preview=1`` adds what it would do
    now (admins, as the API's preview)."""
    organization = request.organization  # type: ignore[attr-defined]
    current = get_object_or_404(Playbook.objects.select_related("segment"), pk=playbook_id) if playbook_id else None
    if current is None and not _is_admin(request):
        raise PermissionDenied("Only admins create playbooks.")
    editing = _draft_named(current, request.GET.get("version") or request.POST.get("version"))
    if request.method == "POST":
        if not _is_admin(request):
            raise PermissionDenied("Only admins change playbooks.")
        return _save(request, current, editing)
    shown = drafts.playbook_with(current, editing.content) if current is not None and editing else current
    form = PlaybookForm(organization=organization, playbook=shown)
    if current is None and request.GET.get("segment", "").isdigit():
        # "Create a playbook on this segment" (the segment editor's link): the segment filter preset.
        segment = Segment.objects.filter(pk=int(request.GET["segment"])).first()
        if segment is not None:
            form.initial["segment"] = str(segment.pk)
    actions = action_forms(organization, actions=shown.actions if shown else [], extra=1 if _is_admin(request) else 0)
    extra = {**_stored(current), **_history(request, current), "editing": editing}
    if current is not None and request.GET.get("preview") and _is_admin(request):
        extra["preview"] = _preview(current)
    return render(request, "playbooks/admin_playbook.html", _context(request, current, form, actions, **extra))


def _stored(current: Playbook | None) -> dict[str, Any]:
    """What the page shows of the saved playbook: its problems, effectiveness and last firings."""
    if current is None:
        return {}
    return {
        "problems": [f"{path}: {message}" for path, message in playbook_problems(current)],
        "effect": effectiveness(current),
        "recent": PlaybookFiring.objects.filter(playbook=current).select_related("account")[:10],
    }


def _save(request: HttpRequest, current: Playbook | None, editing: PlaybookVersion | None = None) -> HttpResponse:
    organization = request.organization  # type: ignore[attr-defined]
    form = PlaybookForm(request.POST, organization=organization)
    adding = request.POST.get("op") == "add_action"
    forms_ = action_forms(organization, data=request.POST, extra=1 if adding else 0)
    valid = all([form.is_valid(), *[f.is_valid() for f in forms_ if f.is_bound]])
    # Every posted action with a kind, a refused choice included (as missing), so their indexes are the
    # validator's and every problem shows.
    used = [f for f in forms_ if f.is_bound and f.action() is not None]
    # Parsed even when a field was refused, so that one answer names every problem.
    data = form.payload()
    actions = [f.action() for f in used]
    problems = validate_playbook(
        organization,
        trigger=data["trigger"],
        trigger_params=data["trigger_params"],
        conditions=data["conditions"],
        segment_id=data["segment_id"],
        actions=actions,
        cooldown_days=data["cooldown_days"],
    )
    loose = apply_problems(form, forms_, used, problems)
    valid = valid and not problems and not form.errors
    if Playbook.objects.filter(name=data["name"]).exclude(pk=current.pk if current else None).exists():
        form.add_error("name", "Another playbook has this name.")
        valid = False
    if adding:
        # "Add another action": the form again, with one more blank action; nothing saved, nothing refused.
        for f in [form, *forms_]:
            if f.is_bound:
                f.errors.clear()
        context = _context(
            request, current, form, forms_, editing=editing, **_stored(current), **_history(request, current)
        )
        return render(request, "playbooks/admin_playbook.html", context)
    if valid and request.POST.get("op") == "preview":
        # "Preview these changes": what the edited playbook would do now, nothing saved. An unsaved instance
        # with the playbook's id (its own firings count for the cooldown), or id 0 for a new one (no firings).
        draft = Playbook(organization=organization, pk=current.pk if current else 0, active=False)
        _fill(draft, data, actions)
        context = _context(
            request, current, form, forms_, preview=_preview(draft), draft=True, editing=editing,
            **_stored(current), **_history(request, current),
        )  # fmt: skip
        return render(request, "playbooks/admin_playbook.html", context)
    if valid and request.POST.get("op") == "draft" and current is not None:
        content = {**drafts.content_of(current), **data, "segment": data["segment_id"], "actions": actions}
        content.pop("segment_id", None)
        try:
            if editing is not None:
                version = drafts.update_draft(editing, content, user=request.user)
            else:
                version = drafts.create_draft(current, content, user=request.user)
        except drafts.DraftConflict as exc:
            form.add_error(None, str(exc))
        except drafts.DraftInvalid as exc:
            for path, msgs in exc.errors.items():
                form.add_error("name" if path == "name" else None, f"{path}: {' '.join(msgs)}")
        else:
            messages.success(request, f"Draft v{version.number} saved: the engine keeps the published playbook.")
            return redirect("admin-playbook-version", org_slug=organization.slug, playbook_id=current.pk,
                            number=version.number)  # fmt: skip
    if valid:
        target = current or Playbook(organization=organization, created_by=request.user, active=False)
        before = drafts.content_of(current) if current else None
        _fill(target, data, actions)
        try:
            with transaction.atomic():
                target.save()
                drafts.record_saved(target, before=before, user=request.user)  # "save and publish", audited
        except IntegrityError:
            form.add_error("name", "Another playbook has this name.")
        else:
            state = "It is active: the changes apply from the next evaluation." if target.active else (
                "It is inactive: check the preview, then activate it.")  # fmt: skip
            messages.success(request, f"Playbook “{target.name}” saved. {state}")
            url = reverse("admin-playbook", args=[organization.slug, target.pk])
            return redirect(f"{url}?preview=1#preview")
    context = _context(
        request, current, form, forms_, loose=loose, refused=True, editing=editing, **_stored(current),
        **_history(request, current),
    )  # fmt: skip
    return render(request, "playbooks/admin_playbook.html", context, status=400)


def _fill(target: Playbook, data: dict[str, Any], actions: list[dict[str, Any]]) -> None:
    target.name, target.description = data["name"], data["description"]
    target.trigger, target.trigger_params = data["trigger"], data["trigger_params"]
    target.conditions, target.segment_id = data["conditions"], data["segment_id"]
    target.cooldown_days, target.actions = data["cooldown_days"], actions


@admin_page
@require_POST
def playbook_activation(request: HttpRequest, playbook_id: int) -> HttpResponse:
    """``active=1`` activates (refused while the playbook has problems), ``active=0`` deactivates."""
    target = get_object_or_404(Playbook.objects, pk=playbook_id)
    url = reverse("admin-playbook", args=[request.organization.slug, target.pk])  # type: ignore[attr-defined]
    activate = request.POST.get("active") == "1"
    if activate and playbook_problems(target):
        messages.error(request, "Not activated: fix the problems listed first.")
        return redirect(url)
    if set_active(target, activate, by=request.user):
        if activate:
            messages.success(request, f"Playbook “{target.name}” is active: it runs from the next evaluation.")
        else:
            messages.success(request, f"Playbook “{target.name}” deactivated: it fires no more; open CTAs stay.")
    return redirect(url)


# --- Drafts: save as draft, review (diff, preview), publish, history and roll back (docs/admin-guide.md) ------


def _draft_named(playbook: Playbook | None, number: Any) -> PlaybookVersion | None:
    """The playbook's draft numbered ``number`` (the editor's ``?version=``), or ``None``."""
    if playbook is None or not str(number or "").isdigit() or int(number) >= 2**31:
        return None
    return drafts.versions_of(playbook).filter(number=int(number), state=VersionState.DRAFT).first()


PAGES = VersionPages(
    kind=drafts.KIND,
    admin_tab="playbooks",
    kind_plural="Playbooks",
    live_label="the live playbook",
    list_url="admin-playbooks",
    edit_url="admin-playbook",
    version_url="admin-playbook-version",
    publish_url="admin-playbook-publish",
    rollback_url="admin-playbook-rollback",
    id_kwarg="playbook_id",
    preview_template="playbooks/_playbook_version_preview.html",
    sides=(("entering", "Would start firing", "starting"), ("leaving", "Would stop firing", "stopping")),
)


def _history(request: HttpRequest, playbook: Playbook | None) -> dict[str, Any]:
    return PAGES.history(request, playbook) if playbook is not None else {}


def _version_page(
    request: HttpRequest, playbook: Playbook, version: PlaybookVersion, *, status: int = 200, **extra: Any
) -> HttpResponse:
    preview = drafts.preview_version(version) if version.state == VersionState.DRAFT and _is_admin(request) else None
    return PAGES.version_page(
        request, playbook, version, preview=preview, status=status, can_edit=_is_admin(request), **extra
    )


@reader_page
@require_GET
def playbook_version(request: HttpRequest, playbook_id: int, number: int) -> HttpResponse:
    """One version: the diff field by field, the preview of a draft (who would start and stop firing, with ARR;
    admins), its Publish form (a note is required) and the history with Roll back (admins)."""
    playbook = get_object_or_404(Playbook.objects, pk=playbook_id)
    version = get_object_or_404(PlaybookVersion.objects.filter(playbook=playbook), number=number)
    return _version_page(request, playbook, version)


@admin_page
@require_POST
def playbook_publish(request: HttpRequest, playbook_id: int, number: int) -> HttpResponse:
    """Publish a draft (``note`` required); refused with every problem when it is no longer valid."""
    playbook = get_object_or_404(Playbook.objects, pk=playbook_id)
    version = get_object_or_404(PlaybookVersion.objects.filter(playbook=playbook), number=number)
    state = "the engine uses it from its next evaluation" if playbook.active else "the playbook is still inactive"
    return PAGES.publish(
        request,
        playbook,
        version,
        page=lambda **extra: _version_page(request, playbook, version, **extra),
        published=lambda v: f"Version {v.number} published: {state}.",
    )


@admin_page
@require_POST
def playbook_rollback(request: HttpRequest, playbook_id: int) -> HttpResponse:
    """Roll back to the version published before the current one, as a new published version (``note`` required)."""
    playbook = get_object_or_404(Playbook.objects, pk=playbook_id)
    return PAGES.rollback(request, playbook)


__all__ = ["playbook", "playbook_activation", "playbook_publish", "playbook_rollback", "playbook_version", "playbooks"]
