"""The segments admin pages: ``/o/<slug>/admin/segments/`` (list with stored member counts and last refresh)
and the editor, whose live count and sample (first 10 by ARR) are computed for the rules being edited,
before saving: the ``preview`` fragment (htmx, on every change) or the Preview button (without script)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cs_platform.pages import org_page

from . import segment_drafts
from .choices import Role, VersionState
from .models import Segment, SegmentVersion
from .segment_editor import (
    GROUPS,
    field_choices,
    field_operators,
    operator_choices,
    padded,
    rows_from_rules,
    rules_from_post,
)
from .segment_membership import preview_segment
from .segments import rule_problems
from .version_pages import VersionPages

admin_page = org_page(roles=[Role.ADMIN])


@admin_page
@require_GET
def admin_segments(request: HttpRequest) -> HttpResponse:
    """Every segment with its stored member count and last refresh (two queries)."""
    segments = list(Segment.objects.annotate(n_members=Count("memberships")).order_by("position", "name"))
    for segment in segments:
        segment.problems = rule_problems(segment.rules)  # type: ignore[attr-defined]
    return render(request, "accounts/admin_segments.html", {"segments": segments, "admin_tab": "segments"})


def _editor(request: HttpRequest, segment: Segment | None, **extra: Any) -> dict[str, Any]:
    return {
        **(_history(request, segment) if segment else {}),
        "segment": segment,
        "admin_tab": "segments",
        "fields": field_choices(),
        "operators": operator_choices(),
        "field_operators": field_operators(),
        "group_names": GROUPS,
        "group_rows": [
            {"key": key, "name": name, "match": extra.get("group_matches", {}).get(key, "any")}
            for key, name in GROUPS.items()
        ],
        **extra,
    }


@admin_page
@require_http_methods(["GET", "POST"])
def admin_segment(request: HttpRequest, segment_id: int | None = None) -> HttpResponse:
    """Create or edit a segment. ``action=preview`` shows the count and sample without saving."""
    segment = get_object_or_404(Segment.objects, pk=segment_id) if segment_id else None
    editing = _draft_named(segment, request.GET.get("version") or request.POST.get("version"))
    if request.method == "GET":
        content = editing.content if editing else (segment_drafts.content_of(segment) if segment else {})
        match, rows, group_matches, groups = rows_from_rules(content.get("rules") or {})
        values = {
            "name": content.get("name", ""),
            "description": content.get("description", ""),
            "position": segment.position if segment else 100,
        }
        preview = preview_segment(request.organization, content.get("rules") or {}) if segment else None
        context = _editor(
            request,
            segment,
            editing=editing,
            match=match,
            rows=padded(rows),
            groups=groups,
            values=values,
            group_matches=group_matches,
        )
        return render(request, "accounts/admin_segment.html", {**context, "preview": preview})

    rules, rows, group_matches, groups, problems = rules_from_post(request.POST)
    values = {
        "name": (request.POST.get("name") or "").strip(),
        "description": (request.POST.get("description") or "").strip(),
        "position": (request.POST.get("position") or "0").strip(),
    }
    problems += rule_problems(rules)
    errors: dict[str, str] = {}
    if not values["name"]:
        errors["name"] = "Give the segment a name."
    if not values["position"].isdigit():
        errors["position"] = "A whole number, 0 or more."
    preview = None if problems else preview_segment(request.organization, rules)
    if request.POST.get("action") == "draft" and segment is not None and not problems and not errors:
        saved = _save_draft(request, segment, editing, values, rules, errors)
        if saved is not None:
            return saved
    elif request.POST.get("action") != "preview" and not problems and not errors:
        target = segment or Segment(organization=request.organization)
        before = segment_drafts.content_of(segment) if segment else None
        target.name, target.description = values["name"], values["description"]
        target.position, target.rules = int(values["position"]), rules
        try:
            with transaction.atomic():
                target.save()  # a post_save refreshes its stored members once this commits
                # "Save and publish": a published version and its audit entry.
                segment_drafts.record_saved(target, before=before, user=request.user)
        except IntegrityError:
            errors["name"] = "Another segment already has this name."
        else:
            messages.success(request, f"Segment “{target.name}” saved; its members are being refreshed.")
            return redirect("admin-segment", org_slug=request.organization.slug, segment_id=target.pk)
    context = _editor(
        request, segment, match=rules["match"], rows=padded(rows), groups=groups, values=values, problems=problems,
        group_matches=group_matches,
        errors=errors, preview=preview, editing=editing,
    )  # fmt: skip
    status = 400 if (problems or errors) else 200
    return render(request, "accounts/admin_segment.html", context, status=status)


@admin_page
@require_POST
def admin_segment_preview(request: HttpRequest) -> HttpResponse:
    """The live count and sample of the editor's current rules (the htmx fragment); writes nothing."""
    rules, _rows, _group_matches, _groups, problems = rules_from_post(request.POST)
    problems += rule_problems(rules)
    preview = None if problems else preview_segment(request.organization, rules)
    return render(request, "accounts/_segment_preview.html", {"preview": preview, "problems": problems})


