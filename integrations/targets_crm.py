"""Targets for CRM contacts and contracts (the Salesforce connector; the HubSpot connector may add its own
in ``integrations/targets.py`` — each is registered here only when no target of that kind exists yet, so
the two never clash; the lead keeps one at merge).

- ``contacts``: Retain's current cells of existing contacts (one query a page), so columns the mapping
  does not fill (roles, active) keep Retain's values.
- ``contracts``: one import row per contract line, the contract's rows replacing its lines; the kind
  has no ``external_id`` column (contracts are upserted by ``contract_number``), so there is nothing to
  merge from Retain: unmapped columns (discount, seats) take the import kind's defaults.
"""

from __future__ import annotations

from typing import Any

from accounts.models import Contact

from .targets import Target, _cell, get_target, register_target

__all__ = ["CrmContactsTarget", "CrmContractsTarget", "ensure_registered"]


class CrmContactsTarget(Target):
    kind = "contacts"

    def current(self, organization: Any, external_ids: list[str]) -> dict[str, dict[str, str]]:
        rows = (
            Contact.objects.for_org(organization)
            .filter(external_id__in=external_ids)
            .values("external_id", "account__external_id", "name", "email", "title", "roles", "is_active")
        )
        return {
            row["external_id"]: {
                "external_id": row["external_id"],
                "account_external_id": _cell(row["account__external_id"]),
                "name": row["name"],
                "email": row["email"],
                "title": row["title"],
                "roles": "|".join(row["roles"] or []),
                "active": "true" if row["is_active"] else "false",
            }
            for row in rows
        }


class CrmContractsTarget(Target):
    kind = "contracts"

    def current(self, organization: Any, external_ids: list[str]) -> dict[str, dict[str, str]]:
        return {}


def ensure_registered() -> None:
    for target in (CrmContactsTarget(), CrmContractsTarget()):
        try:
            get_target(target.kind)
        except KeyError:
            register_target(target)


ensure_registered()
