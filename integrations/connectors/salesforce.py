"""Salesforce: Account → accounts (Account.ParentId → hierarchy), Contact → contacts, Opportunity with its
OpportunityLineItems → contracts, User → account owners by email; push-back of health to custom fields.

Client: ``simple-salesforce`` (pinned 1.12.10), authenticated with a **session id / OAuth access token**
and the org's **instance URL** (the connection's base URL: ``https://<MyDomain>.my.salesforce.com``, a
sandbox ``https://<MyDomain>--<sandbox>.sandbox.my.salesforce.com``, or a proxy). The library builds the
URLs and parses the answers; it never opens a socket: its ``requests.Session`` has one transport
adapter (:class:`ConnectorAdapter`) that sends every request through the run's
:class:`~integrations.http.ConnectorHttp` (outbound guard, token bucket, ``429``/``5xx`` retries) and
refuses any host but the instance's. REST API version: :data:`API_VERSION` (``v60.0``, Spring '24).

Endpoints used (Salesforce REST API Developer Guide,
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/):

- "Query" (``resources_query.htm``): ``GET /services/data/v60.0/query/?q=<SOQL>`` — ``SELECT <fields>
  FROM <Type> [WHERE SystemModstamp > <datetime>] ORDER BY SystemModstamp, Id``; answers ``totalSize``,
  ``done``, ``records`` and, while not done, ``nextRecordsUrl`` ("Execute a SOQL Query",
  ``dome_query.htm``), followed with ``query_more`` (queryMore). Query locators expire (15 minutes idle):
  a resumed run whose locator is gone (``INVALID_QUERY_LOCATOR``) runs the query again from the newest
  ``SystemModstamp`` it applied (``>=``, ordered by it: re-applying a few records is idempotent).
- "Get Deleted Records" (``resources_getdeleted.htm``): ``GET /services/data/v60.0/sobjects/<Type>/
  deleted/?start=&end=`` — ``deletedRecords`` (``id``, ``deletedDate``), ``earliestDateAvailable``,
  ``latestDateCovered``; asked once per incremental run, from the previous run's ``latestDateCovered``
  (the records become ``Record(deleted=True)``: the framework flags accounts and contracts, deactivates
  contacts — ``accounts.source_deletions``; an undeleted record comes back by its new ``SystemModstamp``
  and its flag is cleared)
  (Salesforce keeps deleted records ~15 days in the recycle bin and answers at most 30 days back: the
  window start is clamped to 29 days ago).
- "sObject Collections" (``resources_composite_sobjects_collections_update.htm``):
  ``PATCH /services/data/v60.0/composite/sobjects`` with ``{"allOrNone": false, "records": [...]}``,
  at most 200 records per request — push-back (:meth:`SalesforceConnector.push`, driven by
  :mod:`integrations.push`).
- "Limits" (``resources_limits.htm``) — "Test connection".
- "OAuth 2.0 Refresh Token Flow for Renewed Sessions" (Salesforce Help,
  https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm):
  ``POST <instance URL>/services/oauth2/token`` — when the connection holds a refresh token and the
  Connected App's client id and secret, a ``401 INVALID_SESSION_ID`` triggers one refresh per run and one
  retry of the refused request (:meth:`SalesforceConnector.refresh_access_token`).
- Errors ("Status Codes and Error Responses", ``errorcodes.htm``): ``[{"message", "errorCode"}]``; ``401
  INVALID_SESSION_ID``; ``403 REQUEST_LIMIT_EXCEEDED`` when the org's 24-hour API request allocation
  (or its concurrent long-request limit) is used up; ``503`` when the server is unavailable or busy.

Rate limits ("API Request Limits and Allocations", salesforce_app_limits_cheatsheet
``salesforce_app_limits_platform_api.htm``): a rolling 24-hour allocation per org (100,000 + per-licence
requests on Enterprise), 25 concurrent long-running requests. There is no per-second limit: the
connector keeps to 25 requests per second per connection so that a sync never eats the org's daily
allocation in a burst. ``503`` and ``429`` (a proxy or a future API) are retried by ``ConnectorHttp``
(``Retry-After`` honoured); ``403 REQUEST_LIMIT_EXCEEDED`` fails the run in plain words (waiting seconds
does not help a 24-hour allocation) and the next run resumes from the last page applied.

Incremental cursor per object: ``since`` (``SystemModstamp`` watermark, exclusive), ``deleted_since``
(the deleted-records window start). A first sync (``since`` absent) reads everything and starts the
next run at its own start minus :data:`WATERMARK_SKEW` (records committed while it ran are read again:
upserts by external id make that harmless); an incremental run reads ``SystemModstamp > since``, then the
deleted records, and moves ``since`` to the newest ``SystemModstamp`` it saw (never back).

Opportunities: only **won** opportunities (``IsWon = true``) are contracts. Each line item becomes one
contract line (``Line.*`` in the record), an opportunity without line items one line of
:data:`NO_LINE_SKU` at its ``Amount``; the term is ``CloseDate`` to ``CloseDate`` + 12 months − 1 day
(``Term.start``/``Term.end``; map ``end_date`` to a custom field when the org has one). The stage value
map turns ``Closed Won`` into an active contract; a won opportunity in a stage the map does not know
(an org's own "Closed Won – Expansion") is listed with its reason, never guessed. A line item's change
rolls up into its opportunity's ``Amount``, so the opportunity's ``SystemModstamp`` moves with it.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cs_platform.outbound import OutboundRefused, ResponseTooLarge

from .base import Connector, ConnectorError, ObjectSpec, Page, PushResult, RateLimit, Record, register

__all__ = [
    "ACCOUNTS_MAPPING",
    "API_VERSION",
    "CONTACTS_MAPPING",
    "OPPORTUNITIES_MAPPING",
    "ConnectorAdapter",
    "SalesforceConnector",
]

API_VERSION = "60.0"
WATERMARK_SKEW = dt.timedelta(minutes=2)
DELETED_MAX_DAYS = 29
NO_LINE_SKU = "SF-OPPORTUNITY"
STAMP = "SystemModstamp"
LOGIN_HOSTS = ("login.salesforce.com", "test.salesforce.com")

ACCOUNTS_MAPPING: dict[str, Any] = {
    "fields": [
        {"target": "name", "source": "Name", "transform": "text"},
        {"target": "domain", "source": "Website", "transform": "sf_domain"},
        {"target": "industry", "source": "Industry", "transform": "text"},
        {"target": "region", "source": "BillingCountry", "transform": "text"},
        {"target": "employees", "source": "NumberOfEmployees", "transform": "int"},
        {"target": "owner_email", "source": "OwnerId", "transform": "sf_owner"},
        {"target": "parent_external_id", "source": "ParentId", "transform": "text"},
        {"target": "annual_revenue", "source": "AnnualRevenue", "transform": "money"},
    ]
}

CONTACTS_MAPPING: dict[str, Any] = {
    "fields": [
        {"target": "account_external_id", "source": "AccountId", "transform": "text"},
        {"target": "name", "source": "Name", "transform": "text"},
        {"target": "email", "source": "Email", "transform": "email"},
        {"target": "title", "source": "Title", "transform": "text"},
    ]
}

OPPORTUNITIES_MAPPING: dict[str, Any] = {
    "fields": [
        {"target": "account_external_id", "source": "AccountId", "transform": "text"},
        {"target": "contract_number", "source": "Id", "transform": "text"},
        {"target": "start_date", "source": "Term.start", "transform": "date"},
        {"target": "end_date", "source": "Term.end", "transform": "date"},
        {"target": "status", "source": "StageName", "transform": {"map": {"Closed Won": "active"}}},
        {"target": "product_sku", "source": "Line.ProductCode", "transform": "text"},
        {"target": "product_name", "source": "Line.ProductName", "transform": "text"},
        {"target": "quantity", "source": "Line.Quantity", "transform": "decimal"},
        {"target": "annual_unit_price", "source": "Line.UnitPrice", "transform": "decimal"},
    ]
}

#: Fields always read (besides the mapping's sources).
ALWAYS = ("Id", STAMP)
#: The line item fields read by the Opportunity subquery.
LINE_FIELDS = ("Id", "Product2Id", "Product2.ProductCode", "Product2.Name", "Quantity", "UnitPrice")


def soql_datetime(value: dt.datetime) -> str:
    """A SOQL dateTime literal (UTC, no quotes): ``2024-05-01T10:00:00Z``."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + "Z"


