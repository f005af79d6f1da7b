"""Fast Postgres ``COPY`` writing for the demo seeders (``accounts.demo``, ``health.demo``).

The big demo writes millions of rows; formatting them value by value through
:func:`accounts.imports.copy_text` (an ``isinstance`` chain and four ``str.replace`` per value) was
the seeder's largest Python cost. :func:`copy_value` produces the same text, dispatching on the exact
type and escaping only strings that need it.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction

from .imports import copy_text

__all__ = ["bulk_load", "check_references", "copy_lines", "copy_value", "format_row"]


def _plain(value: Any) -> str:
    return str(value)


def _iso(value: Any) -> str:
    return value.isoformat()


def _bool(value: bool) -> str:
    return "t" if value else "f"


_BY_TYPE = {int: _plain, Decimal: _plain, float: _plain, date: _iso, datetime: _iso, bool: _bool}


def copy_value(value: Any) -> str:
    """One value in ``COPY`` text format; identical to :func:`accounts.imports.copy_text`."""
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
    with connection.cursor() as cursor:
        cursor.copy_expert(f"COPY {qn(table)} ({', '.join(qn(c) for c in columns)}) FROM STDIN", buffer)


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
