"""Health services: event ingestion (spec §8) and the health engine (spec §3).

**Health engine** (end of the file): :func:`recompute_health` is the one bulk path (command, hourly
schedule, debounced per-account recompute); :func:`preview_scorecard` shows what a scorecard edit would
change without writing; :func:`save_scorecard_version` stores a new immutable version.

**Event ingestion** (spec §8): store validated Segment-style events for one organization.

:mod:`health.ingest` turns HTTP bodies into :class:`IncomingEvent` objects (validation, sizes,
timestamps); :func:`ingest_events` resolves accounts and writes everything in ONE transaction, so a
batch is stored whole or not at all and is durable before the ``200``.

Per batch the number of queries is constant: one for the users' account links, one for the accounts
named by ``groupId``/``context.groupId`` (only when some event names one), one bulk insert of events,
one upsert of the day's counters, plus one upsert of links and one update attributing waiting events
when the batch has ``group`` calls, and up to three for product users when it has ``identify`` calls.
Rollups (daily metrics) live in :mod:`health.rollups`.
"""

from __future__ import annotations

import io
import json
import math
import time as clock
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import BigIntegerField, Case, Q, Subquery, Value, When
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import Account, Contact, Organization
from accounts.segments import compile_or_none
from cs_platform.events import NewEvent, record_events
from cs_platform.imports.copy import copy_text

from .analytics import load_signals, score_accounts
from .defaults import ensure_default_scorecard
from .ingest_state import add_stats, local_today, schedule_rollup
from .models import (
    EventType,
    HealthColor,
    HealthOverride,
    HealthScore,
    HealthSnapshot,
    IngestionRefusal,
    OverrideReason,
    ProductUser,
    Scorecard,
    ScorecardVersion,
    UsageEvent,
    UserAccountLink,
)
from .scoring import DefinitionError, round_score, signals_of, validate_definition

__all__ = [
    "EventError",
    "IncomingEvent",
    "IngestRejected",
    "IngestResult",
    "RecomputeResult",
    "ingest_events",
    "preview_scorecard",
    "record_refusal",
    "recompute_health",
    "save_scorecard_version",
]

ACCOUNT_NAME_MAX = 200


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
    """What one request did. ``events`` counts valid events received; ``stored`` those newly stored,
    ``duplicates`` those skipped because their ``messageId`` was already stored (a retried batch is
    harmless), ``unattributed`` the stored ``track`` events whose user is linked to no account yet,
    ``attributed`` earlier such events that this request's ``group`` calls attributed."""

    events: int = 0
    stored: int = 0
    duplicates: int = 0
    unattributed: int = 0
    attributed: int = 0
    ignored: int = 0
    accounts_created: list[str] = field(default_factory=list)
    links: int = 0
    product_users: int = 0


