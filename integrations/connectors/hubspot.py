"""HubSpot: companies → accounts, contacts → contacts, deals (+ line items) → contracts, owners → account
owners by email; push-back of health and renewal values to company properties.

Client: the official ``hubspot-api-client`` (12.0.0). Its ``Configuration.host`` is the connection's base
URL (``https://api.hubapi.com`` by default; an EU portal, a sandbox or a proxy can be set), its urllib3
pool is replaced by the run's :class:`~integrations.http.ConnectorHttp` (outbound guard, token bucket,
429/5xx retries), and it authenticates with a private app's access token (``Authorization: Bearer``).

Endpoints used (HubSpot API reference, "CRM API | Companies":
https://developers.hubspot.com/docs/api/crm/companies, and "CRM API | Search":
https://developers.hubspot.com/docs/api/crm/search):

- ``GET /crm/v3/objects/companies?limit=100&after=…&properties=…`` — the first, full sync, paged by
  ``paging.next.after``. The next run starts from the run's start time minus ``WATERMARK_SKEW``.
- ``POST /crm/v3/objects/companies/search`` with a ``hs_lastmodifieddate GTE <epoch ms>`` filter, sorted
  ascending on it, paged by ``after`` — later runs fetch only what changed. The search API answers at
  most 10,000 results per query: past that the query restarts from the newest modification date seen
  (re-applying a few records is harmless: upserts by external id). The next run's watermark is the
  newest ``hs_lastmodifieddate`` seen plus one millisecond.
- ``GET /crm/v3/objects/companies?limit=1`` — "Test connection".

Rate limit: private apps get 100 requests per 10 seconds (Free/Starter; 190 for Professional and
Enterprise) and the search endpoints 5 requests per second per token
(https://developers.hubspot.com/docs/api/usage-details): the connector declares 100 per 10 s.
A ``429`` carries ``Retry-After`` (honoured by ``ConnectorHttp``).

Also (same list/search shapes; "CRM API | Contacts", "Deals", "Line items", "Owners", "Associations v4"):

- ``GET /crm/v3/objects/contacts?associations=companies`` and ``GET /crm/v3/objects/deals?associations=
  companies,line_items`` (full sync); the search API answers no associations, so an incremental page
  asks ``POST /crm/v4/associations/<type>/<to>/batch/read`` once per associated type and page;
- ``POST /crm/v3/objects/line_items/batch/read`` — a page's deals' line items, one request per page;
- ``GET /crm/v3/owners`` — owner id → email, read once per run, only when a record names an owner;
- ``GET /crm/v3/objects/<type>?archived=true`` — after an incremental run's search, the archived
  records archived since the watermark: ``Record(deleted=True)``, applied by the framework (docs/integrations.md
  "Deletions in the CRM": accounts and contracts kept and flagged, contacts deactivated; nothing destroyed);
- ``POST /crm/v3/objects/companies/batch/update`` — push-back, at most 100 inputs per call.

Those calls go through ``self.http.json`` (the same guarded, rate-limited transport as the library).

Pages are read with ``_preload_content=False`` and parsed here, so one malformed record (no ``id``,
properties not an object) is listed as that record's error instead of failing the library's
deserialisation of the whole page.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any, ClassVar
from urllib.parse import urlencode

from cs_platform.outbound import OutboundRefused, ResponseTooLarge

from .base import Connector, ConnectorError, ObjectSpec, Page, PushResult, RateLimit, Record, register

__all__ = ["COMPANIES_MAPPING", "CONTACTS_MAPPING", "DEALS_MAPPING", "PUSH_PROPERTIES", "HubSpotConnector"]

PAGE_SIZE = 100  # the list and search endpoints' maximum
SEARCH_LIMIT = 10_000  # results one search query can page through
WATERMARK_SKEW_MS = 5 * 60 * 1000
MODIFIED = "hs_lastmodifieddate"

COMPANIES_MAPPING: dict[str, Any] = {
    "fields": [
        {"target": "name", "source": "properties.name", "transform": "text"},
        {"target": "domain", "source": "properties.domain", "transform": "lower"},
        {"target": "industry", "source": "properties.industry", "transform": "text"},
        {"target": "region", "source": "properties.country", "transform": "text"},
        {"target": "employees", "source": "properties.numberofemployees", "transform": "int"},
        {"target": "parent_external_id", "source": "properties.hs_parent_company_id", "transform": "text"},
        {"target": "owner_email", "source": "properties.hubspot_owner_id", "transform": "hubspot_owner"},
        {
            "target": "customer_since",
            "source": "properties.hs_lifecyclestage_customer_date",
            "transform": "date",
            "wins": "retain",
        },
    ]
}


CONTACTS_MAPPING: dict[str, Any] = {
    "fields": [
        {"target": "account_external_id", "source": "company", "transform": "text"},
        {"target": "name", "source": "full_name", "transform": "text"},
        {"target": "email", "source": "properties.email", "transform": "email"},
        {"target": "title", "source": "properties.jobtitle", "transform": "text"},
    ]
}

#: HubSpot's default sales pipeline's stages ("pipeline/stage") → contract status. An open stage is not
#: mapped on purpose: such a deal is listed ("no mapping for value ...") until it is won or lost.
DEAL_STAGES: dict[str, str] = {"default/closedwon": "active", "default/closedlost": "cancelled"}

DEALS_MAPPING: dict[str, Any] = {
    "fields": [
        {"target": "account_external_id", "source": "company", "transform": "text"},
        {"target": "contract_number", "source": "number", "transform": "text"},
        {"target": "start_date", "source": "term.start", "transform": "date"},
        {"target": "end_date", "source": "term.end", "transform": "date"},
        {"target": "status", "source": "stage", "transform": {"map": DEAL_STAGES}},
        {"target": "product_sku", "source": "line.sku", "transform": "text"},
        {"target": "product_name", "source": "line.name", "transform": "text"},
        {"target": "quantity", "source": "line.quantity", "transform": "decimal"},
        {"target": "annual_unit_price", "source": "line.price", "transform": "money"},
        {"target": "discount", "source": "line.discount", "transform": "decimal"},
    ]
}

#: The company properties Retain writes back (create them in HubSpot first: docs/integrations.md): Retain
#: value (``integrations.push.VALUES``) → property.
PUSH_FIELDS = {
    "health_score": "retain_health_score",
    "health_color": "retain_health_colour",
    "health_trend": "retain_health_trend",
    "next_renewal_date": "retain_next_renewal_date",
    "forecast_category": "retain_forecast_category",
}
PUSH_PROPERTIES = tuple(PUSH_FIELDS.values())
BATCH_UPDATE_LIMIT = 100
DEAL_SKU = "HUBSPOT-DEAL"  # the one line of a deal without line items
LINE_PROPERTIES = ["name", "hs_sku", "hs_product_id", "quantity", "price", "hs_discount_percentage"]


def _ms(value: Any) -> int | None:
    """Epoch milliseconds of HubSpot's ISO timestamps (``2024-05-01T10:00:00.123Z``)."""
    if not value:
        return None
    text = str(value)
    if text.isdigit():
        return int(text)
    try:
        return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def _owner_email(value: Any, _options: Any, connector: Any) -> str:
    """``hubspot_owner`` transform: a HubSpot owner id → the owner's email when that person is a member
    of the organization (the account owner cell); otherwise empty (the account lands unowned)."""
    if connector is None:
        return ""
    return connector.owner_email(str(value).strip())


