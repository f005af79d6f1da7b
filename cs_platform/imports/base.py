"""The declaration of an import kind (:class:`ImportKind`), the registry of kinds, and what a run reports.

A kind is a subclass of :class:`ImportKind` declared beside its model, in its own app's
``import_kinds.py``, and registered with :func:`register`::

    @register
    class TicketKind(AccountRowKind):
        name = "tickets"
        label = "Tickets"
        columns = ("external_id", "account_external_id", "opened_at", "priority", "status", "resolved_at")
        upsert_keys = ("organization", "external_id")

        def parse(self, line, cells): ...   # cell by cell, with the parsers of cs_platform.imports.parsers
        def check(self, line, cells): ...   # pass 1: one row, errors via self.errors.add(line, column, reason)
        def finish(self): ...               # pass 1 done: cross-row checks (references, duplicates)
        def write(self, rows, progress): ...  # pass 2, inside the transaction: batched, set-based

The class attributes are the declaration (what the upload page, the API and the ``import_csv``
command list); an instance is one run's importer. The registry discovers every app's
``import_kinds`` module (``autodiscover_modules``) the first time it is asked, so an app adds a kind
by adding it to that one file. Reactions after a committed import are hooks: a kind lists its own
in ``hooks``; an app that reacts to every import (health recomputes after any of them) calls
:func:`add_hook` from its own ``import_kinds`` module. This package imports no app.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules

__all__ = [
    "BATCH",
    "BATCH_CHARS",
    "COLUMNS",
    "COLUMN_HELP",
    "MAX_ERRORS",
    "ErrorList",
    "ImportHook",
    "ImportKind",
    "ImportRefused",
    "ImportResult",
    "KindRegistry",
    "RowError",
    "UnsupportedKind",
    "add_hook",
    "chunks",
    "kind_choices",
    "register",
    "registry",
]

BATCH = 2000  # rows per statement: well under SQLite's variable limit, large enough for Postgres
BATCH_CHARS = 1_000_000  # ...or fewer when the rows are wide: a batch holds at most this many characters
MAX_ERRORS = 10_000  # errors kept in the result; the total is always counted


class UnsupportedKind(ValueError):
    """The kind is not importable (unknown, or not yet available)."""


class ImportRefused(ValueError):
    """The file cannot be imported at all (too many rows, not UTF-8 CSV): refused at the door."""


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


class ErrorList:
    """Collects every error, keeping the first ``MAX_ERRORS`` for the report."""

    def __init__(self) -> None:
        self.items: list[RowError] = []
        self.count = 0

    def add(self, line: int, column: str, reason: str) -> None:
        self.count += 1
        if len(self.items) < MAX_ERRORS:
            self.items.append(RowError(line, column, reason))


def chunks(items: list[Any], size: int = BATCH) -> Iterator[list[Any]]:
    """``items`` in lists of at most ``size`` (one ``IN (…)`` or one statement each)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


#: ``hook(organization_id, result)``: runs after an import that wrote (not a dry run, no errors), still
#: inside the caller's transaction if there is one: a hook that enqueues work uses ``on_commit``.
ImportHook = Callable[[int, ImportResult], None]


class ImportKind:
    """One kind of CSV file. Class attributes declare it; an instance imports one file (two passes).

    Pass 1 (validation) calls :meth:`check` for every row, then :meth:`finish`; every problem goes to
    ``self.errors`` and the file is written only if there is none. Pass 2 calls :meth:`write` once,
    inside one transaction, with the rows streamed again (rolled back for a dry run). Counts go to
    ``self.result`` (``created``/``updated``/``unchanged``, ``extra`` for kind-specific ones).
    """

    #: The kind's name in the contract (command, API, upload form): never renamed once published.
    name: ClassVar[str] = ""
    #: What the upload form shows.
    label: ClassVar[str] = ""
    #: The header's columns, matched case-insensitively, in the documented order.
    columns: ClassVar[tuple[str, ...]] = ()
    #: Extra header cells are kept (e.g. accounts' custom fields) instead of refused as unknown.
    custom_columns: ClassVar[bool] = False
    #: The model fields a row is upserted by (documentation, and what ``upsert`` is given); empty when
    #: rows are appended.
    upsert_keys: ClassVar[tuple[str, ...]] = ()
    #: Where the kind is listed (forms, help, the columns table): the order to load files in.
    order: ClassVar[int] = 1000
    #: Run after a committed import of this kind (see :data:`ImportHook`).
    hooks: ClassVar[tuple[ImportHook, ...]] = ()
    #: A few words on how a column is read, where it is not obvious (``{column: text}``): the upload page
    #: shows them under the kind's columns (:data:`COLUMN_HELP`).
    column_help: ClassVar[dict[str, str]] = {}

    def __init__(self, org: Any, header: list[str], errors: ErrorList, result: ImportResult) -> None:
        self.org = org
        self.header = header
        self.col = {name: i for i, name in enumerate(header)}
        self.errors = errors
        self.result = result
        self.today = timezone.localdate()

    # helpers ------------------------------------------------------------------------------------

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

    # protocol -------------------------------------------------------------------------------------

    def parse(self, line: int, cells: list[str]) -> dict[str, Any]:
        """One row's values by name; invalid cells are recorded in ``self.errors`` and come back ``None``."""
        raise NotImplementedError

    def check(self, line: int, cells: list[str]) -> None:
        """Pass 1: check one row (its cells, and what it means for rows seen before)."""
        raise NotImplementedError

    def finish(self) -> None:
        """Cross-row checks once every row was seen (references resolved in a few queries)."""

    def write(self, rows: Iterator[tuple[int, list[str]]], progress: Callable[[int], None]) -> None:
        """Pass 2: write every row (set-based, in batches), calling ``progress(rows_done)``."""
        raise NotImplementedError


