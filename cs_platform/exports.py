"""CSV exports: one streaming writer for the API (``?format=csv``) and the pages (``?export=csv``).

Exports stream: rows are produced while the response is sent, in chunks read with
``QuerySet.iterator(chunk_size=…)``, so exporting 100,000 accounts holds one chunk in memory, not the
whole list. The queryset handed in must already carry the caller's organization, filters, ordering
and permissions: this module only turns rows into CSV text.

Cells are flattened the same way everywhere: empty for ``None``, ``true``/``false`` for booleans,
lists joined with ``|`` (the separator of the import format's ``roles`` column), objects (custom
fields, nested rows) as compact JSON.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from itertools import islice
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import StreamingHttpResponse

from cs_platform.tenancy import org_scope

__all__ = ["CHUNK_SIZE", "LIST_SEPARATOR", "cell", "chunked", "csv_lines", "csv_response"]

CHUNK_SIZE = 2000  # rows read (and serialized) per query while streaming
LIST_SEPARATOR = "|"


def cell(value: Any) -> str:
    """One value as CSV cell text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float, Decimal)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return LIST_SEPARATOR.join(
            cell(item) if not isinstance(item, (dict, list, tuple)) else _json(item) for item in value
        )
    if isinstance(value, dict):
        return _json(value) if value else ""
    return str(value)


def _json(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


class _Echo:
    """A file-like object whose ``write`` returns the text, so ``csv.writer`` can feed a generator."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """The header line, then one CSV line per row (cells flattened with :func:`cell`)."""
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([cell(value) for value in row])


def chunked(queryset: Any, size: int = CHUNK_SIZE) -> Iterator[list[Any]]:
    """The queryset's rows in lists of ``size``, read with ``.iterator(chunk_size=size)``.

    ``iterator`` keeps ``prefetch_related`` working per chunk (Django ≥ 4.1) and, on Postgres,
    reads through a server-side cursor instead of loading every row.
    """
    iterator = queryset.iterator(chunk_size=size)
    while chunk := list(islice(iterator, size)):
        yield chunk


def csv_response(
    filename: str,
    header: Sequence[str],
    rows: Callable[[], Iterable[Sequence[Any]]],
    *,
    organization: Any,
) -> StreamingHttpResponse:
    """A streaming ``text/csv`` attachment.

    ``rows`` is called lazily, while the response is sent, i.e. after the view has returned and
    left its organization scope: the generator runs inside ``org_scope(organization)`` again so
    the scoped managers used while serializing (related lookups) still see only that organization.
    """

    def stream() -> Iterator[bytes]:
        with org_scope(organization):
            yield "\ufeff".encode()  # a BOM, so spreadsheet apps read the file as UTF-8
            for line in csv_lines(header, rows()):
                yield line.encode()

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
