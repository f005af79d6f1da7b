"""Configuration as drafts (issue 14, docs/admin-guide.md "Drafts"): the machinery shared by the kinds of
versioned configuration of the apps at or above ``accounts`` (segments here, playbooks in ``playbooks``).

A kind (:class:`VersionedKind`) names its live model (``Segment``, ``Playbook``: what everything reads),
its version model (``SegmentVersion``, ``PlaybookVersion``: ``number``, ``state``, ``content``, ``note``,
who and when), how to read the content off the live object, copy it back, fill what a body left out and
validate it (the same validators the live object's own save paths use).

The rules:

* a **draft** is edited freely and changes nothing live; several may exist;
* **publishing** a draft, in one transaction with the live row locked, validates it again, copies its
  content onto the live object, marks the previously published version ``superseded`` and records the
  audit entry ``<kind>.published`` with the field-by-field diff (:func:`cs_platform.configdiff.diff`);
* **rolling back** makes a *new* version holding the content of the version published before the current
  one, published at once (audited ``<kind>.rolled_back``): history is never rewritten;
* the live objects' existing save paths (API ``POST``/``PUT``/``PATCH``, the editors' plain save) are
  "create and publish": :func:`record_saved` writes the published version and the audit entry.

Rows created without a version (default segments, the demo's playbooks, rows older than the versions)
get their version 1, published with the live content, the first time a draft or a save needs one
(:func:`ensure_baseline`); migrations backfilled the rows that existed.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connection, models, transaction
from django.utils import timezone

from cs_platform.audit import record_audit
from cs_platform.configdiff import diff

from .choices import VersionState

__all__ = [
    "DraftConflict",
    "DraftInvalid",
    "Drafts",
    "VersionedKind",
    "create_draft",
    "default_against",
    "diff_rows",
    "diff_version",
    "ensure_baseline",
    "name_problems",
    "previous_published",
    "publish",
    "published_content",
    "published_version",
    "record_saved",
    "rollback",
    "update_draft",
    "versions_of",
]

ObjT = TypeVar("ObjT", bound=models.Model)
VersionT = TypeVar("VersionT", bound=models.Model)


class DraftConflict(Exception):
    """The version is not in a state that allows this (a published one edited, nothing to roll back to):
    the API's ``409``."""


class DraftInvalid(Exception):
    """The content is invalid: ``errors`` maps a path (``rules.conditions.0.value``) to its messages (the
    API's ``400``)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{path}: {', '.join(messages)}" for path, messages in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class VersionedKind:
    """One kind of versioned configuration (see the module docstring)."""

    #: ``segment`` / ``playbook``: the audit subject type and the prefix of its actions.
    name: str
    model: type[models.Model]
    version_model: type[models.Model]
    #: The version's foreign key to the live object (``segment`` / ``playbook``).
    parent_field: str
    #: The content keys, in the order the pages show them.
    fields: tuple[str, ...]
    content_of: Callable[[Any], dict[str, Any]]
    #: Copies a (complete, valid) content onto the live object, without saving it.
    apply: Callable[[Any, dict[str, Any]], None]
    #: ``(organization, content, obj)`` → ``{path: [messages]}``, empty when valid.
    problems: Callable[[Any, dict[str, Any], Any], dict[str, list[str]]]
    #: Called inside the publishing transaction after the live object was saved (segments: refresh).
    after_publish: Callable[[Any], None] | None = None

    def versions(self, obj: Any) -> models.QuerySet[Any]:
        return self.version_model.all_orgs.filter(organization_id=obj.organization_id, **{self.parent_field: obj})  # type: ignore[attr-defined]

    def parent_of(self, version: Any) -> Any:
        return getattr(version, self.parent_field)


def versions_of(kind: VersionedKind, obj: Any) -> models.QuerySet[Any]:
    """Every version of ``obj``, newest number first."""
    return kind.versions(obj).select_related("created_by", "published_by").order_by("-number")


def published_version(kind: VersionedKind, obj: Any) -> Any:
    """The published version of ``obj``, or ``None`` (a row never versioned yet)."""
    return kind.versions(obj).filter(state=VersionState.PUBLISHED).first()


def published_content(kind: VersionedKind, obj: Any) -> dict[str, Any]:
    """What is live: the published version's content, or the live object's when it has none yet."""
    version = published_version(kind, obj)
    return version.content if version is not None else kind.content_of(obj)


def previous_published(kind: VersionedKind, obj: Any) -> Any:
    """The version published before the current one (the latest superseded), or ``None``."""
    return (
        kind.versions(obj)
        .filter(state=VersionState.SUPERSEDED, published_at__isnull=False)
        .order_by("-published_at", "-number")
        .first()
    )


def default_against(kind: VersionedKind, version: Any) -> Any:
    """What a version is compared with by default: the published version, or for the published version
    itself the one published before it (``None`` when there is none)."""
    obj = kind.parent_of(version)
    if version.state == VersionState.PUBLISHED:
        return previous_published(kind, obj)
    return published_version(kind, obj)


def _lock(kind: VersionedKind, obj: Any) -> Any:
    """The live row again, locked until the transaction ends: one writer of an object's versions at a time."""
    rows = kind.model.all_orgs.filter(pk=obj.pk, organization_id=obj.organization_id)  # type: ignore[attr-defined]
    if connection.features.has_select_for_update:
        rows = rows.select_for_update(of=("self",))
    return rows.get()


