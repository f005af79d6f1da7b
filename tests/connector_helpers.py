"""What every connector test does the same way: connect to its local vendor, find an object's sync, run it.

``connect`` also empties the connection's token bucket in Redis (``integrations.http``): ids are reused
across tests on a fresh database, and a bucket left by an earlier test would throttle this one. ``run``
executes the run in the test (where a worker would), recording the waits instead of sleeping them.
"""

from __future__ import annotations

from typing import Any

from cs_platform.outbound import _redis
from integrations import services
from integrations.choices import RunMode
from integrations.models import Connection, ObjectSync, SyncRun
from integrations.sync import execute_run

__all__ = ["connect", "run", "sync_of"]


def connect(org: Any, kind: str, name: str, base_url: str, credentials: dict[str, str]) -> Connection:
    connection = services.create_connection(org, kind=kind, name=name, base_url=base_url, credentials=credentials)
    parts = _redis()
    if parts is not None:
        parts[1].delete(f"retain:integrations:bucket:connection:{connection.pk}")
    return connection


def sync_of(conn: Connection, name: str) -> ObjectSync:
    return ObjectSync.objects.for_org(conn.organization).get(connection=conn, object_name=name)


def run(
    sync: ObjectSync, mode: str = RunMode.SYNC, sleeps: list[float] | None = None, max_pages: int = 1000
) -> SyncRun:
    """Start a run of ``sync`` and execute up to ``max_pages`` pages; with the default, the run must end."""
    sync.refresh_from_db()
    started = services.start_run(sync, mode=mode)
    done = execute_run(
        started.pk, max_pages=max_pages, sleep=(sleeps.append if sleeps is not None else lambda seconds: None)
    )
    started.refresh_from_db()
    assert done or max_pages < 1000
    return started
