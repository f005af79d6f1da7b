"""The integrations services: connections, their test, runs started by hand or by the schedule.

Writes to the integrations models go through here (the API and the admin page call these).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from cs_platform.outbound import OutboundRefused, check_url

from .choices import ConnectionStatus, Direction, JobStatus, RunMode, RunTrigger
from .connectors.base import ConnectorError, get_connector
from .mapping import validate_mapping
from .models import Connection, ObjectSync, SyncRun
from .targets import get_target

__all__ = [
    "RunRefused",
    "create_connection",
    "due_syncs",
    "mapping_problems",
    "queue_run",
    "start_run",
    "test_connection",
    "update_connection",
]

logger = logging.getLogger(__name__)

RUN_TASK = "integrations.tasks.run_sync"


class RunRefused(ValueError):
    """A run cannot start now (one is already under way, the sync is paused...)."""


def base_url_problem(url: str) -> str | None:
    try:
        check_url(url)
    except OutboundRefused as exc:
        return exc.reason
    return None


def create_connection(
    organization: Any, *, kind: str, name: str, base_url: str = "", credentials: dict[str, str] | None = None,
    user: Any = None,
) -> Connection:  # fmt: skip
    """A connection and one (unscheduled) object sync per object of its connector."""
    cls = get_connector(kind)
    with transaction.atomic():
        connection = Connection(
            organization=organization, kind=kind, name=name, base_url=base_url or cls.default_base_url, created_by=user
        )
        connection.credentials = credentials or {}
        connection.save()
        for spec in cls.objects.values():
            ObjectSync.all_orgs.create(
                organization=organization, connection=connection, object_name=spec.name, direction=Direction.PULL
            )
    return connection


def update_connection(
    connection: Connection, *, credentials: dict[str, str] | None = None, **fields: Any
) -> Connection:
    """Change fields; ``credentials`` (when given) **replace** the stored ones as a whole."""
    for name, value in fields.items():
        setattr(connection, name, value)
    if credentials is not None:
        connection.credentials = credentials
        connection.status = ConnectionStatus.UNTESTED
    connection.save()
    return connection


def test_connection(connection: Connection) -> tuple[bool, str]:
    """Ask the vendor once; record and answer the outcome (never the credentials)."""
    from .sync import build_connector

    connector = build_connector(connection)
    try:
        message, ok = connector.test_connection(), True
    except ConnectorError as exc:
        message, ok = str(exc), False
    except Exception:  # noqa: BLE001 - the reason stays in the server log, the admin gets plain words
        logger.exception("testing connection %s failed", connection.pk)
        message, ok = "The test stopped on an internal error; the operator has the details in the server log.", False
    finally:
        connector.http.close()
    Connection.all_orgs.filter(pk=connection.pk).update(
        last_test_at=timezone.now(),
        last_test_ok=ok,
        last_test_message=message[:300],
        status=ConnectionStatus.OK if ok else ConnectionStatus.FAILING,
    )
    connection.refresh_from_db()
    return ok, message


def mapping_problems(sync: ObjectSync, mapping: Any) -> list[dict[str, str]]:
    """The mapping's problems by path (empty: valid) for this object sync's connector and target."""
    if mapping in ({}, None):
        return []
    spec = get_connector(sync.connection.kind).objects[sync.object_name]
    target = get_target(spec.target)
    return validate_mapping(mapping, columns=target.columns, custom=target.custom_columns, extra=spec.transforms)


def queue_run(run: SyncRun, *, countdown: float = 0) -> None:
    """Queue the run's task after commit (the task is named, never imported: tasks are the app's top)."""
    from celery import current_app

    transaction.on_commit(
        lambda: current_app.send_task(RUN_TASK, args=[run.organization_id, run.pk], countdown=countdown)
    )


def push_refusal(sync: ObjectSync, *, direction: bool = True) -> str:
    """Why ``sync`` cannot be pushed (``mode=push``), in words for the admin; ``""`` when it can: its
    connector must push that object and (``direction``, what the API and the admin page ask) the sync's
    direction must be push or both."""
    cls = get_connector(sync.connection.kind)
    spec = cls.objects.get(sync.object_name)
    if spec is None or "push" not in spec.directions:
        return f"{cls.label} does not push {sync.object_name}: only a pull sync is possible for this object."
    if direction and sync.direction not in (Direction.PUSH, Direction.BOTH):
        return (
            f"This sync only pulls (direction {sync.direction}): set its direction to push or both to push "
            f"Retain's values to {cls.label}."
        )
    return ""


def start_run(
    sync: ObjectSync, *, mode: str = RunMode.SYNC, trigger: str = RunTrigger.MANUAL, user: Any = None
) -> SyncRun:
    """Create a queued run (the cursor it starts from copied now) and queue it. One open run per sync.
    Raises RunRefused when the sync is paused, has no credentials, has a run open, or (``mode=push``) its
    connector does not push the object. The direction rule (push or both) is the API's and the admin
    page's (:func:`push_refusal`); code may push a pull sync once (a first push, a test)."""
    if mode == RunMode.PUSH and (reason := push_refusal(sync, direction=False)):
        raise RunRefused(reason)
    if sync.paused or sync.connection.paused:
        raise RunRefused("This sync is paused; resume it first.")
    if not sync.connection.has_credentials:
        raise RunRefused("This connection has no credentials yet.")
    with transaction.atomic():
        ObjectSync.all_orgs.select_for_update().get(pk=sync.pk)
        if SyncRun.all_orgs.filter(sync=sync, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).exists():
            raise RunRefused("A run of this sync is already queued or running.")
        sync.refresh_from_db(fields=["cursor"])
        carried = _carried_links(sync) if mode == RunMode.SYNC else []
        run = SyncRun.all_orgs.create(
            organization_id=sync.organization_id, sync=sync, mode=mode, trigger=trigger,
            cursor=dict(sync.cursor or {}), created_by=user, pending=carried,
        )  # fmt: skip
        if mode == scheduled_mode(sync) and sync.next_run_at is None:
            # The first sync (the first push, for a push-only object) by hand puts the object on its schedule.
            sync.next_run_at = timezone.now() + timezone.timedelta(minutes=sync.interval_minutes)
            ObjectSync.all_orgs.filter(pk=sync.pk).update(next_run_at=sync.next_run_at)
        queue_run(run)
    return run


