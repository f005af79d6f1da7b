"""The value story's CSV import kinds (registered with ``cs_platform.imports``; see docs/architecture.md,
"Adding an import kind").

``acquisition_costs`` — columns ``account_external_id, segment, acquisition_cost, onboarding_cost, notes``:

* each row names **exactly one** of ``account_external_id`` (an account of the organization) and ``segment``
  (a segment's name, matched exactly as it is written, case-insensitively);
* ``acquisition_cost`` is required, ``onboarding_cost`` defaults to 0; both are amounts ≥ 0 with at most
  two decimals, in the organization's currency; ``notes`` at most 200 characters;
* an account or segment named twice in the file is an error (only one of the rows could apply);
* rows upsert by their owner: a re-import of the same file changes nothing. A cost row not in the file is
  left alone (a CSV never deletes).

As every kind: one bad row imports nothing, and every bad row is listed with its line and column.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, ClassVar

from accounts.importing import AccountsKind
from accounts.models import Segment
from cs_platform.imports import register
from cs_platform.imports.parsers import line_numbers, parse_places, parse_text, row_key

from .economics import CostItem, upsert_costs

__all__ = ["AcquisitionCostKind"]


def _amount(value: str) -> Decimal:
    return parse_places(value, places=2, digits=14, low=Decimal(0))


@register
class AcquisitionCostKind(AccountsKind):
    """Acquisition and onboarding costs per account or per segment, upserted by the account or segment."""

    name = "acquisition_costs"
    label = "Acquisition costs"
    columns = ("account_external_id", "segment", "acquisition_cost", "onboarding_cost", "notes")
    order = 90
    upsert_keys = ("organization", "account")  # or ("organization", "segment"): one row per owner
    column_help: ClassVar[dict[str, str]] = {
        "account_external_id": "fill exactly one of account_external_id and segment on each row",
        "segment": "a segment's name as shown under Segments (case does not matter)",
        "onboarding_cost": "0 when empty; amounts in the organization's currency, at most two decimals",
    }

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.account_lines: dict[str, Any] = defaultdict(line_numbers)
        self.segment_lines: dict[str, Any] = defaultdict(line_numbers)
        self.accounts: dict[str, int] = {}
        self.segments: dict[str, int] = {}
        self.owners: dict[int, int] = {}  # digest of the owner -> first line

    def parse(self, line: int, cells: list[str]) -> dict[str, Any]:
        return {
            "account": self.cell(line, cells, "account_external_id"),
            "segment": self.cell(line, cells, "segment", lambda v: parse_text(v, 120)),
            "acquisition_cost": self.cell(line, cells, "acquisition_cost", _amount, required=True),
            "onboarding_cost": self.cell(line, cells, "onboarding_cost", _amount) or Decimal(0),
            "notes": self.cell(line, cells, "notes", lambda v: parse_text(v, 200)) or "",
        }

    def check(self, line: int, cells: list[str]) -> None:
        row = self.parse(line, cells)
        account, segment = row["account"], row["segment"]
        if account and segment:
            self.errors.add(line, "segment", "fill account_external_id or segment, not both")
            return
        if not account and not segment:
            self.errors.add(line, "account_external_id", "fill account_external_id or segment")
            return
        owner = ("account", account) if account else ("segment", segment.lower())
        key = row_key(*owner)
        if key in self.owners:
            column = "account_external_id" if account else "segment"
            self.errors.add(line, column, f"{owner[0]} {account or segment} is named twice (first on line "
                                          f"{self.owners[key]})")  # fmt: skip
            return
        self.owners[key] = line
        if account:
            self.account_lines[account].append(line)
        else:
            self.segment_lines[segment.lower()].append(line)

    def finish(self) -> None:
        self.resolve_accounts()  # every unknown account_external_id is an error, line by line
        self.segments = {name.lower(): pk for pk, name in Segment.objects.for_org(self.org).values_list("id", "name")}
        for name, lines in self.segment_lines.items():
            if name not in self.segments:
                for line in lines:
                    self.errors.add(line, "segment", f"no segment named {name}")
        self.account_lines, self.segment_lines, self.owners = defaultdict(line_numbers), defaultdict(line_numbers), {}

    def write(self, rows: Iterator[tuple[int, list[str]]], progress: Callable[[int], None]) -> None:
        def flush(batch: list[dict[str, Any]]) -> None:
            counts = upsert_costs(
                self.org,
                [
                    CostItem(
                        account_id=self.accounts[row["account"]] if row["account"] else None,
                        segment_id=self.segments[row["segment"].lower()] if row["segment"] else None,
                        acquisition_cost=row["acquisition_cost"],
                        onboarding_cost=row["onboarding_cost"],
                        notes=row["notes"],
                    )
                    for row in batch
                ],
            )
            self.result.created += counts.created
            self.result.updated += counts.updated
            self.result.unchanged += counts.unchanged

        self.batched(rows, progress, flush)