def ingest_events(organization: Organization, events: list[IncomingEvent], *, ignored: int = 0) -> IngestResult:
    """Store ``events`` (already validated) for ``organization``, all or nothing.

    - ``group`` links the user (``userId``, else ``anonymousId``) to the account whose ``external_id``
      is ``groupId``; an unknown account is created (named from ``traits.name``) when the organization
      has ``create_accounts_from_events``, otherwise the request is rejected naming the events. The
      user's ``track`` events sent before the group call (earlier in the batch, or stored earlier
      without an account) are attributed to that account and counted.
    - ``track``/``identify`` get the account named by ``context.groupId`` when it exists, else the
      user's linked account (links made earlier in the same batch count), else none.
    - ``identify`` upserts the :class:`ProductUser` (ingestion's own records; never a CRM contact) and
      links it, read-only, to the organization's contact with the same email.
    - Every event is stored as a :class:`UsageEvent`; an already stored ``messageId`` is skipped.
    - The day's counters (:class:`IngestionStat`) move in the same transaction; once committed, a rollup
      is queued (:func:`health.ingest_state.schedule_rollup`) when there is usage to count.

    ``ignored`` is the number of ``page``/``screen``/``alias`` calls of the request (counted, not stored).
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

    result = IngestResult(events=len(events), ignored=ignored)
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
        identifies: list[IncomingEvent] = []
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
                if e.type == "identify" and e.user_key:
                    identifies.append(e)
            rows.append((e, account_id))
        if new_links:
            # A track sent before its user's group call in the same batch gets the account it links.
            rows = [
                (e, new_links[e.user_key].account_id)
                if account_id is None and e.type == "track" and e.user_key in new_links
                else (e, account_id)
                for e, account_id in rows
            ]
            UserAccountLink.all_orgs.bulk_create(
                new_links.values(),
                update_conflicts=True,
                unique_fields=["organization", "user_id"],
                update_fields=["account", "linked_at"],
            )
            result.links = len(new_links)
        if identifies:
            result.product_users = _upsert_product_users(org_id, identifies)
        if new_links:
            result.attributed = _attribute_waiting_events(org_id, {k: link.account_id for k, link in new_links.items()})
        if rows:
            result.stored, result.unattributed, counted_now = _insert_events(org_id, rows)
            result.duplicates = len(rows) - result.stored
        else:
            counted_now = 0
        add_stats(
            org_id,
            local_today(organization),
            {
                "requests_accepted": 1,
                "accepted": result.stored,
                "duplicates": result.duplicates,
                "ignored": ignored,
                "unattributed": result.unattributed,
                "attributed_late": result.attributed,
            },
        )
        if counted_now or result.attributed:
            transaction.on_commit(lambda: schedule_rollup(org_id))
    return result


def _attribute_waiting_events(org_id: int, linked: dict[str, int]) -> int:
    """Give the ``track`` events stored without an account (their user had no link yet) the account their
    user is now linked to, so the rollup counts them; one ``UPDATE`` through a partial index. Returns
    how many."""
    keys = list(linked)
    waiting = UsageEvent.all_orgs.filter(
        organization_id=org_id, account__isnull=True, rolled_up=False, type=EventType.TRACK
    ).filter(Q(user_id__in=keys) | Q(user_id="", anonymous_id__in=keys))
    whens = [
        When(Q(user_id=key) | Q(user_id="", anonymous_id=key), then=Value(account_id))
        for key, account_id in sorted(linked.items())
    ]
    return waiting.update(account_id=Case(*whens, output_field=BigIntegerField()))


# One statement, one parameter for all rows: Postgres unpacks the JSON array itself, so Python does one
# json.dumps instead of preparing every field of every row (which cost more than the insert).
# RETURNING names what was inserted (duplicates are skipped by ON CONFLICT and return nothing).
_PG_INSERT = f"""
INSERT INTO {UsageEvent._meta.db_table}
    (organization_id, message_id, type, event, user_id, anonymous_id, group_id, account_id,
     timestamp, received_at, properties, rolled_up)
SELECT %s, r.m, r.t, r.e, r.u, r.a, r.g, r.acc, r.ts, %s, COALESCE(r.p, '{{}}'::jsonb), false
FROM jsonb_to_recordset(%s::jsonb)
    AS r(m text, t text, e text, u text, a text, g text, acc bigint, ts timestamptz, p jsonb)
ON CONFLICT (organization_id, message_id) DO NOTHING
RETURNING type = 'track', account_id IS NULL
"""


def _insert_events(org_id: int, rows: list[tuple[IncomingEvent, int | None]]) -> tuple[int, int, int]:
    """Insert events, skipping ``messageId``s already stored for the organization.

    The unique (organization, message_id) constraint does the deduplication, also against a concurrent
    request carrying the same events. On Postgres this is one ``INSERT … SELECT FROM jsonb_to_recordset
    … ON CONFLICT DO NOTHING``: the ORM's per-field preparation of model instances cost more than the
    insert itself (see benchmarks/ingest.py); other databases take ``bulk_create`` (after one query for
    the ids already stored: SQLite serialises writers, so it cannot race). Returns (stored, stored
    ``track`` events without an account, stored ``track`` events with one).
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
            inserted = cursor.fetchall()
        return (
            len(inserted),
            sum(1 for is_track, no_account in inserted if is_track and no_account),
            sum(1 for is_track, no_account in inserted if is_track and not no_account),
        )
    already = set(
        UsageEvent.all_orgs.filter(organization_id=org_id, message_id__in={e.message_id for e, _ in rows}).values_list(
            "message_id", flat=True
        )
    )
    new: dict[str, tuple[IncomingEvent, int | None]] = {}
    for e, account_id in rows:
        if e.message_id not in already:
            new.setdefault(e.message_id, (e, account_id))  # the first of a repeated messageId is kept
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
            for e, account_id in new.values()
        ],
        ignore_conflicts=True,
    )
    tracks = [account_id for e, account_id in new.values() if e.type == "track"]
    return len(new), sum(1 for a in tracks if a is None), sum(1 for a in tracks if a is not None)