def scheduled_mode(sync: ObjectSync) -> str:
    """What a scheduled run of ``sync`` does: a push-only object pushes; pull and both sync (both then
    queues its push after each successful sync)."""
    return RunMode.PUSH if sync.direction == Direction.PUSH else RunMode.SYNC


def _carried_links(sync: ObjectSync) -> list[list[str]]:
    """The parent links a failed sync run still owed (records landed before the page naming their parent):
    the next run resumes from the failed run's cursor, so it takes them over and links them at its end."""
    last = SyncRun.all_orgs.filter(sync=sync, mode=RunMode.SYNC).order_by("-pk").only("status", "pending").first()
    if last is None or last.status != JobStatus.FAILED:
        return []
    return list(last.pending or [])


def due_syncs(now: Any = None) -> list[ObjectSync]:
    """Object syncs whose next run is due, not paused, on a connection not paused."""
    now = now or timezone.now()
    return list(
        ObjectSync.all_orgs.select_related("connection")
        .filter(next_run_at__lte=now, paused=False, connection__paused=False)
        .order_by("next_run_at")[:500]
    )


def queue_due_syncs(now: Any = None) -> int:
    """The beat's work: start a scheduled run of every due sync (skipping those with a run open)."""
    started = 0
    for sync in due_syncs(now):
        try:
            start_run(sync, mode=scheduled_mode(sync), trigger=RunTrigger.SCHEDULE)
            started += 1
        except RunRefused:
            ObjectSync.all_orgs.filter(pk=sync.pk).update(
                next_run_at=timezone.now() + timezone.timedelta(minutes=sync.interval_minutes)
            )
    return started
