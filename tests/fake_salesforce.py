"""A local Salesforce for the connector tests: a threaded ``http.server`` implementing the REST endpoints
the Salesforce connector uses, written from the Salesforce REST API Developer Guide
(https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/):

- "Query" (``resources_query.htm``) and "Execute a SOQL Query" (``dome_query.htm``):
  ``GET /services/data/vXX.X/query/?q=<SOQL>`` → ``{"totalSize", "done", "records", "nextRecordsUrl"}``;
  ``GET /services/data/vXX.X/query/<locator>-<offset>`` (queryMore); each record carries
  ``"attributes": {"type", "url"}``; a relationship subquery answers ``{"totalSize", "done",
  "records"}`` or ``null`` when empty; the batch size is 2,000 unless ``Sforce-Query-Options:
  batchSize=`` asks for fewer (``headers_queryoptions.htm``). An unknown or expired locator answers
  ``400 INVALID_QUERY_LOCATOR``. The SOQL parser knows only the forms the connector sends:
  ``SELECT <fields>[, (SELECT ... FROM OpportunityLineItems)] FROM <Type> [WHERE IsWon = true]
  [AND|WHERE SystemModstamp >|>= <datetime>] ORDER BY SystemModstamp, Id`` — the ``WHERE`` really filters,
  so request counts of incremental runs are real;
- "Get Deleted Records" (``resources_getdeleted.htm``): ``GET /services/data/vXX.X/sobjects/<Type>/
  deleted/?start=&end=`` → ``{"deletedRecords": [{"id", "deletedDate"}], "earliestDateAvailable",
  "latestDateCovered"}``;
- "sObject Collections: update" (``resources_composite_sobjects_collections_update.htm``):
  ``PATCH /services/data/vXX.X/composite/sobjects`` with ``{"allOrNone", "records"}`` (≤ 200 records,
  else ``400 EXCEEDED_ID_LIMIT``) → ``[{"id", "success", "errors"}]``;
- "Limits" (``resources_limits.htm``): ``GET /services/data/vXX.X/limits/``;
- "OAuth 2.0 Refresh Token Flow for Renewed Sessions" (Salesforce Help,
  https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm):
  ``POST /services/oauth2/token`` form-encoded ``grant_type=refresh_token&refresh_token=&client_id=&client_secret=``
  → ``{"access_token", "signature", "scope", "instance_url", "id", "token_type": "Bearer", "issued_at"}``;
  a wrong refresh token ``400 {"error": "invalid_grant", "error_description": "expired access/refresh
  token"}``, a wrong client ``400 {"error": "invalid_client_id" | "invalid_client", ...}``. ``expire_token()``
  makes the current access token answer ``401 INVALID_SESSION_ID`` (the refresh issues a new one);
- "Status Codes and Error Responses" (``errorcodes.htm``): error bodies ``[{"message", "errorCode"}]``;
  ``Authorization: Bearer <session id>``, anything else ``401 INVALID_SESSION_ID``; ``403
  REQUEST_LIMIT_EXCEEDED`` and ``503 SERVER_UNAVAILABLE`` for limits ("API Request Limits and
  Allocations").

Injectable faults: ``fail_next`` (a list of ``(status, headers)`` or ``(status, headers, body)``
answered before the next requests), malformed records (``add_raw``), deleted records (``delete``; ``undelete``
restores one from the recycle bin with a new ``SystemModstamp``, as Salesforce does), expired query locators
(``expire_locators``), expired access tokens (``expire_token``). ``requests`` records ``(method, path, query, body)``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "00D000000000001!AQ0AQFakeSessionIdForTests0123456789"
REFRESH_TOKEN = "5Aep861FakeRefreshTokenForTests"
CLIENT_ID = "3MVG9FakeConsumerKey"
CLIENT_SECRET = "FakeConsumerSecret0123"
PREFIX = {"Account": "001", "Contact": "003", "Opportunity": "006", "User": "005", "OpportunityLineItem": "00k"}
SOQL = re.compile(r"^SELECT (?P<fields>.+?) FROM (?P<type>\w+)(?: WHERE (?P<where>.+?))? ORDER BY SystemModstamp, Id$")


def sfid(kind: str, n: int) -> str:
    return f"{PREFIX[kind]}{n:012d}AAA"


def stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def parse_moment(text: str) -> dt.datetime:
    text = text.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    return dt.datetime.fromisoformat(text)


class FakeSalesforce:
    def __init__(self, token: str = TOKEN, version: str = "60.0") -> None:
        self.token = token
        self.version = version
        self.records: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in PREFIX}
        self.deleted: dict[str, list[tuple[str, dt.datetime]]] = {t: [] for t in PREFIX}
        self.recycle_bin: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in PREFIX}
        self.refresh_token = REFRESH_TOKEN
        self.client_id, self.client_secret = CLIENT_ID, CLIENT_SECRET
        self.issued: list[str] = []  # access tokens issued by the token endpoint
        self.issue_unusable_tokens = False  # a session policy refusing the refreshed session too
        self.fail_next: list[tuple] = []
        self.requests: list[tuple[str, str, str, Any]] = []
        self.pushed: list[list[dict[str, Any]]] = []
        self.locators: dict[str, list[dict[str, Any]]] = {}
        self.batch_size = 2000
        self.lock = threading.RLock()
        self.clock = dt.datetime(2023, 11, 14, 22, 0, tzinfo=dt.UTC)
        self.counter = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.handle(self, "GET")

            def do_PATCH(self) -> None:
                fake.handle(self, "PATCH")

            def do_POST(self) -> None:
                fake.handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def data_path(self) -> str:
        return f"/services/data/v{self.version}"

    def __enter__(self) -> FakeSalesforce:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- data --------------------------------------------------------------------------------------

    def tick(self) -> dt.datetime:
        self.clock += dt.timedelta(seconds=1)
        return self.clock

    def put(self, kind: str, rid: str, **fields: Any) -> dict[str, Any]:
        with self.lock:
            now = self.tick()
            old = self.records[kind].get(rid, {})
            record = {**old, **fields, "Id": rid, "SystemModstamp": stamp(now)}
            record.setdefault("CreatedDate", stamp(now))
            self.records[kind][rid] = record
            return record

    def add_account(self, n: int, **fields: Any) -> str:
        rid = sfid("Account", n)
        self.put("Account", rid, **{"Name": f"Account {n}", "Website": f"https://www.a{n}.example", **fields})
        return rid

    def add_contact(self, n: int, account: str | None, **fields: Any) -> str:
        rid = sfid("Contact", n)
        base = {"Name": f"Contact {n}", "Email": f"contact{n}@example.com", "Title": "Buyer", "AccountId": account}
        self.put("Contact", rid, **{**base, **fields})
        return rid

    def add_user(self, n: int, email: str) -> str:
        rid = sfid("User", n)
        self.put("User", rid, Email=email, Username=email)
        return rid

    def add_opportunity(
        self, n: int, account: str, lines: list[tuple[str, str, float, float]] = (), **fields: Any
    ) -> str:
        """``lines``: ``(product code, product name, quantity, unit price)``."""
        rid = sfid("Opportunity", n)
        items = [
            {
                "Id": sfid("OpportunityLineItem", n * 100 + i),
                "Product2Id": f"01t{n * 100 + i:012d}AAA",
                "Product2": {"ProductCode": code, "Name": name},
                "Quantity": qty,
                "UnitPrice": price,
                "SystemModstamp": stamp(self.clock),
            }
            for i, (code, name, qty, price) in enumerate(lines)
        ]
        amount = sum(q * p for _, _, q, p in lines) or fields.pop("Amount", 12000.0)
        base = {"AccountId": account, "StageName": "Closed Won", "IsWon": True, "IsClosed": True,
                "CloseDate": "2024-03-01", "Amount": amount, "_lines": items}  # fmt: skip
        self.put("Opportunity", rid, **{**base, **fields})
        return rid

    def change(self, kind: str, rid: str, **fields: Any) -> None:
        self.put(kind, rid, **fields)

    def delete(self, kind: str, rid: str) -> None:
        with self.lock:
            self.recycle_bin[kind][rid] = self.records[kind].pop(rid)
            self.deleted[kind].append((rid, self.tick()))

    def undelete(self, kind: str, rid: str) -> None:
        """Restore from the recycle bin: the record is back with a new ``SystemModstamp`` and no longer in
        the deleted records."""
        with self.lock:
            record = self.recycle_bin[kind].pop(rid)
            self.deleted[kind] = [(r, when) for r, when in self.deleted[kind] if r != rid]
            self.records[kind][rid] = {**record, "SystemModstamp": stamp(self.tick())}

    def expire_token(self) -> None:
        """The current access token is no longer valid (expired or revoked): ``401 INVALID_SESSION_ID``."""
        with self.lock:
            self.token = f"00D000000000001!Expired{next(self.counter)}"

    def add_raw(self, kind: str, raw: Any) -> None:
        """A malformed record (stored as is; sorted last)."""
        with self.lock:
            self.records[kind][f"raw{next(self.counter)}"] = {"_raw": raw, "SystemModstamp": stamp(self.tick())}

    def expire_locators(self) -> None:
        self.locators.clear()

    # --- serving -----------------------------------------------------------------------------------

    def send(
        self, handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json;charset=UTF-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Sforce-Limit-Info", "api-usage=10/100000")
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    def error(self, handler: BaseHTTPRequestHandler, status: int, code: str, message: str, headers=None) -> None:
        self.send(handler, status, [{"message": message, "errorCode": code}], headers)

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        form = "x-www-form-urlencoded" in (handler.headers.get("Content-Type") or "")
        body = json.loads(raw or b"null") if length and not form else None
        if method == "POST" and parts.path == "/services/oauth2/token":
            with self.lock:
                self.requests.append((method, parts.path, "", None))  # never the secrets
            return self.token_endpoint(handler, raw)
        with self.lock:
            self.requests.append((method, parts.path, parts.query, body))
            fault = self.fail_next.pop(0) if self.fail_next else None
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            return self.error(handler, 401, "INVALID_SESSION_ID", "Session expired or invalid")
        if fault is not None:
            status, headers, *rest = fault
            if rest:
                return self.send(handler, status, rest[0], headers)
            code = {429: "REQUEST_LIMIT_EXCEEDED", 403: "REQUEST_LIMIT_EXCEEDED"}.get(status, "SERVER_UNAVAILABLE")
            return self.error(handler, status, code, "fault injected", headers)
        base = self.data_path
        if method == "GET" and parts.path == f"{base}/query/":
            q = parse_qs(parts.query).get("q", [""])[0]
            return self.query(handler, q)
        if method == "GET" and parts.path.startswith(f"{base}/query/"):
            return self.query_more(handler, parts.path.rsplit("/", 1)[1])
        match = re.fullmatch(rf"{re.escape(base)}/sobjects/(\w+)/deleted/", parts.path)
        if method == "GET" and match:
            return self.get_deleted(handler, match.group(1), parse_qs(parts.query))
        if method == "PATCH" and parts.path == f"{base}/composite/sobjects":
            return self.collections_update(handler, body)
        if method == "GET" and parts.path == f"{base}/limits/":
            return self.send(handler, 200, {"DailyApiRequests": {"Max": 100000, "Remaining": 99990}})
        return self.error(handler, 404, "NOT_FOUND", "The requested resource does not exist")

    def token_endpoint(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        if form.get("grant_type") != "refresh_token":
            return self.send(
                handler, 400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
            )
        if form.get("client_id") != self.client_id:
            return self.send(
                handler, 400, {"error": "invalid_client_id", "error_description": "client identifier invalid"}
            )
        if form.get("client_secret") != self.client_secret:
            return self.send(
                handler, 400, {"error": "invalid_client", "error_description": "invalid client credentials"}
            )
        if form.get("refresh_token") != self.refresh_token:
            return self.send(
                handler, 400, {"error": "invalid_grant", "error_description": "expired access/refresh token"}
            )
        with self.lock:
            issued = f"00D000000000001!Refreshed{next(self.counter)}"
            self.issued.append(issued)
            if not self.issue_unusable_tokens:
                self.token = issued
        return self.send(handler, 200, {
            "access_token": issued, "signature": "fake", "scope": "api refresh_token", "instance_url": self.url,
            "id": f"{self.url}/id/00D000000000001/005000000000001", "token_type": "Bearer",
            "issued_at": str(int(self.clock.timestamp() * 1000)),
        })  # fmt: skip

    def _public(self, kind: str, record: dict[str, Any], with_lines: bool) -> Any:
        if "_raw" in record:
            return record["_raw"]
        out = {"attributes": {"type": kind, "url": f"{self.data_path}/sobjects/{kind}/{record['Id']}"}}
        out.update({k: v for k, v in record.items() if not k.startswith("_")})
        if with_lines and kind == "Opportunity":
            lines = [{"attributes": {"type": "OpportunityLineItem"}, **line} for line in record.get("_lines", [])]
            out["OpportunityLineItems"] = {"totalSize": len(lines), "done": True, "records": lines} if lines else None
        return out

    def query(self, handler: BaseHTTPRequestHandler, q: str) -> None:
        match = SOQL.match(q.strip())
        if not match or match.group("type") not in self.records:
            return self.error(handler, 400, "MALFORMED_QUERY", f"unexpected SOQL: {q[:80]}")
        kind = match.group("type")
        conditions = [c.strip() for c in (match.group("where") or "").split(" AND ") if c.strip()]
        since: tuple[str, dt.datetime] | None = None
        won_only = False
        for condition in conditions:
            if condition == "IsWon = true":
                won_only = True
                continue
            m = re.fullmatch(r"SystemModstamp (>=|>) (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)", condition)
            if not m:
                return self.error(handler, 400, "MALFORMED_QUERY", f"unexpected condition: {condition}")
            since = (m.group(1), parse_moment(m.group(2)))
        with self.lock:
            rows = list(self.records[kind].values())
        if won_only:
            rows = [r for r in rows if "_raw" in r or r.get("IsWon")]
        if since is not None:
            op, moment = since
            if op == ">":
                rows = [r for r in rows if parse_moment(r["SystemModstamp"]) > moment]
            else:
                rows = [r for r in rows if parse_moment(r["SystemModstamp"]) >= moment]
        rows.sort(key=lambda r: (r["SystemModstamp"], r.get("Id", "~")))
        with_lines = "FROM OpportunityLineItems" in match.group("fields")
        snapshot = [self._public(kind, r, with_lines) for r in rows]
        size = self.batch_size
        header = handler.headers.get("Sforce-Query-Options") or ""
        if m := re.search(r"batchSize=(\d+)", header):
            size = max(200, min(2000, int(m.group(1))))
        locator = f"01gD{next(self.counter):011d}"
        with self.lock:
            self.locators[locator] = snapshot
        return self.send(handler, 200, self._batch(locator, snapshot, 0, size))

    def _batch(self, locator: str, snapshot: list[Any], offset: int, size: int) -> dict[str, Any]:
        page = snapshot[offset : offset + size]
        done = offset + size >= len(snapshot)
        out: dict[str, Any] = {"totalSize": len(snapshot), "done": done, "records": page}
        if not done:
            out["nextRecordsUrl"] = f"{self.data_path}/query/{locator}-{offset + size}"
        return out

    def query_more(self, handler: BaseHTTPRequestHandler, ident: str) -> None:
        locator, _, offset = ident.partition("-")
        with self.lock:
            snapshot = self.locators.get(locator)
        if snapshot is None or not offset.isdigit():
            return self.error(handler, 400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self.send(handler, 200, self._batch(locator, snapshot, int(offset), self.batch_size))

    def get_deleted(self, handler: BaseHTTPRequestHandler, kind: str, query: dict[str, list[str]]) -> None:
        try:
            start = parse_moment(query["start"][0])
            end = parse_moment(query["end"][0])
        except (KeyError, ValueError):
            return self.error(handler, 400, "INVALID_REPLICATION_DATE", "start and end are required dateTimes")
        if end <= start:
            return self.error(handler, 400, "INVALID_REPLICATION_DATE", "end must be after start")
        with self.lock:
            gone = [(rid, when) for rid, when in self.deleted.get(kind, []) if start <= when <= end]
        return self.send(handler, 200, {
            "deletedRecords": [{"id": rid, "deletedDate": stamp(when)} for rid, when in gone],
            "earliestDateAvailable": stamp(self.clock - dt.timedelta(days=15)),
            "latestDateCovered": stamp(end),
        })  # fmt: skip

    def collections_update(self, handler: BaseHTTPRequestHandler, body: Any) -> None:
        records = (body or {}).get("records") or []
        if len(records) > 200:
            return self.error(handler, 400, "EXCEEDED_ID_LIMIT", "record count exceeds 200")
        results = []
        with self.lock:
            self.pushed.append(records)
            for record in records:
                kind = (record.get("attributes") or {}).get("type")
                rid = record.get("id")
                if kind not in self.records or rid not in self.records[kind]:
                    results.append({"id": rid, "success": False, "errors": [
                        {"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}
                    ]})  # fmt: skip
                    continue
                fields = {k: v for k, v in record.items() if k not in ("attributes", "id")}
                self.put(kind, rid, **fields)
                results.append({"id": rid, "success": True, "errors": []})
        return self.send(handler, 200, results)

    def count(self, method: str, path_part: str) -> int:
        return sum(1 for m, p, _, _ in self.requests if m == method and path_part in p)