def _upsert_product_users(org_id: int, identifies: list[IncomingEvent]) -> int:
    """Create or update the :class:`ProductUser` of each ``identify`` call (three queries at most).

    Only ingestion's own records change: a CRM :class:`~accounts.models.Contact` is never created, moved
    or rewritten by an event (a write key ships inside customers' apps, so anyone may hold it). The
    product user links to the organization's contact with the same email (case-insensitive; the oldest
    such contact), read-only. Traits absent from a call keep their stored values.
    """
    emails = {e.email.lower() for e in identifies if e.email}
    contacts: dict[str, int] = {}
    if emails:
        for email, contact_id in (
            Contact.objects.for_org(org_id)
            .annotate(email_lower=Lower("email"))
            .filter(email_lower__in=emails)
            .order_by("-id")
            .values_list("email_lower", "id")
        ):
            contacts[email] = contact_id  # descending ids: the oldest contact wins
    keys = {e.user_key for e in identifies}
    users = {u.user_id: u for u in ProductUser.objects.for_org(org_id).filter(user_id__in=keys)}
    for e in identifies:
        user = users.get(e.user_key)
        if user is None:
            user = users[e.user_key] = ProductUser(
                organization_id=org_id, user_id=e.user_key, first_seen_at=e.timestamp, last_seen_at=e.timestamp
            )
        user.first_seen_at = min(user.first_seen_at, e.timestamp)
        user.last_seen_at = max(user.last_seen_at, e.timestamp)
        if e.email:
            user.email = e.email
            user.contact_id = contacts.get(e.email.lower())
        if e.name:
            user.name = e.name[:200]
        if e.title:
            user.title = e.title[:200]
    ProductUser.all_orgs.bulk_create(
        users.values(),
        update_conflicts=True,
        unique_fields=["organization", "user_id"],
        update_fields=["email", "name", "title", "contact", "first_seen_at", "last_seen_at"],
    )
    return len(users)


def record_refusal(organization: Organization, status: int, detail: str, errors: list[EventError], events: int) -> None:
    """Remember a refused request of an authenticated sender for the organization's admins: the day's
    ``refused_requests``/``refused_events`` counters and an :class:`IngestionRefusal` (the newest
    :attr:`IngestionRefusal.KEEP` are kept). Nothing of the request was stored."""
    org_id = organization.pk
    with transaction.atomic():
        add_stats(org_id, local_today(organization), {"refused_requests": 1, "refused_events": events})
        IngestionRefusal.all_orgs.create(
            organization_id=org_id,
            received_at=timezone.now(),
            status=status,
            detail=detail[:2000],
            events=events,
            errors=[e.as_dict() for e in errors[:20]],
        )
        oldest_kept = (
            IngestionRefusal.all_orgs.filter(organization_id=org_id)
            .order_by("-id")
            .values_list("id", flat=True)[IngestionRefusal.KEEP - 1 : IngestionRefusal.KEEP]
        )
        IngestionRefusal.all_orgs.filter(organization_id=org_id, id__lt=Subquery(oldest_kept)).delete()


# --- Health engine (spec §3): the one bulk recompute path, previews, scorecard versions --------------


@dataclass
class RecomputeResult:
    """What one :func:`recompute_health` run did."""

    as_of: date
    accounts: int = 0
    scored: int = 0
    unscored: int = 0
    churned: int = 0
    color_changes: int = 0
    latest_written: bool = False
    seconds: float = 0.0
    by_color: dict[str, int] = field(default_factory=dict)
    #: seconds per phase: ``signals`` (read), ``scoring``, ``snapshots`` and ``latest`` (writes)
    timings: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {
            "accounts": self.accounts,
            "scored": self.scored,
            "unscored": self.unscored,
            "churned": self.churned,
            "color_changes": self.color_changes,
        }


def _organization(organization: Organization | int) -> Organization:
    if isinstance(organization, Organization):
        return organization
    return Organization.objects.get(pk=organization)


def _local_today(organization: Organization) -> date:
    return timezone.localtime(timezone=ZoneInfo(organization.time_zone or "UTC")).date()


