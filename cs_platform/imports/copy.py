"""Postgres ``COPY``: the text format, the import's set-based upsert, and fast loading for the demo seeders.

* :func:`copy_text` formats one value in ``COPY`` text format (used by :func:`upsert` and by the bulk
  health write in ``health.services``).
* :func:`upsert` is ``bulk_create(update_conflicts=True)`` through ``COPY`` on Postgres: the write of
  every import kind that upserts by a key.
* :func:`copy_value`, :func:`format_row`, :func:`copy_lines` and :func:`bulk_load` serve the demo
  seeders (``accounts.demo``, ``health.demo``), which write millions of rows: formatting them value by
  value through :func:`copy_text` (an ``isinstance`` chain and four ``str.replace`` per value) was the
  seeder's largest Python cost, so :func:`copy_value` produces the same text dispatching on the exact
  type and escaping only strings that need it.

Nothing here knows an app: models are passed in.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, IntegrityError, connections, transaction
from django.utils import timezone

__all__ = ["bulk_load", "check_references", "copy_lines", "copy_text", "copy_value", "format_row", "upsert"]


def copy_text(value: Any) -> str:
    """One value in Postgres ``COPY`` text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dict | list):
        value = json.dumps(value)
    elif not isinstance(value, str):
        value = value.isoformat() if isinstance(value, date) else str(value)
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def upsert(model: Any, objects: list[Any], *, unique: list[str], update: list[str]) -> None:
    """``bulk_create(update_conflicts=True)`` semantics, setting each object's pk.

    On Postgres the rows go through ``COPY`` into a temporary table and one
    ``INSERT … SELECT … ON CONFLICT DO UPDATE … RETURNING``: several times faster than Django's
    multi-row ``INSERT``, whose per-value compilation dominates big imports. Elsewhere, bulk_create.
    ``model`` must have the unscoped ``all_orgs`` manager of an organization-scoped model.
    """
    if not objects:
        return
    connection = connections[model.all_orgs.db]
    if connection.vendor != "postgresql":
        model.all_orgs.bulk_create(objects, update_conflicts=True, unique_fields=unique, update_fields=update)
        return
    qn = connection.ops.quote_name
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key and not f.generated]
    now = timezone.now()
    stamps = {f.attname for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)}
    buffer = io.StringIO()
    # copy_value: the same text as copy_text, dispatching on the exact type (the formatting was a
    # third of a connector page's upsert in cProfile).
    attnames = [(f.attname, f.attname in stamps) for f in fields]
    for obj in objects:
        buffer.write("\t".join(copy_value(now if stamp else getattr(obj, name)) for name, stamp in attnames))
        buffer.write("\n")
    buffer.seek(0)
    columns = ", ".join(qn(f.column) for f in fields)
    key_fields = [meta.get_field(name) for name in unique]
    keys = ", ".join(qn(f.column) for f in key_fields)
    updates = ", ".join(f"{qn(c)} = EXCLUDED.{qn(c)}" for c in (meta.get_field(n).column for n in update))
    table, temp = qn(meta.db_table), qn(f"_retain_upsert_{meta.model_name}")
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {temp} AS SELECT {columns} FROM {table} WITH NO DATA")
        try:
            cursor.copy_expert(f"COPY {temp} ({columns}) FROM STDIN", buffer)
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {temp} "
                f"ON CONFLICT ({keys}) DO UPDATE SET {updates} RETURNING {qn(meta.pk.column)}, {keys}"
            )
            returned = {tuple(row[1:]): row[0] for row in cursor.fetchall()}
        finally:
            cursor.execute(f"DROP TABLE {temp}")
    for obj in objects:
        obj.pk = returned[tuple(getattr(obj, f.attname) for f in key_fields)]


def _plain(value: Any) -> str:
    return str(value)


def _iso(value: Any) -> str:
    return value.isoformat()


def _bool(value: bool) -> str:
    return "t" if value else "f"


_BY_TYPE = {int: _plain, Decimal: _plain, float: _plain, date: _iso, datetime: _iso, bool: _bool}


