"""Zendesk: tickets → the health engine's ticket signal (the ``tickets`` import kind).

No client library: the REST API is called with ``self.http.json`` (the guarded, rate-limited transport).
Authentication is an API token: HTTP Basic with ``{email}/token:{api_token}``.

Endpoints used (Zendesk API reference):

- "Incremental Exports" → "Incremental Ticket Export, Cursor Based"
  (https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/#incremental-ticket-export-cursor-based):
  ``GET /api/v2/incremental/tickets/cursor.json?start_time=0&include=users,organizations,metric_sets``
  for the first page, then ``?cursor=<after_cursor>&include=…``; the answer holds ``tickets``,
  ``after_cursor``, ``end_of_stream`` and the sideloads ("Sideloading related records",
  https://developer.zendesk.com/documentation/ticketing/using-the-zendesk-api/side_loading/).
  When ``end_of_stream`` is true the last ``after_cursor`` is kept: the next run starts there and sees
  only the tickets changed since. Deleted tickets come with ``status: "deleted"`` and are counted.
- ``GET /api/v2/users/me.json`` — "Test connection" (an anonymous answer, ``id: null``, means the
  credentials were not accepted).

Rate limit: the incremental export endpoints allow 10 requests per minute ("Incremental Exports" →
"Rate limits"; 30 with the High Volume add-on): the connector declares 10 per 60 s. A ``429`` carries
``Retry-After`` (honoured by ``ConnectorHttp``).

Matching a ticket to an account (the ``zendesk_account`` transform): the ticket's organization's
``external_id`` when it is an account's external id, else the requester's email domain when exactly
one account has that domain; otherwise the ticket is listed (SyncRecordError) with the reason.
"""

from __future__ import annotations

import base64
from typing import Any

from cs_platform.outbound import OutboundRefused, ResponseTooLarge

from .base import Connector, ConnectorError, ObjectSpec, Page, RateLimit, Record, register

__all__ = ["TICKETS_MAPPING", "ZendeskConnector"]

EXPORT_PATH = "/api/v2/incremental/tickets/cursor.json"
SIDELOADS = "users,organizations,metric_sets"

PRIORITIES = {"urgent": "P1", "high": "P2", "normal": "P3", "low": "P4"}
STATUSES = {
    "new": "open",
    "open": "open",
    "pending": "pending",
    "hold": "pending",
    "solved": "solved",
    "closed": "closed",
}

TICKETS_MAPPING: dict[str, Any] = {
    "fields": [
        {"target": "account_external_id", "source": "match", "transform": "zendesk_account"},
        {"target": "opened_at", "source": "created_at", "transform": "text"},
        {"target": "priority", "source": "priority", "transform": {"map": PRIORITIES, "default": ""}},
        {"target": "status", "source": "status", "transform": {"map": STATUSES}},
        {"target": "resolved_at", "source": "resolved_at", "transform": "text"},
    ]
}


def _domain(email: Any) -> str:
    text = str(email or "").strip().lower()
    return text.rsplit("@", 1)[1] if "@" in text else ""


def zendesk_account(value: Any, _options: Any, connector: ZendeskConnector | None) -> str:
    """The account's external id for ``{"org_external_id": …, "email": …}`` (see the module docstring)."""
    if connector is None or not isinstance(value, dict):
        raise ValueError("no organization or requester to match the ticket to an account")
    by_external_id, by_domain = connector.accounts()
    org_ext = str(value.get("org_external_id") or "").strip()
    if org_ext and org_ext in by_external_id:
        return org_ext
    domain = _domain(value.get("email"))
    matches = by_domain.get(domain, []) if domain else []
    if len(matches) == 1:
        return matches[0]
    parts = []
    if org_ext:
        parts.append(f"no account has external id {org_ext!r} (the Zendesk organization's external_id)")
    elif value.get("org_id"):
        parts.append("the Zendesk organization has no external_id")
    else:
        parts.append("the ticket has no organization")
    if not domain:
        parts.append("the requester has no email")
    elif not matches:
        parts.append(f"no account has the domain {domain!r}")
    else:
        parts.append(f"{len(matches)} accounts have the domain {domain!r}")
    raise ValueError("; ".join(parts))


