"""A real Celery worker as a subprocess, against the pytest-django test database and the Redis broker.

Shared by the tests that must prove something on a worker that is not the test process (the import
killed halfway, the debounced recompute's countdown, the renewal opening). Needs Postgres: SQLite's
test database lives inside the test process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent

#: Skip reason when the worker cannot run; tests using it are marked ``worker``, so CI fails instead.
NEEDS = (
    "needs DATABASE_URL=postgres://... and REDIS_URL: a worker subprocess must reach the test database "
    "and the broker (SQLite's test database lives in this process)"
)
AVAILABLE = bool(os.environ.get("REDIS_URL")) and settings.DATABASES["default"]["ENGINE"].endswith("postgresql")

#: The markers of a test module that runs a real worker: it needs Redis, Postgres and a worker (under
#: RETAIN_REQUIRE_SERVICES=1 such a test may not skip: tests/require_services.py), and skips elsewhere.
WORKER_MARKS = [
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.worker,
    pytest.mark.skipif(not AVAILABLE, reason=NEEDS),
]


def test_database_url() -> str:
    """The URL of the test database pytest-django created (``test_<name>``), for the worker."""
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


def start_worker(queue: str, log: Path, *, app: str = "cs_platform", **env: str) -> subprocess.Popen:
    """``celery worker`` (solo pool) consuming ``queue``, logging to ``log``; ``env`` adds variables;
    ``app``: the Celery app (``tests.worker_app`` for test routes and a consumer that holds a dispatch)."""
    environ = {**os.environ, "DATABASE_URL": test_database_url(), "REDIS_URL": os.environ["REDIS_URL"], **env}
    environ.pop("CELERY_TASK_ALWAYS_EAGER", None)
    cmd = [sys.executable, "-m", "celery", "-A", app, "worker", "--pool=solo", "-Q", queue]
    cmd += ["--concurrency=1", "-l", "info", "--without-heartbeat", "--without-gossip", "--without-mingle"]
    return subprocess.Popen(cmd, cwd=ROOT, env=environ, stdout=log.open("ab"), stderr=subprocess.STDOUT)


#: Environment of a worker that takes a killed worker's message back within seconds, by the broker's own
#: redelivery (``acks_late`` on Redis): the message stays in Redis's ``unacked`` set until the visibility
#: timeout passes, then a worker's sweep (every second here) puts it back on its queue. The visibility
#: timeout must exceed the hard time limit (settings refuse less), so both are short too; a task that runs
#: longer than the soft limit fails, which a test would see.
REDELIVERY = {
    "CELERY_TASK_SOFT_TIME_LIMIT": "10",
    "CELERY_TASK_TIME_LIMIT": "12",
    "CELERY_VISIBILITY_TIMEOUT": "14",
    "CELERY_UNACKED_RESTORE_INTERVAL": "1",
    "CELERY_UNACKED_RESTORE_THROTTLE": "1",
}


def kill(worker: subprocess.Popen) -> None:
    """SIGKILL the worker (no handler runs, nothing is acknowledged), then end its database sessions, so
    that its uncommitted writes are rolled back and its row locks released before the test looks."""
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    end_other_backends()


def stop(worker: subprocess.Popen | None) -> None:
    """Warm shutdown (closes its database connections); killed if it does not stop in 15 s."""
    if worker is None or worker.poll() is not None:
        return
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=15)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(timeout=10)


def wait(predicate: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    """Poll until ``predicate()`` (a generous bound, not a speed assertion); fail with the worker's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}; worker log:\n{log.read_text()[-4000:]}")


def end_other_backends() -> None:
    """A killed worker's server sessions end by themselves once Postgres notices the dead socket (and
    release its locks then); make sure they are gone, so that the test goes on from a known state and the
    test database can be dropped."""
    with connection.cursor() as cursor:
        for _ in range(100):
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if not cursor.fetchall():
                return
            time.sleep(0.1)


def forget_messages(queue: str) -> int:
    """Drop what a throwaway queue left in Redis: a killed worker's unacked message (else redelivered to
    nobody after the visibility timeout), the queue and its exchange binding. Returns messages dropped."""
    import json

    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    dropped = 0
    for tag, raw in client.hgetall("unacked").items():
        try:
            _message, _exchange, routing_key = json.loads(raw)
        except ValueError:
            continue
        if routing_key == queue:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)
            dropped += 1
    client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    return dropped


@contextmanager
def own_queue(monkeypatch: pytest.MonkeyPatch, prefix: str) -> Iterator[str]:
    """A queue of the test's own, the product's tasks routed to it (they name no queue themselves), deleted
    from Redis afterwards."""
    from cs_platform.celery import app

    name = f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(app.conf, "task_default_queue", name)
    try:
        yield name
    finally:
        drop_queue(name)


def drop_queue(name: str) -> None:
    """Delete a throwaway queue and its exchange binding from Redis."""
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).delete(name, f"_kombu.binding.{name}")


@contextmanager
def running(queue: str, tmp_path: Path, **env: str) -> Iterator[tuple[subprocess.Popen, Path]]:
    """A worker consuming ``queue`` (and sending what it queues itself there too), ready before the test acts
    — so what the test measures is its own doing, not the worker's boot — and stopped afterwards. Yields
    ``(process, log)``."""
    log = tmp_path / "worker.log"
    process = start_worker(queue, log, CELERY_TASK_DEFAULT_QUEUE=queue, **env)
    try:
        wait(lambda: "ready." in log.read_text(), 120, "the worker to start", log)
        yield process, log
    finally:
        stop(process)


def succeeded(log: Path, task: str) -> int:
    """How many runs of ``task`` (its dotted name) the worker's log reports as succeeded."""
    return sum(1 for line in log.read_text().splitlines() if f"Task {task}[" in line and " succeeded in " in line)