def _dotted(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


class KindRegistry:
    """The importable kinds by name, and the hooks run after every import.

    Filled by the apps' ``import_kinds`` modules, imported on the first question (after the app
    registry is ready, like the admin's ``admin.py`` modules).
    """

    def __init__(self) -> None:
        self._kinds: dict[str, type[ImportKind]] = {}
        self._hooks: list[tuple[ImportHook, frozenset[str] | None]] = []
        self._discovered = False
        self._lock = threading.RLock()

    def register(self, kind: type[ImportKind]) -> type[ImportKind]:
        """Add a kind (usable as a class decorator). A name is registered once."""
        if not kind.name or not kind.columns:
            raise ImproperlyConfigured(f"{kind.__qualname__}: an import kind needs a name and its columns")
        with self._lock:
            known = self._kinds.get(kind.name)
            # The same class again (its module imported twice) is fine; another class of that name is not.
            if known is not None and _dotted(known) != _dotted(kind):
                raise ImproperlyConfigured(f"import kind {kind.name!r} is already registered by {_dotted(known)}")
            self._kinds[kind.name] = kind
        return kind

    def unregister(self, name: str) -> None:
        """Remove a kind (tests that register their own)."""
        with self._lock:
            self._kinds.pop(name, None)

    def add_hook(self, hook: ImportHook, *, kinds: tuple[str, ...] | None = None) -> None:
        """Run ``hook`` after every committed import of ``kinds`` (all kinds when ``None``), once."""
        with self._lock:
            if all(known is not hook for known, _ in self._hooks):
                self._hooks.append((hook, None if kinds is None else frozenset(kinds)))

    def remove_hook(self, hook: ImportHook) -> None:
        with self._lock:
            self._hooks = [(known, kinds) for known, kinds in self._hooks if known is not hook]

    def autodiscover(self) -> None:
        """Import every installed app's ``import_kinds`` module (once)."""
        if self._discovered:
            return
        with self._lock:
            if not self._discovered:
                autodiscover_modules("import_kinds")
                self._discovered = True

    def kinds(self) -> list[type[ImportKind]]:
        """The registered kinds, in their ``order`` (then by name)."""
        self.autodiscover()
        return sorted(self._kinds.values(), key=lambda kind: (kind.order, kind.name))

    def names(self) -> tuple[str, ...]:
        return tuple(kind.name for kind in self.kinds())

    def choices(self) -> list[tuple[str, str]]:
        """``[(name, label)]`` of every kind, in order."""
        return [(kind.name, kind.label or kind.name) for kind in self.kinds()]

    def get(self, name: str) -> type[ImportKind]:
        """The kind called ``name``; :class:`UnsupportedKind` with a clear message otherwise."""
        self.autodiscover()
        kind = self._kinds.get(name)
        if kind is None:
            raise UnsupportedKind(f"unknown kind {name!r}; importable: {', '.join(self.names())}")
        return kind

    def hooks_for(self, name: str) -> list[ImportHook]:
        """The kind's own hooks, then those registered for every kind (or for this one)."""
        own = list(self.get(name).hooks)
        return own + [hook for hook, kinds in self._hooks if kinds is None or name in kinds]


registry = KindRegistry()
register = registry.register
add_hook = registry.add_hook


def kind_choices() -> list[tuple[str, str]]:
    """``[(name, label)]`` for a form's ``ChoiceField(choices=kind_choices)``: read when the form is built.
    (A function, not the registry's bound method: form fields are deep-copied with their choices.)"""
    return registry.choices()


class _Columns(Mapping[str, list[str]]):
    """``{kind: [columns]}`` read from the registry on every access (a module-level constant would be
    computed before the apps register their kinds)."""

    def __getitem__(self, name: str) -> list[str]:
        try:
            return list(registry.get(name).columns)
        except UnsupportedKind:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(registry.names())

    def __len__(self) -> int:
        return len(registry.names())

    def __repr__(self) -> str:
        return repr(dict(self))


#: Every kind's columns, in the kinds' order.
COLUMNS: Mapping[str, list[str]] = _Columns()


class _ColumnHelp(Mapping[str, dict[str, str]]):
    """``{kind: {column: help}}`` of the kinds that declare ``column_help``, read from the registry."""

    def __getitem__(self, name: str) -> dict[str, str]:
        try:
            return dict(registry.get(name).column_help)
        except UnsupportedKind:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(registry.names())

    def __len__(self) -> int:
        return len(registry.names())


#: Every kind's column help (empty for most).
COLUMN_HELP: Mapping[str, dict[str, str]] = _ColumnHelp()