def _associated(raw: dict[str, Any], name: str) -> list[str]:
    block = (raw.get("associations") or {}).get(name) or {}
    results = block.get("results") if isinstance(block, dict) else None
    return [str(item.get("id")) for item in results or [] if isinstance(item, dict) and item.get("id")]


def _end_of_term(start: str) -> str:
    """A deal's contract end when it names none: one year from its close date, less a day."""
    try:
        day = dt.date.fromisoformat(start[:10])
    except ValueError:
        return ""
    try:
        return (day.replace(year=day.year + 1) - dt.timedelta(days=1)).isoformat()
    except ValueError:  # 29 February
        return (day + dt.timedelta(days=364)).isoformat()


def _percent(value: Any) -> str:
    try:
        return str(float(value) / 100) if value not in (None, "") else ""
    except ValueError:
        return str(value)


ASSOCIATIONS = {"companies": [], "contacts": ["companies"], "deals": ["companies", "line_items"]}
ALWAYS = {
    "companies": {"name"},
    "contacts": {"firstname", "lastname", "email"},
    "deals": {"dealname", "pipeline", "dealstage", "amount", "closedate", "contract_start_date", "contract_end_date"},
}


@register
class HubSpotConnector(Connector):
    kind = "hubspot"
    label = "HubSpot"
    default_base_url = "https://api.hubapi.com"
    credential_fields = ("access_token",)
    rate_limit = RateLimit(requests=100, per_seconds=10)
    prefetch = True  # fetch_page only speaks HTTP (owners are read by the mapping, in the applying thread)
    reference_url = "https://developers.hubspot.com/docs/api/crm/companies"
    push_fields = PUSH_FIELDS
    push_batch_size = BATCH_UPDATE_LIMIT
    push_id_pattern = r"^[0-9]+$"  # a company id: never another CRM's ids (a Salesforce 001…) in one organization
    objects = {
        "companies": ObjectSpec(
            name="companies",
            label="Companies → accounts",
            target="accounts",
            default_mapping=COMPANIES_MAPPING,
            directions=("pull", "push", "both"),
            transforms={"hubspot_owner": _owner_email},
        ),
        "contacts": ObjectSpec(
            name="contacts",
            label="Contacts → contacts",
            target="contacts",
            default_mapping=CONTACTS_MAPPING,
            transforms={"hubspot_owner": _owner_email},
        ),
        "deals": ObjectSpec(
            name="deals",
            label="Deals → contracts (and their renewals)",
            target="contracts",
            default_mapping=DEALS_MAPPING,
            transforms={"hubspot_owner": _owner_email},
        ),
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client: Any = None
        self._owners: dict[str, str] | None = None
        self._members: set[str] | None = None

    # --- the client --------------------------------------------------------------------------------

    def client(self) -> Any:
        """``hubspot.Client`` whose every API object uses this run's host and transport."""
        if self._client is None:
            import hubspot

            token = self._token()
            http, host = self.http, self.base_url

            def factory(package: Any, api_name: str, config: dict[str, Any]) -> Any:
                configuration = package.Configuration()
                configuration.host = host
                configuration.access_token = config.get("access_token")
                api_client = package.ApiClient(configuration=configuration)
                api_client.rest_client.pool_manager = http  # the guarded, rate-limited transport
                api_client.user_agent = "Retain (hubspot-api-client)"
                return getattr(package, api_name)(api_client=api_client)

            self._client = hubspot.Client.create(access_token=token, api_factory=factory)
        return self._client

    def _token(self) -> str:
        token = self.connection.credentials.get("access_token", "")
        if not token:
            raise ConnectorError("No access token is set for this connection.")
        return token

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call the library, answer the parsed JSON body; vendor errors become ConnectorError."""
        from hubspot.crm.companies.exceptions import ApiException

        try:
            response = fn(*args, _preload_content=False, **kwargs)
        except ApiException as exc:
            raise ConnectorError(self._status_words(exc.status)) from None
        except OutboundRefused as exc:
            raise ConnectorError(exc.reason) from None
        except ResponseTooLarge as exc:
            raise ConnectorError(str(exc)) from None
        if not 200 <= response.status < 300:
            raise ConnectorError(self._status_words(response.status))
        try:
            return json.loads(response.data)
        except ValueError:
            raise ConnectorError("HubSpot answered something that is not JSON.") from None

    def _json(self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None) -> Any:
        """One REST call through ``self.http``; the parsed JSON body, or ConnectorError."""
        url = f"{self.base_url}{path}"
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v not in (None, "")}, doseq=True)
        headers = {"Authorization": f"Bearer {self._token()}"}
        try:
            status, data = self.http.json(method, url, body=body, headers=headers)
        except OutboundRefused as exc:
            raise ConnectorError(exc.reason) from None
        except ResponseTooLarge as exc:
            raise ConnectorError(str(exc)) from None
        if not 200 <= status < 300:
            raise ConnectorError(self._status_words(status))
        if not isinstance(data, dict):
            raise ConnectorError("HubSpot answered something that is not a JSON object.")
        return data

    @staticmethod
    def _status_words(status: int | None) -> str:
        if status == 401:
            return "HubSpot refused the access token (HTTP 401): check the private app's token."
        if status == 403:
            return (
                "The access token lacks a scope (HTTP 403): give the private app the scopes listed in "
                "docs/integrations.md (crm.objects.companies/contacts/deals.read, crm.objects.owners.read, "
                "crm.objects.companies.write for push-back)."
            )
        if status == 429:
            return "HubSpot's rate limit was still exceeded after waiting (HTTP 429); the run will resume."
        return f"HubSpot answered HTTP {status}."

    # --- the contract --------------------------------------------------------------------------------

    def test_connection(self) -> str:
        api = self.client().crm.companies.basic_api
        self._call(api.get_page, limit=1)
        # The portal's id and web domain ("Account information API": GET /account-info/v3/details), for
        # Account 360's links back to the HubSpot records.
        info = self._json("GET", "/account-info/v3/details")
        portal, domain = str(info.get("portalId") or ""), str(info.get("uiDomain") or "app.hubspot.com")
        if portal.isdigit() and all(c.isalnum() or c in ".-" for c in domain):
            web_url = f"https://{domain}/contacts/{portal}"
            if self.connection.web_url != web_url:
                self.connection.web_url = web_url
                type(self.connection).all_orgs.filter(pk=self.connection.pk).update(web_url=web_url)
        return f"Connected: HubSpot answered the companies API (portal {portal or 'unknown'})."

    #: HubSpot's object type ids in record URLs (``/contacts/<portal>/record/<type>/<id>``).
    RECORD_TYPES: ClassVar[dict[str, tuple[str, str]]] = {
        "companies": ("company", "0-2"),
        "contacts": ("contact", "0-1"),
        "deals": ("deal", "0-3"),
    }

    @classmethod
    def record_link(cls, connection: Any, object_name: str, external_id: str) -> tuple[str, str]:
        noun, type_id = cls.RECORD_TYPES.get(object_name, (object_name, ""))
        label = f"HubSpot {noun} {external_id}"
        if not connection.web_url or not type_id or not str(external_id).isalnum():
            return label, ""
        return label, f"{connection.web_url.rstrip('/')}/record/{type_id}/{external_id}"

    def properties_for(self, mapping: dict[str, Any], otype: str = "companies") -> list[str]:
        names = {MODIFIED, *ALWAYS.get(otype, set())}
        for item in mapping.get("fields", []):
            source = str(item.get("source", ""))
            if source.startswith("properties."):
                names.add(source.split(".", 2)[1])
        return sorted(names)

    def fetch_page(self, spec: ObjectSpec, cursor: dict[str, Any], mapping: dict[str, Any]) -> Page:
        properties = self.properties_for(mapping or spec.default_mapping, spec.name)
        if cursor.get("since_ms") is None:
            page = self._list_page(spec.name, cursor, properties)
        elif cursor.get("phase") == "archived":
            page = self._archived_page(spec.name, cursor)
        else:
            page = self._search_page(spec.name, cursor, properties)
        if spec.name == "contacts":
            self._shape_contacts(page.records)
        elif spec.name == "deals":
            page.records = self._shape_deals(page.records)
        return page

    # --- owners ---------------------------------------------------------------------------------------

    def owner_email(self, owner_id: str) -> str:
        """The owner's email (``GET /crm/v3/owners``, read once per run) when they are a member."""
        if not owner_id:
            return ""
        if self._owners is None:
            owners: dict[str, str] = {}
            after: str | None = None
            while True:
                body = self._json("GET", "/crm/v3/owners", query={"limit": 500, "after": after})
                for owner in body.get("results") or []:
                    if isinstance(owner, dict) and owner.get("id") and owner.get("email"):
                        owners[str(owner["id"])] = str(owner["email"]).strip().lower()
                after = self._after(body)
                if after is None:
                    break
            from accounts.models import Membership

            self._owners = owners
            self._members = {
                e.lower()
                for e in Membership.objects.for_org(self.connection.organization).values_list("user__email", flat=True)
            }
        email = self._owners.get(owner_id, "")
        return email if email in (self._members or set()) else ""

    # --- pages ------------------------------------------------------------------------------------------

    def _records(self, body: Any) -> tuple[list[Record], list[tuple[str, dict[str, Any]]]]:
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise ConnectorError("HubSpot's answer has no list of results.")
        records: list[Record] = []
        for raw in results:
            if not isinstance(raw, dict):
                records.append(Record(external_id="", data={"_malformed": "the record is not an object"}))
                continue
            ext = raw.get("id")
            props = raw.get("properties")
            data = {
                "id": ext,
                "properties": props,
                "createdAt": raw.get("createdAt"),
                "updatedAt": raw.get("updatedAt"),
                "associations": raw.get("associations") or {},
            }
            if raw.get("archivedAt"):
                data["archivedAt"] = raw["archivedAt"]
            if not isinstance(props, dict):
                data["_malformed"] = "the record has no properties object"
            if ext in (None, ""):
                data["_malformed"] = "the record has no id"
            records.append(Record(external_id=str(ext or ""), data=data, deleted=bool(raw.get("archived"))))
        return records, []

    @staticmethod
    def _after(body: dict[str, Any]) -> str | None:
        after = ((body.get("paging") or {}).get("next") or {}).get("after")
        return str(after) if after not in (None, "") else None

    def _list_page(self, otype: str, cursor: dict[str, Any], properties: list[str]) -> Page:
        started = cursor.get("started_ms") or int(time.time() * 1000)
        query: dict[str, Any] = {
            "limit": PAGE_SIZE,
            "properties": ",".join(properties),
            "archived": "false",
            "after": cursor.get("after"),
        }
        if ASSOCIATIONS.get(otype):
            query["associations"] = ",".join(ASSOCIATIONS[otype])
        body = self._json("GET", f"/crm/v3/objects/{otype}", query=query)
        records, _ = self._records(body)
        after = self._after(body)
        if after is None:
            return Page(records, {"started_ms": started}, True, final_cursor={"since_ms": started - WATERMARK_SKEW_MS})
        return Page(records, {"started_ms": started, "after": after}, False)

    def _search_page(self, otype: str, cursor: dict[str, Any], properties: list[str]) -> Page:
        since = int(cursor["since_ms"])
        newest = int(cursor.get("max_ms") or since - 1)
        request: dict[str, Any] = {
            "filterGroups": [{"filters": [{"propertyName": MODIFIED, "operator": "GTE", "value": str(since)}]}],
            "sorts": [{"propertyName": MODIFIED, "direction": "ASCENDING"}],
            "properties": properties,
            "limit": PAGE_SIZE,
        }
        if cursor.get("after"):
            request["after"] = cursor["after"]
        body = self._json("POST", f"/crm/v3/objects/{otype}/search", body=request)
        records, _ = self._records(body)
        for record in records:
            props = record.data.get("properties")
            stamp = _ms(props.get(MODIFIED, "")) if isinstance(props, dict) else None
            if stamp is not None:
                newest = max(newest, stamp)
        self._associate(otype, records)
        after = self._after(body)
        if after is None:
            # Then the records archived since the watermark (the search API never answers them).
            return Page(records, {"since_ms": since, "max_ms": newest, "phase": "archived"}, False)
        if int(after) >= SEARCH_LIMIT:
            # The search API stops at 10,000 results: query again from the newest date seen.
            return Page(records, {"since_ms": newest, "max_ms": newest}, False)
        return Page(records, {"since_ms": since, "after": after, "max_ms": newest}, False)

    def _archived_page(self, otype: str, cursor: dict[str, Any]) -> Page:
        """Archived records (``archived=true``), keeping those archived since the watermark: deleted."""
        since = int(cursor["since_ms"])
        newest = int(cursor.get("max_ms") or since - 1)
        query = {"limit": PAGE_SIZE, "archived": "true", "properties": MODIFIED, "after": cursor.get("after")}
        body = self._json("GET", f"/crm/v3/objects/{otype}", query=query)
        records, _ = self._records(body)
        kept = []
        for record in records:
            stamp = _ms(record.data.get("archivedAt"))
            if stamp is None or stamp >= since:
                record.deleted = True
                kept.append(record)
                if stamp is not None:
                    newest = max(newest, stamp)
        after = self._after(body)
        if after is None:
            return Page(kept, dict(cursor), True, final_cursor={"since_ms": max(since, newest + 1)})
        return Page(kept, {**cursor, "after": after, "max_ms": newest}, False)

    def _associate(self, otype: str, records: list[Record]) -> None:
        """Search answers carry no associations: read them in one v4 batch per associated type."""
        ids = [r.external_id for r in records if r.external_id and not r.data.get("_malformed")]
        if not ids:
            return
        by_id = {r.external_id: r for r in records}
        for to in ASSOCIATIONS.get(otype, []):
            body = self._json(
                "POST", f"/crm/v4/associations/{otype}/{to}/batch/read", body={"inputs": [{"id": i} for i in ids]}
            )
            for item in body.get("results") or []:
                record = by_id.get(str((item.get("from") or {}).get("id")))
                if record is None:
                    continue
                linked = [{"id": str(t.get("toObjectId"))} for t in item.get("to") or [] if t.get("toObjectId")]
                record.data.setdefault("associations", {})[to] = {"results": linked}

    # --- contacts and deals: the record's shape for the mapping ------------------------------------

    def _shape_contacts(self, records: list[Record]) -> None:
        for record in records:
            if record.data.get("_malformed") or record.deleted:
                continue
            props = record.data["properties"]
            companies = _associated(record.data, "companies")
            record.data["company"] = companies[0] if companies else ""
            name = " ".join(str(props.get(k) or "").strip() for k in ("firstname", "lastname")).strip()
            record.data["full_name"] = name or str(props.get("email") or "").strip()

    def _shape_deals(self, records: list[Record]) -> list[Record]:
        """One record per contract line (the contracts import kind's row): a deal's line items, or one
        line of the deal's amount when it has none."""
        wanted = sorted(
            {
                i
                for r in records
                if not r.data.get("_malformed") and not r.deleted
                for i in _associated(r.data, "line_items")
            }
        )
        items: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), 100):
            body = self._json(
                "POST",
                "/crm/v3/objects/line_items/batch/read",
                body={"inputs": [{"id": i} for i in wanted[start : start + 100]], "properties": LINE_PROPERTIES},
            )
            for item in body.get("results") or []:
                if isinstance(item, dict) and isinstance(item.get("properties"), dict):
                    items[str(item.get("id"))] = item["properties"]
        out: list[Record] = []
        for record in records:
            if record.data.get("_malformed") or record.deleted:
                out.append(record)
                continue
            props = record.data["properties"]
            companies = _associated(record.data, "companies")
            start_day = str(props.get("contract_start_date") or props.get("closedate") or "")[:10]
            base = {
                **record.data,
                "number": record.external_id,
                "company": companies[0] if companies else "",
                "stage": f"{props.get('pipeline') or 'default'}/{props.get('dealstage') or ''}",
                "term": {
                    "start": start_day,
                    "end": str(props.get("contract_end_date") or "")[:10] or _end_of_term(start_day),
                },
            }
            lines = [items[i] for i in _associated(record.data, "line_items") if i in items]
            if not lines:
                line = {"sku": DEAL_SKU, "name": "HubSpot deal", "quantity": "1", "price": props.get("amount") or "0"}
                out.append(Record(record.external_id, {**base, "line": line}))
                continue
            for item in lines:
                sku = item.get("hs_sku") or (f"HUBSPOT-{item['hs_product_id']}" if item.get("hs_product_id") else "")
                line = {
                    "sku": sku or f"HUBSPOT-LINE-{item.get('hs_object_id', '')}",
                    "name": item.get("name") or "",
                    "quantity": item.get("quantity") or "1",
                    "price": item.get("price") or "0",
                    "discount": _percent(item.get("hs_discount_percentage")),
                }
                out.append(Record(record.external_id, {**base, "line": line}))
        return out

    # --- push-back ----------------------------------------------------------------------------------

    def push_payload(self, spec: ObjectSpec, values: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
        """HubSpot properties are text: ``""`` clears one (the score as Retain stores it, e.g. ``"71.5"``)."""
        return {field: "" if values[key] is None else str(values[key]) for key, field in fields.items()}

    def push(self, spec: ObjectSpec, rows: list[dict[str, Any]]) -> PushResult:
        """Company properties ``[{"id": company id, "properties": {...}}]`` with the batch update API, at most
        100 per call. HubSpot answers ``200`` when every input was updated, ``207 Multi-Status`` when some
        were not: each of its ``errors`` names the refused ids in ``context.ids`` (a deleted company:
        ``OBJECT_NOT_FOUND``); those are listed in ``PushResult.failed``."""
        if spec.name != "companies":
            return super().push(spec, rows)
        result = PushResult()
        for start in range(0, len(rows), BATCH_UPDATE_LIMIT):
            chunk = rows[start : start + BATCH_UPDATE_LIMIT]
            body = self._json("POST", "/crm/v3/objects/companies/batch/update", body={"inputs": chunk})
            sent_ids = {str(row["id"]) for row in chunk}
            refused: dict[str, str] = {}
            for error in body.get("errors") or []:
                if not isinstance(error, dict):
                    continue
                context = error.get("context") if isinstance(error.get("context"), dict) else {}
                reason = f"{error.get('category') or 'ERROR'}: {error.get('message') or 'refused'}"[:300]
                for ext in context.get("ids") or []:
                    if str(ext) in sent_ids:
                        refused.setdefault(str(ext), reason)
            result.failed.extend(refused.items())
            result.sent += len(chunk) - len(refused)
        return result