# --- Drafts: save as draft, review (diff, preview), publish, history and roll back (docs/admin-guide.md) ------


def _draft_named(segment: Segment | None, number: Any) -> SegmentVersion | None:
    """The segment's draft numbered ``number`` (the editor's ``?version=``), or ``None``."""
    if segment is None or not str(number or "").isdigit() or int(number) >= 2**31:
        return None
    return segment_drafts.versions_of(segment).filter(number=int(number), state=VersionState.DRAFT).first()


PAGES = VersionPages(
    kind=segment_drafts.KIND,
    admin_tab="segments",
    kind_plural="Segments",
    live_label="the live segment",
    list_url="admin-segments",
    edit_url="admin-segment",
    version_url="admin-segment-version",
    publish_url="admin-segment-publish",
    rollback_url="admin-segment-rollback",
    id_kwarg="segment_id",
    preview_template="accounts/_segment_version_preview.html",
    sides=(("entering", "Would enter", "entering"), ("leaving", "Would leave", "leaving")),
)


def _history(request: HttpRequest, segment: Segment) -> dict[str, Any]:
    return {**PAGES.history(request, segment), "can_edit": True}


def _save_draft(
    request: HttpRequest,
    segment: Segment,
    editing: SegmentVersion | None,
    values: dict[str, Any],
    rules: dict[str, Any],
    errors: dict[str, str],
) -> HttpResponse | None:
    """ "Save as draft": a new draft, or the draft being edited changed. ``None`` when refused (``errors`` says why)."""
    content = {"name": values["name"], "description": values["description"], "rules": rules}
    try:
        if editing is not None:
            version = segment_drafts.update_draft(editing, content, user=request.user)
        else:
            version = segment_drafts.create_draft(segment, content, user=request.user)
    except segment_drafts.DraftConflict as exc:
        errors["name"] = str(exc)
        return None
    except segment_drafts.DraftInvalid as exc:
        errors.update({path: " ".join(msgs) for path, msgs in exc.errors.items()})
        return None
    messages.success(request, f"Draft v{version.number} saved: nothing changes until it is published.")
    slug = request.organization.slug  # type: ignore[attr-defined]
    return redirect("admin-segment-version", org_slug=slug, segment_id=segment.pk, number=version.number)


def _version_page(
    request: HttpRequest, segment: Segment, version: SegmentVersion, *, status: int = 200, **extra: Any
) -> HttpResponse:
    preview = segment_drafts.preview_version(version) if version.state == VersionState.DRAFT else None
    return PAGES.version_page(request, segment, version, preview=preview, status=status, can_edit=True, **extra)


@admin_page
@require_GET
def admin_segment_version(request: HttpRequest, segment_id: int, number: int) -> HttpResponse:
    """One version: the diff field by field, the preview of a draft (who would enter and leave, with ARR), its
    Publish form (a note is required) and the history with Roll back."""
    segment = get_object_or_404(Segment.objects, pk=segment_id)
    version = get_object_or_404(SegmentVersion.objects.filter(segment=segment), number=number)
    return _version_page(request, segment, version)


@admin_page
@require_POST
def admin_segment_publish(request: HttpRequest, segment_id: int, number: int) -> HttpResponse:
    """Publish a draft (``note`` required); refused with every problem when it is no longer valid."""
    segment = get_object_or_404(Segment.objects, pk=segment_id)
    version = get_object_or_404(SegmentVersion.objects.filter(segment=segment), number=number)
    return PAGES.publish(
        request,
        segment,
        version,
        page=lambda **extra: _version_page(request, segment, version, **extra),
        published=lambda v: f"Version {v.number} published; the members are being refreshed.",
    )


@admin_page
@require_POST
def admin_segment_rollback(request: HttpRequest, segment_id: int) -> HttpResponse:
    """Roll back to the version published before the current one, as a new published version (``note`` required)."""
    segment = get_object_or_404(Segment.objects, pk=segment_id)
    return PAGES.rollback(request, segment)
