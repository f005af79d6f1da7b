"""Segments edited as drafts (issue 14; docs/admin-guide.md "Drafts"): a :class:`~accounts.models.SegmentVersion`
holds ``{"name", "description", "rules"}``; the :class:`~accounts.models.Segment` keeps the published content,
which is all that memberships, scorecards, dashboards and playbooks read. The rules are
:mod:`accounts.versioning`'s; this module binds them to segments:

* validation is the segment's own (:func:`accounts.segments.rule_problems`, a non-blank name unique in the
  organization);
* publishing (and rolling back) saves the segment, whose ``post_save`` queues the refresh of its stored
  members once the transaction commits, exactly as a save did before drafts;
* :func:`preview_version` tells which accounts would enter and leave the segment, with their ARR, if the
  version were published now (:func:`accounts.segment_membership.preview_change`; writes nothing).
"""

from __future__ import annotations

from typing import Any

from . import versioning
from .models import Segment, SegmentVersion
from .segment_membership import preview_change
from .segments import rule_problems
from .versioning import DraftConflict, DraftInvalid

__all__ = [
    "KIND",
    "DraftConflict",
    "DraftInvalid",
    "content_of",
    "create_draft",
    "diff_version",
    "preview_version",
    "publish",
    "record_saved",
    "rollback",
    "update_draft",
    "versions_of",
]

FIELDS = ("name", "description", "rules")
NAME_MAX = 120


def content_of(segment: Segment) -> dict[str, Any]:
    """The versioned content of a segment as it is live."""
    return {"name": segment.name, "description": segment.description or "", "rules": segment.rules or {}}


def _apply(segment: Segment, content: dict[str, Any]) -> None:
    segment.name = content["name"]
    segment.description = content.get("description") or ""
    segment.rules = content.get("rules") or {}


def content_problems(organization: Any, content: dict[str, Any], segment: Segment | None) -> dict[str, list[str]]:
    """Every problem of a segment's content, by path (``name``, ``rules.conditions.0.value``); empty when valid."""
    errors: dict[str, list[str]] = {}
    name = content.get("name")
    if not isinstance(name, str) or not name.strip():
        errors["name"] = ["Give the segment a name."]
    elif len(name) > NAME_MAX:
        errors["name"] = [f"At most {NAME_MAX} characters."]
    else:
        taken = Segment.objects.for_org(organization).filter(name=name.strip())
        if segment is not None:
            taken = taken.exclude(pk=segment.pk)
        if taken.exists():
            errors["name"] = ["A segment with this name already exists."]
    if not isinstance(content.get("description") or "", str):
        errors["description"] = ["Expected text."]
    problems = rule_problems(content.get("rules") or {})
    if problems:
        errors["rules"] = problems
    return errors


KIND = versioning.VersionedKind(
    name="segment",
    model=Segment,
    version_model=SegmentVersion,
    parent_field="segment",
    fields=FIELDS,
    content_of=content_of,
    apply=_apply,
    problems=content_problems,
    # No after_publish: Segment.save's post_save queues the refresh of its members (segment_membership).
)


def _clean(content: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in content.items() if k in FIELDS}
    if isinstance(out.get("name"), str):
        out["name"] = out["name"].strip()
    if out.get("rules") is None and "rules" in out:
        out["rules"] = {}
    return out


def versions_of(segment: Segment) -> Any:
    """Every version of the segment, newest first."""
    return versioning.versions_of(KIND, segment)


def create_draft(segment: Segment, content: dict[str, Any], *, user: Any, note: str = "") -> SegmentVersion:
    """A new draft: the published content with the keys given replaced (validated; nothing live changes)."""
    return versioning.create_draft(KIND, segment, _clean(content), user=user, note=note)


def update_draft(
    version: SegmentVersion, content: dict[str, Any], *, user: Any, note: str | None = None
) -> SegmentVersion:
    """Change a draft; a published or superseded version raises :class:`DraftConflict`."""
    return versioning.update_draft(KIND, version, _clean(content), user=user, note=note)


def diff_version(version: SegmentVersion, against: SegmentVersion | None = None) -> list[dict[str, Any]]:
    """``[{path, change, before, after}]`` of the version against ``against`` or the published version."""
    return versioning.diff_version(KIND, version, against)


def preview_version(version: SegmentVersion) -> dict[str, Any]:
    """Members if published now (count, ARR, sample) and who would enter and leave, with ARR, compared with the
    published rules evaluated now. Writes nothing."""
    segment = version.segment
    published = versioning.published_content(KIND, segment)
    return preview_change(
        segment.organization, version.content.get("rules") or {}, against=published.get("rules") or {}
    )


def publish(version: SegmentVersion, *, user: Any, note: str) -> SegmentVersion:
    """Publish the draft (audited ``segment.published``); its members are refreshed once this commits."""
    return versioning.publish(KIND, version, user=user, note=note)


def rollback(segment: Segment, *, user: Any, note: str) -> SegmentVersion:
    """A new version with the previously published content, published at once (audited ``segment.rolled_back``)."""
    return versioning.rollback(KIND, segment, user=user, note=note)


def record_saved(segment: Segment, *, before: dict[str, Any] | None, user: Any, note: str = "") -> SegmentVersion:
    """After a plain save (API, editor): the new content published as a version, audited (see
    :func:`accounts.versioning.record_saved`)."""
    return versioning.record_saved(KIND, segment, before=before, user=user, note=note)
