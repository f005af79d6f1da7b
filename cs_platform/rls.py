"""Postgres row-level security: the database-side wall behind the fail-closed managers (issue 16 item 4).

Every tenant table (each concrete model with an ``organization`` foreign key, see :func:`tenant_models`)
gets ``ENABLE`` and ``FORCE ROW LEVEL SECURITY`` and two permissive policies, (re)created after every
``migrate`` by :func:`apply_policies` (a ``post_migrate`` receiver), so a new model cannot forget them::

    CREATE POLICY retain_tenant ON <table>
        USING (organization_id = NULLIF(current_setting('retain.organization_id', true), '')::bigint);
    CREATE POLICY retain_system ON <table>
        USING (organization_id >= NULLIF(current_setting('retain.system_min_org', true), '')::bigint);

Postgres ORs permissive policies, for reads (``USING``) and writes (``WITH CHECK``, which defaults to
``USING``). Both are plain comparisons of the indexed leading column with a STABLE expression, so the
planner uses the ``(organization_id, …)`` indexes for either (a BitmapOr); a boolean "system" flag ORed
in (``… OR current_setting('retain.system') = 'on'``) would not be indexable and turns every tenant
query into a sequential scan (measured: docs/architecture.md "Row-level security").

Which values are set: the **ambient scope** decides, read before every statement by an execute wrapper
(:func:`install`) that brings the connection's two settings in line with it when they differ:

* inside :func:`cs_platform.tenancy.org_scope` (the API base viewset, ``@org_page``, ``@org_task``):
  ``retain.organization_id`` = the organization, ``retain.system_min_org`` empty;
* inside :func:`system_context` (cross-organization work, named call sites only): the organization
  empty, ``retain.system_min_org`` = ``0`` (every organization id is positive);
* otherwise both empty: tenant tables show no row and refuse every write (fail closed).

The settings are session-level (``set_config(…, false)``) so they also hold in autocommit, and they
cannot leak to the next request on a persistent connection: each statement re-checks them against the
scope of the code running it. A rollback (which undoes a ``set_config`` made inside the transaction)
makes the wrapper forget what it set, so the next statement sets it again.

Postgres only: on SQLite (the demo) nothing here runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import models

from .tenancy import current_org_id

__all__ = [
    "ORG_SETTING",
    "SYSTEM_SETTING",
    "apply_policies",
    "in_system_context",
    "install",
    "policy_sql",
    "system_context",
    "tenant_models",
    "tenant_tables",
    "uninstall",
]

ORG_SETTING = "retain.organization_id"
SYSTEM_SETTING = "retain.system_min_org"
TENANT_POLICY = "retain_tenant"
SYSTEM_POLICY = "retain_system"

_system: ContextVar[str | None] = ContextVar("retain_rls_system", default=None)


@contextmanager
def system_context(reason: str) -> Iterator[None]:
    """Run a block that legitimately crosses organizations (its ``reason`` names why, for review and logs).

    The call sites are few and listed in docs/architecture.md ("Row-level security"). Inside an
    ``org_scope`` the organization still wins for the fail-closed managers, but the database shows every
    organization's rows to the block.
    """
    if not reason:
        raise ValueError("system_context needs a reason")
    token = _system.set(reason)
    try:
        yield
    finally:
        _system.reset(token)


def in_system_context() -> str | None:
    """The reason of the enclosing :func:`system_context`, or ``None``."""
    return _system.get()


def tenant_models() -> list[type[models.Model]]:
    """Every concrete, managed model whose table has an ``organization_id`` pointing at Organization."""
    found = []
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or not meta.managed:
            continue
        try:
            field = meta.get_field("organization")
        except Exception:  # noqa: BLE001  (FieldDoesNotExist: not a tenant table)
            continue
        if field.concrete and field.is_relation and field.related_model._meta.label == "accounts.Organization":
            if field.column == "organization_id":
                found.append(model)
    return found


def tenant_tables() -> list[str]:
    return sorted({m._meta.db_table for m in tenant_models()})


def _org_value() -> str:
    return f"NULLIF(current_setting('{ORG_SETTING}', true), '')::bigint"


def _system_value() -> str:
    return f"NULLIF(current_setting('{SYSTEM_SETTING}', true), '')::bigint"


def policy_sql(table: str) -> list[str]:
    """The statements that (re)create the RLS of one tenant table; idempotent."""
    q = f'"{table}"'
    return [
        f"ALTER TABLE {q} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {q} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS {TENANT_POLICY} ON {q}",
        f"CREATE POLICY {TENANT_POLICY} ON {q} USING (organization_id = {_org_value()})",
        f"DROP POLICY IF EXISTS {SYSTEM_POLICY} ON {q}",
        f"CREATE POLICY {SYSTEM_POLICY} ON {q} USING (organization_id >= {_system_value()})",
    ]


def missing_tables(connection: Any) -> list[str]:
    """Tenant tables whose RLS is not complete (not enabled, not forced, or a policy missing)."""
    tables = tenant_tables()
    if not tables:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relname = ANY(%s)
               AND c.relrowsecurity AND c.relforcerowsecurity
               AND (SELECT count(*) FROM pg_policies p WHERE p.schemaname = n.nspname AND p.tablename = c.relname
                     AND p.policyname IN (%s, %s)) = 2
            """,
            [tables, TENANT_POLICY, SYSTEM_POLICY],
        )
        done = {row[0] for row in cursor.fetchall()}
    existing = set(connection.introspection.table_names())
    return [t for t in tables if t not in done and t in existing]