def parse_stamp(value: Any) -> dt.datetime | None:
    """Salesforce's ``2024-05-01T10:00:00.000+0000`` (or ISO with ``Z``) as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _add_year_minus_day(day: dt.date) -> dt.date:
    try:
        nxt = day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        nxt = day.replace(year=day.year + 1, day=28)
    return nxt - dt.timedelta(days=1)


# --- the transport -------------------------------------------------------------------------------------


def _adapter_base() -> type:
    import requests.adapters

    return requests.adapters.BaseAdapter


class ConnectorAdapter(_adapter_base()):  # type: ignore[misc]
    """A ``requests`` transport adapter sending through ``ConnectorHttp`` (never its own sockets).

    simple-salesforce builds ``https://<instance host>/services/...`` URLs; the adapter sends them to the
    connection's base URL (its scheme and host, e.g. a plain-HTTP proxy or the tests' local server) and
    refuses any other host (a ``nextRecordsUrl`` pointing elsewhere)."""

    def __init__(self, http: Any, base_url: str) -> None:
        super().__init__()
        self.http = http
        self.base = urlsplit(base_url)

    def send(self, request: Any, stream: bool = False, timeout: Any = None, verify: Any = True, cert: Any = None,
             proxies: Any = None) -> Any:  # fmt: skip
        import requests
        from requests.structures import CaseInsensitiveDict

        parts = urlsplit(request.url)
        if parts.netloc.lower() != self.base.netloc.lower() and parts.hostname != self.base.hostname:
            raise ConnectorError("Salesforce pointed to another host than the instance URL; refused.")
        url = urlunsplit((self.base.scheme, self.base.netloc, parts.path, parts.query, ""))
        body = request.body.encode() if isinstance(request.body, str) else request.body
        raw = self.http.urlopen(request.method, url, body=body, headers=dict(request.headers))
        response = requests.Response()
        response.status_code = raw.status
        response.headers = CaseInsensitiveDict(dict(raw.headers))
        response._content = raw.data
        response.encoding = "utf-8"
        response.reason = raw.reason
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass


# --- the connector -------------------------------------------------------------------------------------


def _owner_transform(value: Any, _options: Any, connector: Any) -> str:
    """``OwnerId`` → the owner's email when that person is a member of the organization, else empty (an
    account is never refused because its Salesforce owner has no Retain login)."""
    return connector.owner_email(str(value)) if connector is not None else ""


def _domain_transform(value: Any, _options: Any, _connector: Any) -> str:
    """``Website`` (``https://www.acme.com/about``) → ``acme.com``."""
    text = str(value).strip().lower()
    if "//" not in text:
        text = "//" + text
    host = urlsplit(text).hostname or ""
    if host.startswith("www."):
        host = host[4:]
    if not host or "." not in host:
        raise ValueError(f"{value!r} is not a web address")
    return host


TRANSFORMS = {"sf_owner": _owner_transform, "sf_domain": _domain_transform}


@register
class SalesforceConnector(Connector):
    kind = "salesforce"
    label = "Salesforce"
    default_base_url = "https://login.salesforce.com"  # replaced by the org's instance URL when connecting
    #: ``access_token`` is required; ``refresh_token`` + ``client_id`` + ``client_secret`` (the Connected
    #: App's consumer key and secret) let a run refresh an expired token itself (:meth:`refresh_access_token`).
    credential_fields = ("access_token", "refresh_token", "client_id", "client_secret")
    rate_limit = RateLimit(requests=25, per_seconds=1)
    reference_url = "https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/"
    # Push-back (integrations.push): custom fields of Account (docs/integrations.md lists their types).
    push_fields = {
        "health_score": "Retain_Health_Score__c",
        "health_color": "Retain_Health_Color__c",
        "health_trend": "Retain_Health_Trend__c",
        "next_renewal_date": "Retain_Next_Renewal_Date__c",
        "forecast_category": "Retain_Forecast_Category__c",
    }
    push_batch_size = 200  # sObject Collections: at most 200 records per request
    push_id_pattern = r"^001[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$"  # an Account id, 15 or 18 characters
    objects = {
        "accounts": ObjectSpec(
            name="accounts",
            label="Account → accounts",
            target="accounts",
            default_mapping=ACCOUNTS_MAPPING,
            directions=("pull", "push", "both"),
            transforms=TRANSFORMS,
        ),
        "contacts": ObjectSpec(
            name="contacts",
            label="Contact → contacts",
            target="contacts",
            default_mapping=CONTACTS_MAPPING,
            transforms=TRANSFORMS,
        ),
        "opportunities": ObjectSpec(
            name="opportunities",
            label="Opportunity (won, with line items) → contracts",
            target="contracts",
            default_mapping=OPPORTUNITIES_MAPPING,
            transforms=TRANSFORMS,
        ),
    }
    #: The Salesforce object of each Retain object.
    SOBJECT = {"accounts": "Account", "contacts": "Contact", "opportunities": "Opportunity"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sf: Any = None
        self._refreshed = False
        self._owners: dict[str, str] | None = None
        self._members: set[str] | None = None

    # --- the client --------------------------------------------------------------------------------

    def client(self) -> Any:
        """``simple_salesforce.Salesforce`` on the instance URL whose session sends through ``self.http``."""
        if self._sf is None:
            import requests
            from simple_salesforce import Salesforce

            token = self.connection.credentials.get("access_token", "")
            if not token:
                raise ConnectorError("No access token is set for this connection.")
            session = requests.Session()
            session.trust_env = False  # no proxy from the environment: the outbound guard decides
            adapter = ConnectorAdapter(self.http, self.base_url)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            self._sf = Salesforce(instance_url=self.base_url, session_id=token, version=API_VERSION, session=session)
            self._sf.headers.pop("X-PrettyPrint", None)
        return self._sf

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call the library; Salesforce's errors become ConnectorError in plain words."""
        from simple_salesforce.exceptions import (
            SalesforceError,
            SalesforceExpiredSession,
            SalesforceMalformedRequest,
            SalesforceRefusedRequest,
            SalesforceResourceNotFound,
        )

        try:
            try:
                return fn(*args, **kwargs)
            except SalesforceExpiredSession:
                if not self.can_refresh() or self._refreshed:
                    raise
                self.refresh_access_token()  # once per run; a ConnectorError if Salesforce refuses
                return fn(*args, **kwargs)  # the library reads the new session id from the client
        except SalesforceExpiredSession:
            if self._refreshed:
                raise ConnectorError(
                    "Salesforce refused the session (HTTP 401 INVALID_SESSION_ID) again after this run refreshed the "
                    "access token: check the integration user's access and the Connected App's session policies."
                ) from None
            raise ConnectorError(
                "Salesforce refused the session (HTTP 401 INVALID_SESSION_ID): the access token expired or was "
                "revoked; replace it (or add a refresh token with the Connected App's client id and secret)."
            ) from None
        except SalesforceRefusedRequest as exc:
            code, _ = self._error_of(exc)
            if code == "REQUEST_LIMIT_EXCEEDED":
                raise ConnectorError(
                    "Salesforce's API request limit for this org is used up (HTTP 403 REQUEST_LIMIT_EXCEEDED); "
                    "the next run resumes from the last page applied."
                ) from None
            raise ConnectorError(
                f"Salesforce refused the request (HTTP 403 {code or 'FORBIDDEN'}): give the integration user "
                "'API Enabled' and read access to Account, Contact, Opportunity and User."
            ) from None
        except (SalesforceMalformedRequest, SalesforceResourceNotFound) as exc:
            code, message = self._error_of(exc)
            if code == "INVALID_QUERY_LOCATOR":
                raise _LocatorExpired() from None
            raise ConnectorError(f"Salesforce refused the request (HTTP {exc.status} {code}): {message}") from None
        except SalesforceError as exc:
            raise ConnectorError(f"Salesforce answered HTTP {exc.status}.") from None
        except OutboundRefused as exc:
            raise ConnectorError(exc.reason) from None
        except ResponseTooLarge as exc:
            raise ConnectorError(str(exc)) from None
        except ValueError:
            raise ConnectorError("Salesforce answered something that is not JSON.") from None

    # --- OAuth: the refresh token flow --------------------------------------------------------------

    def can_refresh(self) -> bool:
        creds = self.connection.credentials
        return all(creds.get(key) for key in ("refresh_token", "client_id", "client_secret"))

    def refresh_access_token(self) -> None:
        """OAuth 2.0 Refresh Token Flow ("OAuth 2.0 Refresh Token Flow for Renewed Sessions",
        https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm):
        ``POST <instance URL>/services/oauth2/token`` (a My Domain serves the token endpoint; the base URL
        is the instance's, so a proxy or the tests' fake serve it too) with ``grant_type=refresh_token``,
        ``refresh_token``, ``client_id``, ``client_secret``, form-encoded, through the outbound guard. The new
        ``access_token`` is stored in the connection's encrypted credentials at once (a later page or run
        uses it) and put in the client. A refusal (``400 invalid_grant``: the refresh token was revoked or
        expired, ``invalid_client``: a wrong consumer key/secret) is a :class:`ConnectorError` that fails the
        run with the reason. Called at most once per run."""
        from urllib.parse import urlencode

        self._refreshed = True
        creds = self.connection.credentials
        body = urlencode({
            "grant_type": "refresh_token",
            "refresh_token": creds.get("refresh_token", ""),
            "client_id": creds.get("client_id", ""),
            "client_secret": creds.get("client_secret", ""),
        }).encode()  # fmt: skip
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        try:
            response = self.http.urlopen("POST", f"{self.base_url}/services/oauth2/token", body=body, headers=headers)
        except OutboundRefused as exc:
            raise ConnectorError(exc.reason) from None
        except ResponseTooLarge as exc:
            raise ConnectorError(str(exc)) from None
        try:
            answer = json.loads(response.data or b"null")
        except ValueError:
            answer = None
        answer = answer if isinstance(answer, dict) else {}
        token = answer.get("access_token")
        if response.status != 200 or not isinstance(token, str) or not token:
            code = str(answer.get("error") or "")[:60]
            description = str(answer.get("error_description") or "")[:200]
            reason = (
                f"HTTP {response.status}" + (f" {code}" if code else "") + (f": {description}" if description else "")
            )
            raise ConnectorError(
                f"The access token expired and Salesforce refused to refresh it ({reason}); replace the refresh "
                "token (or the client id and secret) of this connection."
            )
        from integrations.models import Connection

        self.connection.credentials = {**creds, "access_token": token}
        Connection.all_orgs.filter(pk=self.connection.pk).update(
            credentials_encrypted=self.connection.credentials_encrypted
        )
        if self._sf is not None:
            self._sf.session_id = token
            self._sf.headers["Authorization"] = f"Bearer {token}"

    @staticmethod
    def _error_of(exc: Any) -> tuple[str, str]:
        """``(errorCode, message)`` of Salesforce's ``[{"message", "errorCode"}]`` error body."""
        content = exc.content
        if isinstance(content, list) and content and isinstance(content[0], dict):
            return str(content[0].get("errorCode", ""))[:60], str(content[0].get("message", ""))[:200]
        return "", ""

    # --- users → owners by email ----------------------------------------------------------------------

    def owner_email(self, user_id: str) -> str:
        if self._owners is None:
            self._owners = {}
            body = self.call(self.client().query, f"SELECT Id, Email FROM User ORDER BY {STAMP}, Id")
            while True:
                for raw in body.get("records") or []:
                    if isinstance(raw, dict) and raw.get("Id") and raw.get("Email"):
                        self._owners[str(raw["Id"])] = str(raw["Email"]).strip().lower()
                if body.get("done", True) or not body.get("nextRecordsUrl"):
                    break
                body = self.call(self.client().query_more, body["nextRecordsUrl"], identifier_is_url=True)
        if self._members is None:
            from accounts.models import Membership

            org = self.connection.organization_id
            self._members = {e.lower() for e in Membership.objects.for_org(org).values_list("user__email", flat=True)}
        email = self._owners.get(user_id, "")
        return email if email in self._members else ""

    # --- the contract ----------------------------------------------------------------------------------

    def test_connection(self) -> str:
        if urlsplit(self.base_url).hostname in LOGIN_HOSTS:
            raise ConnectorError(
                "Set the base URL to your org's instance URL (https://<MyDomain>.my.salesforce.com, the "
                "instance_url of the OAuth answer), not the login host."
            )
        self.call(self.client().restful, "limits/")
        return f"Connected: Salesforce answered (REST API v{API_VERSION})."

    def fields_for(self, spec: ObjectSpec, mapping: dict[str, Any]) -> list[str]:
        names = list(ALWAYS)
        if spec.name == "opportunities":
            names += ["AccountId", "StageName", "CloseDate", "Amount"]
        for item in mapping.get("fields", []):
            source = str(item.get("source", ""))
            if not source or source.split(".")[0] in ("Line", "Term"):
                continue
            if source not in names:
                names.append(source)
        return names

    def soql(self, spec: ObjectSpec, mapping: dict[str, Any], since: str | None, inclusive: bool = False) -> str:
        fields = self.fields_for(spec, mapping)
        select = ", ".join(fields)
        if spec.name == "opportunities":
            select += f", (SELECT {', '.join(LINE_FIELDS)} FROM OpportunityLineItems)"
        where = []
        if spec.name == "opportunities":
            where.append("IsWon = true")
        if since:
            where.append(f"{STAMP} {'>=' if inclusive else '>'} {since}")
        text = f"SELECT {select} FROM {self.SOBJECT[spec.name]}"
        if where:
            text += " WHERE " + " AND ".join(where)
        return text + f" ORDER BY {STAMP}, Id"

    def fetch_page(self, spec: ObjectSpec, cursor: dict[str, Any], mapping: dict[str, Any]) -> Page:
        mapping = mapping or spec.default_mapping
        cursor = dict(cursor)
        now = dt.datetime.now(dt.UTC)
        if not cursor.get("started"):
            cursor = {
                "since": cursor.get("since"),
                "deleted_since": cursor.get("deleted_since"),
                "started": soql_datetime(now),
                "phase": "query",
            }
        if cursor.get("phase") == "deleted":
            return self._deleted_page(spec, cursor, now)
        sf = self.client()
        try:
            if cursor.get("next"):
                body = self.call(sf.query_more, cursor["next"], identifier_is_url=True)
            else:
                body = self.call(sf.query, self.soql(spec, mapping, cursor.get("since")))
        except _LocatorExpired:
            # The query locator expired (a run resumed much later): query again from the newest stamp applied.
            restart = cursor.get("max") or cursor.get("since")
            body = self.call(sf.query, self.soql(spec, mapping, restart, inclusive=bool(restart)))
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise ConnectorError("Salesforce's query answer has no list of records.")
        records, newest = self._records(spec, body["records"])
        if newest and (not cursor.get("max") or newest > cursor["max"]):
            cursor["max"] = newest
        if not body.get("done", True) and body.get("nextRecordsUrl"):
            return Page(records, {**cursor, "next": str(body["nextRecordsUrl"])}, False)
        cursor.pop("next", None)
        started = parse_stamp(cursor["started"]) or now
        if not cursor.get("since"):  # a first, full sync: the next run starts from this one's start
            watermark = soql_datetime(started - WATERMARK_SKEW)
            final = {"since": watermark, "deleted_since": watermark}
            return Page(records, cursor, True, final_cursor=final)
        return Page(records, {**cursor, "phase": "deleted"}, False)

    def _final_since(self, cursor: dict[str, Any]) -> str:
        since, newest = cursor.get("since") or "", cursor.get("max") or ""
        return max(since, newest)

    def _deleted_page(self, spec: ObjectSpec, cursor: dict[str, Any], now: dt.datetime) -> Page:
        end = parse_stamp(cursor["started"]) or now
        start = parse_stamp(cursor.get("deleted_since") or "") or (end - dt.timedelta(days=1))
        start = max(start, end - dt.timedelta(days=DELETED_MAX_DAYS))
        if end - start < dt.timedelta(minutes=1):
            start = end - dt.timedelta(minutes=1)
        sobject = getattr(self.client(), self.SOBJECT[spec.name])
        body = self.call(sobject.deleted, start, end)
        if not isinstance(body, dict) or not isinstance(body.get("deletedRecords"), list):
            raise ConnectorError("Salesforce's deleted-records answer has no list of deletedRecords.")
        records = [
            Record(external_id=str(item.get("id") or ""), data={"Id": item.get("id")}, deleted=True)
            for item in body["deletedRecords"]
            if isinstance(item, dict) and item.get("id")
        ]
        covered = parse_stamp(body.get("latestDateCovered")) or end
        final = {"since": self._final_since(cursor), "deleted_since": soql_datetime(covered)}
        return Page(records, cursor, True, final_cursor=final)

    def _records(self, spec: ObjectSpec, raws: list[Any]) -> tuple[list[Record], str]:
        records: list[Record] = []
        newest = ""
        for raw in raws:
            if not isinstance(raw, dict):
                records.append(Record(external_id="", data={"_malformed": "the record is not an object"}))
                continue
            data = {k: v for k, v in raw.items() if k != "attributes"}
            ext = str(data.get("Id") or "")
            stamp = parse_stamp(data.get(STAMP))
            if stamp is not None:
                newest = max(newest, soql_datetime(stamp))
            if not ext:
                records.append(Record(external_id="", data={**data, "_malformed": "the record has no Id"}))
                continue
            if stamp is None:
                data["_malformed"] = f"the record has no readable {STAMP}"
            if spec.name == "opportunities" and "_malformed" not in data:
                records.extend(self._opportunity_lines(ext, data))
                continue
            records.append(Record(external_id=ext, data=data))
        return records, newest

    def _opportunity_lines(self, ext: str, data: dict[str, Any]) -> list[Record]:
        """One record per line item (the contracts import kind takes one row per contract line)."""
        items = data.pop("OpportunityLineItems", None)
        close = parse_stamp(str(data.get("CloseDate") or "") + "T00:00:00+00:00") if data.get("CloseDate") else None
        term = {}
        if close is not None:
            term = {"start": close.date().isoformat(), "end": _add_year_minus_day(close.date()).isoformat()}
        base = {**data, "Term": term}
        lines: list[dict[str, Any]] = []
        if isinstance(items, dict) and isinstance(items.get("records"), list):
            for item in items["records"]:
                if not isinstance(item, dict):
                    continue
                product = item.get("Product2") if isinstance(item.get("Product2"), dict) else {}
                lines.append({
                    "Id": item.get("Id"),
                    "ProductCode": product.get("ProductCode") or item.get("Product2Id") or "",
                    "ProductName": product.get("Name") or "",
                    "Quantity": item.get("Quantity"),
                    "UnitPrice": item.get("UnitPrice"),
                })  # fmt: skip
        elif items not in (None, ""):
            return [Record(external_id=ext, data={**base, "_malformed": "OpportunityLineItems is not a query result"})]
        if not lines:
            amount = data.get("Amount")
            lines = [{"Id": "", "ProductCode": NO_LINE_SKU, "ProductName": "Salesforce opportunity", "Quantity": 1,
                      "UnitPrice": amount if amount is not None else 0}]  # fmt: skip
        return [Record(external_id=ext, data={**base, "Line": line}) for line in lines]

    # --- push-back -----------------------------------------------------------------------------------------

    def push(self, spec: ObjectSpec, rows: list[dict[str, Any]]) -> PushResult:
        """``PATCH composite/sobjects`` (``allOrNone: false``) for ≤ 200 Account rows ``{"id", "properties"}``
        (properties: Salesforce field → JSON value); Salesforce answers one result per record, in order:
        the refused ones (deleted account, field-level security, validation rule) are listed in
        ``PushResult.failed`` with Salesforce's ``statusCode: message``."""
        if spec.name != "accounts":
            return super().push(spec, rows)
        if len(rows) > self.push_batch_size:
            raise ValueError("sObject Collections take at most 200 records per request")
        body = {
            "allOrNone": False,
            "records": [{"attributes": {"type": "Account"}, "id": row["id"], **row["properties"]} for row in rows],
        }
        answer = self.call(self.client().restful, "composite/sobjects", method="PATCH", json=body)
        if not isinstance(answer, list) or len(answer) != len(rows):
            raise ConnectorError("Salesforce's sObject Collections answer does not match the records sent.")
        result = PushResult()
        for row, outcome in zip(rows, answer, strict=True):
            if isinstance(outcome, dict) and outcome.get("success"):
                result.sent += 1
                continue
            errors = outcome.get("errors") if isinstance(outcome, dict) else None
            first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
            result.failed.append(
                (str(row["id"]), f"{first.get('statusCode', 'ERROR')}: {first.get('message', 'refused')}"[:300])
            )
        return result


class _LocatorExpired(Exception):
    """The query locator of a ``nextRecordsUrl`` is gone (``INVALID_QUERY_LOCATOR``)."""
