"""Account 360's "Source" panel (registered in ``apps.py`` into ``accounts.composition``): where the account
came from, with a link back to the record in the vendor's web app ("HubSpot company 123 ↗").

An account synced by a connector carries the vendor's id as its ``external_id``; the organization's
connections whose connector pulls accounts (an object with target ``accounts``) are its possible
sources. One query (the connections), none when the account has no external id. An account whose CRM
record was deleted there (``Account.source_deleted_at``) says so, with the date.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .connectors.base import get_connector, registry
from .models import Connection

__all__ = ["account_sources"]


def account_sources(request: HttpRequest, account: Any) -> dict[str, Any]:
    if not account.external_id:
        return {"account_sources": []}
    kinds = {kind for kind, cls in registry().items() if any(s.target == "accounts" for s in cls.objects.values())}
    sources = []
    for connection in Connection.objects.for_org(account.organization_id).filter(kind__in=sorted(kinds)):
        cls = get_connector(connection.kind)
        name = next(s.name for s in cls.objects.values() if s.target == "accounts")
        label, url = cls.record_link(connection, name, account.external_id)
        sources.append({"connection": connection.name, "label": label, "url": url})
    # Deleted in the CRM (accounts.source_deletions): the account stays, with its history; say so here.
    return {"account_sources": sources, "account_source_deleted_at": account.source_deleted_at}
