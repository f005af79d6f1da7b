"""Event ingestion (spec §8): store validated Segment-style events for one organization.

:mod:`health.ingest` turns HTTP bodies into :class:`IncomingEvent` objects (validation, sizes,
timestamps); :func:`ingest_events` resolves accounts and writes everything in ONE transaction, so a
batch is stored whole or not at all and is durable before the ``200``.

Per batch the number of queries is constant: one for the users' account links, one for the accounts
named by ``groupId``/``context.groupId`` (only when some event names one), one bulk insert of events,
plus one upsert of links when the batch has ``group`` calls and up to three for contacts when it has
``identify`` calls. Rollups (daily metrics) live in :mod:`health.rollups`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account, Contact, Organization

from .models import UsageEvent, UserAccountLink

__all__ = ["EventError", "IncomingEvent", "IngestRejected", "IngestResult", "ingest_events"]

ACCOUNT_NAME_MAX = 200
EXTERNAL_ID_MAX = 120  # Account.external_id / Contact.external_id


@dataclass(slots=True)
class EventError:
    """Why one event of a request was refused; ``index`` is its position in the batch (0-based)."""

    index: int
    message_id: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "messageId": self.message_id, "reason": self.reason}


class IngestRejected(Exception):
    """The whole request is refused (nothing was stored); ``errors`` name the offending events."""

    def __init__(self, detail: str, errors: list[EventError] | None = None, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.status = status


@dataclass(slots=True)
class IncomingEvent:
    """One validated event, normalised: ids as strings, ``timestamp`` aware and in UTC."""

    index: int
    type: str
    message_id: str
    timestamp: datetime
    user_id: str = ""
    anonymous_id: str = ""
    event: str = ""
    group_id: str = ""
    group_hint: str = ""  # context.groupId (or traits.company.id on identify): the account, if known
    properties: dict[str, Any] = field(default_factory=dict)
    email: str = ""  # identify: traits.email
    name: str = ""  # identify: traits.name or firstName + lastName; group: traits.name
    title: str = ""  # identify: traits.title
    derived_id: bool = False  # message_id was derived (the client sent none)

    @property
    def sent_message_id(self) -> str | None:
        """The ``messageId`` as the client sent it (errors name events by what the client knows)."""
        return None if self.derived_id else self.message_id

    @property
    def user_key(self) -> str:
        """Who the event is about: the ``userId``, else the ``anonymousId`` (links use the same key)."""
        return self.user_id or self.anonymous_id


@dataclass
class IngestResult:
    """What one request did. ``events`` counts events received (duplicates included: they are ignored
    by the database, which is what makes a retried batch harmless)."""

    events: int = 0
    accounts_created: list[str] = field(default_factory=list)
    links: int = 0
    contacts_created: int = 0
    contacts_updated: int = 0


def ingest_events(organization: Organization, events: list[IncomingEvent]) -> IngestResult:
    """Store ``events`` (already validated) for ``organization``, all or nothing.

    - ``group`` links the user (``userId``, else ``anonymousId``) to the account whose ``external_id``
      is ``groupId``; an unknown account is created (named from ``traits.name``) when the organization
      has ``create_accounts_from_events``, otherwise the request is rejected naming the events.
    - ``track``/``identify`` get the account named by ``context.groupId`` when it exists, else the
      user's linked account (links made earlier in the same batch count), else none.
    - ``identify`` with a resolved account upserts a contact (by ``userId`` = ``Contact.external_id``,
      then by ``traits.email``).
    - Every event is stored as a :class:`UsageEvent`; an already stored ``messageId`` is skipped.

    Raises :class:`IngestRejected` before writing anything when an account is unknown.
    """
    org_id = organization.pk
    user_keys = {e.user_key for e in events if e.user_key}
    named = {e.group_id for e in events if e.group_id} | {e.group_hint for e in events if e.group_hint}
    links: dict[str, int] = (
        dict(UserAccountLink.objects.for_org(org_id).filter(user_id__in=user_keys).values_list("user_id", "account_id"))
        if user_keys
        else {}
    )
    accounts: dict[str, int] = (
        dict(Account.objects.for_org(org_id).filter(external_id__in=named).values_list("external_id", "id"))
        if named
        else {}
    )
    unknown = [e for e in events if e.type == "group" and e.group_id not in accounts]
    if unknown and not organization.create_accounts_from_events:
        raise IngestRejected(
            "A group call names an account that does not exist; this organization does not create accounts "
            "from events (create the account first, or turn on 'create accounts from events').",
            [EventError(e.index, e.sent_message_id, f"unknown account (groupId {e.group_id!r})") for e in unknown],
        )

    result = IngestResult(events=len(events))
    with transaction.atomic():
        for e in unknown:
            if e.group_id in accounts:
                continue  # named twice in this batch
            account, created = Account.all_orgs.get_or_create(
                organization_id=org_id,
                external_id=e.group_id,
                defaults={"name": (e.name or e.group_id)[:ACCOUNT_NAME_MAX]},
            )
            accounts[e.group_id] = account.pk
            if created:
                result.accounts_created.append(e.group_id)

        new_links: dict[str, UserAccountLink] = {}
        identifies: list[tuple[IncomingEvent, int]] = []
        rows: list[tuple[IncomingEvent, int | None]] = []
        for e in events:
            if e.type == "group":
                account_id: int | None = accounts[e.group_id]
                if e.user_key:
                    links[e.user_key] = account_id
                    # One row per user (the last group call of the batch wins): an upsert may not touch
                    # the same row twice in one statement.
                    new_links[e.user_key] = UserAccountLink(
                        organization_id=org_id, user_id=e.user_key, account_id=account_id, linked_at=e.timestamp
                    )
            else:
                account_id = accounts.get(e.group_hint) if e.group_hint else None
                if account_id is None:
                    account_id = links.get(e.user_key)
                if e.type == "identify" and account_id is not None and (e.user_id or e.email):
                    identifies.append((e, account_id))
            rows.append((e, account_id))
        if new_links:
            UserAccountLink.all_orgs.bulk_create(
                new_links.values(),
                update_conflicts=True,
                unique_fields=["organization", "user_id"],
                update_fields=["account", "linked_at"],
            )
            result.links = len(new_links)
        if identifies:
            result.contacts_created, result.contacts_updated = _upsert_contacts(org_id, identifies)
        _insert_events(org_id, rows)
    return result


# One statement, one parameter for all rows: Postgres unpacks the JSON array itself, so Python does one
# json.dumps instead of preparing every field of every row (which cost more than the insert).
_PG_INSERT = f"""
INSERT INTO {UsageEvent._meta.db_table}
    (organization_id, message_id, type, event, user_id, anonymous_id, group_id, account_id,
     timestamp, received_at, properties, rolled_up)
