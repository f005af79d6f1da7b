"""Synthetic renewal histories for the backtest tests and benchmark: accounts whose usage metrics are known
at the as-of day, each with one closed (or open) renewal. Bulk inserts: thousands of rows in a second."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from accounts.models import Account, Contract
from health.models import UsageMetric
from renewals.models import Renewal


@dataclass
class Row:
    """One renewal: the account's metric values (``{metric: value}``, dated ``signal_day``), its outcome."""

    metrics: dict[str, float]
    outcome: str  # "" = still open
    due_date: dt.date
    arr: Decimal = Decimal("1000")
    new_arr: Decimal | None = None
    churned_at: dt.date | None = None
    signal_day: dt.date | None = None  # default: 10 days before the as-of day
    later: dict[str, float] = field(default_factory=dict)  # values dated after the as-of day (must not count)


def _new_arr(row: Row) -> Decimal | None:
    if not row.outcome:
        return None
    if row.new_arr is not None:
        return row.new_arr
    return Decimal("0") if row.outcome == "churned" else row.arr


def build_history(org: Any, rows: Sequence[Row], *, horizon_days: int = 90, prefix: str = "BT") -> list[Renewal]:
    """Accounts, contracts, renewals and usage rows for ``rows``; returns the renewals in order."""
    accounts = Account.all_orgs.bulk_create(
        [
            Account(
                organization=org,
                name=f"{prefix} account {i:05d}",
                external_id=f"{prefix}-{i:05d}",
                touch_model="tech",
                lifecycle_stage="churned" if row.outcome == "churned" else "mature",
                customer_since=row.due_date - dt.timedelta(days=900),
                churned_at=row.churned_at,
                arr=row.arr,
            )
            for i, row in enumerate(rows)
        ]
    )
    contracts = Contract.all_orgs.bulk_create(
        [
            Contract(
                organization=org,
                account=account,
                number=f"{prefix}-C-{i:05d}",
                start_date=row.due_date - dt.timedelta(days=364),
                end_date=row.due_date,
                arr=row.arr,
                status="ended" if row.outcome else "active",
            )
            for i, (account, row) in enumerate(zip(accounts, rows, strict=True))
        ]
    )
    renewals = Renewal.all_orgs.bulk_create(
        [
            Renewal(
                organization=org,
                account=account,
                contract=contract,
                due_date=row.due_date,
                current_arr=row.arr,
                forecast_arr=row.arr,
                outcome=row.outcome,
                closed_on=row.due_date if row.outcome else None,
                new_arr=_new_arr(row),
            )
            for account, contract, row in zip(accounts, contracts, rows, strict=True)
        ]
    )
    usage = []
    for account, row in zip(accounts, rows, strict=True):
        as_of = row.due_date - dt.timedelta(days=horizon_days)
        day = row.signal_day or as_of - dt.timedelta(days=10)
        for metric, value in row.metrics.items():
            usage.append(UsageMetric(organization=org, account=account, date=day, metric=metric, value=value))
        for metric, value in row.later.items():
            usage.append(
                UsageMetric(
                    organization=org, account=account, date=as_of + dt.timedelta(days=5), metric=metric, value=value
                )  # fmt: skip
            )
    UsageMetric.all_orgs.bulk_create(usage, batch_size=5000)
    return renewals


def one_component(metric: str, weight: int = 100, key: str | None = None) -> dict[str, Any]:
    """A component scoring ``usage:<metric>`` linearly: 0 → 0 points, 100 → 100 points."""
    return {
        "key": key or metric,
        "name": metric.title(),
        "signal": f"usage:{metric}",
        "weight": weight,
        "function": {"type": "linear", "x0": 0, "x100": 100},
    }
