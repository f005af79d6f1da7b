"""CSV import of the customer model and its health signals: accounts, contacts, contracts (one row per
line), activities, usage (daily metrics), tickets and invoices.

The contract is spec §8: a header row with exactly the documented columns, ISO dates, plain
decimals, upsert by external id, and **all or nothing per file**: a file with any bad row imports
nothing and reports every bad row as (line, column, reason), the header being line 1.

How it runs (one service for the command, the upload page and the Celery task):

1. **Validate** — stream the file once with the ``csv`` module, check every cell and every
   cross-row rule (duplicates in the file, owners that are members, references to accounts,
   parent cycles, contract rows that disagree), collecting every error. Memory holds the keys
   seen (8-byte digests where a key is only checked for duplicates; account external ids and
   parents), never the rows; a row is at most ``MAX_RECORD_CHARS`` characters, and the caller's
   ``max_rows`` (the organization's limit) stops a longer file.
2. **Write** — only if there was no error: stream the file again inside one transaction and write
   in batches with set-based statements: an upsert keyed on
   ``(organization, external_id)`` (Postgres: COPY into a temporary table + ``INSERT … ON CONFLICT``;
   SQLite: ``bulk_create(update_conflicts=True)``), a second pass for parents that
   were created by this same file, ``bulk_update``/``bulk_create`` for contract lines (a big contracts
   file is first split into temporary files by contract number, one bucket in memory at a time), and one
   ``refresh_current_arr`` at the end. Rows whose values are already those of the file are not
   written at all, so re-importing a file reports them as ``unchanged`` and touches nothing.

``dry_run`` does the whole write inside the transaction and rolls it back, so its counts are
exactly what a real run would report.

Per-kind rules worth knowing (also in the docs):

- accounts: any column beyond the spec's is a **custom field** stored in ``custom_fields[<column>]``
  (an empty cell removes that key); ``parent_external_id`` may name another row of the same file or
  an account already in the organization; an empty ``touch_model`` / ``lifecycle_stage`` keeps the
  current value (or the default for a new account); every other empty cell clears the field.
- contacts: ``roles`` separated by ``|``; ``active`` is true/false/1/0/yes/no (empty keeps the
  current value, true for a new contact); a contact turning inactive gets ``departed_at`` = today.
- contracts: rows with the same ``contract_number`` form one contract and must agree on its
  account, dates, status and seats; a line is identified by ``product_sku`` within its contract and
  the file's rows for a contract **replace** its lines; unknown SKUs are created as products named
  ``product_name``; an empty ``status`` means ``active``; an empty ``discount`` means 0.
- activities have no external id: rows are appended, except that a row identical to an existing
  activity in (account, type, occurred_at, summary) — or to an earlier row of the file — is skipped,
  so re-importing a file does not duplicate it. ``occurred_at`` is a date or an ISO date-time; a
  value without a time zone is read in the organization's time zone.
- usage: one row per (account, date, metric), upserted by that key (the same rows the rollups write,
  so a file may set ``events`` for a day; names of its own such as ``seats_used`` are fine); ``value``
  is a plain decimal (negative allowed, 4 decimal places at most). A key twice in the file is an error.
- tickets: upsert by ``external_id``; ``opened_at``/``resolved_at`` as for activities' ``occurred_at``;
  ``priority`` P1–P4 and ``status`` open/pending/solved/closed (empty keeps the current value, or P3 /
  open for a new ticket); ``resolved_at`` may not be before ``opened_at``. The subject is not a column and
  is left as it is.
- invoices: upsert by ``external_id``; ``amount`` ≥ 0 with at most 2 decimal places; ``paid_at`` empty =
  unpaid; a new invoice takes the organization's currency (the currency is not a column).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import tempfile
import zlib
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connections, transaction
from django.utils import timezone

from cs_platform.exports import restore

# The health signals' models live in the health app; the import contract (spec §8) is one service.
from health.models import Invoice, Ticket, TicketPriority, TicketStatus, UsageMetric

from .choices import ActivityType, ContactRole, ContractStatus, TouchModel
from .models import Account, Activity, Contact, Contract, ContractLine, Membership, Organization, Product
from .models.customers import line_arr
from .services import refresh_current_arr

__all__ = [
    "COLUMNS",
    "KINDS",
    "LATER_KINDS",
    "ImportLimits",
    "ImportRefused",
    "ImportResult",
    "RowError",
    "UnsupportedKind",
    "count_rows",
    "import_csv",
    "import_limits",
    "start_import",
]

COLUMNS: dict[str, list[str]] = {
    "accounts": [
        "external_id", "name", "domain", "industry", "region", "employees", "owner_email",
        "parent_external_id", "touch_model", "lifecycle_stage", "customer_since",
    ],
    "contacts": ["external_id", "account_external_id", "name", "email", "title", "roles", "active"],
    "contracts": [
        "account_external_id", "contract_number", "start_date", "end_date", "status", "product_sku",
        "product_name", "quantity", "annual_unit_price", "discount", "seats",
    ],
    "activities": ["account_external_id", "type", "occurred_at", "author_email", "summary"],
    "usage": ["account_external_id", "date", "metric", "value"],
    "tickets": ["external_id", "account_external_id", "opened_at", "priority", "status", "resolved_at"],
    "invoices": ["external_id", "account_external_id", "due_date", "amount", "paid_at"],
}  # fmt: skip
KINDS = tuple(COLUMNS)
# Kinds of the spec §8 contract not importable yet (none left: kept for callers that name it).
LATER_KINDS: tuple[str, ...] = ()

BATCH = 2000  # rows per statement: well under SQLite's variable limit, large enough for Postgres
BATCH_CHARS = 1_000_000  # ...or fewer when the rows are wide: a batch holds at most this many characters
MAX_RECORD_CHARS = 1_000_000  # one row, all its cells and lines: bounds the memory a row can take
CONTRACT_BUCKET_ROWS = 50_000  # contract lines held in memory at once while writing (see _ContractImporter)
WHOLE_ORG_REFRESH = 5000  # beyond this many touched accounts, refreshing the whole org is cheaper
MAX_ERRORS = 10_000  # errors kept in the result; the total is always counted


class UnsupportedKind(ValueError):
    """The kind is not importable (unknown, or not yet available)."""


class ImportRefused(ValueError):
    """The file cannot be imported at all (too many rows, not UTF-8 CSV): refused at the door."""


@dataclass(frozen=True)
class ImportLimits:
    """What one uploaded file of an organization may hold: bytes and data rows."""

    max_bytes: int
    max_rows: int


def import_limits(organization: Organization) -> ImportLimits:
    """The organization's own limits (set by the operator in django-admin), else the server's defaults
    (``IMPORT_MAX_BYTES``, ``IMPORT_MAX_ROWS``)."""
    return ImportLimits(
        max_bytes=organization.import_max_bytes or settings.IMPORT_MAX_BYTES,
        max_rows=organization.import_max_rows or settings.IMPORT_MAX_ROWS,
    )


def file_size_text(size: int) -> str:
    """``52428800`` → ``"50 MB"`` (binary megabytes, as the limits are set)."""
    if size >= 1 << 20:
        return f"{size / (1 << 20):.3g} MB"
    if size >= 1 << 10:
        return f"{size / (1 << 10):.3g} KB"
    return f"{size} bytes"


def _key(*parts: Any) -> int:
    """A 64-bit digest of a row's natural key: what duplicate checks keep per row, instead of the key's
    text (whose length the file decides). 2**-64 per pair is as good as never for a collision."""
    text = "\x1f".join(str(part) for part in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _lines() -> array:
    """Line numbers, 4 bytes each (a list of ints takes ~36)."""
    return array("L")


@dataclass(frozen=True)
class RowError:
    """One problem in the file: its line (header = 1), the column (empty for the whole row) and why."""

    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}, column {self.column}" if self.column else f"line {self.line}"
        return f"{where}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "reason": self.reason}


@dataclass
class ImportResult:
    """What an import did (or, with errors or ``dry_run``, would have done: nothing is written then)."""

    kind: str
    dry_run: bool = False
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "errors": self.error_count,
            **self.extra,
        }

    def summary(self) -> str:
        if not self.ok:
            return f"{self.error_count} error(s): nothing was imported."
        verb = "would be" if self.dry_run else "were"
        extra = "".join(f", {k.replace('_', ' ')}: {v}" for k, v in self.extra.items())
        return (
            f"{self.rows} {self.kind} row(s): {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged {verb} imported{extra}."
        )


class _Errors:
    """Collects every error, keeping the first ``MAX_ERRORS`` for the report."""

    def __init__(self) -> None:
        self.items: list[RowError] = []
        self.count = 0

    def add(self, line: int, column: str, reason: str) -> None:
        self.count += 1
        if len(self.items) < MAX_ERRORS:
            self.items.append(RowError(line, column, reason))


# --- Cell parsers: return the value or raise ValueError with the reason --------------------------

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DECIMAL_RE = re.compile(r"^-?\d+(\.\d+)?$")
_INT_RE = re.compile(r"^\d+$")
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _date(value: str) -> date:
    if not _DATE_RE.match(value):
        raise ValueError(f"{value!r} is not a date (expected YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a valid date") from None


def _decimal(value: str, *, low: Decimal | None = Decimal(0), high: Decimal | None = None) -> Decimal:
    if not _DECIMAL_RE.match(value):
        raise ValueError(f"{value!r} is not a plain decimal number (e.g. 1200.50)")
    number = Decimal(value)
    if low is not None and number < low:
        raise ValueError(f"{value} is below {low}")
    if high is not None and number > high:
        raise ValueError(f"{value} is above {high}")
    return number


def _int(value: str) -> int:
    if not _INT_RE.match(value):
        raise ValueError(f"{value!r} is not a non-negative whole number")
    return int(value)


def _bool(value: str) -> bool:
    low = value.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"{value!r} is not a boolean (use true/false, 1/0 or yes/no)")


def _text(value: str, max_length: int) -> str:
    if len(value) > max_length:
        raise ValueError(f"longer than {max_length} characters")
    return value


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
    for obj in objects:
        buffer.write("\t".join(copy_text(now if f.attname in stamps else getattr(obj, f.attname)) for f in fields))
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


def _chunks(items: list[Any], size: int = BATCH) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- Reading the file ----------------------------------------------------------------------------


@contextmanager
def _open_source(source: str | Path | IO[Any]) -> Iterator[IO[str]]:
    """A rewindable text stream over ``source`` (path, text or binary stream); BOM-tolerant."""
    if isinstance(source, str | Path):
        with open(source, newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
            yield handle
        return
    stream: IO[Any] = source
    if not (hasattr(stream, "seekable") and stream.seekable()):
        # Uploads and pipes cannot be read twice: spool them (to disk beyond 16 MB) first.
        spool = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115
        for chunk in iter(lambda: stream.read(1 << 16), b"" if _is_binary(stream) else ""):
            spool.write(chunk.encode() if isinstance(chunk, str) else chunk)
        spool.seek(0)
        stream = spool
    if _is_binary(stream):
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="", errors="surrogateescape")
        try:
            yield text
        finally:
            text.detach()
    else:
        yield stream


def _is_binary(stream: IO[Any]) -> bool:
    return isinstance(stream, io.RawIOBase | io.BufferedIOBase | tempfile.SpooledTemporaryFile) or "b" in getattr(
        stream, "mode", ""
    )


class _Unreadable(Exception):
    """The file cannot be read on from ``line``: not UTF-8, broken CSV, or a row beyond the size limit."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


