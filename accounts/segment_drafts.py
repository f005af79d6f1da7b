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
    name = versioning.name_problems(
        Segment, organization, content.get("name"), segment,
        blank="Give the segment a name.", taken="A segment with this name already exists.", max_length=NAME_MAX,
    )  # fmt: skip
    if name:
        errors["name"] = name
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


_DRAFTS: versioning.Drafts[Segment, SegmentVersion] = versioning.Drafts(KIND, empties={"rules": {}})


# The bound services of this kind (``accounts.versioning.Drafts``), each taking the segment or its version first.
#: Every version of the segment, newest first.
versions_of = _DRAFTS.versions_of
#: A new draft: the published content with the keys given replaced (validated; nothing live changes).
create_draft = _DRAFTS.create_draft
#: Change a draft; a published or superseded version raises :class:`DraftConflict`.
update_draft = _DRAFTS.update_draft
#: ``[{path, change, before, after}]`` of the version against ``against`` or the published version.
diff_version = _DRAFTS.diff_version
#: Publish the draft (audited ``segment.published``).
publish = _DRAFTS.publish
#: A new version with the previously published content, published at once (audited ``segment.rolled_back``).
rollback = _DRAFTS.rollback
#: After a plain save (API, editor): the new content published as a version, audited.
record_saved = _DRAFTS.record_saved


def preview_version(version: SegmentVersion) -> dict[str, Any]:
    """Members if published now (count, ARR, sample) and who would enter and leave, with ARR, compared with the
    published rules evaluated now. Writes nothing."""
    segment = version.segment
    published = versioning.published_content(KIND, segment)
    return preview_change(
        segment.organization, version.content.get("rules") or {}, against=published.get("rules") or {}
    )
