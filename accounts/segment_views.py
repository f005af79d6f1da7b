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
from .choices import Role
from .models import Segment
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
    if request.method == "GET":
        match, rows, group_matches, groups = rows_from_rules(segment.rules if segment else {})
        values = {
            "name": segment.name if segment else "",
            "description": segment.description if segment else "",
            "position": segment.position if segment else 100,
        }
        preview = preview_segment(request.organization, segment.rules) if segment else None
        context = _editor(
            request,
            segment,
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
    if request.POST.get("action") != "preview" and not problems and not errors:
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
        errors=errors, preview=preview,
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
