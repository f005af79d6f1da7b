"""Building blocks for import kinds whose rows name accounts or members (any app's kinds may use them).

* :class:`AccountsKind` — lookups of this organization's members by email and accounts by external id
  (another organization's rows are invisible).
* :class:`AccountRowKind` — a kind whose rows hang off an account named by ``account_external_id``:
  notes each row's account in pass 1 and resolves them all in ``finish`` (one query a chunk); every line
  naming an account the organization does not have is an error.
* :class:`ExternalIdKind` — such a kind upserted by ``(organization, external_id)``, writing ``FIELDS``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

from cs_platform.imports.base import ImportKind, chunks
from cs_platform.imports.copy import upsert
from cs_platform.imports.parsers import line_numbers, row_key

from .models import Account, Membership

__all__ = ["AccountRowKind", "AccountsKind", "ExternalIdKind"]


class AccountsKind(ImportKind):
    """A kind that looks up the organization's members and accounts."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._members: dict[str, int] | None = None
        self.seen: dict[int, int] = {}  # digest of external_id -> first line

    def note_external_id(self, line: int, external_id: str) -> bool:
        """Remember ``external_id``'s first line; a second row with it is an error (an upsert would apply
        only one of the two, silently). True when the line is the first with that id."""
        key = row_key(external_id)
        if key in self.seen:
            first = self.seen[key]
            self.errors.add(line, "external_id", f"duplicate external_id {external_id} (first on line {first})")
            return False
        self.seen[key] = line
        return True

    def members(self) -> dict[str, int]:
        """The organization's members' user ids by lower-cased email (read once per run)."""
        if self._members is None:
            self._members = {
                email.lower(): user_id
                for email, user_id in Membership.objects.for_org(self.org).values_list("user__email", "user_id")
            }
        return self._members

    def member(self, line: int, cells: list[str], column: str) -> int | None:
        """The user id of the member whose email is in ``column``; an error if there is no such member."""
        email = cells[self.col[column]].lower()
        if not email:
            return None
        user_id = self.members().get(email)
        if user_id is None:
            self.errors.add(line, column, f"no member with email {email}")
        return user_id

    def account_ids(self, external_ids: Iterable[str]) -> dict[str, int]:
        """This organization's account ids by external id (another org's accounts are invisible)."""
        found: dict[str, int] = {}
        for chunk in chunks(sorted(set(external_ids))):
            found.update(
                Account.objects.for_org(self.org).filter(external_id__in=chunk).values_list("external_id", "id")
            )
        return found

    def resolve_accounts(self) -> None:
        """Map the ``account_external_id`` values noted in ``self.account_lines`` to ids (in one query a
        chunk); every line naming an account this organization does not have is an error."""
        self.accounts = self.account_ids(self.account_lines)
        for ext, lines in self.account_lines.items():
            if ext not in self.accounts:
                for line in lines:
                    self.errors.add(line, "account_external_id", f"no account with external_id {ext}")


class AccountRowKind(AccountsKind):
    """A kind whose rows hang off an account named by ``account_external_id`` (checked in ``finish``)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.tz = ZoneInfo(self.org.time_zone or "UTC")
        self.account_lines: dict[str, Any] = defaultdict(line_numbers)  # account external id -> lines
        self.accounts: dict[str, int] = {}

    def note_account(self, line: int, external_id: str | None) -> None:
        if external_id:
            self.account_lines[external_id].append(line)

    def finish(self) -> None:
        self.resolve_accounts()
        self.account_lines = defaultdict(line_numbers)


class ExternalIdKind(AccountRowKind):
    """Rows upserted by ``external_id`` (tickets, invoices), updating ``FIELDS`` only; a row whose values
    are already those of the database is counted unchanged and not written."""

    model: Any = None
    FIELDS: tuple[str, ...] = ()
    upsert_keys = ("organization", "external_id")

    def check(self, line: int, cells: list[str]) -> None:
        row = self.parse(line, cells)
        self.note_account(line, row["account"])
        if row["external_id"] is not None:
            self.note_external_id(line, row["external_id"])

    def finish(self) -> None:
        super().finish()
        self.seen = {}

    def values(self, row: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        """The ``FIELDS`` to write for ``row`` (``old``: the current values, ``None`` for a new row)."""
        raise NotImplementedError

    def new(self, external_id: str, values: dict[str, Any]) -> Any:
        return self.model(organization_id=self.org.pk, external_id=external_id, **values)

    def write(self, rows: Iterator[tuple[int, list[str]]], progress: Callable[[int], None]) -> None:
        def flush(batch: list[dict[str, Any]]) -> None:
            current = {
                v["external_id"]: v
                for v in self.model.objects.for_org(self.org)
                .filter(external_id__in=[r["external_id"] for r in batch])
                .values("external_id", *self.FIELDS)
            }
            writes = []
            for row in batch:
                old = current.get(row["external_id"])
                values = self.values(row, old)
                if old is not None and all(old[k] == values[k] for k in self.FIELDS):
                    self.result.unchanged += 1
                    continue
                self.result.created += old is None
                self.result.updated += old is not None
                writes.append(self.new(row["external_id"], values))
            upsert(self.model, writes, unique=list(self.upsert_keys), update=list(self.FIELDS))

        self.batched(rows, progress, flush)
