"""Running an import: one service for the ``import_csv`` command, the upload page, the API and the task.

The contract is spec §8: a header row with exactly the documented columns, ISO dates, plain
decimals, upsert by external id, and **all or nothing per file**: a file with any bad row imports
nothing and reports every bad row as (line, column, reason), the header being line 1.

1. **Validate** — stream the file once (:mod:`cs_platform.imports.reading`), check the header against
   the kind's columns, then hand every row to the kind's ``check`` and call its ``finish`` for the
   cross-row rules, collecting every error. Memory holds what the kind keeps per row (keys, digests),
   never the rows; ``max_rows`` (the organization's limit) stops a longer file.
2. **Write** — only if there was no error: stream the file again inside one transaction and let the
   kind ``write`` it in batches with set-based statements (:func:`cs_platform.imports.copy.upsert`).
   ``dry_run`` does the whole write and rolls it back, so its counts are exactly what a real run
   would report.
3. **React** — after a real, successful run, the hooks of the kind and those registered for every
   kind run (bulk writes send no model signals; a hook recomputes what depends on the rows).

Kinds are declared in their apps (``<app>/import_kinds.py``); this module knows none of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from django.db import transaction

from cs_platform.exports import restore

from .base import BATCH, ErrorList, ImportResult, registry
from .reading import Unreadable, data_rows, open_source, records

__all__ = ["check_kind", "import_csv", "import_rows"]


def check_kind(kind: str) -> None:
    """Raise :class:`~cs_platform.imports.base.UnsupportedKind` with a clear message unless ``kind`` can be
    imported."""
    registry.get(kind)


def _check_header(kind: Any, header: list[str], errors: ErrorList) -> None:
    expected = kind.columns
    seen: set[str] = set()
    for name in header:
        if not name:
            errors.add(1, "", "a header cell is empty")
        elif name in seen:
            errors.add(1, name, "column appears twice")
        seen.add(name)
        if name and name not in expected and not kind.custom_columns:
            errors.add(1, name, f"unknown column; {kind.name} files have: {', '.join(expected)}")
    for name in expected:
        if name not in seen:
            errors.add(1, name, "missing column")


def import_csv(
    organization: Any,
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
    :class:`~cs_platform.imports.base.UnsupportedKind`; every problem of the file itself is returned in
    ``errors``.

    Memory does not grow with the file's size in bytes: the file is streamed twice (never read whole),
    a row is at most :data:`~cs_platform.imports.reading.MAX_RECORD_CHARS` characters, writes go in
    batches bounded in rows and in characters, and what is kept across rows is per-row keys (64-bit
    digests where the key is only checked for duplicates), bounded in turn by ``max_rows``.
    """
    kind_class = registry.get(kind)
    result = ImportResult(kind=kind, dry_run=dry_run)
    errors = ErrorList()
    with open_source(source) as handle:
        try:
            first = next(records(handle), (1, []))[1]
        except Unreadable as exc:
            errors.add(exc.line, "", exc.reason)
            result.errors, result.error_count = errors.items, errors.count
            return result
        header = [restore(cell.strip().lstrip("\ufeff")) for cell in first]
        if not any(header):
            errors.add(1, "", "the file is empty: a header row is required")
        else:
            # Spec column names are matched case-insensitively; custom field names are kept as written.
            header = [name.lower() if name.lower() in kind_class.columns else name for name in header]
            _check_header(kind_class, header, errors)
        if errors.count:
            result.errors, result.error_count = errors.items, errors.count
            return result

        importer = kind_class(organization, header, errors, result)
        width = len(header)
        handle.seek(0)
        try:
            for line, cells in data_rows(handle, width, errors):
                if max_rows is not None and result.rows >= max_rows:
                    errors.add(
                        line, "", f"the file has more than {max_rows:,} rows, this organization's limit per file"
                    )
                    break
                importer.check(line, cells)
                result.rows += 1
                if recorder is not None and result.rows % BATCH == 0:
                    recorder.advance(result.rows)
        except Unreadable as exc:
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
            importer.write(data_rows(handle, width, None), progress)
            if dry_run:
                transaction.set_rollback(True)
    if not dry_run:
        # Bulk writes send no model signals: whatever depends on the rows reacts here (e.g. health
        # schedules one recorded recompute of the organization, after commit).
        for hook in registry.hooks_for(kind):
            hook(organization.pk, result)
    return result


#: Rounds of :func:`import_rows`: a row dropped for its own error can make another row wrong (a child
#: naming a dropped parent); each round re-validates the survivors. Beyond this, nothing is written.
MAX_ROUNDS = 4


def import_rows(
    organization: Any,
    kind: str,
    header: list[str],
    rows: list[tuple[int, list[str]]],
    *,
    dry_run: bool = False,
    run_hooks: bool = True,
) -> ImportResult:
    """Import rows already in memory, **keeping the good ones**: the connectors' door into the lower apps.

    The same kind, the same validation (``check``/``finish``) and the same set-based ``write`` as a CSV
    file, so isolation, validation and what the kind records (events, ARR refresh) apply unchanged; but
    where a file is all or nothing, here the rows with an error are reported in ``result.errors`` (their
    ``line`` is the number the caller gave the row) and the rest is written. ``header`` lists the
    kind's columns (custom columns where the kind allows them); each row's cells are plain strings in
    the CSV forms (ISO dates, plain decimals, ``""`` for empty). ``dry_run`` writes and rolls back, so
    its counts are exact. The kind's hooks run after a real write unless ``run_hooks`` is false (a
    caller applying many pages runs them once at the end: ``registry.hooks_for(kind)``).
    """
    kind_class = registry.get(kind)
    result = ImportResult(kind=kind, dry_run=dry_run)
    header_errors = ErrorList()
    _check_header(kind_class, header, header_errors)
    if header_errors.count:
        result.errors, result.error_count = header_errors.items, header_errors.count
        return result
    width = len(header)
    rejected: dict[int, list[Any]] = {}
    remaining = []
    for line, cells in rows:
        if len(cells) != width:
            rejected.setdefault(line, []).append(_row_error(line, "", f"expected {width} cells, found {len(cells)}"))
        else:
            remaining.append((line, cells))
    importer = None
    for _round in range(MAX_ROUNDS):
        errors = ErrorList()
        result = ImportResult(kind=kind, dry_run=dry_run)
        importer = kind_class(organization, header, errors, result)
        for line, cells in remaining:
            importer.check(line, cells)
            result.rows += 1
        importer.finish()
        if not errors.count:
            break
        bad = {error.line for error in errors.items}
        for error in errors.items:
            rejected.setdefault(error.line, []).append(error)
        remaining = [(line, cells) for line, cells in remaining if line not in bad]
    else:
        remaining = []
        importer = None
    if importer is not None and remaining:
        with transaction.atomic():
            importer.write(iter(remaining), lambda done: None)
            if dry_run:
                transaction.set_rollback(True)
    result.errors = [error for line in sorted(rejected) for error in rejected[line]]
    result.error_count = len(result.errors)
    result.extra["rejected"] = len(rejected)
    if not dry_run and run_hooks and remaining:
        for hook in registry.hooks_for(kind):
            hook(organization.pk, result)
    return result


def _row_error(line: int, column: str, reason: str) -> Any:
    from .base import RowError

    return RowError(line, column, reason)
