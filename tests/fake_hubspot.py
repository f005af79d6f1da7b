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

- "CRM API | Contacts", "Deals", "Line items" (same list/search shapes; ``associations=companies,line_items``
  on the list answers ``"associations": {"companies": {"results": [{"id", "type"}]}}``);
  ``GET /crm/v3/objects/<type>?archived=true`` lists archived records (``"archived": true, "archivedAt"``);
  ``POST /crm/v3/objects/line_items/batch/read`` (``inputs``, ``properties``);
- "CRM API | Associations v4" (https://developers.hubspot.com/docs/api/crm/associations):
  ``POST /crm/v4/associations/<from>/<to>/batch/read`` → ``{"results": [{"from": {"id"}, "to":
  [{"toObjectId", "associationTypes"}]}]}``;
- "Account information API" (https://developers.hubspot.com/docs/api/settings/account-information-api):
  ``GET /account-info/v3/details`` → ``{"portalId", "uiDomain", "dataHostingLocation", ...}``;
- "CRM API | Owners" (https://developers.hubspot.com/docs/api/crm/owners): ``GET /crm/v3/owners`` paged;
- "Companies | batch update": ``POST /crm/v3/objects/companies/batch/update`` (``inputs`` ≤ 100, each
  ``{"id", "properties"}``) → ``{"status": "COMPLETE", "results": [...]}``; ``207`` with ``errors`` (category
  ``OBJECT_NOT_FOUND``, ``context.ids``) when some ids are unknown or archived; more than 100 inputs → 400.

Injectable faults: ``fail_next`` (a list of ``(status, headers)`` answered before the next requests),
malformed records (``add_raw``), archived records (``archive``),
and a rate limit (``rate_limit=(100, 10)`` answers 429 with ``Retry-After`` past it, as HubSpot does).
``requests`` records ``(method, path, body)`` of every call.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "pat-na1-test-token-0123456789"


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeHubSpot:
    OBJECTS = ("companies", "contacts", "deals", "line_items")

    def __init__(self, token: str = TOKEN, rate_limit: tuple[int, float] | None = None) -> None:
        self.token = token
        self.portal_id = 4512345
        self.objects: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self.OBJECTS}
        self.companies = self.objects["companies"]  # id -> raw record
        self.owners: dict[str, dict[str, Any]] = {}
        self.fail_next: list[tuple[int, dict[str, str]]] = []
        self.requests: list[tuple[str, str, Any]] = []
        self.updates: list[dict[str, Any]] = []  # every input of companies/batch/update
        self.lock = threading.Lock()
        self.clock_ms = 1_700_000_000_000
        self.rate_limit = rate_limit  # (requests, seconds): answer 429 past it, as HubSpot does
        self._window: list[float] = []
        self._sorted: dict[str, list[dict[str, Any]] | None] = dict.fromkeys(self.OBJECTS)
        self._archived: dict[str, list[dict[str, Any]]] = {}
        self._live: dict[str, list[dict[str, Any]]] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.handle(self, "GET")

            def do_POST(self) -> None:
                fake.handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
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

    def _put(self, otype: str, oid: str, props: dict[str, Any], assoc: dict[str, list[str]] | None = None) -> None:
        with self.lock:
            self.clock_ms += 1000
            props = dict(props)
            props["hs_lastmodifieddate"] = iso(self.clock_ms)
            props["hs_object_id"] = oid
            old = self.objects[otype].get(oid) or {}
            self.objects[otype][oid] = {
                "id": oid, "properties": props, "createdAt": old.get("createdAt") or iso(self.clock_ms),
                "updatedAt": iso(self.clock_ms), "archived": False,
                "_assoc": assoc if assoc is not None else old.get("_assoc", {}),
            }  # fmt: skip
            self._sorted[otype] = None

    def add_company(self, cid: str, **properties: Any) -> None:
        self._put("companies", cid, {"name": f"Company {cid}", "domain": f"c{cid}.example", **properties})

    def change_company(self, cid: str, **properties: Any) -> None:
        self.change("companies", cid, **properties)

    def change(self, otype: str, oid: str, **properties: Any) -> None:
        current = dict(self.objects[otype][oid]["properties"])
        current.update(properties)
        current.pop("hs_lastmodifieddate", None)
        self._put(otype, oid, current)

    def add_contact(self, cid: str, company: str | None = None, **properties: Any) -> None:
        props = {"firstname": "Ann", "lastname": f"Contact {cid}", "email": f"ann{cid}@example.com", **properties}
        self._put("contacts", cid, props, {"companies": [company] if company else []})

    def add_line_item(self, lid: str, **properties: Any) -> None:
        props = {"name": f"Product {lid}", "hs_sku": f"SKU-{lid}", "quantity": "1", "price": "1000", **properties}
        self._put("line_items", lid, props)

    def add_deal(self, did: str, company: str | None = None, line_items: list[str] = (), **properties: Any) -> None:
        props = {
            "dealname": f"Deal {did}", "pipeline": "default", "dealstage": "closedwon", "amount": "12000",
            "closedate": "2026-01-01T00:00:00.000Z", **properties,
        }  # fmt: skip
        self._put("deals", did, props, {"companies": [company] if company else [], "line_items": list(line_items)})

    def add_owner(self, oid: str, email: str) -> None:
        self.owners[oid] = {"id": oid, "email": email, "firstName": "O", "lastName": oid, "archived": False}

    def archive(self, otype: str, oid: str) -> None:
        with self.lock:
            self.clock_ms += 1000
            raw = self.objects[otype][oid]
            raw["archived"] = True
            raw["archivedAt"] = iso(self.clock_ms)
            self._sorted[otype] = None

    def add_raw(self, raw: dict[str, Any], modified_ms: int | None = None) -> None:
        with self.lock:
            self.clock_ms += 1000
            raw.setdefault("_modified", modified_ms or self.clock_ms)
            self.companies[str(raw.get("id") or f"raw{len(self.companies)}")] = raw
            self._sorted["companies"] = None

    @staticmethod
    def _modified(raw: dict[str, Any]) -> int:
        if "_modified" in raw:
            return raw["_modified"]
        value = raw["properties"]["hs_lastmodifieddate"]
        return int(dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)

    def _public(self, raw: dict[str, Any], properties: list[str], associations: list[str] = ()) -> dict[str, Any]:
        out = {k: v for k, v in raw.items() if not k.startswith("_")}
        if isinstance(out.get("properties"), dict) and properties:
            out["properties"] = {k: v for k, v in out["properties"].items() if k in properties or k == "hs_object_id"}
        if associations:
            linked = {}
            for name in associations:
                ids = (raw.get("_assoc") or {}).get(name) or []
                if ids:
                    linked[name] = {"results": [{"id": i, "type": f"to_{name}"} for i in ids]}
            if linked:
                out["associations"] = linked
        return out

    def _ordered(self, otype: str, archived: bool) -> list[dict[str, Any]]:
        with self.lock:
            if self._sorted[otype] is None:
                ordered = sorted(self.objects[otype].values(), key=lambda r: str(r.get("id")))
                self._sorted[otype] = ordered
                self._archived[otype] = [r for r in ordered if r.get("archived")]
                self._live[otype] = [r for r in ordered if not r.get("archived")]
            return self._archived[otype] if archived else self._live[otype]

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

    def _limited(self) -> float | None:
        """Seconds to wait when the rate limit is exceeded (a sliding window, as HubSpot's 10 s one)."""
        if self.rate_limit is None:
            return None
        count, per = self.rate_limit
        now = time.monotonic()
        with self.lock:
            self._window = [t for t in self._window if now - t < per]
            if len(self._window) >= count:
                return max(0.05, per - (now - self._window[0]))
            self._window.append(now)
        return None

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
        if fault is None and (wait := self._limited()) is not None:
            fault = (429, {"Retry-After": str(max(1, math.ceil(wait)) if wait >= 1 else round(wait, 2))})
        if fault is not None:
            status, headers = fault
            category = "RATE_LIMITS" if status == 429 else "INTERNAL_ERROR"
            return self.send(handler, status, {"status": "error", "message": "fault", "category": category}, headers)
        path = parts.path.rstrip("/")
        segments = path.split("/")
        if method == "GET" and path == "/account-info/v3/details":
            return self.send(handler, 200, {
                "portalId": self.portal_id, "uiDomain": "app.hubspot.com", "dataHostingLocation": "na1",
                "timeZone": "Europe/Paris", "companyCurrency": "EUR", "accountType": "STANDARD",
            })  # fmt: skip
        if method == "GET" and path == "/crm/v3/owners":
            query = parse_qs(parts.query)
            after = int(query.get("after", ["0"])[0])
            limit = min(500, int(query.get("limit", ["100"])[0]))
            ordered = sorted(self.owners.values(), key=lambda o: o["id"])
            out: dict[str, Any] = {"results": ordered[after : after + limit]}
            if after + limit < len(ordered):
                out["paging"] = {"next": {"after": str(after + limit)}}
            return self.send(handler, 200, out)
        if len(segments) == 5 and segments[1:4] == ["crm", "v3", "objects"] and segments[4] in self.objects:
            if method != "GET":
                return self.send(handler, 405, {"status": "error", "message": "method", "category": "VALIDATION_ERROR"})
            otype = segments[4]
            query = parse_qs(parts.query)
            limit = min(100, int(query.get("limit", ["10"])[0]))
            after = int(query.get("after", ["0"])[0])
            properties = ",".join(query.get("properties", [])).split(",") if query.get("properties") else []
            associations = ",".join(query.get("associations", [])).split(",") if query.get("associations") else []
            archived = query.get("archived", ["false"])[0] == "true"
            ordered = self._ordered(otype, archived)
            page = ordered[after : after + limit]
            out = {"results": [self._public(r, properties, associations) for r in page]}
            if after + limit < len(ordered):
                nxt = str(after + limit)
                out["paging"] = {"next": {"after": nxt, "link": f"{self.url}{parts.path}?after={nxt}"}}
            return self.send(handler, 200, out)
        if method == "POST" and len(segments) == 6 and segments[5] == "search" and segments[4] in self.objects:
            otype = segments[4]
            since = 0
            for group in body.get("filterGroups", []):
                for flt in group.get("filters", []):
                    if flt["propertyName"] == "hs_lastmodifieddate" and flt["operator"] == "GTE":
                        since = int(flt["value"])
            limit = min(200, int(body.get("limit", 10)))
            after = int(body.get("after") or 0)
            matched = sorted(
                (r for r in self.objects[otype].values() if not r.get("archived") and self._modified(r) >= since),
                key=self._modified,
            )
            page = matched[after : after + limit]
            out = {"total": len(matched), "results": [self._public(r, body.get("properties", [])) for r in page]}
            if after + limit < min(len(matched), 10_000):
                out["paging"] = {"next": {"after": str(after + limit)}}
            return self.send(handler, 200, out)
        if method == "POST" and path == "/crm/v3/objects/line_items/batch/read":
            wanted = [str(i.get("id")) for i in body.get("inputs", [])]
            props = body.get("properties", [])
            items = self.objects["line_items"]
            found = [self._public(items[i], props) for i in wanted if i in items]
            return self.send(handler, 200, {"status": "COMPLETE", "results": found})
        if method == "POST" and len(segments) == 8 and segments[1:4] == ["crm", "v4", "associations"]:
            source, to = segments[4], segments[5]
            results = []
            for item in body.get("inputs", []):
                raw = self.objects.get(source, {}).get(str(item.get("id")))
                ids = ((raw or {}).get("_assoc") or {}).get(to) or []
                if raw is not None and ids:
                    results.append({
                        "from": {"id": raw["id"]},
                        "to": [{"toObjectId": int(i) if str(i).isdigit() and str(int(i)) == str(i) else i,
                                "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 1, "label": None}]}
                               for i in ids],
                    })  # fmt: skip
            return self.send(handler, 200, {"status": "COMPLETE", "results": results})
        if method == "POST" and path == "/crm/v3/objects/companies/batch/update":
            inputs = body.get("inputs", [])
            if len(inputs) > 100:
                return self.send(handler, 400, {
                    "status": "error", "message": "Too many inputs: at most 100", "category": "VALIDATION_ERROR",
                })  # fmt: skip
            results, missing = [], []
            with self.lock:
                for item in inputs:
                    self.updates.append(item)
                    raw = self.companies.get(str(item["id"]))
                    if raw is not None and not raw.get("archived"):
                        raw["properties"].update(item.get("properties") or {})
                        results.append({"id": raw["id"], "properties": raw["properties"]})
                    else:
                        missing.append(str(item["id"]))
            if missing:  # HubSpot answers 207 Multi-Status, the refused ids in each error's context
                return self.send(handler, 207, {
                    "status": "COMPLETE", "results": results, "numErrors": 1,
                    "errors": [{"status": "error", "category": "OBJECT_NOT_FOUND",
                                "message": "Could not get some COMPANY objects, they may be deleted or not exist.",
                                "context": {"ids": missing}}],
                })  # fmt: skip
            return self.send(handler, 200, {"status": "COMPLETE", "results": results})
        return self.send(handler, 404, {"status": "error", "message": "not found", "category": "OBJECT_NOT_FOUND"})

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, _ in self.requests if m == method and p == path)
