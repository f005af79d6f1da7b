"""Push-back: Retain's health and renewal values to the CRM's account records — the one push path of every
connector (HubSpot companies, Salesforce Accounts).

For every account synced from the CRM (its ``external_id`` is the vendor's record id, and matches the
connector's :attr:`~integrations.connectors.base.Connector.push_id_pattern` when it has one) the pushed
values are :data:`VALUES` (:func:`account_values`): health score, colour, trend, the next open renewal's
due date and forecast category. Each connector names the vendor field of each value
(:attr:`~integrations.connectors.base.Connector.push_fields`; the object sync's mapping may rename them
under ``"push"``, a value mapped to ``""`` is not pushed) and shapes the vendor's row
(:meth:`~integrations.connectors.base.Connector.push_payload`).

A push sends **only the accounts whose payload changed since the last push** to this connection:
:class:`~integrations.models.PushState` keeps, per account, the payload last accepted and its SHA-256
digest. The connector sends them in batches of its ``push_batch_size`` (HubSpot ``batch/update`` ≤ 100,
Salesforce sObject Collections ≤ 200) and answers a :class:`~integrations.connectors.base.PushResult`
per batch. In one transaction per batch: the accepted records' states are stored, every record the
vendor refused (``PushResult.failed``: external id and reason) becomes a
:class:`~integrations.models.SyncRecordError` of the push run **and keeps its old state** — so it is sent
again next time — and the run's counters move. A batch that fails as a whole (ConnectorError) stops the
push; the batches accepted before it keep their state.

Accounts are read in chunks of :data:`CHUNK` (streamed, never the whole book at once).
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from health.models import HealthScore
from renewals.models import Renewal

from .connectors.base import Connector, ObjectSpec
from .models import PushState, SyncRecordError, SyncRun

__all__ = ["CHUNK", "VALUES", "account_values", "digest", "push_changed", "push_fields"]

CHUNK = 1000
#: The Retain values a push sends (the keys of :func:`account_values` and of ``Connector.push_fields``).
VALUES = ("health_score", "health_color", "health_trend", "next_renewal_date", "forecast_category")


def digest(values: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def push_fields(connector: Connector | type[Connector], mapping: Any) -> dict[str, str]:
    """Retain value → vendor field: the connector's defaults, overridden by the object sync mapping's
    ``"push"`` object (a value mapped to ``""`` is not pushed; unknown value names are ignored)."""
    own = mapping.get("push") if isinstance(mapping, dict) else None
    fields = {**connector.push_fields, **(own if isinstance(own, dict) else {})}
    return {key: str(name) for key, name in fields.items() if key in VALUES and name}


def account_values(organization: Any, account_ids: list[int]) -> dict[int, dict[str, Any]]:
    """``{account_id: {value: ...}}`` for :data:`VALUES`, with two queries: ``health_score`` a Decimal (or
    None when not scored), the others text or None. Connectors turn them into the vendor's types."""
    health = {
        row["account_id"]: row
        for row in HealthScore.objects.for_org(organization)
        .filter(account_id__in=account_ids)
        .values("account_id", "score", "color", "trend")
    }
    renewal: dict[int, dict[str, Any]] = {}
    for row in (
        Renewal.objects.for_org(organization)
        .filter(account_id__in=account_ids, outcome="")
        .order_by("account_id", "due_date", "id")
        .values("account_id", "due_date", "forecast_category")
    ):
        renewal.setdefault(row["account_id"], row)
    out: dict[int, dict[str, Any]] = {}
    for account_id in account_ids:
        h = health.get(account_id) or {}
        r = renewal.get(account_id) or {}
        score = h.get("score")
        out[account_id] = {
            "health_score": Decimal(score) if score is not None else None,
            "health_color": h.get("color") or None,
            "health_trend": h.get("trend") or None,
            "next_renewal_date": r["due_date"].isoformat() if r.get("due_date") else None,
            "forecast_category": r.get("forecast_category") or None,
        }
    return out


