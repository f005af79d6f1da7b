"""HubSpot: companies → accounts (the first connector; contacts, deals, owners and push-back follow).

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

Pages are read with ``_preload_content=False`` and parsed here, so one malformed record (no ``id``,
properties not an object) is listed as that record's error instead of failing the library's
deserialisation of the whole page.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from cs_platform.outbound import OutboundRefused, ResponseTooLarge

from .base import Connector, ConnectorError, ObjectSpec, Page, RateLimit, Record, register

__all__ = ["COMPANIES_MAPPING", "HubSpotConnector"]

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
        {
            "target": "customer_since",
            "source": "properties.hs_lifecyclestage_customer_date",
            "transform": "date",
            "wins": "retain",
        },
    ]
}


def _ms(value: str) -> int | None:
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


@register
class HubSpotConnector(Connector):
    kind = "hubspot"
    label = "HubSpot"
    default_base_url = "https://api.hubapi.com"
    credential_fields = ("access_token",)
    rate_limit = RateLimit(requests=100, per_seconds=10)
    reference_url = "https://developers.hubspot.com/docs/api/crm/companies"
    objects = {
        "companies": ObjectSpec(
            name="companies", label="Companies → accounts", target="accounts", default_mapping=COMPANIES_MAPPING
        ),
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client: Any = None

    # --- the client --------------------------------------------------------------------------------

    def client(self) -> Any:
        """``hubspot.Client`` whose every API object uses this run's host and transport."""
        if self._client is None:
            import hubspot

            token = self.connection.credentials.get("access_token", "")
            if not token:
                raise ConnectorError("No access token is set for this connection.")
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

    @staticmethod
    def _status_words(status: int | None) -> str:
        if status == 401:
            return "HubSpot refused the access token (HTTP 401): check the private app's token."
        if status == 403:
            return "The access token lacks a scope (HTTP 403): give the private app crm.objects.companies.read."
        if status == 429:
            return "HubSpot's rate limit was still exceeded after waiting (HTTP 429); the run will resume."
        return f"HubSpot answered HTTP {status}."

    # --- the contract --------------------------------------------------------------------------------

    def test_connection(self) -> str:
        api = self.client().crm.companies.basic_api
        self._call(api.get_page, limit=1)
        return "Connected: HubSpot answered the companies API."

    def properties_for(self, mapping: dict[str, Any]) -> list[str]:
        names = {MODIFIED, "name"}
        for item in mapping.get("fields", []):
            source = str(item.get("source", ""))
            if source.startswith("properties."):
                names.add(source.split(".", 2)[1])
        return sorted(names)

    def fetch_page(self, spec: ObjectSpec, cursor: dict[str, Any], mapping: dict[str, Any]) -> Page:
        properties = self.properties_for(mapping or spec.default_mapping)
        if cursor.get("since_ms") is None:
            return self._list_page(cursor, properties)
        return self._search_page(cursor, properties)

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
            }
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

    def _list_page(self, cursor: dict[str, Any], properties: list[str]) -> Page:
        started = cursor.get("started_ms") or int(time.time() * 1000)
        api = self.client().crm.companies.basic_api
        kwargs: dict[str, Any] = {"limit": PAGE_SIZE, "properties": properties, "archived": False}
        if cursor.get("after"):
            kwargs["after"] = cursor["after"]
        body = self._call(api.get_page, **kwargs)
        records, _ = self._records(body)
        after = self._after(body)
        if after is None:
            return Page(records, {"started_ms": started}, True, final_cursor={"since_ms": started - WATERMARK_SKEW_MS})
        return Page(records, {"started_ms": started, "after": after}, False)

    def _search_page(self, cursor: dict[str, Any], properties: list[str]) -> Page:
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
        api = self.client().crm.companies.search_api
        body = self._call(api.do_search, public_object_search_request=request)
        records, _ = self._records(body)
        for record in records:
            stamp = _ms(
                ((record.data.get("properties") or {}) if isinstance(record.data.get("properties"), dict) else {}).get(
                    MODIFIED, ""
                )
            )
            if stamp is not None:
                newest = max(newest, stamp)
        after = self._after(body)
        if after is None:
            final = {"since_ms": max(since, newest + 1)}
            return Page(records, {"since_ms": since, "max_ms": newest}, True, final_cursor=final)
        if int(after) >= SEARCH_LIMIT:
            # The search API stops at 10,000 results: query again from the newest date seen.
            return Page(records, {"since_ms": newest, "max_ms": newest}, False)
        return Page(records, {"since_ms": since, "after": after, "max_ms": newest}, False)
