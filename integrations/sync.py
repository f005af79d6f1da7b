"""Running an object sync: fetch a page, map it, apply it through the lower app's import kind, store
the cursor — page after page, in recorded, resumable runs.

:func:`execute_run` is the engine (called by the thin task ``integrations.tasks.run_sync``). Per page,
in **one transaction**: the page's rows are written with ``cs_platform.imports.engine.import_rows``
(the kind's validation, isolation and upsert by external id; rows with an error are listed, the rest
lands), every record that could not be applied becomes a :class:`~integrations.models.SyncRecordError`,
the run's counters move, and (mode ``sync``) the object sync's cursor becomes the page's next cursor.
A crash anywhere in a page rolls the page back and the next attempt fetches the same page again:
re-applying is idempotent (upsert by external id), so nothing is duplicated and nothing is skipped.

A dry run fetches and maps every page and writes each one in a transaction that is rolled back: its
counters are exactly what a sync would report (except the hierarchy across pages, see
docs/integrations.md); it never moves the cursor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.source_deletions import DELETION_KINDS, Outcome, mark_deleted_in_source, restore_in_source
from cs_platform.imports.base import ImportResult
from cs_platform.imports.base import registry as import_kinds
from cs_platform.imports.engine import import_rows
from cs_platform.tasks import TRANSIENT_ERRORS

from .choices import Direction, JobStatus, RunMode
from .connectors.base import Connector, ConnectorError, ObjectSpec, Record, get_connector
from .http import ConnectorHttp
from .mapping import MapError, effective_mapping, map_record, read_path
from .models import ObjectSync, SyncDeletion, SyncRecordError, SyncRun
from .targets import Target, get_target

__all__ = ["PAGES_PER_TASK", "build_connector", "execute_run", "header_for"]

logger = logging.getLogger(__name__)

#: Pages one task execution applies before queueing the run again (other organizations' runs get the
#: worker in between). Tests pass ``max_pages``.
PAGES_PER_TASK = 20
EXCERPT_FIELDS = 6
EXCERPT_CHARS = 120


def build_connector(connection: Any, *, sleep: Callable[[float], None] = time.sleep) -> Connector:
    """The connection's connector with a fresh transport (its token bucket is the connection's)."""
    cls = get_connector(connection.kind)
    http = ConnectorHttp(f"connection:{connection.pk}", cls.rate_limit, sleep=sleep)
    return cls(connection, http)


def header_for(target: Target, mapping: dict[str, Any]) -> list[str]:
    """The import header: the kind's columns, then the custom columns the mapping fills."""
    columns = list(target.columns)
    custom = [item["target"] for item in mapping.get("fields", []) if item["target"] not in columns]
    return columns + custom


def _excerpt(record: Record, mapping: dict[str, Any]) -> dict[str, Any]:
    """A few of the record's mapped values, shortened: enough to find it, no more."""
    excerpt: dict[str, Any] = {"id": record.external_id}
    for item in mapping.get("fields", [])[:EXCERPT_FIELDS]:
        value = read_path(record.data, item.get("source", ""))
        if value is not None:
            excerpt[item["source"]] = str(value)[:EXCERPT_CHARS]
    return excerpt


def _error(
    run: SyncRun, spec: ObjectSpec, record: Record | None, field: str, reason: str, excerpt: dict
) -> SyncRecordError:
    return SyncRecordError(
        organization_id=run.organization_id,
        run=run,
        object_name=spec.name,
        external_id=(record.external_id if record else "")[:120],
        field=field[:120],
        reason=reason[:500],
        excerpt=excerpt,
    )


