"""Salesforce push-back: Retain's health and renewal forecast to custom fields of the Salesforce Account.

:func:`push_accounts` computes, for every account of the organization whose ``external_id`` is a
Salesforce Account id (``001…``, 15 or 18 characters), the values below; compares them with what was
last accepted by Salesforce for that account over this connection (:class:`~integrations.models.
PushState`); and sends **only the accounts that changed**, at most 200 records per request
(``PATCH /services/data/v60.0/composite/sobjects``, "sObject Collections", ``allOrNone: false``).
A record Salesforce refuses (deleted account, field-level security, validation rule) is listed as a
:class:`~integrations.models.SyncRecordError` of the push run with Salesforce's reason, and is sent
again next time; the others are stored as pushed.

Values and their default Salesforce fields (create them on Account — Setup → Object Manager → Account
→ Fields & Relationships — or rename them in the accounts object's mapping under ``"push"``)::

    health_score       → Retain_Health_Score__c        Number(4, 1)   (empty when not scored)
    health_color       → Retain_Health_Color__c        Text(8)        green / yellow / red
    health_trend       → Retain_Health_Trend__c        Text(4)        up / down / flat
    next_renewal_date  → Retain_Next_Renewal_Date__c   Date           the earliest open renewal's due date
    forecast_category  → Retain_Forecast_Category__c   Text(10)       that renewal's forecast category

A push is recorded as a ``SyncRun`` of mode ``push`` on the accounts object sync: ``updated`` (sent
and accepted), ``unchanged`` (not sent), ``failed``, ``request_count``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from health.models import HealthScore
from renewals.models import Renewal

from .choices import JobStatus, RunMode, RunTrigger
from .connectors.base import ConnectorError
from .models import Connection, ObjectSync, PushState, SyncRecordError, SyncRun
from .push import digest

__all__ = ["BATCH", "PUSH_FIELDS", "account_values", "push_accounts", "push_fields"]

BATCH = 200  # sObject Collections: at most 200 records per request
SALESFORCE_ACCOUNT_ID = r"^001[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$"
PUSH_FIELDS: dict[str, str] = {
    "health_score": "Retain_Health_Score__c",
    "health_color": "Retain_Health_Color__c",
    "health_trend": "Retain_Health_Trend__c",
    "next_renewal_date": "Retain_Next_Renewal_Date__c",
    "forecast_category": "Retain_Forecast_Category__c",
}


def push_fields(sync: ObjectSync) -> dict[str, str]:
    """Retain value → Salesforce field: the defaults, overridden by the mapping's ``"push"`` object (a
    value mapped to ``""`` is not pushed)."""
    own = (sync.mapping or {}).get("push") if isinstance(sync.mapping, dict) else None
    fields = {**PUSH_FIELDS, **(own if isinstance(own, dict) else {})}
    return {key: str(name) for key, name in fields.items() if key in PUSH_FIELDS and name}


def account_values(organization: Any) -> dict[int, tuple[str, dict[str, Any]]]:
    """``{account id: (Salesforce id, {value name: JSON value})}`` for the org's Salesforce accounts."""
    accounts = dict(
        Account.objects.for_org(organization)
        .filter(external_id__regex=SALESFORCE_ACCOUNT_ID)
        .values_list("id", "external_id")
    )
    health = {
        row["account_id"]: row
        for row in HealthScore.objects.for_org(organization)
        .filter(account_id__in=list(accounts))
        .values("account_id", "score", "color", "trend")
    }
    renewals: dict[int, dict[str, Any]] = {}
    for row in (
        Renewal.objects.for_org(organization)
        .filter(account_id__in=list(accounts), outcome="")
        .order_by("account_id", "due_date", "pk")
        .values("account_id", "due_date", "forecast_category")
    ):
        renewals.setdefault(row["account_id"], row)
    out: dict[int, tuple[str, dict[str, Any]]] = {}
    for account_id, external_id in accounts.items():
        h = health.get(account_id) or {}
        r = renewals.get(account_id) or {}
        out[account_id] = (
            external_id,
            {
                "health_score": float(h["score"]) if h.get("score") is not None else None,
                "health_color": h.get("color") or None,
                "health_trend": h.get("trend") or None,
                "next_renewal_date": r["due_date"].isoformat() if r.get("due_date") else None,
                "forecast_category": r.get("forecast_category") or None,
            },
        )
    return out


def push_accounts(
    connection: Connection, *, sleep: Callable[[float], None] = time.sleep, trigger: str = RunTrigger.MANUAL
) -> SyncRun:
    """Send the changed accounts' values to Salesforce; answer the recorded push run."""
    from .sync import build_connector

    org = connection.organization
    sync = ObjectSync.objects.for_org(org).get(connection=connection, object_name="accounts")
    run = SyncRun.all_orgs.create(
        organization=org, sync=sync, mode=RunMode.PUSH, trigger=trigger, status=JobStatus.RUNNING,
        started_at=timezone.now(), attempts=1,
    )  # fmt: skip
    fields = push_fields(sync)
    values = account_values(org)
    pushed = {row.account_id: row for row in PushState.objects.for_org(org).filter(connection=connection)}
    changed = []
    for account_id, (external_id, current) in sorted(values.items()):
        wanted = {key: current[key] for key in fields}
        old = pushed.get(account_id)
        if old is not None and old.values == wanted:
            run.unchanged += 1
            continue
        changed.append((account_id, external_id, wanted))
    connector = build_connector(connection, sleep=sleep)
    try:
        for start in range(0, len(changed), BATCH):
            chunk = changed[start : start + BATCH]
            records = [{"id": ext, **{fields[k]: v for k, v in wanted.items()}} for _, ext, wanted in chunk]
            outcome = connector.update_accounts(records)
            with transaction.atomic():
                now = timezone.now()
                accepted = []
                errors = []
                for (account_id, ext, wanted), (_, ok, reason) in zip(chunk, outcome, strict=True):
                    if ok:
                        accepted.append(
                            PushState(
                                organization=org,
                                connection=connection,
                                account_id=account_id,
                                values=wanted,
                                digest=digest(wanted),
                                pushed_at=now,
                            )  # fmt: skip
                        )
                    else:
                        errors.append(
                            SyncRecordError(
                                organization=org,
                                run=run,
                                object_name="accounts",
                                external_id=ext,
                                reason=f"Salesforce refused the update: {reason}"[:500],
                                excerpt={"id": ext, **{k: str(v) for k, v in wanted.items()}},
                            )  # fmt: skip
                        )
                PushState.all_orgs.bulk_create(
                    accepted,
                    update_conflicts=True,
                    unique_fields=["organization", "connection", "account"],
                    update_fields=["digest", "values", "pushed_at"],
                )
                SyncRecordError.all_orgs.bulk_create(errors)
                run.updated += len(accepted)
                run.failed += len(errors)
                run.pages += 1
                run.request_count = connector.http.request_count
                run.save()
        status, error = JobStatus.SUCCEEDED, ""
    except ConnectorError as exc:
        status, error = JobStatus.FAILED, f"{exc} The next push sends what was not accepted."
    finally:
        connector.http.close()
    run.request_count = connector.http.request_count
    run.status, run.error, run.finished_at = status, error[:500], timezone.now()
    run.save()
    return run
