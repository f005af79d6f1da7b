"""Fast Postgres ``COPY`` writing for the demo seeders (``accounts.demo``, ``health.demo``).

The big demo writes millions of rows; formatting them value by value through
:func:`accounts.imports.copy_text` (an ``isinstance`` chain and four ``str.replace`` per value) was
the seeder's largest Python cost. :func:`copy_value` produces the same text, dispatching on the exact
type and escaping only strings that need it.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from .imports import copy_text

__all__ = ["copy_lines", "copy_value", "format_row"]


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
