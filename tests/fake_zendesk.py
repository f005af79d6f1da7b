"""A local Zendesk for the connector tests: a threaded ``http.server`` implementing the endpoints the
Zendesk connector uses, written from Zendesk's public API reference:

- "Incremental Exports" → "Incremental Ticket Export, Cursor Based"
  (https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/#incremental-ticket-export-cursor-based):
  ``GET /api/v2/incremental/tickets/cursor.json?start_time=<epoch s>`` (first page) or ``?cursor=<after_cursor>``
  → ``{"tickets": [...], "after_url", "after_cursor", "before_url", "before_cursor", "end_of_stream"}``;
  tickets come in the order of their last update, a changed ticket comes again after the cursor;
  a deleted ticket has ``status: "deleted"``; ``per_page`` up to 1000;
- "Side-loading related records"
  (https://developer.zendesk.com/documentation/ticketing/using-the-zendesk-api/side_loading/):
  ``include=users,organizations,metric_sets`` adds ``users``, ``organizations`` and ``metric_sets``
  lists for the tickets of the page;
- "Users" → "Show the currently authenticated user"
  (https://developer.zendesk.com/api-reference/ticketing/users/users/#show-the-currently-authenticated-user):
  ``GET /api/v2/users/me.json``;
- authentication: "API token" (https://developer.zendesk.com/api-reference/introduction/security-and-auth/):
  ``Authorization: Basic base64("{email}/token:{api_token}")``; otherwise ``401`` with
  ``{"error": "Couldn't authenticate you"}``;
- rate limits ("Rate limits", https://developer.zendesk.com/api-reference/introduction/rate-limits/):
  ``429`` with ``Retry-After`` (seconds).

Injectable faults: ``fail_next`` (``(status, headers)`` answered before the next requests), malformed
tickets (``add_raw``). ``requests`` records ``(method, path, query)`` of every call.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

EMAIL = "agent@vendor.example"
TOKEN = "zd-api-token-0123456789abcdef"
EXPORT = "/api/v2/incremental/tickets/cursor.json"


def iso(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeZendesk:
    def __init__(self, email: str = EMAIL, token: str = TOKEN, per_page: int = 1000) -> None:
        self.auth = "Basic " + base64.b64encode(f"{email}/token:{token}".encode()).decode()
        self.email = email
        self.per_page = per_page
        self.tickets: dict[Any, dict[str, Any]] = {}  # id -> raw ticket
        self.order: dict[Any, tuple[int, int]] = {}  # id -> (updated, sequence): the export order
        self.users: dict[int, dict[str, Any]] = {}
        self.organizations: dict[int, dict[str, Any]] = {}
        self.fail_next: list[tuple[int, dict[str, str]]] = []
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self.lock = threading.Lock()
        self.clock = 1_700_000_000
        self.sequence = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.handle(self, "GET")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeZendesk:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- data --------------------------------------------------------------------------------------

    def add_organization(self, oid: int, external_id: str | None, name: str = "") -> None:
        self.organizations[oid] = {"id": oid, "name": name or f"Org {oid}", "external_id": external_id}

    def add_user(self, uid: int, email: str, organization_id: int | None = None) -> None:
        self.users[uid] = {"id": uid, "email": email, "name": email.split("@")[0], "organization_id": organization_id}

    def _touch(self, tid: Any) -> None:
        self.clock += 60
        self.sequence += 1
        self.order[tid] = (self.clock, self.sequence)

    def add_ticket(
        self,
        tid: int,
        *,
        requester_id: int | None = None,
        organization_id: int | None = None,
        priority: str | None = "normal",
        status: str = "open",
        **extra: Any,
    ) -> None:
        with self.lock:
            self._touch(tid)
            created = self.tickets.get(tid, {}).get("created_at") or iso(self.clock)
            self.tickets[tid] = {
                "id": tid, "url": f"{self.url}/api/v2/tickets/{tid}.json", "subject": f"Ticket {tid}",
                "created_at": created, "updated_at": iso(self.clock), "priority": priority, "status": status,
                "requester_id": requester_id, "organization_id": organization_id, "generated_timestamp": self.clock,
                **extra,
            }  # fmt: skip

    def change_ticket(self, tid: int, **fields: Any) -> None:
        current = {k: v for k, v in self.tickets[tid].items() if k not in ("id", "url", "updated_at")}
        current.update(fields)
        current.pop("generated_timestamp", None)
        self.add_ticket(tid, **current)

    def add_raw(self, key: Any, raw: Any) -> None:
        with self.lock:
            self._touch(key)
            self.tickets[key] = raw

    # --- serving -----------------------------------------------------------------------------------

    def send(
        self, handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    @staticmethod
    def _cursor(position: tuple[int, int]) -> str:
        return base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode()

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        query = parse_qs(parts.query)
        with self.lock:
            self.requests.append((method, parts.path, query))
            fault = self.fail_next.pop(0) if self.fail_next else None
        if handler.headers.get("Authorization") != self.auth:
            return self.send(handler, 401, {"error": "Couldn't authenticate you"})
        if fault is not None:
            status, headers = fault
            body = {"error": "TooManyRequests"} if status == 429 else {"error": "ServiceUnavailable"}
            return self.send(handler, status, body, headers)
        if parts.path == "/api/v2/users/me.json":
            return self.send(handler, 200, {"user": {"id": 1, "email": self.email, "role": "admin"}})
        if parts.path != EXPORT:
            return self.send(handler, 404, {"error": "InvalidEndpoint", "description": "Not found"})
        if "cursor" in query:
            try:
                after = tuple(json.loads(base64.urlsafe_b64decode(query["cursor"][0])))
            except ValueError:
                return self.send(handler, 400, {"error": "InvalidCursor"})
        elif "start_time" in query:
            after = (int(query["start_time"][0]) - 1, 10**12)
        else:
            return self.send(handler, 400, {"error": "InvalidValue", "description": "start_time or cursor required"})
        per_page = min(1000, int(query.get("per_page", [self.per_page])[0]))
        with self.lock:
            ordered = sorted((pos, tid) for tid, pos in self.order.items() if pos > after)
            page = ordered[:per_page]
            tickets = [self.tickets[tid] for _, tid in page]
            last = page[-1][0] if page else after
        out: dict[str, Any] = {
            "tickets": tickets,
            "after_cursor": self._cursor(last),
            "after_url": f"{self.url}{EXPORT}?cursor={self._cursor(last)}",
            "before_cursor": None,
            "before_url": None,
            "end_of_stream": len(ordered) <= per_page,
        }
        include = ",".join(query.get("include", [])).split(",")
        dicts = [t for t in tickets if isinstance(t, dict)]
        if "users" in include:
            wanted = {t.get("requester_id") for t in dicts}
            out["users"] = [u for uid, u in self.users.items() if uid in wanted]
        if "organizations" in include:
            wanted = {t.get("organization_id") for t in dicts}
            out["organizations"] = [o for oid, o in self.organizations.items() if oid in wanted]
        if "metric_sets" in include:
            out["metric_sets"] = [
                {"id": 9000 + i, "ticket_id": t.get("id"), "solved_at": t.get("solved_at")}
                for i, t in enumerate(dicts)
                if t.get("status") in ("solved", "closed")
            ]
        return self.send(handler, 200, out)

    def count(self, path: str = EXPORT) -> int:
        return sum(1 for _, p, _ in self.requests if p == path)