_UNDECODABLE = re.compile("[\udc80-\udcff]")


class _BoundedLines:
    """The text stream line by line for the ``csv`` reader, refusing a row (all its lines) longer than
    :data:`MAX_RECORD_CHARS`: whatever the file holds, one row never takes more memory than that.
    ``readline`` is given the limit, so even a file without a single newline is not read whole."""

    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle
        self.chars = 0  # of the row being read; reset by the reader's consumer after each row

    def __iter__(self) -> Iterator[str]:
        while True:
            line = self.handle.readline(MAX_RECORD_CHARS + 1)
            if not line:
                return
            self.chars += len(line)
            if self.chars > MAX_RECORD_CHARS:
                raise _Unreadable(0, f"a row longer than {MAX_RECORD_CHARS:,} characters: is this a CSV file?")
            if _UNDECODABLE.search(line):  # bytes that are not UTF-8, kept as surrogates to name their line
                raise _Unreadable(0, "the file is not UTF-8 text (save it as CSV UTF-8)")
            yield line


def _records(handle: IO[str]) -> Iterator[tuple[int, list[str]]]:
    """Every CSV record (header included) as (line number of its first line, raw cells), streamed with
    bounded memory; raises :class:`_Unreadable` with the line where reading stopped."""
    lines = _BoundedLines(handle)
    reader = csv.reader(lines)
    previous = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except _Unreadable as exc:
            raise _Unreadable(previous + 1, exc.reason) from None
        except UnicodeDecodeError:
            raise _Unreadable(previous + 1, "the file is not UTF-8 text (save it as CSV UTF-8)") from None
        except csv.Error as exc:
            raise _Unreadable(previous + 1, f"not readable as CSV: {exc}") from None
        line, previous = previous + 1, reader.line_num
        lines.chars = 0
        yield line, cells


def _rows(handle: IO[str], width: int, errors: _Errors | None) -> Iterator[tuple[int, list[str]]]:
    """Data rows as (line number of the row's first line, stripped cells); blank rows are skipped."""
    records = _records(handle)
    next(records, None)  # header
    for line, cells in records:
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != width:
            if errors is not None:
                errors.add(line, "", f"expected {width} cells, found {len(cells)}")
            continue
        # restore(): undo the "'" our exports put before formula-like cells, so exports round-trip.
        yield line, [restore(cell.strip()) for cell in cells]


