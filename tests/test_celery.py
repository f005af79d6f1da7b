"""Celery against a real Redis broker: a worker in this process runs what ``.delay()`` sends.

These tests need ``REDIS_URL`` and a Postgres ``DATABASE_URL`` (CI sets both). Each test process uses
its own queue, so parallel runs sharing one Redis database never take each other's messages.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.conf import settings
from django.db import OperationalError, connections

from accounts.choices import JobStatus
from accounts.models import Account, JobRun
from cs_platform.celery import app
from cs_platform.jobs import JobError, create_job, internal_error_message
from cs_platform.tasks import org_task, retry_delay
from tests.factories import AccountFactory

TEST_QUEUE = f"retain-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"

requires_redis = pytest.mark.skipif(
    not settings.CELERY_BROKER_URL.startswith("redis"),
    reason="REDIS_URL is not set: the Celery worker tests need a real Redis broker",
)
# The worker runs in a thread of this process. On SQLite it would share the in-memory test database,
# whose shared-cache table locks fail at once instead of waiting: only a real server tests this fairly.
requires_server_db = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
    reason="the in-process worker tests need a database server (DATABASE_URL=postgres://...), not SQLite",
)


# --- tasks under test: module level, so the in-process worker finds them registered -------------


@org_task(queue=TEST_QUEUE)
def count_accounts(organization_id: int, *, job=None) -> None:
    """Counts through the scoped manager: works only because the task put the org in scope."""
    n = Account.objects.count()
    job.set_total(n)
    job.count(accounts=n, with_owner=Account.objects.filter(owner__isnull=False).count())


@org_task(queue=TEST_QUEUE, retry_backoff=0.05)
def flaky_once(organization_id: int, *, job=None) -> None:
    if job.job.attempts == 1:
        raise OperationalError("server closed the connection unexpectedly (simulated failover)")
    job.count(done=1)


@org_task(queue=TEST_QUEUE, retry_backoff=0.05, max_retries=2)
def always_transient(organization_id: int, *, job=None) -> None:
    raise OperationalError("deadlock detected (simulated)")


@org_task(queue=TEST_QUEUE)
def broken(organization_id: int, *, job=None) -> None:
    job.count(read=3)
    raise JobError("row 4: unknown touch model 'medium'")  # a reason written for users: shown as it is


# --- fixtures ------------------------------------------------------------------------------------


def _close_thread_connections(**_: object) -> None:
    # The worker thread's connections would otherwise outlive it and block dropping the test database.
    connections.close_all()


@pytest.fixture
def worker() -> Iterator[object]:
    saved = {key: app.conf[key] for key in ("task_always_eager", "worker_hijack_root_logger")}
    app.conf.task_always_eager = False
    app.conf.worker_hijack_root_logger = False  # keep pytest's log capture
    task_postrun.connect(_close_thread_connections, weak=False)
    try:
        with start_worker(app, queues=[TEST_QUEUE], perform_ping_check=False, shutdown_timeout=30) as w:
            yield w
    finally:
        task_postrun.disconnect(_close_thread_connections)
        app.conf.update(saved)


def wait_for_finish(job: JobRun, timeout: float = 30.0) -> JobRun:
    """Poll the run until it has finished (a generous bound, not a speed assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = JobRun.all_orgs.get(pk=job.pk)
        if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job.pk} still {job.status} after {timeout}s")


# --- tests ---------------------------------------------------------------------------------------


@requires_redis
@requires_server_db
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_delayed_task_runs_on_the_worker_in_its_org_scope_and_records_its_run(worker, org, other_org, bob):
    AccountFactory.create_batch(3, organization=org)
    AccountFactory(organization=org, owner=bob)
    AccountFactory.create_batch(5, organization=other_org)  # must not be counted
    job = create_job(organization_id=org.pk, kind="count_accounts")

    count_accounts.delay(org.pk, job_id=job.pk)

    done = wait_for_finish(job)
    assert done.status == JobStatus.SUCCEEDED, done.errors
    assert done.counts == {"accounts": 4, "with_owner": 1}
    assert (done.attempts, done.progress_total, done.progress_done) == (1, 4, 4)


