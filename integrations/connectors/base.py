"""What a connector is, and the registry of connectors by ``kind``.

A connector is a subclass of :class:`Connector` registered with :func:`register`. One instance serves
one run (or one test of a connection): it is built with the :class:`~integrations.models.Connection`
and a :class:`~integrations.http.ConnectorHttp` (the guarded, rate-limited transport; count of requests)::

    @register
    class HubSpotConnector(Connector):
        kind = "hubspot"
        label = "HubSpot"
        default_base_url = "https://api.hubapi.com"
        credential_fields = ("access_token",)
        rate_limit = RateLimit(requests=100, per_seconds=10)   # the vendor's documented limit
        objects = {"companies": ObjectSpec(name="companies", target="accounts", default_mapping=...)}

        def test_connection(self) -> str: ...                 # raise ConnectorError(reason) if it fails
        def fetch_page(self, spec, cursor, mapping) -> Page: ...  # one page from ``cursor`` ({} = from the start)
        # push-back (optional; directions push/both): integrations.push does the rest
        push_fields = {"health_score": "retain_health_score", ...}  # Retain value → vendor field
        push_batch_size = 100                                    # the vendor's records per request
        def push(self, spec, rows) -> PushResult: ...           # one batch; per-record failures listed

The framework (``integrations.sync``) does the rest: it maps each record with the object sync's mapping
(:mod:`integrations.mapping`), lets the target (:mod:`integrations.targets`) merge in Retain's values
where Retain wins, applies the page through the lower app's import kind (``import_rows``: validation,
isolation and upsert by external id unchanged), lists every record it could not apply, and stores the
page's ``next_cursor`` in the same transaction as the page's writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from integrations.http import ConnectorHttp
    from integrations.models import Connection

__all__ = [
    "Connector",
    "ConnectorError",
    "ObjectSpec",
    "Page",
    "PushResult",
    "RateLimit",
    "Record",
    "connector_choices",
    "get_connector",
    "register",
    "registry",
]


class ConnectorError(Exception):
    """A failure in words an admin can act on ("The access token was refused (HTTP 401)."). Never
    the credentials, never a raw vendor body."""


@dataclass(frozen=True)
class RateLimit:
    """The vendor's documented limit for one connection: ``requests`` per ``per_seconds``."""

    requests: int
    per_seconds: float


@dataclass
class Record:
    """One vendor record: its id, its fields (a nested dict; the mapping's ``source`` paths read it), and
    whether the vendor says it was deleted/archived."""

    external_id: str
    data: dict[str, Any]
    deleted: bool = False


@dataclass
class Page:
    """What :meth:`Connector.fetch_page` answers: records, the cursor to ask for the next page with (stored
    after this page is applied), and ``done`` when there is no next page. ``final_cursor`` (only with
    ``done``) is the cursor the *next run* starts from (e.g. a modified-since watermark)."""

    records: list[Record]
    next_cursor: dict[str, Any]
    done: bool
    final_cursor: dict[str, Any] | None = None


@dataclass
class PushResult:
    """What one push batch did: ``sent`` records accepted by the vendor, ``failed`` the ones it refused as
    ``[(external_id, reason)]`` (listed as SyncRecordErrors of the push run and sent again next time)."""

    sent: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ObjectSpec:
    """One syncable object of a connector.

    ``target`` names the import kind the records land in (``accounts``, ``contacts``, ``contracts``,
    ``tickets``...; see :mod:`integrations.targets`). ``default_mapping`` is the mapping used while the
    object sync's own is empty (``{"fields": [...]}``, see :mod:`integrations.mapping`).
    ``directions`` lists what the object supports. ``transforms`` adds connector-specific transforms
    (``{"hubspot_owner": fn(value, options, connector) -> str}``, raising ValueError with the reason;
    ``connector`` is the run's Connector, e.g. to look owners up once per run).
    """

    name: str
    label: str
    target: str
    default_mapping: dict[str, Any]
    directions: tuple[str, ...] = ("pull",)
    transforms: dict[str, Callable[..., Any]] = field(default_factory=dict)