def apply_policies(connection: Any, *, force: bool = False) -> list[str]:
    """(Re)create the policies of every tenant table that lacks them (all of them with ``force``).

    Returns the tables changed. Does nothing on a database other than Postgres.
    """
    if connection.vendor != "postgresql":
        return []
    tables = tenant_tables() if force else missing_tables(connection)
    existing = set(connection.introspection.table_names())
    tables = [t for t in tables if t in existing]
    with connection.cursor() as cursor:
        for table in tables:
            for statement in policy_sql(table):
                cursor.execute(statement)
    return tables


def post_migrate_policies(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """``post_migrate`` receiver (connected once, for the cs_platform app, in its ``ready``)."""
    from django.db import connections

    apply_policies(connections[using])


# --- the per-connection settings -----------------------------------------------------------------


def desired_settings() -> tuple[str, str]:
    """(``retain.organization_id``, ``retain.system_min_org``) for the code running now."""
    org_id = current_org_id()
    if org_id is not None:
        return (str(org_id), "")
    if _system.get() is not None:
        return ("", "0")
    return ("", "")


def _rls_wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    connection = context["connection"]
    wanted = desired_settings()
    if getattr(connection, "_retain_rls_state", None) != wanted and not _in_failed_transaction(connection):
        # The raw cursor: not logged, not counted by assertNumQueries (the query budgets stay about the view).
        context["cursor"].cursor.execute(
            "SELECT set_config(%s, %s, false), set_config(%s, %s, false)",
            [ORG_SETTING, wanted[0], SYSTEM_SETTING, wanted[1]],
        )
        connection._retain_rls_state = wanted
    return execute(sql, params, many, context)


def _in_failed_transaction(connection: Any) -> bool:
    """True while the transaction is aborted: only a rollback can run, and it must not be preceded by
    ``set_config`` (which would fail); the statement after the rollback sets the values again."""
    raw = connection.connection
    if raw is None:
        return False
    info = getattr(raw, "info", None)  # psycopg 3, and psycopg2's ConnectionInfo
    status = getattr(info, "transaction_status", None)
    if status is None and hasattr(raw, "get_transaction_status"):
        status = raw.get_transaction_status()
    return int(status or 0) == 3  # INERROR in both drivers


def _forget_on(connection: Any, name: str) -> None:
    original = getattr(connection, name)
    if getattr(original, "_retain_rls", False):
        return

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        connection._retain_rls_state = None  # a rollback undoes a set_config made in the transaction
        return original(*args, **kwargs)

    wrapped._retain_rls = True  # type: ignore[attr-defined]
    setattr(connection, name, wrapped)


def install(connection: Any) -> None:
    """Make ``connection`` carry the ambient scope into the two settings (idempotent; Postgres only)."""
    if connection.vendor != "postgresql":
        return
    connection._retain_rls_state = None
    if _rls_wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.append(_rls_wrapper)
    for name in ("rollback", "savepoint_rollback", "close"):
        _forget_on(connection, name)


def uninstall(connection: Any) -> None:
    if _rls_wrapper in connection.execute_wrappers:
        connection.execute_wrappers.remove(_rls_wrapper)
    connection._retain_rls_state = None


def on_connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver: switch to the application role, carry the scope (when enabled)."""
    if connection.vendor != "postgresql":
        return
    role = getattr(settings, "DATABASE_APP_ROLE", "")
    if role:
        with connection.connection.cursor() as cursor:  # the new DB-API connection, before any query
            cursor.execute(f'SET ROLE "{role}"')
    if role or getattr(settings, "RETAIN_RLS", False):
        install(connection)
    connection._retain_rls_state = None