def _next_number(kind: VersionedKind, obj: Any) -> int:
    last = kind.versions(obj).aggregate(n=models.Max("number"))["n"]
    return (last or 0) + 1


def _new_version(kind: VersionedKind, obj: Any, content: dict[str, Any], **fields: Any) -> Any:
    return kind.version_model.all_orgs.create(  # type: ignore[attr-defined]
        organization_id=obj.organization_id,
        **{kind.parent_field: obj},
        number=_next_number(kind, obj),
        content=content,
        **fields,
    )


def ensure_baseline(kind: VersionedKind, obj: Any, *, content: dict[str, Any] | None = None) -> Any:
    """The published version of ``obj``, made now (number 1 or next, ``content`` or the live content,
    nobody's, "Baseline") if it has none. Call inside the transaction that locked ``obj``."""
    version = published_version(kind, obj)
    if version is None:
        at = timezone.now()
        version = _new_version(
            kind,
            obj,
            content if content is not None else kind.content_of(obj),
            state=VersionState.PUBLISHED,
            note="Baseline: the configuration before versions were kept",
            published_at=at,
        )
    return version


def _complete(kind: VersionedKind, base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with the keys of ``changes`` that are content keys replaced; unknown keys are dropped."""
    return {name: changes[name] if name in changes else base.get(name) for name in kind.fields}


def _check(kind: VersionedKind, obj: Any, content: dict[str, Any]) -> None:
    errors = kind.problems(obj.organization, content, obj)
    if errors:
        raise DraftInvalid(errors)


def create_draft(kind: VersionedKind, obj: Any, content: dict[str, Any], *, user: Any, note: str = "") -> Any:
    """A new draft of ``obj``: the published content with the keys of ``content`` replaced. Validated (a
    :class:`DraftInvalid` names every problem); changes nothing live."""
    with transaction.atomic():
        live = _lock(kind, obj)
        base = ensure_baseline(kind, live)
        full = _complete(kind, base.content, content)
        _check(kind, live, full)
        return _new_version(kind, live, full, state=VersionState.DRAFT, note=note or "", created_by=_user(user))


def update_draft(
    kind: VersionedKind, version: Any, content: dict[str, Any], *, user: Any, note: str | None = None
) -> Any:
    """Change a draft (the keys of ``content``; ``note`` when given). Only drafts change: a published or
    superseded version is a :class:`DraftConflict`."""
    with transaction.atomic():
        live = _lock(kind, kind.parent_of(version))
        current = kind.version_model.all_orgs.get(pk=version.pk)  # type: ignore[attr-defined]
        if current.state != VersionState.DRAFT:
            raise DraftConflict(f"Version {current.number} is {current.state}: only drafts can be changed.")
        full = _complete(kind, current.content, content)
        _check(kind, live, full)
        current.content = full
        if note is not None:
            current.note = note
        current.save(update_fields=["content", "note", "updated_at"])
        return current


def diff_version(kind: VersionedKind, version: Any, against: Any = None) -> list[dict[str, Any]]:
    """Field by field, what ``version`` changes compared with ``against`` (another version of the same
    object) or, by default, with what is published now."""
    before = against.content if against is not None else published_content(kind, kind.parent_of(version))
    return diff(before, version.content)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def diff_rows(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The diff's rows with ``before_text`` / ``after_text`` for a page (JSON for lists and dicts)."""
    return [{**row, "before_text": _text(row["before"]), "after_text": _text(row["after"])} for row in changes]


def _make_live(kind: VersionedKind, live: Any, content: dict[str, Any]) -> None:
    kind.apply(live, content)
    live.save()
    if kind.after_publish is not None:
        kind.after_publish(live)


def publish(kind: VersionedKind, version: Any, *, user: Any, note: str = "") -> Any:
    """Publish a draft: validated again (what it names may have changed since), copied onto the live
    object, the previous version superseded, audited ``<kind>.published`` with the diff; all or nothing."""
    with transaction.atomic():
        live = _lock(kind, kind.parent_of(version))
        current = kind.version_model.all_orgs.get(pk=version.pk)  # type: ignore[attr-defined]
        if current.state != VersionState.DRAFT:
            raise DraftConflict(f"Version {current.number} is {current.state}: only a draft can be published.")
        _check(kind, live, current.content)
        before = ensure_baseline(kind, live)
        changes = diff(before.content, current.content)
        kind.versions(live).filter(state=VersionState.PUBLISHED).update(state=VersionState.SUPERSEDED)
        current.state = VersionState.PUBLISHED
        current.published_by = _user(user)
        current.published_at = timezone.now()
        if note:
            current.note = note
        current.save(update_fields=["state", "published_by", "published_at", "note", "updated_at"])
        _make_live(kind, live, current.content)
        _audit(kind, live, f"{kind.name}.published", user, note, changes, {"version": current.number,
               "previous_version": before.number})  # fmt: skip
        return current


def rollback(kind: VersionedKind, obj: Any, *, user: Any, note: str = "") -> Any:
    """Restore the content published before the current one, as a new version published at once (audited
    ``<kind>.rolled_back``). Nothing published before: :class:`DraftConflict`; content no longer valid
    (its segment deleted, a template deactivated): :class:`DraftInvalid`."""
    with transaction.atomic():
        live = _lock(kind, obj)
        current = ensure_baseline(kind, live)
        previous = previous_published(kind, live)
        if previous is None:
            raise DraftConflict("There is no earlier published version to roll back to.")
        _check(kind, live, previous.content)
        changes = diff(current.content, previous.content)
        kind.versions(live).filter(state=VersionState.PUBLISHED).update(state=VersionState.SUPERSEDED)
        at = timezone.now()
        restored = _new_version(
            kind,
            live,
            previous.content,
            state=VersionState.PUBLISHED,
            note=note or f"Rolled back to version {previous.number}",
            created_by=_user(user),
            published_by=_user(user),
            published_at=at,
        )
        _make_live(kind, live, previous.content)
        data = {"version": restored.number, "restored_version": previous.number, "previous_version": current.number}
        _audit(kind, live, f"{kind.name}.rolled_back", user, note, changes, data)
        return restored


def record_saved(kind: VersionedKind, obj: Any, *, before: dict[str, Any] | None, user: Any, note: str = "") -> Any:
    """After a plain save of the live object (``before``: its content before the save, ``None`` when it was
    just created), in the same transaction: the save is "create and publish". A changed content becomes a
    new published version, audited ``<kind>.published``; an unchanged one (only ``position`` or ``active``
    changed) records nothing. Returns the published version."""
    if before is not None:
        ensure_baseline(kind, obj, content=before)
    after = kind.content_of(obj)
    current = published_version(kind, obj)
    if current is not None and current.content == after:
        return current
    kind.versions(obj).filter(state=VersionState.PUBLISHED).update(state=VersionState.SUPERSEDED)
    version = _new_version(
        kind,
        obj,
        after,
        state=VersionState.PUBLISHED,
        note=note or ("Created" if before is None else "Saved and published"),
        created_by=_user(user),
        published_by=_user(user),
        published_at=timezone.now(),
    )
    data = {"version": version.number, "created": before is None}
    _audit(kind, obj, f"{kind.name}.published", user, note, diff(before or {}, after), data)
    return version


def _user(user: Any) -> Any:
    return user if getattr(user, "pk", None) else None


def _audit(
    kind: VersionedKind,
    obj: Any,
    action: str,
    user: Any,
    note: str,
    changes: list[dict[str, Any]],
    data: dict[str, Any],
) -> None:
    record_audit(
        obj.organization_id,
        action,
        subject_type=kind.name,
        subject_id=obj.pk,
        subject_label=str(obj),
        actor=user,
        note=note,
        changes=changes,
        data=data,
    )


def name_problems(
    model: type[models.Model], organization: Any, name: Any, obj: Any, *, blank: str, taken: str, max_length: int
) -> list[str]:
    """The problems of a kind's ``name``: ``blank`` when it is not a non-blank string, too long, or ``taken``
    when another row of ``model`` in the organization (not ``obj``) has it; empty when valid."""
    if not isinstance(name, str) or not name.strip():
        return [blank]
    if len(name) > max_length:
        return [f"At most {max_length} characters."]
    others = model.objects.for_org(organization).filter(name=name.strip())  # type: ignore[attr-defined]
    if obj is not None:
        others = others.exclude(pk=obj.pk)
    return [taken] if others.exists() else []


class Drafts(Generic[ObjT, VersionT]):
    """The draft services of one kind, bound to it: what ``accounts.segment_drafts`` and ``playbooks.drafts``
    export as their module functions (the same signatures there). ``clean`` normalises a body before it is
    completed and validated, after the common steps: only the content keys are kept, a string ``name`` is
    stripped and a key given as ``None`` that has an entry in ``empties`` becomes that empty value."""

    def __init__(
        self,
        kind: VersionedKind,
        *,
        empties: dict[str, Any],
        clean: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.kind = kind
        self.empties = empties
        self.extra_clean = clean

    def clean(self, content: dict[str, Any]) -> dict[str, Any]:
        """The body as the services take it (see the class docstring)."""
        out = {k: v for k, v in content.items() if k in self.kind.fields}
        if isinstance(out.get("name"), str):
            out["name"] = out["name"].strip()
        if self.extra_clean is not None:
            out = self.extra_clean(out)
        for key, empty in self.empties.items():
            if key in out and out[key] is None:
                out[key] = copy.copy(empty)
        return out

    def versions_of(self, obj: ObjT) -> models.QuerySet[VersionT]:
        """Every version of the live object, newest first."""
        return versions_of(self.kind, obj)

    def create_draft(self, obj: ObjT, content: dict[str, Any], *, user: Any, note: str = "") -> VersionT:
        """A new draft: the published content with the keys given replaced (validated; nothing live changes)."""
        return create_draft(self.kind, obj, self.clean(content), user=user, note=note)

    def update_draft(
        self, version: VersionT, content: dict[str, Any], *, user: Any, note: str | None = None
    ) -> VersionT:
        """Change a draft; a published or superseded version raises :class:`DraftConflict`."""
        return update_draft(self.kind, version, self.clean(content), user=user, note=note)

    def diff_version(self, version: VersionT, against: VersionT | None = None) -> list[dict[str, Any]]:
        """``[{path, change, before, after}]`` of the version against ``against`` or the published version."""
        return diff_version(self.kind, version, against)

    def publish(self, version: VersionT, *, user: Any, note: str) -> VersionT:
        """Publish the draft (audited ``<kind>.published``); see :func:`publish`."""
        return publish(self.kind, version, user=user, note=note)

    def rollback(self, obj: ObjT, *, user: Any, note: str) -> VersionT:
        """A new version with the previously published content, published at once (audited
        ``<kind>.rolled_back``); see :func:`rollback`."""
        return rollback(self.kind, obj, user=user, note=note)

    def record_saved(self, obj: ObjT, *, before: dict[str, Any] | None, user: Any, note: str = "") -> VersionT:
        """After a plain save (API, editor): the new content published as a version, audited (see
        :func:`record_saved`)."""
        return record_saved(self.kind, obj, before=before, user=user, note=note)
