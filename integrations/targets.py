"""Where pulled records land: one :class:`Target` per lower-app import kind.

A target names the import kind (``cs_platform.imports`` registry: ``accounts``, ``contacts``,
``contracts``, ``tickets``, ...) and reads **Retain's current cells** for records that already exist, so
that a column the mapping does not fill, or one where Retain wins, keeps Retain's value (an import
row's empty cell would clear it). Writing is never done here: ``integrations.sync`` hands the merged
rows to ``cs_platform.imports.engine.import_rows``, the import kinds' own validation and upsert.

Adding a target (a connector helper adding contacts, contracts, tickets): subclass :class:`Target`, set
``kind`` and ``columns`` (the import kind's columns), implement :meth:`Target.current` with one query
per page, and ``register_target(MyTarget())``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from accounts.models import Account
from cs_platform.imports.base import registry as import_kinds

__all__ = ["AccountsTarget", "ContactsTarget", "ContractsTarget", "Target", "get_target", "register_target"]


class Target:
    """One lower-app import kind as the landing place of a connector object."""

    kind: ClassVar[str] = ""
    #: A column naming another row of the same kind (an account's parent): when that row is neither in
    #: the page nor in Retain yet, the record lands without it and the column is applied at the run's end.
    self_reference: ClassVar[str] = ""

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(import_kinds.get(self.kind).columns)

    @property
    def custom_columns(self) -> bool:
        return bool(import_kinds.get(self.kind).custom_columns)

    def current(self, organization: Any, external_ids: list[str]) -> dict[str, dict[str, str]]:
        """``{external_id: {column: cell}}`` of the rows that exist, in the import kind's cell forms."""
        raise NotImplementedError


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


class AccountsTarget(Target):
    kind = "accounts"
    self_reference = "parent_external_id"

    def current(self, organization: Any, external_ids: list[str]) -> dict[str, dict[str, str]]:
        rows = (
            Account.objects.for_org(organization)
            .filter(external_id__in=external_ids)
            .values(
                "external_id",
                "name",
                "domain",
                "industry",
                "region",
                "employees",
                "owner__email",
                "parent__external_id",
                "touch_model",
                "lifecycle_stage",
                "customer_since",
                "custom_fields",
            )  # fmt: skip
        )
        found: dict[str, dict[str, str]] = {}
        for row in rows:
            cells = {column: _cell(row.get(column)) for column in self.columns}
            cells["owner_email"] = _cell(row["owner__email"])
            cells["parent_external_id"] = _cell(row["parent__external_id"])
            for key, value in (row["custom_fields"] or {}).items():
                cells[key] = _cell(value)
            found[row["external_id"]] = cells
        return found


_targets: dict[str, Target] = {}


def register_target(target: Target) -> Target:
    _targets[target.kind] = target
    return target


def get_target(kind: str) -> Target:
    return _targets[kind]


register_target(AccountsTarget())


# --- HubSpot helper: contacts and contracts (issue 21 item 2) -----------------------------------------


class ContactsTarget(Target):
    """Contacts (``accounts`` import kind ``contacts``), keyed by the contact's external id."""

    kind = "contacts"

    def current(self, organization: Any, external_ids: list[str]) -> dict[str, dict[str, str]]:
        from accounts.models import Contact

        found: dict[str, dict[str, str]] = {}
        rows = (
            Contact.objects.for_org(organization)
            .filter(external_id__in=external_ids)
            .values("external_id", "account__external_id", "name", "email", "title", "roles", "is_active")
        )
        for row in rows:
            found[row["external_id"]] = {
                "external_id": row["external_id"],
                "account_external_id": _cell(row["account__external_id"]),
                "name": row["name"],
                "email": row["email"],
                "title": row["title"],
                "roles": "|".join(row["roles"] or []),
                "active": "true" if row["is_active"] else "false",
            }
        return found


class ContractsTarget(Target):
    """Contracts (``contracts`` import kind: one row per contract line), keyed by contract number.

    ``current`` answers a contract's head cells (account, dates, status, seats): line cells are always
    the vendor's (a contract's rows replace its lines)."""

    kind = "contracts"

    def current(self, organization: Any, external_ids: list[str]) -> dict[str, dict[str, str]]:
        from accounts.models import Contract

        rows = (
            Contract.objects.for_org(organization)
            .filter(number__in=external_ids)
            .values("number", "account__external_id", "start_date", "end_date", "status", "seats")
        )
        return {
            row["number"]: {
                "account_external_id": _cell(row["account__external_id"]),
                "contract_number": row["number"],
                "start_date": _cell(row["start_date"]),
                "end_date": _cell(row["end_date"]),
                "status": row["status"],
                "seats": _cell(row["seats"]),
            }
            for row in rows
        }


register_target(ContactsTarget())
register_target(ContractsTarget())


# --- Zendesk / Stripe helper: tickets and invoices (health signals) ---------------------------------------


class TicketsTarget(Target):
    """Support tickets (the ``tickets`` import kind of ``health``): the ticket signal."""

    kind = "tickets"

    def current(self, organization: Any, external_ids: list[str]) -> dict[str, dict[str, str]]:
        from health.models import Ticket

        rows = (
            Ticket.objects.for_org(organization)
            .filter(external_id__in=external_ids)
            .values("external_id", "account__external_id", "opened_at", "priority", "status", "resolved_at")
        )
        return {
            row["external_id"]: {
                "external_id": row["external_id"],
                "account_external_id": _cell(row["account__external_id"]),
                "opened_at": _cell(row["opened_at"]),
                "priority": _cell(row["priority"]),
                "status": _cell(row["status"]),
                "resolved_at": _cell(row["resolved_at"]),
            }
            for row in rows
        }


class InvoicesTarget(Target):
    """Invoices (the ``invoices`` import kind of ``health``): the financial signal."""

    kind = "invoices"

    def current(self, organization: Any, external_ids: list[str]) -> dict[str, dict[str, str]]:
        from health.models import Invoice

        rows = (
            Invoice.objects.for_org(organization)
            .filter(external_id__in=external_ids)
            .values("external_id", "account__external_id", "due_date", "amount", "paid_at")
        )
        return {
            row["external_id"]: {
                "external_id": row["external_id"],
                "account_external_id": _cell(row["account__external_id"]),
                "due_date": _cell(row["due_date"]),
                "amount": _cell(row["amount"]),
                "paid_at": _cell(row["paid_at"]),
            }
            for row in rows
        }


register_target(TicketsTarget())
register_target(InvoicesTarget())