def apply_records(
    run: SyncRun,
    spec: ObjectSpec,
    target: Target,
    mapping: dict[str, Any],
    records: list[Record],
    *,
    connector: Connector | None = None,
) -> ImportResult | None:
    """Map and apply one page's records (inside the caller's transaction); update ``run``'s counters and
    ``run.pending``; record every record that could not be applied."""
    org = run.organization
    dry_run = run.mode == RunMode.DRY_RUN
    errors: list[SyncRecordError] = []
    mapped: list[tuple[Record, dict[str, str], set[str]]] = []
    deleted_ids: list[str] = []
    run.fetched += len(records)
    for record in records:
        if record.data.get("_malformed"):
            errors.append(
                _error(
                    run, spec, record, "", f"malformed record: {record.data['_malformed']}", _excerpt(record, mapping)
                )
            )
            continue
        if record.deleted:
            deleted_ids.append(record.external_id)  # applied after the page's rows: _apply_deletions
            continue
        try:
            cells, retain_wins = map_record(record.data, mapping, extra=spec.transforms, context=connector)
        except MapError as exc:
            errors.append(_error(run, spec, record, exc.field, exc.reason, _excerpt(record, mapping)))
            continue
        mapped.append((record, cells, retain_wins))
    result = None
    if mapped:
        header = header_for(target, mapping)
        mapped_targets = {item["target"] for item in mapping.get("fields", [])}
        page_ids = {record.external_id for record, _, _ in mapped}
        ref = target.self_reference
        rows: list[tuple[int, list[str]]] = []
        line_of: dict[int, Record] = {}
        deferred: list[tuple[str, str]] = []
        wanted: set[str] = set()
        if ref:
            wanted = {cells.get(ref, "") for _, cells, _ in mapped} - page_ids - {""}
        # One query for the page's rows and the parents they name outside the page.
        current = target.current(org, [record.external_id for record, _, _ in mapped] + sorted(wanted))
        known_refs = wanted & set(current)
        for index, (record, cells, retain_wins) in enumerate(mapped):
            old = current.get(record.external_id, {})
            row: dict[str, str] = {}
            for column in header:
                if column == "external_id":
                    row[column] = record.external_id
                elif column not in mapped_targets or (column in retain_wins and old.get(column)):
                    row[column] = old.get(column, "")
                else:
                    row[column] = cells.get(column, "")
            if ref and row.get(ref) and row[ref] not in page_ids and row[ref] not in known_refs:
                # The parent arrives in a later page: land the record now, link it at the run's end.
                if not dry_run:
                    deferred.append((record.external_id, row[ref]))
                row[ref] = old.get(ref, "")
                if row[ref] and row[ref] not in known_refs:
                    row[ref] = ""
            line = index + 2  # as in a file: the header is line 1
            line_of[line] = record
            rows.append((line, [row[column] for column in header]))
        result = import_rows(org, target.kind, header, rows, dry_run=dry_run, run_hooks=False)
        for row_error in result.errors:
            record = line_of.get(row_error.line)
            errors.append(
                _error(
                    run, spec, record, row_error.column, row_error.reason, _excerpt(record, mapping) if record else {}
                )
            )
        run.created += result.created
        run.updated += result.updated
        run.unchanged += result.unchanged
        refused = {e.line for e in result.errors}
        _restore(run, spec, target, [r.external_id for line, r in line_of.items() if line not in refused])
        if deferred:
            run.pending = [*run.pending, *[[child, parent] for child, parent in deferred]]
    if deleted_ids:
        _apply_deletions(run, spec, target, deleted_ids)
    run.failed += len({(e.external_id, e.reason) for e in errors})
    if errors:
        SyncRecordError.all_orgs.bulk_create(errors)
    return result


def _deletion_rows(run: SyncRun, spec: ObjectSpec, outcomes: list[tuple[str, str]]) -> list[SyncDeletion]:
    return [
        SyncDeletion(
            organization_id=run.organization_id, run=run, object_name=spec.name, external_id=ext[:120], outcome=outcome
        )
        for ext, outcome in outcomes
    ]


def _apply_deletions(run: SyncRun, spec: ObjectSpec, target: Target, external_ids: list[str]) -> None:
    """The vendor deleted these records: ``accounts.source_deletions`` flags accounts and contracts and
    deactivates contacts (never deletes; a dry run only answers what it would do). Each outcome is listed
    on the run (``SyncDeletion``); ``run.deleted`` counts those applied. A target without deletion
    semantics (tickets, invoices) only counts them, as before."""
    if target.kind not in DELETION_KINDS:
        run.deleted += len(external_ids)
        return
    outcomes = mark_deleted_in_source(run.organization, target.kind, external_ids, dry_run=run.mode == RunMode.DRY_RUN)
    run.deleted += sum(1 for item in outcomes if item.outcome in Outcome.APPLIED)
    SyncDeletion.all_orgs.bulk_create(_deletion_rows(run, spec, [(o.external_id, o.outcome) for o in outcomes]))


