"""A local HubSpot for the connector tests: a threaded ``http.server`` implementing the endpoints the
HubSpot connector uses, written from HubSpot's public API reference:

- "CRM API | Companies" (https://developers.hubspot.com/docs/api/crm/companies):
  ``GET /crm/v3/objects/companies?limit=&after=&properties=&archived=`` → ``{"results": [...],
  "paging": {"next": {"after": "...", "link": "..."}}}``, each result ``{"id", "properties",
  "createdAt", "updatedAt", "archived"}``;
- "CRM API | Search" (https://developers.hubspot.com/docs/api/crm/search):
  ``POST /crm/v3/objects/companies/search`` with ``filterGroups`` (``GTE`` on ``hs_lastmodifieddate``,
  epoch milliseconds), ``sorts``, ``properties``, ``limit``, ``after`` → ``{"total", "results",
  "paging"}``; at most 10,000 results per query;
- authentication: ``Authorization: Bearer <private app token>``; a wrong token answers ``401`` with
  HubSpot's error body (``{"status": "error", "message": ..., "category": "INVALID_AUTHENTICATION"}``);
- rate limits ("API usage details", https://developers.hubspot.com/docs/api/usage-details): ``429``
  with ``Retry-After`` and ``{"status": "error", "category": "RATE_LIMITS", ...}``.

Injectable faults: ``fail_next`` (a list of ``(status, headers)`` answered before the next requests),
malformed records (``add_raw``). ``requests`` records ``(method, path, body)`` of every call.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "pat-na1-test-token-0123456789"


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeHubSpot:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.companies: dict[str, dict[str, Any]] = {}  # id -> raw record
        self.fail_next: list[tuple[int, dict[str, str]]] = []
        self.requests: list[tuple[str, str, Any]] = []
        self.lock = threading.Lock()
        self.clock_ms = 1_700_000_000_000
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.handle(self, "GET")

            def do_POST(self) -> None:
                fake.handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeHubSpot:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- data --------------------------------------------------------------------------------------

    def add_company(self, cid: str, **properties: Any) -> None:
        with self.lock:
            self.clock_ms += 1000
            props = {"name": f"Company {cid}", "domain": f"c{cid}.example", **properties}
            props["hs_lastmodifieddate"] = iso(self.clock_ms)
            props["hs_object_id"] = cid
            self.companies[cid] = {
                "id": cid, "properties": props, "createdAt": iso(self.clock_ms), "updatedAt": iso(self.clock_ms),
                "archived": False,
            }  # fmt: skip

    def change_company(self, cid: str, **properties: Any) -> None:
        current = dict(self.companies[cid]["properties"])
        current.update(properties)
        current.pop("hs_lastmodifieddate", None)
        self.add_company(cid, **current)

    def add_raw(self, raw: dict[str, Any], modified_ms: int | None = None) -> None:
        with self.lock:
            self.clock_ms += 1000
            raw.setdefault("_modified", modified_ms or self.clock_ms)
            self.companies[str(raw.get("id") or f"raw{len(self.companies)}")] = raw

    @staticmethod
    def _modified(raw: dict[str, Any]) -> int:
        if "_modified" in raw:
            return raw["_modified"]
        value = raw["properties"]["hs_lastmodifieddate"]
        return int(dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)

    def _public(self, raw: dict[str, Any], properties: list[str]) -> dict[str, Any]:
        out = {k: v for k, v in raw.items() if k != "_modified"}
        if isinstance(out.get("properties"), dict) and properties:
            out["properties"] = {k: v for k, v in out["properties"].items() if k in properties or k == "hs_object_id"}
        return out

    # --- serving -----------------------------------------------------------------------------------

    def send(
        self, handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json;charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = json.loads(handler.rfile.read(length) or b"null") if length else None
        with self.lock:
            self.requests.append((method, parts.path, body))
            fault = self.fail_next.pop(0) if self.fail_next else None
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            return self.send(handler, 401, {
                "status": "error", "message": "Authentication credentials not found.",
                "correlationId": "00000000-0000-0000-0000-000000000000", "category": "INVALID_AUTHENTICATION",
            })  # fmt: skip
        if fault is not None:
            status, headers = fault
            category = "RATE_LIMITS" if status == 429 else "INTERNAL_ERROR"
            return self.send(handler, status, {"status": "error", "message": "fault", "category": category}, headers)
        if method == "GET" and parts.path == "/crm/v3/objects/companies":
            query = parse_qs(parts.query)
            limit = min(100, int(query.get("limit", ["10"])[0]))
            after = int(query.get("after", ["0"])[0])
            properties = query.get("properties", [])
            ordered = sorted(self.companies.values(), key=lambda r: str(r.get("id")))
            page = ordered[after : after + limit]
            out: dict[str, Any] = {"results": [self._public(r, properties) for r in page]}
            if after + limit < len(ordered):
                nxt = str(after + limit)
                out["paging"] = {"next": {"after": nxt, "link": f"{self.url}{parts.path}?after={nxt}"}}
            return self.send(handler, 200, out)
        if method == "POST" and parts.path == "/crm/v3/objects/companies/search":
            since = 0
            for group in body.get("filterGroups", []):
                for flt in group.get("filters", []):
                    if flt["propertyName"] == "hs_lastmodifieddate" and flt["operator"] == "GTE":
                        since = int(flt["value"])
            limit = min(200, int(body.get("limit", 10)))
            after = int(body.get("after") or 0)
            matched = sorted((r for r in self.companies.values() if self._modified(r) >= since), key=self._modified)
            page = matched[after : after + limit]
            out = {"total": len(matched), "results": [self._public(r, body.get("properties", [])) for r in page]}
            if after + limit < min(len(matched), 10_000):
                out["paging"] = {"next": {"after": str(after + limit)}}
            return self.send(handler, 200, out)
        return self.send(handler, 404, {"status": "error", "message": "not found", "category": "OBJECT_NOT_FOUND"})

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, _ in self.requests if m == method and p == path)
