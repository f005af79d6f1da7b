"""Playbooks edited as drafts (issue 14; docs/admin-guide.md "Drafts"): a :class:`~playbooks.models.PlaybookVersion`
holds ``{"name", "description", "trigger", "trigger_params", "conditions", "segment", "cooldown_days",
"actions"}``; the :class:`~playbooks.models.Playbook` keeps the published content, which is all the engine
reads. ``active`` is not versioned: activating stays its own switch (``playbooks.activation``). The rules are
:mod:`accounts.versioning`'s; this module binds them to playbooks:

* validation is the API's and the editor's (:func:`playbooks.validation.validate_playbook`, a non-blank
  name unique in the organization), run again at publish time (a segment deleted or an email template
  deactivated since the draft was saved is refused then);
* :func:`preview_version` tells which accounts would fire now under the draft, with their ARR, and which
  would start or stop firing compared with what is published (:func:`playbooks.engine.would_fire`, the
  engine's own preview; writes nothing).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Sum

from accounts import versioning
from accounts.models import Account
from accounts.versioning import DraftConflict, DraftInvalid

from . import engine
from .actions import plan
from .models_engine import Playbook, PlaybookVersion, TriggerKind
from .triggers import TRIGGERS
from .validation import validate_playbook

__all__ = [
    "KIND",
    "DraftConflict",
    "DraftInvalid",
    "content_of",
    "create_draft",
    "diff_version",
    "playbook_with",
    "preview_version",
    "publish",
    "record_saved",
    "rollback",
    "update_draft",
    "versions_of",
]

FIELDS = ("name", "description", "trigger", "trigger_params", "conditions", "segment", "cooldown_days", "actions")
NAME_MAX = 120
SAMPLE = 10


def content_of(playbook: Playbook) -> dict[str, Any]:
    """The versioned content of a playbook as it is live (``segment``: the segment's id or ``None``)."""
    return {
        "name": playbook.name,
        "description": playbook.description or "",
        "trigger": playbook.trigger,
        "trigger_params": playbook.trigger_params or {},
        "conditions": playbook.conditions or {},
        "segment": playbook.segment_id,
        "cooldown_days": playbook.cooldown_days,
        "actions": playbook.actions or [],
    }


def _apply(playbook: Playbook, content: dict[str, Any]) -> None:
    playbook.name = content["name"]
    playbook.description = content.get("description") or ""
    playbook.trigger = content["trigger"]
    playbook.trigger_params = content.get("trigger_params") or {}
    playbook.conditions = content.get("conditions") or {}
    playbook.segment_id = content.get("segment")
    playbook.cooldown_days = content.get("cooldown_days") or 0
    playbook.actions = content.get("actions") or []


def playbook_with(playbook: Playbook, content: dict[str, Any]) -> Playbook:
    """An unsaved copy of ``playbook`` (same id, so its own firings count for the cooldown) carrying
    ``content``: what the engine's preview is given for a draft."""
    copy = Playbook(organization_id=playbook.organization_id, pk=playbook.pk, active=playbook.active)
    _apply(copy, content)
    return copy


def content_problems(organization: Any, content: dict[str, Any], playbook: Playbook | None) -> dict[str, list[str]]:
    """Every problem of a playbook's content, by path (``trigger_params.days``, ``actions.1.reason``)."""
    errors: dict[str, list[str]] = {}
    name = versioning.name_problems(
        Playbook, organization, content.get("name"), playbook,
        blank="Give the playbook a name.", taken="Another playbook has this name.", max_length=NAME_MAX,
    )  # fmt: skip
    if name:
        errors["name"] = name
    if not isinstance(content.get("description") or "", str):
        errors["description"] = ["Expected text."]
    segment = content.get("segment")
    if segment is not None and (isinstance(segment, bool) or not isinstance(segment, int)):
        errors["segment"] = ["Expected a segment id or null."]
        segment = None
    if content.get("trigger") not in TriggerKind.values:
        errors.setdefault("trigger", []).append(f"Expected one of {', '.join(TriggerKind.values)}.")
        return errors
    for path, message in validate_playbook(
        organization,
        trigger=content.get("trigger"),
        trigger_params=content.get("trigger_params") or {},
        conditions=content.get("conditions") or {},
        segment_id=segment,
        actions=content.get("actions") if content.get("actions") is not None else [],
        cooldown_days=content.get("cooldown_days") if content.get("cooldown_days") is not None else 0,
    ):
        errors.setdefault(path, []).append(message)
    return errors


KIND = versioning.VersionedKind(
    name="playbook",
    model=Playbook,
    version_model=PlaybookVersion,
    parent_field="playbook",
    fields=FIELDS,
    content_of=content_of,
    apply=_apply,
    problems=content_problems,
)


def _segment_id(content: dict[str, Any]) -> dict[str, Any]:
    segment = content.get("segment")
    if segment is not None and hasattr(segment, "pk"):
        content["segment"] = segment.pk
    return content


_DRAFTS: versioning.Drafts[Playbook, PlaybookVersion] = versioning.Drafts(
    KIND,
    empties={"trigger_params": {}, "conditions": {}, "actions": [], "description": ""},
    clean=_segment_id,
)


# The bound services of this kind (``accounts.versioning.Drafts``), each taking the playbook or its version first.
#: Every version of the playbook, newest first.
versions_of = _DRAFTS.versions_of
#: A new draft: the published content with the keys given replaced (validated; nothing live changes).
create_draft = _DRAFTS.create_draft
#: Change a draft; a published or superseded version raises :class:`DraftConflict`.
update_draft = _DRAFTS.update_draft
#: ``[{path, change, before, after}]`` of the version against ``against`` or the published version.
diff_version = _DRAFTS.diff_version
#: Publish the draft (audited ``playbook.published``).
publish = _DRAFTS.publish
#: A new version with the previously published content, published at once (audited ``playbook.rolled_back``).
rollback = _DRAFTS.rollback
#: After a plain save (API, editor): the new content published as a version, audited.
record_saved = _DRAFTS.record_saved


def _side(organization_id: int, ids: list[int]) -> dict[str, Any]:
    accounts = Account.objects.for_org(organization_id).filter(pk__in=ids)
    arr = accounts.aggregate(arr=Sum("arr"))["arr"] if ids else None
    sample = list(accounts.select_related("owner").order_by("-arr", "name", "pk")[:SAMPLE]) if ids else []
    return {"accounts": len(ids), "arr": arr or Decimal("0"), "sample": sample}


def preview_version(version: PlaybookVersion) -> dict[str, Any]:
    """What the playbook would do now if this version were published: :func:`playbooks.engine.preview` of the
    version's content (matching accounts, ARR, cooldown, actions planned), plus ``published`` (the same
    counts for what is live) and the accounts that would **start** and **stop** firing, with ARR. Writes
    nothing; an invalid content previews as matching nobody, with its problems."""
    playbook = version.playbook
    org_id = playbook.organization_id
    problems = content_problems(playbook.organization, version.content, playbook)
    new_ids: list[int] = []
    if problems:
        trigger = TRIGGERS.get(version.content.get("trigger"))
        result = {
            "event_driven": bool(trigger and trigger.event_driven), "matching": 0, "arr": Decimal("0"),
            "in_cooldown": 0, "sample": [], **plan(org_id, [], []),
            "problems": [f"{path}: {m}" for path, messages in problems.items() for m in messages],
        }  # fmt: skip
    else:
        draft = playbook_with(playbook, version.content)
        result = engine.preview(draft)
        found = engine.would_fire(draft)
        new_ids = found[0] if found else []
    live = engine.would_fire(playbook)
    old_ids = live[0] if live else []
    result["published"] = _side(org_id, old_ids)
    starting = sorted(set(new_ids) - set(old_ids))
    stopping = sorted(set(old_ids) - set(new_ids))
    result["starting"] = _side(org_id, starting)
    result["stopping"] = _side(org_id, stopping)
    return result