def copy_value(value: Any) -> str:
    """One value in ``COPY`` text format; identical to :func:`copy_text`."""
    kind = type(value)
    if kind is str:
        if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
            return copy_text(value)
        return value
    if value is None:
        return "\\N"
    format_value = _BY_TYPE.get(kind)
    return format_value(value) if format_value is not None else copy_text(value)


def format_row(row: Iterable[Any]) -> str:
    """One ``COPY`` line (with its newline)."""
    return "\t".join(map(copy_value, row)) + "\n"


def copy_lines(connection: Any, table: str, columns: Sequence[str], lines: Iterable[str]) -> None:
    """``COPY table (columns) FROM STDIN`` of already formatted lines (names are quoted here)."""
    qn = connection.ops.quote_name
    buffer = io.StringIO()
    buffer.writelines(lines)
    buffer.seek(0)
    names = ", ".join(qn(c) for c in columns)
    with connection.cursor() as cursor:
        # COPY FROM refuses a table whose row-level security binds the current role (cs_platform/rls.py: the
        # application role, or the owner under FORCE): load a temporary table and insert from it, which the
        # policies then check row by row. A superuser (dev, CI) copies straight in.
        cursor.execute("SELECT row_security_active(%s::regclass)", [qn(table)])
        if not cursor.fetchone()[0]:
            cursor.copy_expert(f"COPY {qn(table)} ({names}) FROM STDIN", buffer)
            return
        temp = qn(f"_retain_copy_{table}"[:63])
        cursor.execute(f"DROP TABLE IF EXISTS {temp}")
        cursor.execute(f"CREATE TEMPORARY TABLE {temp} AS SELECT {names} FROM {qn(table)} WITH NO DATA")
        cursor.copy_expert(f"COPY {temp} ({names}) FROM STDIN", buffer)
        cursor.execute(f"INSERT INTO {qn(table)} ({names}) SELECT {names} FROM {temp}")
        cursor.execute(f"DROP TABLE {temp}")


@contextmanager
def bulk_load(connection: Any, organization_id: int, models: Sequence[Any]) -> Iterator[bool]:
    """Load ``models``' rows of one organization without Postgres' per-row foreign-key triggers, then
    check every reference of those rows in one set-based query per table.

    Django's foreign keys are ``DEFERRABLE INITIALLY DEFERRED``: each inserted row queues one check per
    key, run at commit — for the 6 M rows of a 50k demo that was over a minute of ``SELECT … FOR KEY
    SHARE``. Inside the block ``session_replication_role`` is ``replica`` (so those triggers do not
    fire; only for a role allowed to set it, e.g. a superuser, and only inside a transaction); on leaving
    it, an anti-join per table finds any row of the organization whose key points nowhere and raises
    :class:`~django.db.IntegrityError` (the transaction then rolls back), like ``VALIDATE CONSTRAINT``.
    Yields whether the triggers were off; elsewhere (SQLite, no privilege) it changes nothing. Deletes
    must not happen inside the block.
    """
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        yield False
        return
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
    except DatabaseError:  # not allowed: keep the per-row checks
        yield False
        return
    yield True
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = origin")
    check_references(connection, organization_id, models)


def check_references(connection: Any, organization_id: int, models: Sequence[Any]) -> None:
    """Raise ``IntegrityError`` if a row of ``models`` in the organization references a missing row."""
    qn = connection.ops.quote_name
    for model in models:
        keys = [
            f
            for f in model._meta.concrete_fields
            if f.is_relation and f.db_constraint and f.name != "organization"  # the filter pins that one
        ]
        if not keys:
            continue
        joins, orphans = [], []
        for n, key in enumerate(keys):
            target = key.target_field
            joins.append(
                f"LEFT JOIN {qn(target.model._meta.db_table)} t{n} ON t{n}.{qn(target.column)} = c.{qn(key.column)}"
            )
            orphans.append(f"(c.{qn(key.column)} IS NOT NULL AND t{n}.{qn(target.column)} IS NULL)")
        sql = (
            f"SELECT count(*) FROM {qn(model._meta.db_table)} c {' '.join(joins)} "
            f"WHERE c.{qn(model._meta.get_field('organization').column)} = %s AND ({' OR '.join(orphans)})"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [organization_id])
            (count,) = cursor.fetchone()
        if count:
            raise IntegrityError(f"{count} {model._meta.label} rows reference missing rows")