def count_rows(source: str | Path, *, limit: int) -> int:
    """The data rows of a stored file (blank rows not counted), read as the import reads it, stopping
    past ``limit``. Raises :class:`ImportRefused` when the file has more rows than ``limit`` or cannot be
    read as UTF-8 CSV: an upload is refused at the door rather than queued to fail."""
    rows = 0
    try:
        with _open_source(source) as handle:
            records = _records(handle)
            next(records, None)
            for _, cells in records:
                if any(cell.strip() for cell in cells):
                    rows += 1
                    if rows > limit:
                        raise ImportRefused(
                            f"The file has more than {limit:,} rows, this organization's limit per file."
                        )
    except _Unreadable as exc:
        raise ImportRefused(f"Line {exc.line}: {exc.reason}.") from None
    return rows


# --- Per-kind importers ----------------------------------------------------------------------------


class _Importer:
    """Base of a kind: ``check`` one row (pass 1), ``finish`` cross-row checks, ``write`` (pass 2)."""

    kind = ""

    def __init__(self, org: Organization, header: list[str], errors: _Errors, result: ImportResult) -> None:
        self.org = org
        self.header = header
        self.col = {name: i for i, name in enumerate(header)}
        self.errors = errors
        self.result = result
        self.today = timezone.localdate()
        self._members: dict[str, int] | None = None

    # helpers ------------------------------------------------------------------------------------

    def members(self) -> dict[str, int]:
        if self._members is None:
            self._members = {
                email.lower(): user_id
                for email, user_id in Membership.objects.for_org(self.org).values_list("user__email", "user_id")
            }
        return self._members

    def cell(
        self, line: int, cells: list[str], column: str, parse: Callable[[str], Any] | None = None, *, required=False
    ) -> Any:
        """The parsed cell, ``None`` if empty, or ``None`` after recording why it is invalid."""
        raw = cells[self.col[column]]
        if not raw:
            if required:
                self.errors.add(line, column, "is required")
            return None
        if parse is None:
            return raw
        try:
            return parse(raw)
        except ValueError as exc:
            self.errors.add(line, column, str(exc))
            return None

    def member(self, line: int, cells: list[str], column: str) -> int | None:
        email = cells[self.col[column]].lower()
        if not email:
            return None
        user_id = self.members().get(email)
        if user_id is None:
            self.errors.add(line, column, f"no member with email {email}")
        return user_id

    def account_ids(self, external_ids: Iterable[str]) -> dict[str, int]:
        """This organization's account ids by external id (another org's accounts are invisible)."""
        found: dict[str, int] = {}
        for chunk in _chunks(sorted(set(external_ids))):
            found.update(
                Account.objects.for_org(self.org).filter(external_id__in=chunk).values_list("external_id", "id")
            )
        return found

    def batched(
        self, rows: Iterator[tuple[int, list[str]]], progress: Callable[[int], None], flush: Callable[[list], None]
    ) -> None:
        """Parse the rows and hand them to ``flush`` in batches of ``BATCH`` rows (fewer when they hold more
        than ``BATCH_CHARS`` characters), reporting progress."""
        batch: list[dict[str, Any]] = []
        done = chars = 0
        for line, cells in rows:
            batch.append(self.parse(line, cells))
            chars += sum(map(len, cells))
            if len(batch) >= BATCH or chars >= BATCH_CHARS:
                flush(batch)
                done += len(batch)
                progress(done)
                batch, chars = [], 0
        if batch:
            flush(batch)
            progress(done + len(batch))

    def resolve_accounts(self) -> None:
        """Map the ``account_external_id`` values noted in ``self.account_lines`` to ids (in one query a
        chunk); every line naming an account this organization does not have is an error."""
        self.accounts = self.account_ids(self.account_lines)
        for ext, lines in self.account_lines.items():
            if ext not in self.accounts:
                for line in lines:
                    self.errors.add(line, "account_external_id", f"no account with external_id {ext}")

    # protocol -------------------------------------------------------------------------------------

    def check(self, line: int, cells: list[str]) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Cross-row checks once every row was seen."""

    def write(self, rows: Iterator[tuple[int, list[str]]], progress: Callable[[int], None]) -> None:
        raise NotImplementedError


def _refresh(org: Organization, account_ids: set[int]) -> None:
    if not account_ids:
        return
    refresh_current_arr(org, account_ids=None if len(account_ids) > WHOLE_ORG_REFRESH else account_ids)


class _AccountImporter(_Importer):
    kind = "accounts"
    FIELDS = (
        "name", "domain", "industry", "region", "employees", "owner_id", "parent_id", "touch_model",
        "lifecycle_stage", "customer_since", "custom_fields",
    )  # fmt: skip

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.custom = [c for c in self.header if c not in COLUMNS["accounts"]]
        self.seen: dict[int, int] = {}  # digest of external_id -> line
        self.parent_of: dict[str, tuple[str, int]] = {}  # external_id -> (parent external_id, line)
        self.stages = tuple(self.org.lifecycle_stages)
        self.default_stage = "onboarding" if "onboarding" in self.stages else (self.stages or ["onboarding"])[0]
        self.existing_ids: dict[str, int] = {}

    def parse(self, line: int, cells: list[str]) -> dict[str, Any]:
        stages = self.stages
        return {
            "external_id": self.cell(line, cells, "external_id", lambda v: _text(v, 120), required=True),
            "name": self.cell(line, cells, "name", lambda v: _text(v, 200), required=True),
            "domain": self.cell(line, cells, "domain", lambda v: _text(v.lower(), 200)) or "",
            "industry": self.cell(line, cells, "industry", lambda v: _text(v, 100)) or "",
            "region": self.cell(line, cells, "region", lambda v: _text(v, 100)) or "",
            "employees": self.cell(line, cells, "employees", _int),
            "owner_id": self.member(line, cells, "owner_email"),
            "parent_external_id": cells[self.col["parent_external_id"]] or None,
            "touch_model": self.cell(line, cells, "touch_model", lambda v: _choice(v, TOUCH_MODELS)),
            "lifecycle_stage": self.cell(line, cells, "lifecycle_stage", lambda v: _choice(v, stages)),
            "customer_since": self.cell(line, cells, "customer_since", _date),
            "custom": {name: cells[self.col[name]] for name in self.custom},
        }

    def check(self, line: int, cells: list[str]) -> None:
        row = self.parse(line, cells)
        ext = row["external_id"]
        if ext is None:
            return
        key = _key(ext)
        if key in self.seen:
            self.errors.add(line, "external_id", f"duplicate external_id {ext} (first on line {self.seen[key]})")
            return
        self.seen[key] = line
        if row["parent_external_id"]:
            self.parent_of[ext] = (row["parent_external_id"], line)

    def finish(self) -> None:
        # Existing accounts are needed to resolve parents and walk their ancestry for cycles.
        existing = list(Account.objects.for_org(self.org).values_list("id", "external_id", "parent_id"))
        self.existing_ids = {ext: pk for pk, ext, _ in existing if ext}
        if not self.parent_of:
            return
        key_of_pk = {pk: (ext if ext else f"#{pk}") for pk, ext, _ in existing}
        in_database: dict[str, str | None] = {
            key_of_pk[pk]: key_of_pk.get(parent) if parent else None for pk, _, parent in existing
        }
        in_file: dict[str, str] = {}
        for ext, (parent, line) in self.parent_of.items():
            if _key(parent) not in self.seen and parent not in self.existing_ids:
                self.errors.add(
                    line, "parent_external_id", f"no account with external_id {parent} in this file or organization"
                )
                continue
            in_file[ext] = parent

        def parent_of(node: str) -> str | None:
            if node in in_file:
                return in_file[node]
            if _key(node) in self.seen:  # the file's row (without a parent) overrides the database
                return None
            return in_database.get(node)

        done: set[str] = set()
        for start in self.parent_of:
            path: list[str] = []
            on_path: set[str] = set()
            node: str | None = start
            while node is not None and node not in done:
                if node in on_path:
                    cycle = path[path.index(node) :]
                    text = " → ".join([*cycle, node])
                    for member in cycle:
                        if member in self.parent_of:
                            self.errors.add(self.parent_of[member][1], "parent_external_id", f"cycle: {text}")
                    break
                on_path.add(node)
                path.append(node)
                node = parent_of(node)
            done.update(path)

    def write(self, rows: Iterator[tuple[int, list[str]]], progress: Callable[[int], None]) -> None:
        org = self.org
        ids = dict(self.existing_ids)  # external id -> pk, grows with the accounts this file creates
        deferred: list[tuple[str, str]] = []  # (child, parent) whose parent is created by this file
        moved: set[int] = set()  # existing accounts whose parent changed, and their former parents

        def flush(batch: list[dict[str, Any]]) -> None:
            current = {
                values["external_id"]: values
                for values in Account.objects.for_org(org)
                .filter(external_id__in=[row["external_id"] for row in batch])
                .values("id", "external_id", *self.FIELDS)
            }
            writes: list[Account] = []
            for row in batch:
                ext, old = row["external_id"], current.get(row["external_id"])
                parent_ext = row["parent_external_id"]
                # A parent created earlier in this file, or existing, has an id; one created in this
                # batch or later gets it in the second pass.
                parent_id = ids.get(parent_ext) if parent_ext else None
                pending_parent = bool(parent_ext) and parent_id is None
                if pending_parent:
                    deferred.append((ext, parent_ext))
                custom = dict(old["custom_fields"]) if old and isinstance(old["custom_fields"], dict) else {}
                for name, value in row["custom"].items():
                    if value:
                        custom[name] = value
                    else:
                        custom.pop(name, None)
                values = {
                    "name": row["name"],
                    "domain": row["domain"],
                    "industry": row["industry"],
                    "region": row["region"],
                    "employees": row["employees"],
                    "owner_id": row["owner_id"],
                    "parent_id": parent_id,
                    "touch_model": row["touch_model"] or (old["touch_model"] if old else TouchModel.LOW),
                    "lifecycle_stage": row["lifecycle_stage"]
                    or (old["lifecycle_stage"] if old else self.default_stage),
                    "customer_since": row["customer_since"],
                    "custom_fields": custom,
                }
                if old is not None and not pending_parent and all(old[k] == values[k] for k in self.FIELDS):
                    self.result.unchanged += 1
                    continue
                if old is None:
                    self.result.created += 1
                else:
                    self.result.updated += 1
                    if pending_parent or old["parent_id"] != parent_id:
                        moved.add(old["id"])
                        if old["parent_id"]:
                            moved.add(old["parent_id"])
                writes.append(Account(organization_id=org.pk, external_id=ext, **values))
            upsert(
                Account,
                writes,
                unique=["organization", "external_id"],
                update=[*(f.removesuffix("_id") for f in self.FIELDS), "updated_at"],
            )
            if all(obj.pk is not None for obj in writes):
                ids.update((obj.external_id, obj.pk) for obj in writes)
            else:  # a backend that cannot return ids from an upsert
                ids.update(self.account_ids(obj.external_id for obj in writes))

        self.batched(rows, progress, flush)
        # Second pass: parents created by this file now have ids.
        updates = [Account(id=ids[child], parent_id=ids[parent]) for child, parent in deferred]
        Account.all_orgs.bulk_update(updates, ["parent"], batch_size=BATCH)
        # New accounts hold no contracts yet, so only moved accounts change hierarchy ARR.
        _refresh(org, moved)


def _choice(value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{value!r} is not one of: {', '.join(allowed)}")
    return value


# Computed once: an enum's ``.values`` builds a new list on every access, a cost per cell otherwise.
TOUCH_MODELS = tuple(TouchModel.values)
CONTRACT_STATUSES = tuple(ContractStatus.values)
ACTIVITY_TYPES = tuple(ActivityType.values)
CONTACT_ROLES = frozenset(ContactRole.values)


def _roles(value: str) -> list[str]:
    roles = [r.strip() for r in value.split("|") if r.strip()]
    unknown = [r for r in roles if r not in CONTACT_ROLES]
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(unknown)}; use: {', '.join(ContactRole.values)}")
    return sorted(set(roles), key=roles.index)


def _email(value: str) -> str:
    try:
        validate_email(value)
    except ValidationError:
        raise ValueError(f"{value!r} is not an email address") from None
    return value.lower()


class _ContactImporter(_Importer):
    kind = "contacts"
    FIELDS = ("account_id", "name", "email", "title", "roles", "is_active", "departed_at")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.seen: dict[int, int] = {}  # digest of external_id -> line
        self.account_lines: dict[str, array] = defaultdict(_lines)  # account external id -> lines
        self.accounts: dict[str, int] = {}

    def parse(self, line: int, cells: list[str]) -> dict[str, Any]:
        return {
            "external_id": self.cell(line, cells, "external_id", lambda v: _text(v, 120), required=True),
            "account": self.cell(line, cells, "account_external_id", required=True),
            "name": self.cell(line, cells, "name", lambda v: _text(v, 200), required=True),
            "email": self.cell(line, cells, "email", _email) or "",
            "title": self.cell(line, cells, "title", lambda v: _text(v, 200)) or "",
            "roles": self.cell(line, cells, "roles", _roles) or [],
            "active": self.cell(line, cells, "active", _bool),
        }

    def check(self, line: int, cells: list[str]) -> None:
        row = self.parse(line, cells)
        ext = row["external_id"]
        if ext is not None:
            key = _key(ext)
            if key in self.seen:
                self.errors.add(line, "external_id", f"duplicate external_id {ext} (first on line {self.seen[key]})")
            else:
                self.seen[key] = line
        if row["account"]:
            self.account_lines[row["account"]].append(line)

    def finish(self) -> None:
        self.resolve_accounts()
        self.account_lines = defaultdict(_lines)

    def write(self, rows: Iterator[tuple[int, list[str]]], progress: Callable[[int], None]) -> None:
        org = self.org

        def flush(batch: list[dict[str, Any]]) -> None:
            current = {
                v["external_id"]: v
                for v in Contact.objects.for_org(org)
                .filter(external_id__in=[r["external_id"] for r in batch])
                .values("external_id", *self.FIELDS)
            }
            writes = []
            for row in batch:
                old = current.get(row["external_id"])
                active = row["active"] if row["active"] is not None else (old["is_active"] if old else True)
                if active:
                    departed = None
                else:
                    departed = (old["departed_at"] if old else None) or self.today
                values = {
                    "account_id": self.accounts[row["account"]],
                    "name": row["name"],
                    "email": row["email"],
                    "title": row["title"],
                    "roles": row["roles"],
                    "is_active": active,
                    "departed_at": departed,
                }
                if old is not None and all(old[k] == values[k] for k in self.FIELDS):
                    self.result.unchanged += 1
                    continue
                self.result.created += old is None
                self.result.updated += old is not None
                writes.append(Contact(organization_id=org.pk, external_id=row["external_id"], **values))
            upsert(
                Contact,
                writes,
                unique=["organization", "external_id"],
                update=[*(f.removesuffix("_id") for f in self.FIELDS), "updated_at"],
            )

        self.batched(rows, progress, flush)


class _ContractImporter(_Importer):
    kind = "contracts"
    HEAD = ("account", "start_date", "end_date", "status", "seats")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.heads: dict[str, tuple[int, tuple[Any, ...]]] = {}  # number -> (first line, HEAD values)
        self.line_keys: dict[int, int] = {}  # digest of (number, sku) -> line
        self.sku_names: dict[str, tuple[int, str]] = {}  # sku -> (first line, first non-empty name)
        self.account_lines: dict[str, array] = defaultdict(_lines)
        self.accounts: dict[str, int] = {}
        self.products: dict[str, int] = {}

    def parse(self, line: int, cells: list[str]) -> dict[str, Any]:
        row = {
            "account": self.cell(line, cells, "account_external_id", required=True),
            "number": self.cell(line, cells, "contract_number", lambda v: _text(v, 80), required=True),
            "start_date": self.cell(line, cells, "start_date", _date, required=True),
            "end_date": self.cell(line, cells, "end_date", _date, required=True),
            "status": self.cell(line, cells, "status", lambda v: _choice(v, CONTRACT_STATUSES))
            or ContractStatus.ACTIVE,
            "sku": self.cell(line, cells, "product_sku", lambda v: _text(v, 80), required=True),
            "product_name": self.cell(line, cells, "product_name", lambda v: _text(v, 200)) or "",
            "quantity": self.cell(line, cells, "quantity", _decimal, required=True),
            "annual_unit_price": self.cell(line, cells, "annual_unit_price", _decimal, required=True),
            "discount": self.cell(line, cells, "discount", lambda v: _decimal(v, high=Decimal(1))) or Decimal(0),
            "seats": self.cell(line, cells, "seats", _int),
        }
        if row["start_date"] and row["end_date"] and row["end_date"] < row["start_date"]:
            self.errors.add(line, "end_date", f"{row['end_date']} is before start_date {row['start_date']}")
        return row

    def check(self, line: int, cells: list[str]) -> None:
        row = self.parse(line, cells)
        number, sku = row["number"], row["sku"]
        if row["account"]:
            self.account_lines[row["account"]].append(line)
        if sku:
            first = self.sku_names.get(sku)
            if first is None or (not first[1] and row["product_name"]):
                self.sku_names[sku] = (first[0] if first else line, row["product_name"])
        if not number:
            return
        head = tuple(row[k] for k in self.HEAD)
        if number not in self.heads:
            self.heads[number] = (line, head)
        else:
            first_line, first = self.heads[number]
            for i, key in enumerate(self.HEAD):
                if first[i] is not None and head[i] is not None and first[i] != head[i]:
                    column = "account_external_id" if key == "account" else key
                    self.errors.add(
                        line,
                        column,
                        f"{head[i]} differs from {first[i]} on line {first_line} for contract {number}",
                    )
        if sku:
            key = _key(number, sku)
            if key in self.line_keys:
                self.errors.add(
                    line, "product_sku", f"{sku} appears twice in contract {number} (line {self.line_keys[key]})"
                )
            else:
                self.line_keys[key] = line

    def finish(self) -> None:
        self.resolve_accounts()
        self.products = dict(
            Product.objects.for_org(self.org).filter(sku__in=list(self.sku_names)).values_list("sku", "id")
        )
        for sku, (line, name) in self.sku_names.items():
            if sku not in self.products and not name:
                self.errors.add(line, "product_name", f"unknown product_sku {sku}: a product_name is needed to add it")
        self.line_keys, self.account_lines = {}, defaultdict(_lines)

    def write(self, rows: Iterator[tuple[int, list[str]]], progress: Callable[[int], None]) -> None:
        org = self.org
        new_products = [
            Product(organization_id=org.pk, sku=sku, name=name)
            for sku, (_, name) in self.sku_names.items()
            if sku not in self.products
        ]
        Product.all_orgs.bulk_create(new_products, batch_size=BATCH)
        self.products.update(
            Product.objects.for_org(org).filter(sku__in=[p.sku for p in new_products]).values_list("sku", "id")
        )
        self.result.extra["products_created"] = len(new_products)

        # Lines per contract: a contract's rows may be anywhere in the file, and they replace its lines. A
        # big file is first split by contract number into temporary files ("buckets") of about
        # CONTRACT_BUCKET_ROWS lines each, so that only one bucket's lines are in memory at a time.
        touched: set[int] = set()
        contracts_created = lines_deleted = done = 0

        def line_values(row: dict[str, Any]) -> dict[str, Any]:
            return {
                "product_id": self.products[row["sku"]],
                "quantity": row["quantity"],
                "annual_unit_price": row["annual_unit_price"],
                "discount": row["discount"],
                "arr": line_arr(row["quantity"], row["annual_unit_price"], row["discount"]),
            }

        def write_contracts(lines_of: dict[str, list[dict[str, Any]]]) -> None:
            nonlocal contracts_created, lines_deleted, done
            for chunk in _chunks(list(lines_of)):
                current = {
                    v["number"]: v
                    for v in Contract.objects.for_org(org)
                    .filter(number__in=chunk)
                    .values("id", "number", "account_id", "start_date", "end_date", "status", "seats", "arr")
                }
                writes, head_changed = [], set()
                for number in chunk:
                    head = dict(zip(self.HEAD, self.heads[number][1], strict=True))
                    old = current.get(number)
                    values = {
                        "account_id": self.accounts[head["account"]],
                        "start_date": head["start_date"],
                        "end_date": head["end_date"],
                        "status": head["status"],
                        "seats": head["seats"],
                        "arr": sum((ln["arr"] for ln in lines_of[number]), Decimal("0.00")),
                    }
                    if old is not None and all(old[k] == v for k, v in values.items()):
                        continue
                    head_changed.add(number)
                    touched.add(values["account_id"])
                    if old is None:
                        contracts_created += 1
                    else:
                        touched.add(old["account_id"])
                    writes.append(Contract(organization_id=org.pk, number=number, currency=org.currency, **values))
                Contract.all_orgs.bulk_create(
                    writes,
                    update_conflicts=True,
                    unique_fields=["organization", "number"],
                    update_fields=["account", "start_date", "end_date", "status", "seats", "arr", "updated_at"],
                )
                contract_ids = dict(Contract.objects.for_org(org).filter(number__in=chunk).values_list("number", "id"))
                existing_lines: dict[int, list[dict[str, Any]]] = defaultdict(list)
                for v in (
                    ContractLine.objects.for_org(org)
                    .filter(contract_id__in=list(contract_ids.values()))
                    .order_by("id")
                    .values("id", "contract_id", "product_id", "quantity", "annual_unit_price", "discount", "arr")
                ):
                    existing_lines[v["contract_id"]].append(v)
                to_create, to_update, to_delete = [], [], []
                for number in chunk:
                    contract_id = contract_ids[number]
                    by_product: dict[int, dict[str, Any]] = {}
                    for old_line in existing_lines.get(contract_id, []):
                        if old_line["product_id"] in by_product:
                            to_delete.append(old_line["id"])  # duplicate product line: the file has one
                        else:
                            by_product[old_line["product_id"]] = old_line
                    lines_changed = False
                    for new in lines_of[number]:
                        old_line = by_product.pop(new["product_id"], None)
                        if old_line is None:
                            to_create.append(ContractLine(organization_id=org.pk, contract_id=contract_id, **new))
                            self.result.created += 1
                            lines_changed = True
                        elif any(old_line[k] != new[k] for k in ("quantity", "annual_unit_price", "discount", "arr")):
                            to_update.append(ContractLine(id=old_line["id"], **new))
                            self.result.updated += 1
                            lines_changed = True
                        elif number in head_changed:
                            self.result.updated += 1
                        else:
                            self.result.unchanged += 1
                    to_delete.extend(line["id"] for line in by_product.values())
                    if lines_changed or by_product:
                        touched.add(self.accounts[self.heads[number][1][0]])
                ContractLine.all_orgs.bulk_create(to_create, batch_size=BATCH)
                ContractLine.all_orgs.bulk_update(
                    to_update, ["quantity", "annual_unit_price", "discount", "arr"], batch_size=BATCH
                )
                for ids in _chunks(to_delete):
                    # Raw delete: nothing references a line, and the ARR refresh below replaces the
                    # per-row post_delete signals (which would cost a query per line).
                    ContractLine.all_orgs.filter(organization_id=org.pk, id__in=ids)._raw_delete(
                        ContractLine.all_orgs.db
                    )
                lines_deleted += len(to_delete)
                done += sum(len(lines_of[n]) for n in chunk)
                progress(done)

        buckets = self.result.rows // CONTRACT_BUCKET_ROWS + 1
        if buckets == 1:
            lines_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for line, cells in rows:
                row = self.parse(line, cells)
                lines_of[row["number"]].append(line_values(row))
            write_contracts(lines_of)
        else:
            spills = [tempfile.TemporaryFile("w+", newline="", encoding="utf-8") for _ in range(buckets)]  # noqa: SIM115
            try:
                writers = [csv.writer(spill) for spill in spills]
                for line, cells in rows:
                    writers[zlib.crc32(cells[self.col["contract_number"]].encode()) % buckets].writerow([line, *cells])
                for spill in spills:
                    spill.seek(0)
                    lines_of = defaultdict(list)
                    for line, *cells in csv.reader(spill):
                        row = self.parse(int(line), cells)
                        lines_of[row["number"]].append(line_values(row))
                    spill.close()
                    write_contracts(lines_of)
            finally:
                for spill in spills:
                    spill.close()
        self.result.extra["contracts_created"] = contracts_created
        self.result.extra["lines_deleted"] = lines_deleted
        _refresh(org, touched)


class _ActivityImporter(_Importer):
    kind = "activities"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.tz = ZoneInfo(self.org.time_zone or "UTC")
        self.account_lines: dict[str, array] = defaultdict(_lines)
        self.accounts: dict[str, int] = {}

    def _when(self, value: str) -> datetime:
        if _DATE_RE.match(value):
            return datetime.combine(_date(value), time(0), tzinfo=self.tz)
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a date (YYYY-MM-DD) or ISO date-time") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=self.tz)

    def parse(self, line: int, cells: list[str]) -> dict[str, Any]:
        return {
            "account": self.cell(line, cells, "account_external_id", required=True),
            "type": self.cell(line, cells, "type", lambda v: _choice(v, ACTIVITY_TYPES), required=True),
            "occurred_at": self.cell(line, cells, "occurred_at", self._when, required=True),
            "author_id": self.member(line, cells, "author_email"),
            "summary": cells[self.col["summary"]],
        }

    def check(self, line: int, cells: list[str]) -> None:
        row = self.parse(line, cells)
        if row["account"]:
            self.account_lines[row["account"]].append(line)

    def finish(self) -> None:
        self.resolve_accounts()
        self.account_lines = defaultdict(_lines)

    def write(self, rows: Iterator[tuple[int, list[str]]], progress: Callable[[int], None]) -> None:
        org = self.org
        seen: set[int] = set()  # digests of the keys written by this file (a summary can be long)

        def flush(batch: list[dict[str, Any]]) -> None:
            keys = [(self.accounts[r["account"]], r["type"], r["occurred_at"], r["summary"]) for r in batch]
            existing = set(
                Activity.objects.for_org(org)
                .filter(account_id__in={k[0] for k in keys}, occurred_at__in={k[2] for k in keys})
                .values_list("account_id", "type", "occurred_at", "summary")
            )
            writes = []
            for row, key in zip(batch, keys, strict=True):
                digest = _key(*key)
                if key in existing or digest in seen:
                    self.result.unchanged += 1
                    continue
                seen.add(digest)
                writes.append(
                    Activity(
                        organization_id=org.pk,
                        account_id=key[0],
                        type=key[1],
                        occurred_at=key[2],
                        author_id=row["author_id"],
                        summary=key[3],
                    )
                )
            Activity.all_orgs.bulk_create(writes, batch_size=BATCH)
            self.result.created += len(writes)

        self.batched(rows, progress, flush)


def _moment(value: str, tz: ZoneInfo) -> datetime:
    """A date (midnight) or an ISO date-time; without a time zone it is read in ``tz``."""
    if _DATE_RE.match(value):
        return datetime.combine(_date(value), time(0), tzinfo=tz)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD) or ISO date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def _places(value: str, *, places: int, digits: int, low: Decimal | None) -> Decimal:
    """A plain decimal that fits a ``DecimalField(max_digits=digits, decimal_places=places)``."""
    number = _decimal(value, low=low)
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        raise ValueError(f"{value} has more than {places} decimal places")
    if abs(number) >= Decimal(10) ** (digits - places):
        raise ValueError(f"{value} is too large")
    return number


class _AccountRowImporter(_Importer):
    """A kind whose rows hang off an account named by ``account_external_id`` (checked in ``finish``)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.tz = ZoneInfo(self.org.time_zone or "UTC")
        self.account_lines: dict[str, array] = defaultdict(_lines)
        self.accounts: dict[str, int] = {}

    def note_account(self, line: int, external_id: str | None) -> None:
        if external_id:
            self.account_lines[external_id].append(line)

    def finish(self) -> None:
        self.resolve_accounts()
        self.account_lines = defaultdict(_lines)

    def parse(self, line: int, cells: list[str]) -> dict[str, Any]:
        raise NotImplementedError