def _scorecard_setup(
    organization: Organization,
) -> tuple[list[Scorecard], list[tuple[int, Q]], dict[int | None, dict[str, Any]], int]:
    """The organization's scorecards (default created if absent), segment bindings in order, the
    definition of each, and the default's id. Two or three queries."""
    default = ensure_default_scorecard(organization.pk)
    scorecards = list(
        Scorecard.objects.for_org(organization)
        .filter(Q(is_active=True) | Q(is_default=True))
        .select_related("current_version", "segment")
        .order_by("position", "id")
    )
    # A segment whose stored rules are invalid binds no account (they fall to the next scorecard).
    bindings = [
        (sc.pk, condition)
        for sc in scorecards
        if not sc.is_default and sc.segment_id is not None and sc.current_version_id is not None
        if (condition := compile_or_none(sc.segment.rules, organization=organization)) is not None
    ]
    definitions: dict[int | None, dict[str, Any]] = {
        sc.pk: sc.current_version.definition for sc in scorecards if sc.current_version_id is not None
    }
    return scorecards, bindings, definitions, default.pk


def _churned_mask(signals: pd.DataFrame, as_of: date) -> pd.Series:
    """Churned at the as-of day: ``churned_at`` on or before it, or lifecycle ``churned`` without a date."""
    churned_at = pd.to_datetime(signals["churned_at"])
    dated = churned_at.notna() & (churned_at <= pd.Timestamp(as_of))
    undated = churned_at.isna() & (signals["lifecycle_stage"] == "churned")
    return dated | undated


def _score_signals(
    organization: Organization,
    as_of: date,
    account_ids: Sequence[int] | None,
    definitions_override: dict[int, dict[str, Any]] | None = None,
    timings: dict[str, float] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, list[Scorecard]]:
    timings = {} if timings is None else timings
    mark = clock.perf_counter()
    scorecards, bindings, definitions, default_id = _scorecard_setup(organization)
    if definitions_override:
        definitions = {**definitions, **definitions_override}
    usage_metrics = {
        name.split(":", 1)[1] for d in definitions.values() for name in signals_of(d) if name.startswith("usage:")
    }
    signals = load_signals(
        organization,
        as_of,
        account_ids,
        usage_metrics=usage_metrics,
        bindings=bindings,
        default_scorecard_id=default_id,
    )
    timings["signals"] = round(clock.perf_counter() - mark, 3)
    mark = clock.perf_counter()
    scored = score_accounts(definitions, signals, organization.health_bands)
    churned = _churned_mask(signals, as_of)
    scored.loc[churned, "score"] = np.nan
    scored.loc[churned, "color"] = ""
    scored["churned"] = churned
    timings["scoring"] = round(clock.perf_counter() - mark, 3)
    return signals, scored, scorecards


SNAPSHOT_COLUMNS = [
    "organization_id",
    "account_id",
    "date",
    "computed_at",
    "score",
    "color",
    "scorecard_version_id",
    "components",
    "missing",
]
SCORE_COLUMNS = [
    "organization_id",
    "account_id",
    "score",
    "computed_color",
    "color",
    "computed_at",
    "scorecard_id",
    "scorecard_version_id",
    "delta_7",
    "delta_30",
    "trend",
    "override_id",
]