SELECT %s, r.m, r.t, r.e, r.u, r.a, r.g, r.acc, r.ts, %s, COALESCE(r.p, '{{}}'::jsonb), false
FROM jsonb_to_recordset(%s::jsonb)
    AS r(m text, t text, e text, u text, a text, g text, acc bigint, ts timestamptz, p jsonb)
ON CONFLICT (organization_id, message_id) DO NOTHING
"""


def _insert_events(org_id: int, rows: list[tuple[IncomingEvent, int | None]]) -> None:
    """Insert events, skipping ``messageId``s already stored for the organization.

    The unique (organization, message_id) constraint does the deduplication, also against a concurrent
    request carrying the same events. On Postgres this is one ``INSERT … SELECT FROM jsonb_to_recordset
    … ON CONFLICT DO NOTHING``: the ORM's per-field preparation of model instances cost more than the
    insert itself (see benchmarks/ingest.py); other databases take ``bulk_create``.
    """
    if connection.vendor == "postgresql":
        payload = [
            {
                "m": e.message_id,
                "t": e.type,
                "e": e.event,
                "u": e.user_id,
                "a": e.anonymous_id,
                "g": e.group_id,
                "acc": account_id,
                "ts": e.timestamp.isoformat(),
                "p": e.properties,
            }
            for e, account_id in rows
        ]
        with connection.cursor() as cursor:
            cursor.execute(_PG_INSERT, [org_id, timezone.now(), json.dumps(payload, separators=(",", ":"))])
        return
    UsageEvent.all_orgs.bulk_create(
        [
            UsageEvent(
                organization_id=org_id,
                message_id=e.message_id,
                type=e.type,
                event=e.event,
                user_id=e.user_id,
                anonymous_id=e.anonymous_id,
                group_id=e.group_id,
                account_id=account_id,
                timestamp=e.timestamp,
                properties=e.properties,
            )
            for e, account_id in rows
        ],
        ignore_conflicts=True,
    )


def _upsert_contacts(org_id: int, identifies: list[tuple[IncomingEvent, int]]) -> tuple[int, int]:
    """Create or update the contacts of ``identify`` calls (three queries at most, whatever the count)."""
    uids = {e.user_id for e, _ in identifies if e.user_id and len(e.user_id) <= EXTERNAL_ID_MAX}
    emails = {e.email for e, _ in identifies if e.email}
    existing = list(Contact.objects.for_org(org_id).filter(Q(external_id__in=uids) | Q(email__in=emails)))
    by_uid = {c.external_id: c for c in existing if c.external_id}
    by_email: dict[str, Contact] = {}
    for contact in existing:
        if contact.email:
            by_email.setdefault(contact.email.lower(), contact)
    created: dict[int, Contact] = {}
    updated: dict[int, Contact] = {}
    for e, account_id in identifies:
        uid = e.user_id if e.user_id and len(e.user_id) <= EXTERNAL_ID_MAX else ""
        contact = by_uid.get(uid) if uid else None
        if contact is None and e.email:
            candidate = by_email.get(e.email.lower())
            # An email already carried by another product user's contact is not taken over.
            if candidate is not None and (not candidate.external_id or not uid or candidate.external_id == uid):
                contact = candidate
        if contact is None:
            contact = Contact(organization_id=org_id, account_id=account_id, name="", external_id=uid or None)
            created[id(contact)] = contact
        elif id(contact) not in created:
            updated[id(contact)] = contact
        contact.account_id = account_id
        if uid and not contact.external_id:
            contact.external_id = uid
        if e.email:
            contact.email = e.email
        if e.title:
            contact.title = e.title[:200]
        contact.name = (e.name or contact.name or e.email or e.user_id)[:200]
        if uid:
            by_uid[uid] = contact
        if e.email:
            by_email[e.email.lower()] = contact
    if created:
        Contact.all_orgs.bulk_create(
            created.values(),
            update_conflicts=True,
            unique_fields=["organization", "external_id"],
            update_fields=["account", "name", "email", "title", "updated_at"],
        )
    if updated:
        Contact.all_orgs.bulk_update(updated.values(), ["account", "external_id", "name", "email", "title"])
    return len(created), len(updated)