@requires_redis
@requires_server_db
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_transient_database_error_is_retried_and_the_run_then_succeeds(worker, org):
    job = create_job(organization_id=org.pk, kind="flaky")

    flaky_once.delay(org.pk, job_id=job.pk)

    done = wait_for_finish(job)
    assert (done.status, done.attempts, done.counts, done.errors) == (JobStatus.SUCCEEDED, 2, {"done": 1}, [])


@requires_redis
@requires_server_db
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_task_that_keeps_failing_transiently_gives_up_after_its_retries(worker, org):
    job = create_job(organization_id=org.pk, kind="always_transient")

    always_transient.delay(org.pk, job_id=job.pk)

    done = wait_for_finish(job)  # between tries the run is queued, never failed
    assert (done.status, done.attempts) == (JobStatus.FAILED, 3)
    # The database's own message goes to the log; the run shows a plain reason.
    assert done.errors[-1] == {"error": internal_error_message(job.pk)}


@requires_redis
@requires_server_db
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_failing_task_records_failed_with_the_error_without_retrying(worker, org):
    job = create_job(organization_id=org.pk, kind="broken")

    broken.delay(org.pk, job_id=job.pk)

    done = wait_for_finish(job)
    assert (done.status, done.attempts, done.counts) == (JobStatus.FAILED, 1, {"read": 3})
    assert done.errors[0]["error"] == "row 4: unknown touch model 'medium'"


# --- without a broker -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_task_for_a_deleted_organization_is_skipped(org):
    org_id = org.pk
    org.delete()
    assert count_accounts.apply(args=(org_id,)).get() is None


@pytest.mark.django_db
def test_the_first_argument_must_be_an_organization_id(org):
    with pytest.raises(TypeError, match="organization id"):
        count_accounts.apply(args=(org,)).get()


def test_retry_delay_grows_exponentially_up_to_a_cap():
    for retries, cap in [(0, 2.0), (1, 4.0), (2, 8.0), (10, 300.0)]:
        delay = retry_delay(retries, base=2.0, maximum=300.0)
        assert cap / 2 <= delay <= cap


def test_beat_schedule_uses_the_database_scheduler_and_names_a_registered_task():
    app.loader.import_default_modules()
    assert settings.CELERY_BEAT_SCHEDULER == "django_celery_beat.schedulers:DatabaseScheduler"
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks


@pytest.mark.django_db
def test_applied_inline_a_task_is_scoped_recorded_and_retried_the_same_way(org, other_org):
    """``.apply()`` (and CELERY_TASK_ALWAYS_EAGER) runs the same wrapper as a worker does."""
    AccountFactory.create_batch(2, organization=org)
    AccountFactory(organization=other_org)
    job = create_job(organization_id=org.pk, kind="count_accounts")
    count_accounts.apply(args=(org.pk,), kwargs={"job_id": job.pk}).get()
    done = JobRun.all_orgs.get(pk=job.pk)
    assert (done.status, done.counts) == (JobStatus.SUCCEEDED, {"accounts": 2, "with_owner": 0})

    flaky = create_job(organization_id=org.pk, kind="flaky")
    # Celery re-applies an eager retry only when not propagating (with propagation it raises Retry).
    flaky_once.apply(args=(org.pk,), kwargs={"job_id": flaky.pk}, throw=False)
    retried = JobRun.all_orgs.get(pk=flaky.pk)
    assert (retried.status, retried.attempts) == (JobStatus.SUCCEEDED, 2)


@pytest.mark.django_db(transaction=True)  # the scheduler closes and reopens its connection
def test_beat_start_writes_the_static_schedule_into_the_database():
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    DatabaseScheduler(app=app)  # what `celery beat` builds at start-up
    entry = PeriodicTask.objects.get(name="refresh-current-arr")
    assert entry.task == "accounts.tasks.refresh_all_current_arr" and entry.enabled
    assert entry.interval.every * {"seconds": 1, "minutes": 60, "hours": 3600}[entry.interval.period] == 6 * 3600
