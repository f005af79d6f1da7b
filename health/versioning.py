"""Publishing a scorecard version: the stamp, the audit entry and the recompute shared by
:mod:`health.drafts` (publish, rollback) and :func:`health.services.save_scorecard_version` (create and
publish at once). Below both, so neither imports the other's module for it."""

from __future__ import annotations

import copy
from typing import Any

from django.db import transaction
from django.utils import timezone

from cs_platform.audit import record_audit
from cs_platform.configdiff import diff

from .models import Scorecard, ScorecardVersion
from .scoring import DefinitionError, validate_definition

__all__ = ["NOTE_MAX", "create_published", "definition_diff", "make_current"]

NOTE_MAX = 300


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def definition_diff(before: Any, after: Any) -> list[dict[str, Any]]:
    """:func:`cs_platform.configdiff.diff` of two definitions, without the rows where only a number's
    spelling changed (``2.0`` → ``2``: the structured editor writes whole numbers as integers; the
    scoring reads the same value)."""
    return [
        row
        for row in diff(before, after)
        if not (_number(row["before"]) and _number(row["after"]) and row["before"] == row["after"])
    ]


def user_or_none(user: Any) -> Any:
    return user if getattr(user, "pk", None) else None


def validated(definition: Any) -> dict[str, Any]:
    errors = validate_definition(definition)
    if errors:
        raise DefinitionError(errors)
    return definition


def lock_scorecard(scorecard: Scorecard) -> Scorecard:
    return Scorecard.objects.for_org(scorecard.organization_id).select_for_update().get(pk=scorecard.pk)


def versions_of(scorecard: Scorecard) -> Any:
    return ScorecardVersion.objects.for_org(scorecard.organization_id).filter(scorecard_id=scorecard.pk)


def next_number(scorecard: Scorecard) -> int:
    last = versions_of(scorecard).order_by("-number").values_list("number", flat=True).first()
    return (last or 0) + 1


def current_version(locked: Scorecard) -> ScorecardVersion | None:
    """The version the (locked) scorecard scores with now, or ``None``."""
    if not locked.current_version_id:
        return None
    return ScorecardVersion.objects.for_org(locked.organization_id).get(pk=locked.current_version_id)


def new_version(
    locked: Scorecard, definition: dict[str, Any], *, user: Any, note: str, **fields: Any
) -> ScorecardVersion:
    """A new version of the (locked) scorecard numbered next, holding a copy of ``definition`` (not validated
    here), ``note`` cut to :data:`NOTE_MAX`; ``fields`` are the model's other columns."""
    return ScorecardVersion.all_orgs.create(
        organization_id=locked.organization_id,
        scorecard=locked,
        number=next_number(locked),
        definition=copy.deepcopy(definition),
        note=(note or "")[:NOTE_MAX],
        created_by=user_or_none(user),
        **fields,
    )


def make_current(
    locked: Scorecard,
    version: ScorecardVersion,
    *,
    user: Any,
    note: str,
    action: str,
    before: ScorecardVersion | None,
    recompute: bool = True,
) -> None:
    """Publish ``version`` on the locked ``locked`` scorecard: stamp it (when, who, the note), make it the
    scorecard's ``current_version``, write the audit entry ``action`` with the diff against ``before`` (the
    version it replaces) and, when ``recompute``, queue a recorded recompute of the organization after
    commit. Call inside the transaction that holds the scorecard's lock."""
    version.published_at = timezone.now()
    version.published_by = user_or_none(user)
    version.publish_note = note[:NOTE_MAX]
    version.save(update_fields=["published_at", "published_by", "publish_note"])
    locked.current_version = version
    locked.save(update_fields=["current_version", "updated_at"])
    data: dict[str, Any] = {
        "version": version.number,
        "previous_version": before.number if before is not None else None,
    }
    if version.restores_id is not None:
        data["restores_version"] = version.restores.number
    record_audit(
        locked.organization_id,
        action,
        subject_type="scorecard",
        subject_id=locked.pk,
        subject_label=locked.name,
        actor=user_or_none(user),
        note=note,
        changes=definition_diff(before.definition if before is not None else {}, version.definition),
        data=data,
    )
    if recompute:
        queue_recompute(locked.organization_id, action)


def queue_recompute(organization_id: int, action: str) -> None:
    from .triggers import schedule_org_recompute

    schedule_org_recompute(organization_id, reason=action)


def require_note(note: str) -> str:
    note = (note or "").strip()
    if not note:
        raise ValueError("A note is required: say what changed and why.")
    return note


@transaction.atomic
def create_published(
    scorecard: Scorecard, definition: dict[str, Any], *, user: Any, note: str = ""
) -> ScorecardVersion:
    """Create a version and publish it at once (what ``health.services.save_scorecard_version`` does for
    its callers: the API's scorecard ``definition`` field, the page creating a scorecard). Audited as
    ``scorecard.published``; queues a recompute unless it is the scorecard's first version (a new scorecard).
    An open draft stays a draft."""
    validated(definition)
    locked = lock_scorecard(scorecard)
    before = current_version(locked)
    version = new_version(locked, definition, user=user, note=note)
    action = "scorecard.published"
    recompute = before is not None
    make_current(locked, version, user=user, note=note or "", action=action, before=before, recompute=recompute)
    scorecard.current_version = version
    return version