def push_changed(connector: Connector, spec: ObjectSpec, run: SyncRun) -> None:
    """Push the changed accounts' values of ``run``'s connection, moving ``run``'s counters (``updated``:
    accepted by the vendor; ``unchanged``: not sent; ``failed``: refused, listed; ``skipped``: accounts that
    are not this CRM's records or were deleted in it; ``pages``: batches).
    Raises ConnectorError (the batches stored before it keep their state)."""
    connection = connector.connection
    org = connection.organization
    fields = push_fields(connector, run.sync.mapping)
    batch_size = max(1, int(connector.push_batch_size))
    accounts = (
        Account.objects.for_org(org)
        .exclude(external_id__isnull=True)
        .exclude(external_id="")
        .filter(source_deleted_at__isnull=True)  # deleted in the CRM: no record left there to update
        .order_by("pk")
        .values_list("pk", "external_id")
    )
    if connector.push_id_pattern:
        accounts = accounts.filter(external_id__regex=connector.push_id_pattern)
    # Not this CRM's records (no external id, another system's ids) or deleted in it: counted, never silent.
    run.skipped = Account.objects.for_org(org).count() - accounts.count()
    last_pk = 0
    while True:
        chunk = list(accounts.filter(pk__gt=last_pk)[:CHUNK])
        if not chunk:
            break
        last_pk = chunk[-1][0]
        ids = [pk for pk, _ in chunk]
        values = account_values(org, ids)
        states = dict(
            PushState.objects.for_org(org)
            .filter(connection=connection, account_id__in=ids)
            .values_list("account_id", "digest")
        )
        changed: list[tuple[int, str, dict[str, Any], str]] = []
        for pk, external_id in chunk:
            payload = connector.push_payload(spec, values[pk], fields)
            d = digest(payload)
            if states.get(pk) == d:
                run.unchanged += 1
            else:
                changed.append((pk, external_id, payload, d))
        if not changed:
            SyncRun.all_orgs.filter(pk=run.pk).update(unchanged=run.unchanged)
        for start in range(0, len(changed), batch_size):
            _push_batch(connector, spec, run, changed[start : start + batch_size])


def _push_batch(
    connector: Connector, spec: ObjectSpec, run: SyncRun, part: list[tuple[int, str, dict[str, Any], str]]
) -> None:
    connection = connector.connection
    org_id = connection.organization_id
    result = connector.push(spec, [{"id": ext, "properties": payload} for _, ext, payload, _ in part])
    refused: dict[str, str] = {}
    for external_id, reason in result.failed:
        refused.setdefault(str(external_id), reason)
    now = timezone.now()
    accepted = [row for row in part if row[1] not in refused]
    with transaction.atomic():
        PushState.all_orgs.bulk_create(
            [
                PushState(
                    organization_id=org_id,
                    connection=connection,
                    account_id=pk,
                    digest=d,
                    values=payload,
                    pushed_at=now,
                )
                for pk, _, payload, d in accepted
            ],
            update_conflicts=True,
            unique_fields=["organization", "connection", "account"],
            update_fields=["digest", "values", "pushed_at"],
        )
        SyncRecordError.all_orgs.bulk_create(
            [
                SyncRecordError(
                    organization_id=org_id,
                    run=run,
                    object_name=spec.name,
                    external_id=ext[:120],
                    reason=f"{connector.label} refused the update: {refused[ext]}"[:500],
                    excerpt={"id": ext, **{k: "" if v is None else str(v) for k, v in payload.items()}},
                )
                for _, ext, payload, _ in part
                if ext in refused
            ]
        )
        run.updated += len(accepted)
        run.failed += len(part) - len(accepted)
        run.pages += 1
        SyncRun.all_orgs.filter(pk=run.pk).update(
            updated=run.updated, failed=run.failed, unchanged=run.unchanged, pages=run.pages
        )