class _UsageImporter(_AccountRowImporter):
    kind = "usage"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.seen: dict[int, int] = {}  # digest of (account, date, metric) -> line

    def parse(self, line: int, cells: list[str]) -> dict[str, Any]:
        return {
            "account": self.cell(line, cells, "account_external_id", required=True),
            "date": self.cell(line, cells, "date", _date, required=True),
            "metric": self.cell(line, cells, "metric", lambda v: _text(v, 200), required=True),
            "value": self.cell(
                line, cells, "value", lambda v: _places(v, places=4, digits=18, low=None), required=True
            ),
        }

    def check(self, line: int, cells: list[str]) -> None:
        row = self.parse(line, cells)
        self.note_account(line, row["account"])
        if row["account"] and row["date"] and row["metric"]:
            key = _key(row["account"], row["date"], row["metric"])
            if key in self.seen:
                where = f"{row['metric']} on {row['date']} for account {row['account']}"
                self.errors.add(line, "metric", f"{where} is already on line {self.seen[key]}")
            else:
                self.seen[key] = line

    def finish(self) -> None:
        super().finish()
        self.seen = {}

    def write(self, rows: Iterator[tuple[int, list[str]]], progress: Callable[[int], None]) -> None:
        org = self.org

        def flush(batch: list[dict[str, Any]]) -> None:
            keys = [(self.accounts[r["account"]], r["date"], r["metric"]) for r in batch]
            current = {
                (a, d, m): v
                for a, d, m, v in UsageMetric.objects.for_org(org)
                .filter(
                    account_id__in={k[0] for k in keys}, date__in={k[1] for k in keys}, metric__in={k[2] for k in keys}
                )
                .values_list("account_id", "date", "metric", "value")
            }
            writes = []
            for row, key in zip(batch, keys, strict=True):
                old = current.get(key)
                if old is not None and old == row["value"]:
                    self.result.unchanged += 1
                    continue
                self.result.created += old is None
                self.result.updated += old is not None
                writes.append(
                    UsageMetric(
                        organization_id=org.pk, account_id=key[0], date=key[1], metric=key[2], value=row["value"]
                    )
                )
            upsert(UsageMetric, writes, unique=["organization", "account", "date", "metric"], update=["value"])

        self.batched(rows, progress, flush)


