"""CSV exports: one streaming writer for the API (``?format=csv``) and the pages (``?export=csv``).

Exports stream: rows are produced while the response is sent, in chunks read with
``QuerySet.iterator(chunk_size=…)``, so exporting 100,000 accounts holds one chunk in memory, not the
whole list. The queryset handed in must already carry the caller's organization, filters, ordering
and permissions: this module only turns rows into CSV text.

Cells are flattened the same way everywhere: empty for ``None``, ``true``/``false`` for booleans,
lists joined with ``|`` (the separator of the import format's ``roles`` column), objects (custom
fields, nested rows) as compact JSON.

Formula injection (OWASP "CSV injection"): a spreadsheet runs a cell that begins with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return as a formula, so a name planted through the API or a write
key could run in the spreadsheet of whoever opens an export. Every cell and header written here goes
through :func:`neutralise`, which prefixes such a cell with ``'`` (the spreadsheet then shows it as
text), leaves numbers alone (``-12.50`` stays a number), and also prefixes a cell that is one or more
``'`` followed by one of those characters, so that :func:`restore` (used by the importer) is its
exact inverse: it removes one leading ``'`` exactly where :func:`neutralise` added one. defusedcsv was
considered and not used: it rewrites ``|`` (our list separator) to ``\\|``, ignores tab and carriage
return, and has no inverse, so a re-exported file would not import back unchanged.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from itertools import islice
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import StreamingHttpResponse

from cs_platform.tenancy import org_scope

__all__ = [
    "CHUNK_SIZE",
    "LIST_SEPARATOR",
    "cell",
    "chunked",
    "csv_lines",
    "csv_response",
    "neutralise",
    "restore",
]

CHUNK_SIZE = 2000  # rows read (and serialized) per query while streaming
LIST_SEPARATOR = "|"

# A cell a spreadsheet would evaluate: it starts with a formula trigger (OWASP's list), possibly
# behind apostrophes (those are escaped too, so that ``restore`` can undo exactly what was added).
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
# A plain decimal number, signed or not ("-12", "-0.5", "+3e4"): spreadsheets read it as a number,
# never as a formula, and it must stay a number in the export.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# What ``neutralise`` produced: one added apostrophe in front of an escaped cell.
_ESCAPED = re.compile(r"'+[=+\-@\t\r]")


def neutralise(text: str) -> str:
    """``text`` safe to open in a spreadsheet: a leading ``'`` before a formula-like cell.

    Escaped: a cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return, or with
    apostrophes followed by one of them — unless the whole cell is a plain number.
    """
    if _FORMULA.match(text) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def restore(text: str) -> str:
    """The inverse of :func:`neutralise`: drop the one ``'`` it added, leave every other cell as is.

    The rule, for importers: a cell that is one or more ``'`` followed by ``=``, ``+``, ``-``, ``@``,
    tab or carriage return loses its first ``'``. No other cell changes.
    """
    if _ESCAPED.match(text):
        return text[1:]
    return text


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
    """The header line, then one CSV line per row (cells flattened with :func:`cell`).

    Every cell, the header's included (custom field names are user data too), is neutralised
    against formula injection here: the one place every export passes through.
    """
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    yield writer.writerow([neutralise(str(name)) for name in header])
    for row in rows:
        yield writer.writerow([neutralise(cell(value)) for value in row])


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
