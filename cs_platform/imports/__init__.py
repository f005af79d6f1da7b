"""CSV imports as a framework with kinds (spec §8: all or nothing per file, upsert by external id).

* :mod:`~cs_platform.imports.base` — :class:`ImportKind` (a kind's declaration and per-run importer),
  the registry (:func:`register`, :func:`add_hook`), results and row errors.
* :mod:`~cs_platform.imports.engine` — :func:`import_csv`: validate, then write in one transaction
  (or roll back for a dry run), then run the hooks.
* :mod:`~cs_platform.imports.reading` — streaming, bounded reading of the file; :func:`count_rows`.
* :mod:`~cs_platform.imports.parsers` — cell parsers shared by the kinds.
* :mod:`~cs_platform.imports.copy` — ``COPY`` text, the set-based :func:`~cs_platform.imports.copy.upsert`
  and the demo seeders' bulk loading.
* :mod:`~cs_platform.imports.limits` / :mod:`~cs_platform.imports.uploads` — per-organization limits
  and the stored upload files.
* :mod:`~cs_platform.imports.tasks` — background runs (``start_import``, the ``run_import`` task).

The kinds themselves live beside their models, in each app's ``import_kinds.py`` (``accounts``:
accounts, contacts, contracts, activities; ``health``: usage, tickets, invoices). This package imports
no app: see "Adding an import kind" in docs/architecture.md.
"""

from __future__ import annotations

from .base import (
    COLUMN_HELP,
    COLUMNS,
    ImportKind,
    ImportRefused,
    ImportResult,
    RowError,
    UnsupportedKind,
    add_hook,
    kind_choices,
    register,
    registry,
)
from .engine import check_kind, import_csv
from .limits import ImportLimits, file_size_text, import_limits
from .reading import count_rows

__all__ = [
    "COLUMN_HELP",
    "COLUMNS",
    "ImportKind",
    "ImportLimits",
    "ImportRefused",
    "ImportResult",
    "RowError",
    "UnsupportedKind",
    "add_hook",
    "check_kind",
    "count_rows",
    "file_size_text",
    "import_csv",
    "import_limits",
    "kind_choices",
    "register",
    "registry",
]