class _ExternalIdImporter(_AccountRowImporter):
    """Tickets and invoices: upsert by ``external_id``, updating ``FIELDS`` only."""

    model: Any = None
    FIELDS: tuple[str, ...] = ()

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.seen: dict[int, int] = {}  # digest of external_id -> line

    def check(self, line: int, cells: list[str]) -> None:
        row = self.parse(line, cells)
        self.note_account(line, row["account"])
        ext = row["external_id"]
        if ext is not None:
            key = _key(ext)
            if key in self.seen:
                self.errors.add(line, "external_id", f"duplicate external_id {ext} (first on line {self.seen[key]})")
            else:
                self.seen[key] = line

    def finish(self) -> None:
        super().finish()
        self.seen = {}

    def values(self, row: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        raise NotImplementedError

    def new(self, external_id: str, values: dict[str, Any]) -> Any:
        return self.model(organization_id=self.org.pk, external_id=external_id, **values)

    def write(self, rows: Iterator[tuple[int, list[str]]], progress: Callable[[int], None]) -> None:
        def flush(batch: list[dict[str, Any]]) -> None:
            current = {
                v["external_id"]: v
                for v in self.model.objects.for_org(self.org)
                .filter(external_id__in=[r["external_id"] for r in batch])
                .values("external_id", *self.FIELDS)
            }
            writes = []
            for row in batch:
                old = current.get(row["external_id"])
                values = self.values(row, old)
                if old is not None and all(old[k] == values[k] for k in self.FIELDS):
                    self.result.unchanged += 1
                    continue
                self.result.created += old is None
                self.result.updated += old is not None
                writes.append(self.new(row["external_id"], values))
            upsert(self.model, writes, unique=["organization", "external_id"], update=list(self.FIELDS))

        self.batched(rows, progress, flush)


TICKET_PRIORITIES = tuple(TicketPriority.values)
TICKET_STATUSES = tuple(TicketStatus.values)


class _TicketImporter(_ExternalIdImporter):
    kind = "tickets"
    model = Ticket
    FIELDS = ("account_id", "opened_at", "priority", "status", "resolved_at")

    def parse(self, line: int, cells: list[str]) -> dict[str, Any]:
        row = {
            "external_id": self.cell(line, cells, "external_id", lambda v: _text(v, 120), required=True),
            "account": self.cell(line, cells, "account_external_id", required=True),
            "opened_at": self.cell(line, cells, "opened_at", lambda v: _moment(v, self.tz), required=True),
            "priority": self.cell(line, cells, "priority", lambda v: _choice(v.upper(), TICKET_PRIORITIES)),
            "status": self.cell(line, cells, "status", lambda v: _choice(v.lower(), TICKET_STATUSES)),
            "resolved_at": self.cell(line, cells, "resolved_at", lambda v: _moment(v, self.tz)),
        }
        if row["opened_at"] and row["resolved_at"] and row["resolved_at"] < row["opened_at"]:
            self.errors.add(line, "resolved_at", "is before opened_at")
        return row

    def values(self, row: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "account_id": self.accounts[row["account"]],
            "opened_at": row["opened_at"],
            "priority": row["priority"] or (old["priority"] if old else TicketPriority.P3),
            "status": row["status"] or (old["status"] if old else TicketStatus.OPEN),
            "resolved_at": row["resolved_at"],
        }


class _InvoiceImporter(_ExternalIdImporter):
    kind = "invoices"
    model = Invoice
    FIELDS = ("account_id", "due_date", "amount", "paid_at")

    def parse(self, line: int, cells: list[str]) -> dict[str, Any]:
        return {
            "external_id": self.cell(line, cells, "external_id", lambda v: _text(v, 120), required=True),
            "account": self.cell(line, cells, "account_external_id", required=True),
            "due_date": self.cell(line, cells, "due_date", _date, required=True),
            "amount": self.cell(
                line, cells, "amount", lambda v: _places(v, places=2, digits=14, low=Decimal(0)), required=True
            ),
            "paid_at": self.cell(line, cells, "paid_at", _date),
        }

    def values(self, row: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "account_id": self.accounts[row["account"]],
            "due_date": row["due_date"],
            "amount": row["amount"],
            "paid_at": row["paid_at"],
        }

    def new(self, external_id: str, values: dict[str, Any]) -> Any:
        return Invoice(organization_id=self.org.pk, external_id=external_id, currency=self.org.currency, **values)


IMPORTERS: dict[str, type[_Importer]] = {
    "accounts": _AccountImporter,
    "contacts": _ContactImporter,
    "contracts": _ContractImporter,
    "activities": _ActivityImporter,
    "usage": _UsageImporter,
    "tickets": _TicketImporter,
    "invoices": _InvoiceImporter,
}


def _check_header(kind: str, header: list[str], errors: _Errors) -> None:
    expected = COLUMNS[kind]
    seen: set[str] = set()
    for name in header:
        if not name:
            errors.add(1, "", "a header cell is empty")
        elif name in seen:
            errors.add(1, name, "column appears twice")
        seen.add(name)
        if name and name not in expected and kind != "accounts":
            errors.add(1, name, f"unknown column; {kind} files have: {', '.join(expected)}")
    for name in expected:
        if name not in seen:
            errors.add(1, name, "missing column")


def check_kind(kind: str) -> None:
    """Raise :class:`UnsupportedKind` with a clear message unless ``kind`` can be imported."""
    if kind not in IMPORTERS:
        raise UnsupportedKind(f"unknown kind {kind!r}; importable: {', '.join(KINDS)}")


def import_csv(
    organization: Organization,
    kind: str,
    source: str | Path | IO[Any],
    *,
    dry_run: bool = False,
    recorder: Any = None,
    max_rows: int | None = None,
) -> ImportResult:
    """Import one CSV file of ``kind`` into ``organization``: everything, or nothing if any row is bad.

    ``source`` is a path or a (text or binary) stream. ``recorder`` is a
    :class:`cs_platform.jobs.JobRecorder`; progress runs over 2 × rows (validation, then writing).
    ``max_rows`` refuses a file with more data rows (reading stops there). Raises
    :class:`UnsupportedKind`; every problem of the file itself is returned in ``errors``.

    Memory does not grow with the file's size in bytes: the file is streamed twice (never read whole),
    a row is at most :data:`MAX_RECORD_CHARS` characters, writes go in batches bounded in rows and in
    characters, and what is kept across rows is per-row keys (64-bit digests where the key is only
    checked for duplicates), bounded in turn by ``max_rows``.
    """
    check_kind(kind)
    result = ImportResult(kind=kind, dry_run=dry_run)
    errors = _Errors()
    with _open_source(source) as handle:
        try:
            first = next(_records(handle), (1, []))[1]
        except _Unreadable as exc:
            errors.add(exc.line, "", exc.reason)
            result.errors, result.error_count = errors.items, errors.count
            return result
        header = [restore(cell.strip().lstrip("\ufeff")) for cell in first]
        if not any(header):
            errors.add(1, "", "the file is empty: a header row is required")
        else:
            # Spec column names are matched case-insensitively; custom field names are kept as written.
            header = [name.lower() if name.lower() in COLUMNS[kind] else name for name in header]
            _check_header(kind, header, errors)
        if errors.count:
            result.errors, result.error_count = errors.items, errors.count
            return result

        importer = IMPORTERS[kind](organization, header, errors, result)
        width = len(header)
        handle.seek(0)
        try:
            for line, cells in _rows(handle, width, errors):
                if max_rows is not None and result.rows >= max_rows:
                    errors.add(
                        line, "", f"the file has more than {max_rows:,} rows, this organization's limit per file"
                    )
                    break
                importer.check(line, cells)
                result.rows += 1
                if recorder is not None and result.rows % BATCH == 0:
                    recorder.advance(result.rows)
        except _Unreadable as exc:
            errors.add(exc.line, "", exc.reason)  # nothing after this line can be read
        importer.finish()
        if errors.count:
            result.errors = sorted(errors.items, key=lambda e: (e.line, e.column))
            result.error_count = errors.count
            return result
        if recorder is not None:
            recorder.set_total(2 * result.rows)
            recorder.advance(result.rows, force=True)

        def progress(done: int) -> None:
            if recorder is not None:
                recorder.advance(result.rows + done)

        handle.seek(0)
        with transaction.atomic():
            importer.write(_rows(handle, width, None), progress)
            if dry_run:
                transaction.set_rollback(True)
    if not dry_run:
        # Every kind feeds a health signal (seats, touches, usage, tickets, invoices, contacts, stages), and
        # bulk writes send no model signals: one recorded bulk recompute of the organization, after commit.
        from health.triggers import schedule_org_recompute

        schedule_org_recompute(organization.pk, reason=f"import:{kind}")
    return result


def start_import(
    organization: Organization,
    kind: str,
    path: str | Path,
    *,
    user: Any = None,
    dry_run: bool = False,
    filename: str = "",
) -> Any:
    """Record a queued import run and enqueue it once the caller's transaction commits.

    ``path`` must be readable by the workers (shared media storage); the run deletes it when it ends.
    ``filename`` is the name the user gave the file (shown on the run's page). Returns the :class:`JobRun`.
    """
    from cs_platform.jobs import create_job

    from .tasks import run_import

    check_kind(kind)
    job = create_job(
        organization_id=organization.pk,
        kind="import_csv",
        params={"kind": kind, "path": str(path), "dry_run": dry_run, "filename": filename[:255]},
        user=user,
    )
    transaction.on_commit(lambda: run_import.delay(organization.pk, job_id=job.pk))
    return job


def upload_available(job: Any) -> bool:
    """Whether the run's uploaded file is still on the server: a run that ended deleted it; one whose
    worker died (stalled) did not."""
    path = (job.params or {}).get("path")
    return bool(path) and Path(path).is_file()


def rerun_import(job: Any) -> None:
    """Enqueue an import run again (an admin's "Run again" on a stalled run, whose file is still there).

    Safe because an import is one transaction: a run that died wrote nothing, and a finished one
    re-imports as "unchanged". The run keeps its id; ``attempts`` counts the tries.
    """
    from .tasks import run_import

    transaction.on_commit(lambda: run_import.delay(job.organization_id, job_id=job.pk))