@register
class ZendeskConnector(Connector):
    kind = "zendesk"
    label = "Zendesk"
    default_base_url = ""  # https://<subdomain>.zendesk.com — each admin sets theirs
    credential_fields = ("email", "api_token")
    rate_limit = RateLimit(requests=10, per_seconds=60)
    reference_url = (
        "https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/"
        "#incremental-ticket-export-cursor-based"
    )
    objects = {
        "tickets": ObjectSpec(
            name="tickets",
            label="Tickets → tickets",
            target="tickets",
            default_mapping=TICKETS_MAPPING,
            transforms={"zendesk_account": zendesk_account},
        ),
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._accounts: tuple[set[str], dict[str, list[str]]] | None = None

    # --- accounts, read once per run ------------------------------------------------------------------

    def accounts(self) -> tuple[set[str], dict[str, list[str]]]:
        if self._accounts is None:
            from accounts.models import Account

            ids: set[str] = set()
            domains: dict[str, list[str]] = {}
            rows = Account.objects.for_org(self.connection.organization).exclude(external_id__isnull=True)
            for ext, domain in rows.exclude(external_id="").values_list("external_id", "domain"):
                ids.add(ext)
                key = (domain or "").strip().lower()
                if key:
                    domains.setdefault(key, []).append(ext)
            self._accounts = (ids, domains)
        return self._accounts

    # --- HTTP -------------------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        creds = self.connection.credentials
        email, token = creds.get("email", ""), creds.get("api_token", "")
        if not email or not token:
            raise ConnectorError("Set the agent's email and an API token for this connection.")
        raw = f"{email}/token:{token}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    def _get(self, path: str, fields: dict[str, Any] | None = None) -> Any:
        if not self.base_url:
            raise ConnectorError("Set the base URL to your Zendesk address, e.g. https://yourcompany.zendesk.com.")
        try:
            status, body = self.http.json("GET", self.base_url + path, headers=self._headers(), fields=fields)
        except OutboundRefused as exc:
            raise ConnectorError(exc.reason) from None
        except ResponseTooLarge as exc:
            raise ConnectorError(str(exc)) from None
        if status == 401:
            raise ConnectorError("Zendesk refused the email and API token (HTTP 401): check both.")
        if status == 403:
            raise ConnectorError("Zendesk refused access (HTTP 403): the user must be an admin or an agent.")
        if status == 429:
            raise ConnectorError(
                "Zendesk's rate limit was still exceeded after waiting (HTTP 429); the run will resume."
            )
        if not 200 <= status < 300:
            raise ConnectorError(f"Zendesk answered HTTP {status}.")
        if not isinstance(body, dict):
            raise ConnectorError("Zendesk answered something that is not a JSON object.")
        return body

    # --- the contract -------------------------------------------------------------------------------------

    def test_connection(self) -> str:
        body = self._get("/api/v2/users/me.json")
        user = body.get("user") or {}
        if not user.get("id"):
            raise ConnectorError("Zendesk did not accept the email and API token (anonymous user).")
        return f"Connected to Zendesk as {user.get('email') or 'the API user'}."

    def fetch_page(self, spec: ObjectSpec, cursor: dict[str, Any], mapping: dict[str, Any]) -> Page:
        fields: dict[str, Any] = {"include": SIDELOADS}
        if cursor.get("cursor"):
            fields["cursor"] = cursor["cursor"]
        else:
            fields["start_time"] = int(cursor.get("start_time") or 0)
        body = self._get(EXPORT_PATH, fields)
        tickets = body.get("tickets")
        if not isinstance(tickets, list):
            raise ConnectorError("Zendesk's export answer has no list of tickets.")
        records = self._records(body, tickets)
        after = body.get("after_cursor")
        if after in (None, ""):
            # No cursor to go on from: stay where this page started (the next run asks again).
            return Page(records, dict(cursor), True, final_cursor=dict(cursor))
        nxt = {"cursor": str(after)}
        if body.get("end_of_stream"):
            return Page(records, nxt, True, final_cursor=nxt)
        return Page(records, nxt, False)

    @staticmethod
    def _index(items: Any) -> dict[Any, dict[str, Any]]:
        if not isinstance(items, list):
            return {}
        return {item.get("id"): item for item in items if isinstance(item, dict) and item.get("id") is not None}

    def _records(self, body: dict[str, Any], tickets: list[Any]) -> list[Record]:
        users = self._index(body.get("users"))
        orgs = self._index(body.get("organizations"))
        metrics = {m.get("ticket_id"): m for m in self._index(body.get("metric_sets")).values()}
        records: list[Record] = []
        for raw in tickets:
            if not isinstance(raw, dict):
                records.append(Record(external_id="", data={"_malformed": "the ticket is not an object"}))
                continue
            ext = raw.get("id")
            status = str(raw.get("status") or "")
            org = orgs.get(raw.get("organization_id")) or {}
            requester = users.get(raw.get("requester_id")) or {}
            solved_at = (metrics.get(ext) or {}).get("solved_at")
            data = {
                "id": ext,
                "subject": raw.get("subject"),
                "created_at": raw.get("created_at"),
                "updated_at": raw.get("updated_at"),
                "priority": raw.get("priority"),
                "status": status,
                "resolved_at": (solved_at or raw.get("updated_at")) if status in ("solved", "closed") else "",
                "match": {
                    "org_id": raw.get("organization_id"),
                    "org_external_id": org.get("external_id"),
                    "email": requester.get("email"),
                },
                "organization": {"id": org.get("id"), "name": org.get("name"), "external_id": org.get("external_id")},
                "requester": {"id": requester.get("id"), "email": requester.get("email")},
            }
            if ext in (None, "") or isinstance(ext, bool):
                data["_malformed"] = "the ticket has no id"
            elif not raw.get("created_at"):
                data["_malformed"] = "the ticket has no created_at"
            records.append(Record(external_id=str(ext or ""), data=data, deleted=status == "deleted"))
        return records
