"""Scorecards edited as drafts, then published with a note, diffed, previewed and rolled back (issue 14).

A :class:`~health.models.ScorecardVersion` is in one of three states (``VersionState``):

- **draft**: ``published_at`` is empty. The only kind of version that may still change
  (:func:`update_draft`). A scorecard has **at most one open draft** (a partial unique constraint):
  :func:`create_draft` refuses a second one with :class:`DraftExists`, which carries the open draft so a
  caller can change it instead. Drafts never affect scores: the engine reads ``Scorecard.current_version``
  only.
- **published**: the scorecard's ``current_version``, the one every recompute scores with.
- **superseded**: published once, replaced since by a later publish or rollback.

Version numbers are given at creation (a draft takes the next number and keeps it when published), so
numbers follow creation order while the published history follows ``published_at``. History is linear:
:func:`rollback` never moves ``current_version`` back to an old row, it publishes a **new** version that
copies the previously published one's definition (``restores`` names it).

Every publish and rollback is written to the audit log (:func:`cs_platform.audit.record_audit`, actions
``scorecard.published`` / ``scorecard.rolled_back``, ``changes`` = the field-by-field diff against the
version it replaced) in the same transaction, and queues a recorded recompute of the organization once
the transaction commits. No domain event is recorded: the event catalogue (``cs_platform.events``) has
no configuration events, and it is a public webhook contract.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction

from .models import Scorecard, ScorecardVersion
from .scoring import DefinitionError
from .versioning import NOTE_MAX, create_published, current_version, definition_diff, make_current, new_version
from .versioning import lock_scorecard as _lock
from .versioning import require_note as _require_note
from .versioning import validated as _validated
from .versioning import versions_of as _versions

__all__ = [
    "DefinitionError",
    "DraftError",
    "DraftExists",
    "NotADraft",
    "NothingToRollBack",
    "create_draft",
    "create_published",
    "diff_version",
    "open_draft",
    "preview_version",
    "previous_published",
    "publish",
    "rollback",
    "scorecard_changes",
    "update_draft",
]


class DraftError(Exception):
    """A draft operation refused because of the versions' states (the API answers ``409``)."""


class DraftExists(DraftError):
    """The scorecard already has an open draft; ``draft`` is it (change it with :func:`update_draft`)."""

    def __init__(self, draft: ScorecardVersion) -> None:
        super().__init__(
            f"This scorecard already has an open draft (version {draft.number}): change it, or publish it first."
        )
        self.draft = draft


class NotADraft(DraftError):
    """Only drafts change or get published; published versions are immutable."""

    def __init__(self, version: ScorecardVersion) -> None:
        super().__init__(f"Version {version.number} is published: only a draft can be changed or published.")
        self.version = version


class NothingToRollBack(DraftError):
    """No version was published before the current one."""


def open_draft(scorecard: Scorecard) -> ScorecardVersion | None:
    """The scorecard's open draft, if any."""
    return _versions(scorecard).filter(published_at__isnull=True).first()


def previous_published(scorecard: Scorecard) -> ScorecardVersion | None:
    """The version published before the current one (what :func:`rollback` restores), if any."""
    return (
        _versions(scorecard)
        .filter(published_at__isnull=False)
        .exclude(pk=scorecard.current_version_id)
        .order_by("-published_at", "-number")
        .first()
    )


@transaction.atomic
def create_draft(scorecard: Scorecard, definition: dict[str, Any], *, user: Any, note: str = "") -> ScorecardVersion:
    """A new draft of ``scorecard`` with ``definition`` (validated: :class:`DefinitionError` lists every
    problem). Nothing the engine scores with changes. Raises :class:`DraftExists` when a draft is open."""
    _validated(definition)
    locked = _lock(scorecard)
    existing = open_draft(locked)
    if existing is not None:
        raise DraftExists(existing)
    try:
        with transaction.atomic():
            return new_version(locked, definition, user=user, note=note, published_at=None)
    except IntegrityError:  # pragma: no cover - the lock above serialises drafts of one scorecard
        raise DraftExists(open_draft(locked)) from None


@transaction.atomic
def update_draft(
    version: ScorecardVersion, definition: dict[str, Any] | None = None, *, user: Any, note: str | None = None
) -> ScorecardVersion:
    """Replace the draft's definition (and its note when given). Raises :class:`NotADraft` for a published
    version and :class:`DefinitionError` for an invalid definition."""
    if definition is not None:
        _validated(definition)
    locked = ScorecardVersion.objects.for_org(version.organization_id).select_for_update().get(pk=version.pk)
    if locked.published_at is not None:
        raise NotADraft(locked)
    fields = []
    if definition is not None:
        locked.definition = copy.deepcopy(definition)
        fields.append("definition")
    if note is not None:
        locked.note = note[:NOTE_MAX]
        fields.append("note")
    if fields:
        locked.save(update_fields=fields)
    version.definition, version.note = locked.definition, locked.note
    return locked