def _upsert_rows(
    model: Any,
    columns: list[str],
    rows: list[tuple[Any, ...]],
    *,
    unique: list[str],
    update: list[str],
    unless_same: list[str] | None = None,
) -> None:
    """Insert-or-update plain tuples (``columns`` are attribute names) in one statement.

    Postgres: ``COPY`` into a temporary table, then one ``INSERT … SELECT … ON CONFLICT DO UPDATE``
    (no model instances, no ``RETURNING``: the recompute of 50,000 accounts spends its time in the
    database, not in Django's per-value compilation). With ``unless_same``, a conflicting row whose
    ``unless_same`` columns are all unchanged is left alone (no new row version written: the hourly
    recompute mostly confirms today's snapshots). Elsewhere: ``bulk_create(update_conflicts=True)``.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        objects = [model(**dict(zip(columns, row, strict=True))) for row in rows]
        by_attname = {f.attname: f.name for f in model._meta.concrete_fields}
        model.all_orgs.bulk_create(
            objects,
            batch_size=500,
            update_conflicts=True,
            unique_fields=[by_attname[c] for c in unique],
            update_fields=[by_attname[c] for c in update],
        )
        return
    qn = connection.ops.quote_name
    column_of = {f.attname: f.column for f in model._meta.concrete_fields}
    json_columns = {i for i, c in enumerate(columns) if column_of[c] in ("components", "missing")}
    names = ", ".join(qn(column_of[c]) for c in columns)
    table, temp = qn(model._meta.db_table), qn(f"_retain_health_{model._meta.model_name}")
    buffer = io.StringIO()
    for row in rows:
        buffer.write(
            "\t".join(
                copy_text(json.dumps(v, separators=(",", ":"), cls=DjangoJSONEncoder) if i in json_columns else v)
                for i, v in enumerate(row)
            )
        )
        buffer.write("\n")
    buffer.seek(0)
    keys = ", ".join(qn(column_of[c]) for c in unique)
    updates = ", ".join(f"{qn(column_of[c])} = EXCLUDED.{qn(column_of[c])}" for c in update)
    if unless_same:
        mine = ", ".join(f"{table}.{qn(column_of[c])}" for c in unless_same)
        theirs = ", ".join(f"EXCLUDED.{qn(column_of[c])}" for c in unless_same)
        updates += f" WHERE ({mine}) IS DISTINCT FROM ({theirs})"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {temp} AS SELECT {names} FROM {table} WITH NO DATA")
        try:
            cursor.copy_expert(f"COPY {temp} ({names}) FROM STDIN", buffer)
            cursor.execute(
                # Rows locked in key order: a full run and a per-account run never wait on each other in a cycle.
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {temp} ORDER BY {keys} "
                f"ON CONFLICT ({keys}) DO UPDATE SET {updates}"
            )
        finally:
            cursor.execute(f"DROP TABLE {temp}")


def _decimal(value: float) -> Decimal | None:
    return None if value is None or math.isnan(value) else Decimal(f"{value:.1f}")


def recompute_health(
    organization: Organization | int,
    account_ids: Sequence[int] | None = None,
    *,
    as_of: date | None = None,
    job: Any = None,
    latest: bool | None = None,
    emit_events: bool = True,
) -> RecomputeResult:
    """Score every account of ``organization`` (or ``account_ids``) as of ``as_of`` (default: today in
    the organization's time zone) and store the result — the ONE bulk path of the command, the hourly
    schedule and the debounced per-account recompute.

    Steps (a constant number of queries, whatever the number of accounts): ensure the default
    scorecard; read the scorecards; read every signal with :func:`health.analytics.load_signals`
    (segment bindings evaluated in SQL, first matching scorecard by position, else the default);
    score vectorised per scorecard; then in one transaction upsert one :class:`HealthSnapshot` per
    account for the day (a second run the same day updates it) and, when ``latest`` (default: when
    ``as_of`` is today or later), upsert :class:`HealthScore` with Δ7/Δ30 against the snapshots exactly
    7 and 30 days earlier, the trend (``up``/``down`` beyond ±1 point, else ``flat``) and the effective
    colour (an active override wins; ``customer_will_churn`` forces red).

    Churned accounts and accounts without any data get no score (``None``) and no colour. When the
    effective colour of an account that already had a HealthScore changes, ``health.color_changed``
    is recorded with ``{id, external_id, name, from, to, score}`` (``from``/``to`` ``null`` for no
    colour); an account's first-ever score emits nothing (the first run after an import would
    otherwise announce every account). The events are recorded in the transaction that writes the
    scores (:func:`cs_platform.events.record_events`, one insert for all of them), so they exist if and
    only if the new colours do; webhooks and other consumers get them after the commit. Progress
    and counts go to ``job`` when given; ``result.timings`` has the seconds of each phase.
    """
    started = clock.perf_counter()
    org = _organization(organization)
    as_of = as_of or _local_today(org)
    latest = as_of >= _local_today(org) if latest is None else latest
    timings: dict[str, float] = {}
    signals, scored, _ = _score_signals(org, as_of, account_ids, timings=timings)
    result = RecomputeResult(as_of=as_of, accounts=len(scored), latest_written=latest, timings=timings)
    if job is not None:
        job.set_total(len(scored))
    now = timezone.now()
    versions = dict(
        Scorecard.objects.for_org(org)
        .filter(pk__in=set(scored["scorecard_id"].dropna().astype(int)))
        .values_list("pk", "current_version_id")
    )
    ids = scored.index.to_numpy()
    scores = scored["score"].to_numpy(dtype=float)
    colors = scored["color"].tolist()
    scorecard_ids = [None if pd.isna(v) else int(v) for v in scored["scorecard_id"].tolist()]
    churned = scored["churned"].to_numpy(dtype=bool)
    components = scored["components"].tolist()
    missing = scored["missing"].tolist()
    snapshots = [
        (
            org.pk,
            int(ids[i]),
            as_of,
            now,
            _decimal(scores[i]),
            colors[i] or "",
            versions.get(scorecard_ids[i]),
            [] if churned[i] else components[i],
            [] if churned[i] else missing[i],
        )
        for i in range(len(ids))
    ]
    result.scored = int((~np.isnan(scores)).sum())
    result.unscored = result.accounts - result.scored
    result.churned = int(churned.sum())
    changes: list[dict[str, Any]] = []
    mark = clock.perf_counter()
    timings["snapshots_build"] = round(mark - started - sum(timings.values()), 3)
    with transaction.atomic():
        _upsert_rows(
            HealthSnapshot,
            SNAPSHOT_COLUMNS,
            snapshots,
            unique=["organization_id", "account_id", "date"],
            update=SNAPSHOT_COLUMNS[3:],
            unless_same=SNAPSHOT_COLUMNS[4:],
        )
        timings["snapshots_write"] = round(clock.perf_counter() - mark, 3)
        mark = clock.perf_counter()
        if job is not None:
            job.advance(len(ids) // 2)
        if latest:
            changes = _write_latest(org, signals, scored, as_of, now, versions, account_ids, result)
            if changes and emit_events:
                record_events(org.pk, [NewEvent("health.color_changed", c["id"], c) for c in changes])
        timings["latest"] = round(clock.perf_counter() - mark, 3)
    if job is not None:
        job.advance(len(ids), force=True)
        job.count(**result.counts())
    if as_of < _local_today(org):
        # A past day's snapshots changed: the Portfolio's cached trend days must be counted again.
        from .portfolio import invalidate_trend

        invalidate_trend(org)
    result.seconds = clock.perf_counter() - started
    return result


def _write_latest(
    org: Organization,
    signals: pd.DataFrame,
    scored: pd.DataFrame,
    as_of: date,
    now: Any,
    versions: dict[int, int | None],
    account_ids: Sequence[int] | None,
    result: RecomputeResult,
) -> list[dict[str, Any]]:
    """Upsert the latest :class:`HealthScore` rows; returns the colour changes to announce."""

    def scoped(queryset: Any) -> Any:
        return queryset if account_ids is None else queryset.filter(account_id__in=list(account_ids))

    previous = dict(scoped(HealthScore.objects.for_org(org)).values_list("account_id", "color"))
    day_7, day_30 = as_of - timedelta(days=7), as_of - timedelta(days=30)
    past: dict[tuple[int, date], Decimal | None] = {
        (account_id, day): score
        for account_id, day, score in scoped(
            HealthSnapshot.objects.for_org(org).filter(date__in=[day_7, day_30])
        ).values_list("account_id", "date", "score")
    }
    overrides: dict[int, HealthOverride] = {}
    for override in scoped(
        HealthOverride.objects.for_org(org).filter(cleared_at__isnull=True, expires_at__gt=now)
    ).order_by("created_at", "id"):
        overrides[override.account_id] = override  # the newest active one wins
    rows: list[tuple[Any, ...]] = []
    changes: list[dict[str, Any]] = []
    by_color: dict[str, int] = {}
    names = signals["name"]
    external_ids = signals["external_id"]
    for account_id, score, color, scorecard_id in zip(
        scored.index.tolist(),
        scored["score"].tolist(),
        scored["color"].tolist(),
        scored["scorecard_id"].tolist(),
        strict=True,
    ):
        score_d = _decimal(score)
        deltas = []
        for day in (day_7, day_30):
            before = past.get((account_id, day))
            deltas.append(None if score_d is None or before is None else score_d - before)
        trend = ""
        if deltas[0] is not None:
            trend = "up" if deltas[0] > 1 else "down" if deltas[0] < -1 else "flat"
        override = overrides.get(account_id)
        effective = color or ""
        if override is not None:
            effective = (
                HealthColor.RED if override.reason_code == OverrideReason.CUSTOMER_WILL_CHURN else override.color
            )
        effective = str(effective)
        sc_id = None if pd.isna(scorecard_id) else int(scorecard_id)
        rows.append(
            (
                org.pk,
                account_id,
                score_d,
                color or "",
                effective,
                now,
                sc_id,
                versions.get(sc_id) if sc_id else None,
                deltas[0],
                deltas[1],
                trend,
                override.pk if override else None,
            )
        )
        by_color[effective or "none"] = by_color.get(effective or "none", 0) + 1
        if account_id in previous and previous[account_id] != effective:
            changes.append(
                {
                    "id": account_id,
                    "external_id": external_ids.get(account_id),
                    "name": names.get(account_id),
                    "from": previous[account_id] or None,
                    "to": effective or None,
                    "score": score_d,
                }
            )
    _upsert_rows(HealthScore, SCORE_COLUMNS, rows, unique=["account_id"], update=SCORE_COLUMNS[2:])
    result.color_changes = len(changes)
    result.by_color = by_color
    return changes


def preview_scorecard(organization: Organization, scorecard: Scorecard, definition: dict[str, Any]) -> dict[str, Any]:
    """What saving ``definition`` as the new version of ``scorecard`` would do, without writing.

    Scores the accounts bound to ``scorecard`` today (churned ones excluded) with its current version
    and with ``definition`` and returns ``{"accounts_scored", "accounts_changing", "arr_changing",
    "changes": [{"from", "to", "accounts", "arr"}], "examples": [{"account_id", "name", "from", "to",
    "score_before", "score_after"}]}`` — colour changes (computed colours; ``null`` = no score), the
    ARR they carry (decimal strings), and the 20 biggest changing accounts by ARR. Raises
    :class:`~health.scoring.DefinitionError` when the definition is invalid.
    """
    errors = validate_definition(definition)
    if errors:
        raise DefinitionError(errors)
    as_of = _local_today(organization)
    signals, before, _ = _score_signals(organization, as_of, None)
    bound = before.index[(before["scorecard_id"] == scorecard.pk) & ~before["churned"]]
    signals = signals.loc[bound]
    before = before.loc[bound]
    after = score_accounts({scorecard.pk: definition}, signals, organization.health_bands)
    frame = pd.DataFrame(
        {
            "name": signals["name"],
            "arr": signals["arr"],
            "from": before["color"].replace("", None),
            "to": after["color"].replace("", None),
            "score_before": before["score"],
            "score_after": after["score"],
        }
    )
    changing = frame[frame["from"].fillna("") != frame["to"].fillna("")]
    changes = []
    for (from_color, to_color), group in changing.groupby(
        [changing["from"].fillna(""), changing["to"].fillna("")], sort=True
    ):
        changes.append(
            {
                "from": from_color or None,
                "to": to_color or None,
                "accounts": len(group),
                "arr": str(Decimal(str(group["arr"].sum())).quantize(Decimal("0.01"))),
            }
        )
    examples = [
        {
            "account_id": int(account_id),
            "name": row["name"],
            "from": row["from"],
            "to": row["to"],
            "score_before": round_score(row["score_before"]),
            "score_after": round_score(row["score_after"]),
        }
        for account_id, row in changing.sort_values(["arr", "name"], ascending=[False, True]).head(20).iterrows()
    ]
    return {
        "accounts_scored": int(after["score"].notna().sum()),
        "accounts_changing": len(changing),
        "arr_changing": str(Decimal(str(changing["arr"].sum())).quantize(Decimal("0.01"))),
        "changes": changes,
        "examples": examples,
    }


def save_scorecard_version(
    scorecard: Scorecard, definition: dict[str, Any], *, user: Any, note: str = ""
) -> ScorecardVersion:
    """Store ``definition`` as the next version of ``scorecard`` and publish it at once (no draft step).

    Validates first (raises :class:`~health.scoring.DefinitionError` with every problem); versions are
    numbered 1, 2, … per scorecard, never edited once published (snapshots name the version that produced
    them). Audited as ``scorecard.published``; a recompute is queued after commit (not for a new
    scorecard's first version). Drafts: :mod:`health.drafts`.
    """
    from .versioning import create_published

    return create_published(scorecard, definition, user=user, note=note)
