"""Issue 16, faults: the servers under the app restarted while it runs.

Real processes: the app under gunicorn (tests/service_process.py) against the test database and a private
``redis-server`` of the test's own (its own port, an append-only file in a temporary directory), which the
test SIGKILLs and starts again on the same port. The app is never restarted.

While Redis is down, each request answers as it should or fails with a JSON 503 (never a 500, never
HTML); once Redis is back the same app process serves them again; a job queued before the crash is still in
the queue afterwards (append-only file) and a worker runs it.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid

import pytest
from django.test import Client

from accounts.choices import JobStatus
from accounts.models import Account, ApiKey, JobRun, WriteKey
from accounts.services import create_organization
from cs_platform.jobs import create_job
from health.models import HealthScore, UsageEvent
from health.tasks import recompute_health_task
from tests import service_process, worker_process

from .factories import MembershipFactory, UserFactory

pytestmark = [*worker_process.WORKER_MARKS, pytest.mark.django_db(transaction=True)]


API_KEY: list[str] = []


def _batch(n: int) -> bytes:
    return json.dumps(
        {"batch": [{"type": "track", "event": "Report Built", "userId": "u1", "messageId": f"m-{n}"}]}
    ).encode()


def _kinds(app: service_process.Gunicorn, key: str, cookie: str, n: int) -> dict[str, tuple[int, str]]:
    """Status and content type of ingestion, a page (My book), the API (rate-limited in the cache) and the
    readiness probe, through the app."""
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    ingest = app.request("POST", "/v1/batch", _batch(n), {"Authorization": auth, "Content-Type": "application/json"})
    page = app.request("GET", "/o/acme/", headers={"Cookie": f"sessionid={cookie}"})
    ready = app.request("GET", "/readyz")
    api = app.request("GET", "/api/v1/accounts/", headers={"Authorization": f"Bearer {API_KEY[0]}"})
    return {
        "api": (api[0], api[1].split(";")[0]),
        "ingest": (ingest[0], ingest[1].split(";")[0]),
        "page": (page[0], page[1].split(";")[0]),
        "readyz": (ready[0], ready[1].split(";")[0]),
    }


UP = {
    "api": (200, "application/json"),
    "ingest": (200, "application/json"),
    "page": (200, "text/html"),
    "readyz": (200, "application/json"),
}


def _tenant():
    """An organization with an account, a write key, an API key and a signed-in admin: ``(org, write key,
    session id)``; the session is a database row."""
    org = create_organization(slug="acme", name="Acme Corp")[0]
    Account.all_orgs.create(organization=org, external_id="acc-1", name="Initech")
    key = WriteKey.issue(organization=org, name="faults")[1]
    API_KEY[:] = [ApiKey.issue(organization=org, role="admin")[1]]
    user = UserFactory()
    MembershipFactory(organization=org, role="admin", user=user)
    client = Client()
    client.force_login(user)
    return org, key, client.cookies["sessionid"].value


def test_redis_killed_and_restarted_under_the_app(tmp_path):
    org, key, cookie = _tenant()

    redis = service_process.RedisServer(tmp_path)
    app = service_process.Gunicorn(tmp_path, DATABASE_URL=worker_process.test_database_url(), REDIS_URL=redis.url)
    queue = f"retain-fault-redis-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    worker = None
    try:
        redis.start()
        app.start()
        up = {
            "api": (200, "application/json"),
            "ingest": (200, "application/json"),
            "page": (200, "text/html"),
            "readyz": (200, "application/json"),
        }
        assert _kinds(app, key, cookie, 1) == up

        # A job queued on this Redis, no worker running yet.
        job = create_job(organization_id=org.pk, kind="recompute_health", params={"trigger": "schedule"})
        from cs_platform.celery import app as celery

        with celery.connection_for_write(redis.url) as connection:
            recompute_health_task.apply_async((org.pk,), {"job_id": job.pk}, queue=queue, connection=connection)
        assert redis.client().llen(queue) == 1

        # --- Redis crashes: every answer is a success or a JSON 503 -----------------------------------
        redis.kill()
        started = time.monotonic()
        down = _kinds(app, key, cookie, 2)
        took = time.monotonic() - started
        for kind, (status, content_type) in down.items():
            allowed = {(200, "application/json"), (200, "text/html"), (503, "application/json")}
            assert (status, content_type) in allowed, (kind, status, content_type, app.log.read_text()[-3000:])
        assert down["readyz"] == (503, "application/json")  # the load balancer is told
        assert took < 30, f"three requests took {took:.1f}s while Redis was down"

        # --- Redis is back on the same port: the same app process serves again ------------------------
        redis.start()
        service_process.wait_until(lambda: _kinds(app, key, cookie, 3) == up, 30, "the app to serve again", app.log)
        assert redis.client().llen(queue) == 1  # the queued job survived the crash (append-only file)

        log = tmp_path / "worker.log"
        worker = worker_process.start_worker(queue, log, REDIS_URL=redis.url)
        done = JobRun.all_orgs.filter(pk=job.pk, status__in=[JobStatus.SUCCEEDED, JobStatus.FAILED])
        worker_process.wait(done.exists, 60, "the queued job to run", log)
        assert JobRun.all_orgs.get(pk=job.pk).status == JobStatus.SUCCEEDED
        assert HealthScore.objects.for_org(org).count() == 1
        # Every batch answered 200 was stored: before, during (if it said so) and after the crash.
        stored = set(UsageEvent.all_orgs.filter(organization=org).values_list("message_id", flat=True))
        assert stored == {"m-1", "m-3"} | ({"m-2"} if down["ingest"][0] == 200 else set())
    finally:
        worker_process.stop(worker)
        app.stop()
        redis.kill()
        worker_process.end_other_backends()
    print(f"\nwhile Redis was down: {down} in {took:.1f}s")


@pytest.mark.skipif(service_process.POSTGRES_MISSING is not None, reason=service_process.POSTGRES_MISSING or "")
def test_postgres_crashed_and_restarted_under_the_app(tmp_path):
    """A private Postgres cluster holding a copy of the test database; the app on it under gunicorn (one
    worker, so every request reuses its one persistent connection, ``CONN_MAX_AGE``). The cluster crashes
    (``pg_ctl stop -m immediate``): ingestion and the API answer a JSON 503, the page a 503, /readyz a 503.
    It starts again: the very first requests succeed on the same app process; and after a restart that no
    request noticed, the first request reconnects instead of failing (``CONN_HEALTH_CHECKS``)."""
    org, key, cookie = _tenant()
    postgres = service_process.PostgresServer()
    database = "retain_fault_copy"
    app = service_process.Gunicorn(tmp_path, DATABASE_URL=postgres.url(database), REDIS_URL=os.environ["REDIS_URL"])
    try:
        postgres.init()
        postgres.start()
        postgres.copy_database(worker_process.test_database_url(), database)
        app.start()
        assert _kinds(app, key, cookie, 1) == UP

        postgres.stop("immediate")
        started = time.monotonic()
        down = _kinds(app, key, cookie, 2)
        took = time.monotonic() - started
        assert down == {
            "api": (503, "application/json"),
            "ingest": (503, "application/json"),
            "page": (503, "text/html"),
            "readyz": (503, "application/json"),
        }, app.log.read_text()[-3000:]
        assert took < 30, f"four requests took {took:.1f}s while Postgres was down"

        postgres.start()
        assert _kinds(app, key, cookie, 3) == UP, app.log.read_text()[-3000:]  # the first requests, no retry

        # A restart between two requests (none fails while it is down): the app's persistent connection is
        # dead but not known to be; the next request must not be the one to find out (CONN_HEALTH_CHECKS).
        postgres.stop("immediate")
        postgres.start()
        assert _kinds(app, key, cookie, 4) == UP, app.log.read_text()[-3000:]
        assert app.process is not None and app.process.poll() is None  # the same app process throughout
    finally:
        app.stop()
        postgres.stop("fast")
        postgres.remove()
    print(f"\nwhile Postgres was down: {down} in {took:.1f}s")
