"""The CSV import kinds of the health signals (spec §8), registered with :mod:`cs_platform.imports`:
usage, tickets and invoices; and the recompute that follows every import.

- usage: one row per (account, date, metric), upserted by that key (the same rows the rollups write,
  so a file may set ``events`` for a day; names of its own such as ``seats_used`` are fine); ``value``
  is a plain decimal (negative allowed, 4 decimal places at most). A key twice in the file is an error.
- tickets: upsert by ``external_id``; ``opened_at``/``resolved_at`` are a date or an ISO date-time,
  read in the organization's time zone when they carry none; ``priority`` P1–P4 and ``status``
  open/pending/solved/closed (empty keeps the current value, or P3 / open for a new ticket);
  ``resolved_at`` may not be before ``opened_at``. The subject is not a column and is left as it is.
- invoices: upsert by ``external_id``; ``amount`` ≥ 0 with at most 2 decimal places; ``paid_at`` empty =
  unpaid; a new invoice takes the organization's currency (the currency is not a column).

Every kind, whichever app declares it, feeds a health signal (seats, touches, usage, tickets, invoices,
contacts, stages), and bulk writes send no model signals: :func:`recompute_after_import` is registered
for every kind and schedules one recorded bulk recompute of the organization, after commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from accounts.importing import AccountRowKind, ExternalIdKind
from cs_platform.imports.base import ImportResult, add_hook, register
from cs_platform.imports.copy import upsert
from cs_platform.imports.parsers import parse_choice, parse_date, parse_moment, parse_places, parse_text, row_key

from .models import Invoice, Ticket, TicketPriority, TicketStatus, UsageMetric, default_issued_on
from .triggers import schedule_org_recompute

__all__ = ["InvoiceKind", "TicketKind", "UsageKind", "recompute_after_import"]


def recompute_after_import(organization_id: int, result: ImportResult) -> None:
    """After any committed import: one recorded recompute of the organization's health."""
    schedule_org_recompute(organization_id, reason=f"import:{result.kind}")


add_hook(recompute_after_import)


@register
class UsageKind(AccountRowKind):
    """Daily usage metrics, upserted by (account, date, metric): the rows the rollups write."""

    name = "usage"
    label = "Usage"
    columns = ("account_external_id", "date", "metric", "value")
    upsert_keys = ("organization", "account", "date", "metric")
    order = 50

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.seen: dict[int, int] = {}  # digest of (account, date, metric) -> line

    def parse(self, line: int, cells: list[str]) -> dict[str, Any]:
        return {
            "account": self.cell(line, cells, "account_external_id", required=True),
            "date": self.cell(line, cells, "date", parse_date, required=True),
            "metric": self.cell(line, cells, "metric", lambda v: parse_text(v, 200), required=True),
            "value": self.cell(
                line, cells, "value", lambda v: parse_places(v, places=4, digits=18, low=None), required=True
            ),
        }

    def check(self, line: int, cells: list[str]) -> None:
        row = self.parse(line, cells)
        self.note_account(line, row["account"])
        if row["account"] and row["date"] and row["metric"]:
            key = row_key(row["account"], row["date"], row["metric"])
            if key in self.seen:
                where = f"{row['metric']} on {row['date']} for account {row['account']}"
                self.errors.add(line, "metric", f"{where} is already on line {self.seen[key]}")
            else:
                self.seen[key] = line

    def finish(self) -> None:
        super().finish()
        self.seen = {}

    def write(self, rows: Iterator[tuple[int, list[str]]], progress: Callable[[int], None]) -> None:
        org = self.org

        def flush(batch: list[dict[str, Any]]) -> None:
            keys = [(self.accounts[r["account"]], r["date"], r["metric"]) for r in batch]
            current = {
                (a, d, m): v
                for a, d, m, v in UsageMetric.objects.for_org(org)
                .filter(
                    account_id__in={k[0] for k in keys}, date__in={k[1] for k in keys}, metric__in={k[2] for k in keys}
                )
                .values_list("account_id", "date", "metric", "value")
            }
            writes = []
            for row, key in zip(batch, keys, strict=True):
                old = current.get(key)
                if old is not None and old == row["value"]:
                    self.result.unchanged += 1
                    continue
                self.result.created += old is None
                self.result.updated += old is not None
                writes.append(
                    UsageMetric(
                        organization_id=org.pk, account_id=key[0], date=key[1], metric=key[2], value=row["value"]
                    )
                )
            upsert(UsageMetric, writes, unique=list(self.upsert_keys), update=["value"])

        self.batched(rows, progress, flush)