def diff_version(version: ScorecardVersion, against: ScorecardVersion | None = None) -> list[dict[str, Any]]:
    """Field by field, what ``version`` changes against ``against`` (default: the scorecard's published
    version; the published version against itself is ``[]``): ``[{"path", "change", "before", "after"}]``
    (:func:`cs_platform.configdiff.diff`, components and groups matched by key; a number written
    differently but equal, ``2.0`` and ``2``, is no change). Against nothing (a
    scorecard never published), every field is ``added``."""
    if against is None:
        current_id = (
            Scorecard.objects.for_org(version.organization_id)
            .values_list("current_version_id", flat=True)
            .get(pk=version.scorecard_id)
        )
        if current_id is not None:
            against = ScorecardVersion.objects.for_org(version.organization_id).get(pk=current_id)
    before = against.definition if against is not None else {}
    return definition_diff(before, version.definition)


def preview_version(version: ScorecardVersion) -> dict[str, Any]:
    """Which accounts bound to the scorecard would change colour today if ``version`` were published, with
    their ARR (:func:`health.services.preview_scorecard`'s answer); writes nothing."""
    from .services import preview_scorecard

    scorecard = (
        Scorecard.objects.for_org(version.organization_id).select_related("organization").get(pk=version.scorecard_id)
    )
    return preview_scorecard(scorecard.organization, scorecard, version.definition)


@transaction.atomic
def publish(version: ScorecardVersion, *, user: Any, note: str) -> ScorecardVersion:
    """Make the draft ``version`` its scorecard's published version: the engine scores with it from the
    next recompute (one is queued, recorded as a job, once this commits). Audited as
    ``scorecard.published`` with the diff against the version it replaces. Raises :class:`NotADraft` for a
    published version and ``ValueError`` without a note."""
    note = _require_note(note)
    scorecard = Scorecard.objects.for_org(version.organization_id).get(pk=version.scorecard_id)
    locked = _lock(scorecard)
    draft = ScorecardVersion.objects.for_org(version.organization_id).select_for_update().get(pk=version.pk)
    if draft.published_at is not None:
        raise NotADraft(draft)
    _validated(draft.definition)
    before = current_version(locked)
    make_current(locked, draft, user=user, note=note, action="scorecard.published", before=before)
    version.published_at, version.published_by, version.publish_note = (
        draft.published_at,
        draft.published_by,
        draft.publish_note,
    )
    return draft


@transaction.atomic
def rollback(scorecard: Scorecard, *, user: Any, note: str) -> ScorecardVersion:
    """Publish a **new** version copying the definition of the version published before the current one
    (linear history: nothing is deleted or re-activated). Audited as ``scorecard.rolled_back``; queues a
    recompute. Raises :class:`NothingToRollBack` when no earlier version was published, ``ValueError``
    without a note. An open draft stays a draft."""
    note = _require_note(note)
    locked = _lock(scorecard)
    target = previous_published(locked)
    if target is None:
        raise NothingToRollBack("Nothing to roll back to: no version was published before the current one.")
    before = current_version(locked)
    # Created published (``published_at`` is stamped again by ``_make_current``): never a second draft.
    rolled = f"Rollback to version {target.number}"
    version = new_version(locked, target.definition, user=user, note=rolled, restores=target)
    make_current(locked, version, user=user, note=note, action="scorecard.rolled_back", before=before)
    scorecard.current_version = version
    return version


def scorecard_changes(account: Any, *, since: dt.date, until: dt.date) -> list[dict[str, Any]]:
    """The days in ``since``..``until`` (the organization's calendar) on which a scorecard that scored
    ``account`` in that window got a newly published version (a publish or a rollback), oldest first:
    ``[{"date", "label", "versions": [{"scorecard", "number", "restores", "published_at"}]}]``, one row
    per day, ``label`` reading e.g. ``Default v3 published; Default v4 rolled back to v2``. One query (what
    the Account 360 health chart marks)."""
    from zoneinfo import ZoneInfo

    from .models import HealthSnapshot

    org_id = account.organization_id
    zone = ZoneInfo(getattr(account.organization, "time_zone", "") or "UTC")
    start = dt.datetime.combine(since, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    scored_by = HealthSnapshot.objects.for_org(org_id).filter(
        account_id=account.pk, date__gte=since, date__lte=until, scorecard_version__isnull=False
    )
    versions = (
        ScorecardVersion.objects.for_org(org_id)
        .filter(
            scorecard_id__in=scored_by.values("scorecard_version__scorecard_id"),
            published_at__gte=start,
            published_at__lt=end,
        )
        .select_related("scorecard", "restores")
        .order_by("published_at", "number")
    )
    days: dict[dt.date, dict[str, Any]] = {}
    for version in versions:
        day = version.published_at.astimezone(zone).date()
        row = days.setdefault(day, {"date": day, "parts": [], "versions": []})
        name = f"{version.scorecard.name} v{version.number}"
        restores = version.restores.number if version.restores_id is not None else None
        row["parts"].append(f"{name} rolled back to v{restores}" if restores else f"{name} published")
        row["versions"].append(
            {
                "scorecard": version.scorecard_id,
                "number": version.number,
                "restores": restores,
                "published_at": version.published_at,
            }
        )
    return [
        {"date": row["date"], "label": "; ".join(row["parts"]), "versions": row["versions"]}
        for row in sorted(days.values(), key=lambda r: r["date"])
    ]
