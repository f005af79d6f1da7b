"""Push-back: Retain's health and renewal values to the CRM's company records (HubSpot, issue 21).

For every account synced from the CRM (its ``external_id`` is the company id) the pushed values are
(:data:`PUSH_PROPERTIES` of the connector): health score, colour, trend, the next open renewal's due
date and forecast category. A push sends **only the accounts whose values changed since the last
push** to this connection: :class:`~integrations.models.PushState` keeps, per account, the values and
their SHA-256 digest; the connector sends them in batches (HubSpot: ``batch/update``, ≤ 100 inputs per
call) and each batch's states are stored once the vendor accepted it, so a failed push resends only
what was not accepted.

Accounts are read in chunks of :data:`CHUNK` (streamed, never the whole book at once).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from health.models import HealthScore
from renewals.models import Renewal

from .connectors.base import Connector, ObjectSpec
from .models import PushState

__all__ = ["CHUNK", "account_values", "digest", "push_changed"]

CHUNK = 1000


def digest(values: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def account_values(organization: Any, account_ids: list[int]) -> dict[int, dict[str, str]]:
    """``{account_id: {property: text}}`` with three queries per chunk."""
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
    out: dict[int, dict[str, str]] = {}
    for account_id in account_ids:
        h = health.get(account_id) or {}
        r = renewal.get(account_id) or {}
        out[account_id] = {
            "retain_health_score": "" if h.get("score") is None else str(h["score"]),
            "retain_health_colour": h.get("color") or "",
            "retain_health_trend": h.get("trend") or "",
            "retain_next_renewal_date": r["due_date"].isoformat() if r.get("due_date") else "",
            "retain_forecast_category": r.get("forecast_category") or "",
        }
    return out


def push_changed(connector: Connector, spec: ObjectSpec, *, batch: int = 100) -> tuple[int, int]:
    """Push the changed accounts' values; answer ``(sent, unchanged)``. Raises ConnectorError (the
    batches accepted before it keep their state)."""
    connection = connector.connection
    org = connection.organization
    sent = unchanged = 0
    accounts = (
        Account.objects.for_org(org)
        .exclude(external_id__isnull=True)
        .exclude(external_id="")
        .order_by("pk")
        .values_list("pk", "external_id")
    )
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
        changed: list[tuple[int, str, dict[str, str], str]] = []
        for pk, external_id in chunk:
            d = digest(values[pk])
            if states.get(pk) == d:
                unchanged += 1
            else:
                changed.append((pk, external_id, values[pk], d))
        for start in range(0, len(changed), batch):
            part = changed[start : start + batch]
            result = connector.push(spec, [{"id": ext, "properties": vals} for _, ext, vals, _ in part])
            sent += result.sent
            now = timezone.now()
            with transaction.atomic():
                PushState.all_orgs.bulk_create(
                    [
                        PushState(
                            organization_id=org.pk,
                            connection=connection,
                            account_id=pk,
                            digest=d,
                            values=vals,
                            pushed_at=now,
                        )  # fmt: skip
                        for pk, _, vals, d in part
                    ],
                    update_conflicts=True,
                    unique_fields=["organization", "connection", "account"],
                    update_fields=["digest", "values", "pushed_at"],
                )
    return sent, unchanged