TICKET_PRIORITIES = tuple(TicketPriority.values)
TICKET_STATUSES = tuple(TicketStatus.values)


@register
class TicketKind(ExternalIdKind):
    """Support tickets, upserted by external id (the subject is not a column and is left as it is)."""

    name = "tickets"
    label = "Tickets"
    columns = ("external_id", "account_external_id", "opened_at", "priority", "status", "resolved_at")
    order = 60
    model = Ticket
    FIELDS = ("account_id", "opened_at", "priority", "status", "resolved_at")

    def parse(self, line: int, cells: list[str]) -> dict[str, Any]:
        row = {
            "external_id": self.cell(line, cells, "external_id", lambda v: parse_text(v, 120), required=True),
            "account": self.cell(line, cells, "account_external_id", required=True),
            "opened_at": self.cell(line, cells, "opened_at", lambda v: parse_moment(v, self.tz), required=True),
            "priority": self.cell(line, cells, "priority", lambda v: parse_choice(v.upper(), TICKET_PRIORITIES)),
            "status": self.cell(line, cells, "status", lambda v: parse_choice(v.lower(), TICKET_STATUSES)),
            "resolved_at": self.cell(line, cells, "resolved_at", lambda v: parse_moment(v, self.tz)),
        }
        if row["opened_at"] and row["resolved_at"] and row["resolved_at"] < row["opened_at"]:
            self.errors.add(line, "resolved_at", "is before opened_at")
        return row

    def values(self, row: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "account_id": self.accounts[row["account"]],
            "opened_at": row["opened_at"],
            "priority": row["priority"] or (old["priority"] if old else TicketPriority.P3),
            "status": row["status"] or (old["status"] if old else TicketStatus.OPEN),
            "resolved_at": row["resolved_at"],
        }


@register
class InvoiceKind(ExternalIdKind):
    """Invoices, upserted by external id; a new invoice takes the organization's currency."""

    name = "invoices"
    label = "Invoices"
    columns = ("external_id", "account_external_id", "due_date", "amount", "paid_at")
    order = 70
    model = Invoice
    FIELDS = ("account_id", "due_date", "amount", "paid_at")

    def parse(self, line: int, cells: list[str]) -> dict[str, Any]:
        return {
            "external_id": self.cell(line, cells, "external_id", lambda v: parse_text(v, 120), required=True),
            "account": self.cell(line, cells, "account_external_id", required=True),
            "due_date": self.cell(line, cells, "due_date", parse_date, required=True),
            "amount": self.cell(
                line, cells, "amount", lambda v: parse_places(v, places=2, digits=14, low=Decimal(0)), required=True
            ),
            "paid_at": self.cell(line, cells, "paid_at", parse_date),
        }

    def values(self, row: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "account_id": self.accounts[row["account"]],
            "due_date": row["due_date"],
            "amount": row["amount"],
            "paid_at": row["paid_at"],
        }

    def new(self, external_id: str, values: dict[str, Any]) -> Any:
        # The CSV has no issue day (spec §8 fixes the columns): a new invoice is taken as issued net 30.
        return Invoice(
            organization_id=self.org.pk,
            external_id=external_id,
            currency=self.org.currency,
            issued_on=default_issued_on(values["due_date"]),
            **values,
        )
