"""Records deleted in the source CRM: what Retain does with the account, contact or contract they became.

A CRM clean-up must not erase a customer's history (renewals, health, ARR tie-out, the timeline), so a
deletion in the CRM never deletes a row here (docs/integrations.md "Deletions in the CRM"):

- **account** (a HubSpot company, a Salesforce Account): kept as it is, ``source_deleted_at`` set. Account
  360's Source panel says so, the API answers it and filters on it (``deleted_in_source``).
- **contact**: an active contact is deactivated (``is_active`` false, ``source_deleted_at`` set; its
  activities stay). No ``contact.departed`` event: a CRM deletion is as often a merge of duplicates as a
  person leaving. A contact that was already inactive is left alone (outcome ``already_inactive``): so a
  restore reactivates exactly the contacts a deletion deactivated.
- **contract** (a deal / won opportunity): kept with its lines, ARR and renewal, ``source_deleted_at`` set.

A record the CRM restores (it comes back in a sync) has its flag cleared (and a contact the deletion
deactivated is active again): :func:`restore_in_source`.

Events (docs/events.md): ``account.deleted_in_source`` when an account is flagged, ``account.restored_in_source``
when its flag is cleared (none in a dry run; none for contacts and contracts: a contact's deletion is not a
``contact.departed``, see above).

Both are called by the connector framework (``integrations.sync``, a higher app) with the import kind the
object lands in; they write set-based (one select, one update per kind and page) in the caller's
transaction and never send ``post_save`` (as the imports, no ``account.updated`` event; the two events below
are recorded set-based, one insert).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Model
from django.utils import timezone

from cs_platform.events import NewEvent, record_events

from .events import account_data
from .models import Account, Contact, Contract

__all__ = ["DELETION_KINDS", "Outcome", "SourceDeletion", "mark_deleted_in_source", "restore_in_source"]


class Outcome:
    """What a deletion in the CRM did to the Retain row (stored on the sync run's deletion list)."""

    FLAGGED = "flagged"  # account or contract: kept, marked deleted in source
    DEACTIVATED = "deactivated"  # contact: made inactive and marked
    ALREADY_FLAGGED = "already_flagged"  # marked by an earlier run: nothing changes
    ALREADY_INACTIVE = "already_inactive"  # contact already inactive: nothing changes
    NOT_IN_RETAIN = "not_in_retain"  # no row with that id (never synced, or refused at its sync)
    RESTORED = "restored"  # back in the CRM: the mark is cleared (a deactivated contact is active again)

    #: Outcomes that changed (or, in a dry run, would change) a row: what the run's ``deleted`` counts.
    APPLIED = frozenset({FLAGGED, DEACTIVATED})


#: Import kind → (model, the column holding the CRM id).
DELETION_KINDS: dict[str, tuple[type[Model], str]] = {
    "accounts": (Account, "external_id"),
    "contacts": (Contact, "external_id"),
    "contracts": (Contract, "number"),
}


@dataclass(frozen=True)
class SourceDeletion:
    """One record's outcome: its CRM id, the :class:`Outcome`, and the Retain row's id (when there is one)."""

    external_id: str
    outcome: str
    record_id: int | None = None


def mark_deleted_in_source(
    organization: Any, kind: str, external_ids: list[str], *, at: dt.datetime | None = None, dry_run: bool = False
) -> list[SourceDeletion]:
    """Apply the CRM's deletion of ``external_ids`` to the rows of import kind ``kind`` (see the module
    docstring); one outcome per distinct id, in the given order. ``dry_run`` answers the same outcomes and
    writes nothing. Raises ``KeyError`` for a kind without deletion semantics (see :data:`DELETION_KINDS`)."""
    model, column = DELETION_KINDS[kind]
    at = at or timezone.now()
    ids = list(dict.fromkeys(i for i in external_ids if i))
    fields = ["pk", column, "source_deleted_at"] + (["is_active"] if model is Contact else [])
    rows = {
        row[column]: row for row in model.objects.for_org(organization).filter(**{f"{column}__in": ids}).values(*fields)
    }
    outcomes: list[SourceDeletion] = []
    to_flag: list[int] = []
    for ext in ids:
        row = rows.get(ext)
        if row is None:
            outcomes.append(SourceDeletion(ext, Outcome.NOT_IN_RETAIN))
        elif row["source_deleted_at"] is not None:
            outcomes.append(SourceDeletion(ext, Outcome.ALREADY_FLAGGED, row["pk"]))
        elif model is Contact and not row["is_active"]:
            outcomes.append(SourceDeletion(ext, Outcome.ALREADY_INACTIVE, row["pk"]))
        else:
            to_flag.append(row["pk"])
            outcomes.append(
                SourceDeletion(ext, Outcome.DEACTIVATED if model is Contact else Outcome.FLAGGED, row["pk"])
            )
    if to_flag and not dry_run:
        changes: dict[str, Any] = {"source_deleted_at": at, "updated_at": timezone.now()}
        if model is Contact:
            changes["is_active"] = False
        model.objects.for_org(organization).filter(pk__in=to_flag).update(**changes)
        if model is Account:
            _record(organization, "account.deleted_in_source", to_flag)
    return outcomes


def _record(organization: Any, name: str, account_ids: list[int]) -> None:
    """``account.deleted_in_source`` / ``account.restored_in_source`` for these accounts, as they are now,
    in one insert inside the caller's transaction (the events commit or roll back with the flags)."""
    accounts = Account.objects.for_org(organization).filter(pk__in=account_ids).order_by("pk")
    events = [
        NewEvent(name, account.pk, {**account_data(account), "source_deleted_at": account.source_deleted_at})
        for account in accounts
    ]
    record_events(getattr(organization, "pk", organization), events)


def restore_in_source(organization: Any, kind: str, external_ids: list[str], *, dry_run: bool = False) -> list[str]:
    """Clear the mark of the rows among ``external_ids`` that carry one (the CRM answered them again: restored
    from its recycle bin); a contact is active again. Answers the restored ids. One query when none is
    marked (the partial index on accounts makes it cheap). Kinds without deletion semantics: ``[]``."""
    if kind not in DELETION_KINDS or not external_ids:
        return []
    model, column = DELETION_KINDS[kind]
    marked = model.objects.for_org(organization).filter(
        **{f"{column}__in": external_ids}, source_deleted_at__isnull=False
    )
    found = list(marked.values_list("pk", column))
    if found and not dry_run:
        changes: dict[str, Any] = {"source_deleted_at": None, "updated_at": timezone.now()}
        if model is Contact:
            changes["is_active"] = True
        model.objects.for_org(organization).filter(pk__in=[pk for pk, _ in found]).update(**changes)
        if model is Account:
            _record(organization, "account.restored_in_source", [pk for pk, _ in found])
    return sorted({ext for _, ext in found})