class Connector:
    """Base class of every connector (see the module docstring)."""

    kind: ClassVar[str] = ""
    label: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    #: The keys of ``Connection.credentials`` the connector needs (the connect form asks for these).
    credential_fields: ClassVar[tuple[str, ...]] = ()
    rate_limit: ClassVar[RateLimit] = RateLimit(requests=10, per_seconds=1)
    objects: ClassVar[dict[str, ObjectSpec]] = {}
    #: Where the vendor's API reference lives (docs and the admin page link to it).
    reference_url: ClassVar[str] = ""
    #: ``fetch_page`` touches no database and no state the mapping of the previous page uses (only its
    #: transport, which is thread-safe): the sync may then fetch page N+1 in a background thread while
    #: page N is applied (``integrations.sync.execute_run``). Off by default: a connector whose
    #: ``fetch_page`` reads Retain's rows (Zendesk matches tickets to accounts) must not run it there.
    prefetch: ClassVar[bool] = False
    #: Push-back (``integrations.push``): Retain value (``push.VALUES``) → the vendor's field, the default
    #: that an object sync's mapping may override under ``"push"``.
    push_fields: ClassVar[dict[str, str]] = {}
    #: At most this many rows per :meth:`push` call (the vendor's batch limit).
    push_batch_size: ClassVar[int] = 100
    #: A regex the accounts' ``external_id`` must match to be pushed ("" = every synced account): the
    #: vendor's id format, so that accounts synced from another vendor are never sent here.
    push_id_pattern: ClassVar[str] = ""

    def __init__(self, connection: Connection, http: ConnectorHttp) -> None:
        self.connection = connection
        self.http = http
        self.base_url = (connection.base_url or self.default_base_url).rstrip("/")

    # --- what a connector implements ----------------------------------------------------------------

    def test_connection(self) -> str:
        """Check the credentials and the base URL with one cheap call. Answer a short success message;
        raise :class:`ConnectorError` with the reason otherwise."""
        raise NotImplementedError

    def fetch_page(self, spec: ObjectSpec, cursor: dict[str, Any], mapping: dict[str, Any]) -> Page:
        """One page of ``spec``'s records from ``cursor`` (``{}`` for a first full sync, else the cursor
        stored by the previous page or run). ``mapping`` is the effective mapping (to ask only for the
        fields it reads). Must be deterministic for a given cursor: a crashed run asks again for the
        page it did not finish. A record that is malformed is still returned, with
        ``data["_malformed"] = reason``: the framework lists it."""
        raise NotImplementedError

    @classmethod
    def record_link(cls, connection: Connection, object_name: str, external_id: str) -> tuple[str, str]:
        """``(label, url)`` of a synced record in the vendor's web app (Account 360's "source" panel);
        ``url`` is empty when the connector cannot build one. Optional."""
        return f"{cls.label} {object_name} {external_id}", ""

    def push_payload(self, spec: ObjectSpec, values: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
        """The vendor fields of one account (``values`` from ``integrations.push.account_values``, ``fields``
        the effective value → field names). Its digest decides whether the account is sent again, so it
        must be deterministic. Default: the values as JSON (the score a float, ``None`` when empty)."""
        return {
            field: float(values[key]) if key == "health_score" and values[key] is not None else values[key]
            for key, field in fields.items()
        }

    def push(self, spec: ObjectSpec, rows: list[dict[str, Any]]) -> PushResult:
        """Send one batch (≤ :attr:`push_batch_size` rows ``{"id": external id, "properties": payload}``) to
        the vendor (directions push/both). A record the vendor refuses goes in ``PushResult.failed``; a
        failure of the whole batch raises ConnectorError. Optional."""
        raise ConnectorError(f"{self.label} does not push {spec.name} yet.")

    # --- helpers ---------------------------------------------------------------------------------------

    def object(self, name: str) -> ObjectSpec:
        try:
            return self.objects[name]
        except KeyError:
            raise ConnectorError(f"{self.label} has no object {name!r}.") from None


_registry: dict[str, type[Connector]] = {}


def register(cls: type[Connector]) -> type[Connector]:
    """Add a connector class (usable as a decorator). A kind is registered once."""
    if not cls.kind or not cls.objects:
        raise ImproperlyConfigured(f"{cls.__qualname__}: a connector needs a kind and objects")
    known = _registry.get(cls.kind)
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise ImproperlyConfigured(f"connector {cls.kind!r} is already registered by {known.__qualname__}")
    _registry[cls.kind] = cls
    return cls


def registry() -> dict[str, type[Connector]]:
    return dict(_registry)


def get_connector(kind: str) -> type[Connector]:
    try:
        return _registry[kind]
    except KeyError:
        raise ConnectorError(f"Unknown connector {kind!r}; known: {', '.join(sorted(_registry))}.") from None


def connector_choices() -> list[tuple[str, str]]:
    return [(kind, cls.label or kind) for kind, cls in sorted(_registry.items())]