def _restore(run: SyncRun, spec: ObjectSpec, target: Target, external_ids: list[str]) -> None:
    """Records the vendor answered again that Retain holds as deleted there (restored from the recycle bin):
    the mark is cleared (``accounts.source_deletions.restore_in_source``) and listed as ``restored``."""
    restored = restore_in_source(run.organization, target.kind, external_ids, dry_run=run.mode == RunMode.DRY_RUN)
    if restored:
        SyncDeletion.all_orgs.bulk_create(_deletion_rows(run, spec, [(ext, Outcome.RESTORED) for ext in restored]))


def _apply_pending(run: SyncRun, spec: ObjectSpec, target: Target, mapping: dict[str, Any]) -> None:
    """Link the records whose parent came in a later page (their rows as Retain has them now)."""
    if not run.pending or run.mode == RunMode.DRY_RUN:
        return
    org = run.organization
    header = header_for(target, mapping)
    pairs = {str(pair[0]): str(pair[1]) for pair in run.pending}
    current = target.current(org, sorted(pairs))
    rows = []
    line_of: dict[int, str] = {}
    for index, (child, parent) in enumerate(sorted(pairs.items())):
        old = current.get(child)
        if old is None:
            continue
        cells = {**old, target.self_reference: parent, "external_id": child}
        line = index + 2
        line_of[line] = child
        rows.append((line, [cells.get(column, "") for column in header]))
    result = import_rows(org, target.kind, header, rows, run_hooks=False)
    errors = [
        SyncRecordError(
            organization_id=run.organization_id,
            run=run,
            object_name=spec.name,
            external_id=line_of.get(e.line, ""),
            field=e.column,
            reason=e.reason[:500],
            excerpt={"id": line_of.get(e.line, "")},
        )  # fmt: skip
        for e in result.errors
    ]
    run.failed += len(errors)
    SyncRecordError.all_orgs.bulk_create(errors)
    run.pending = []


def _push(run: SyncRun, connector: Connector, spec: ObjectSpec, sent_before: int) -> None:
    """Push-back (``integrations.push``, every connector): the changed accounts' values (``run.updated``:
    accepted by the vendor; ``run.unchanged``: not sent; ``run.failed``: refused, listed, sent again next
    time)."""
    from .push import push_changed

    try:
        push_changed(connector, spec, run)
    finally:
        run.request_count = sent_before + connector.http.request_count


def _queue_push(run: SyncRun, sync: ObjectSync) -> None:
    """After a real sync of an object set to push or both: the push-back, as its own recorded run
    (``mode=push`` of this sync, queued like any run)."""
    from .services import RunRefused, start_run

    try:
        start_run(sync, mode=RunMode.PUSH, trigger=run.trigger)
    except RunRefused as exc:  # e.g. an object its connector does not push: the sync itself succeeded
        logger.warning("push after run %s of organization %s not queued: %s", run.pk, run.organization_id, exc)


def _finish(run: SyncRun, status: str, error: str = "") -> None:
    run.status = status
    run.error = error[:500]
    run.finished_at = timezone.now()
    run.save()
    sync = run.sync
    sync.last_run_at = run.finished_at
    if run.mode == RunMode.SYNC or sync.next_run_at is not None:
        sync.next_run_at = run.finished_at + timezone.timedelta(minutes=sync.interval_minutes)
    ObjectSync.all_orgs.filter(pk=sync.pk).update(last_run_at=sync.last_run_at, next_run_at=sync.next_run_at)


class _Prefetch:
    """At most one background fetch of the next page, while the current page is applied.

    Under a vendor's rate limit a page costs max(the limit's interval, fetch + apply) when the two run
    one after the other, max(interval, fetch, apply) when they overlap: the fetch's network wait and the
    token bucket's wait are hidden behind the apply. Only for a connector that declares
    ``prefetch`` (its ``fetch_page`` touches no database: the thread has no transaction and no org
    scope); otherwise :meth:`start` does nothing and :meth:`result` fetches in the calling thread.
    Crash safety is unchanged: the fetched page is only *held*; what is stored is the cursor of the
    page applied, in that page's transaction (a crash loses the prefetched page, fetched again on
    resume)."""

    def __init__(self, connector: Connector, spec: ObjectSpec, mapping: dict[str, Any]) -> None:
        self.connector, self.spec, self.mapping = connector, spec, mapping
        self.enabled = connector.prefetch
        self._pool: Any = None
        self._future: Any = None
        self._cursor: dict[str, Any] = {}

    def start(self, cursor: dict[str, Any]) -> None:
        self._cursor = dict(cursor)
        if not self.enabled:
            return
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-prefetch")
        self._future = self._pool.submit(self.connector.fetch_page, self.spec, dict(self._cursor), self.mapping)

    def result(self) -> Any:
        """The page after the one applied (its ConnectorError raised here, in the run's thread)."""
        future, self._future = self._future, None
        if future is None:
            return self.connector.fetch_page(self.spec, dict(self._cursor), self.mapping)
        return future.result()

    def close(self) -> None:
        future, self._future = self._future, None
        if future is not None:
            try:
                future.result()
            except Exception:  # noqa: BLE001 - the page is dropped; its error, if any, comes back on resume
                pass
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def execute_run(run_id: int, *, max_pages: int = PAGES_PER_TASK, sleep: Callable[[float], None] = time.sleep) -> bool:
    """Apply up to ``max_pages`` pages of the run; ``True`` when the run is over (succeeded or failed),
    ``False`` when it should be queued again to go on. Safe to call again after a crash."""
    run = SyncRun.all_orgs.select_related("sync__connection", "organization").get(pk=run_id)
    if run.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        return True
    sync = run.sync
    connection = sync.connection
    if run.status == JobStatus.QUEUED:
        run.status = JobStatus.RUNNING
        run.started_at = run.started_at or timezone.now()
        run.attempts += 1
        run.save(update_fields=["status", "started_at", "attempts"])
    if connection.paused or sync.paused:
        _finish(run, JobStatus.FAILED, "The connection or this object's sync is paused.")
        return True
    try:
        connector = build_connector(connection, sleep=sleep)
        spec = connector.object(sync.object_name)
        target = get_target(spec.target)
    except (ConnectorError, KeyError) as exc:
        _finish(run, JobStatus.FAILED, str(exc))
        return True
    mapping = effective_mapping(sync.mapping, spec.default_mapping)
    sent_before = run.request_count
    prefetch: _Prefetch | None = None
    try:
        if run.mode == RunMode.PUSH:
            _push(run, connector, spec, sent_before)
            _finish(run, JobStatus.SUCCEEDED)
            return True
        prefetch = _Prefetch(connector, spec, mapping)
        page = connector.fetch_page(spec, dict(run.cursor), mapping)
        for number in range(1, max_pages + 1):
            if not page.done and number < max_pages:
                # The next page is fetched while this one is applied (see _Prefetch): its cursor is the
                # one this page stores, so a crash still resumes from the last page applied.
                prefetch.start(page.next_cursor)
            with transaction.atomic():
                apply_records(run, spec, target, mapping, page.records, connector=connector)
                run.pages += 1
                run.request_count = sent_before + connector.http.request_count
                run.cursor = page.final_cursor if page.done and page.final_cursor is not None else page.next_cursor
                if page.done:
                    _apply_pending(run, spec, target, mapping)
                if run.mode == RunMode.SYNC:
                    ObjectSync.all_orgs.filter(pk=sync.pk).update(cursor=run.cursor)
                run.save()
            if page.done:
                if run.mode == RunMode.SYNC:
                    for hook in import_kinds.hooks_for(target.kind):  # once per run, not per page
                        hook(
                            run.organization_id,
                            ImportResult(kind=target.kind, created=run.created, updated=run.updated),
                        )
                _finish(run, JobStatus.SUCCEEDED)
                if run.mode == RunMode.SYNC and sync.direction in (Direction.PUSH, Direction.BOTH):
                    _queue_push(run, sync)
                return True
            if number < max_pages:
                page = prefetch.result()
        return False
    except ConnectorError as exc:
        run.request_count = sent_before + connector.http.request_count
        _finish(run, JobStatus.FAILED, f"{exc} The next run resumes from the last page applied.")
        return True
    except TRANSIENT_ERRORS:
        raise  # the task retries; the run resumes from its cursor
    except Exception:
        logger.exception("sync run %s of organization %s failed", run.pk, run.organization_id)
        run.refresh_from_db()
        _finish(
            run,
            JobStatus.FAILED,
            f"The run stopped on an internal error (run #{run.pk}); the operator has the details in the server "
            "log. The next run resumes from the last page applied.",
        )
        return True
    finally:
        if prefetch is not None:
            prefetch.close()  # a fetch still under way (the apply failed) ends before its transport closes
        connector.http.close()
