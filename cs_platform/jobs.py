"""Recording background work in :class:`cs_platform.organizations.JobRun` rows that admins can watch.

A Celery task wraps its work in :func:`run_job`; progress is written with :meth:`JobRecorder.advance`
(throttled, so a loop of a million rows does not write a million times). A task that is retried
after a crash finds its run by id and starts it again: ``attempts`` counts the tries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from cs_platform.choices import JobStatus
from cs_platform.organizations import JobRun
from cs_platform.tenancy import OrgScopeError

__all__ = ["JobError", "JobRecorder", "create_job", "public_errors", "run_job"]

logger = logging.getLogger(__name__)

PROGRESS_WRITE_INTERVAL = 0.5  # seconds between progress writes
#: Kept keys of a run's error entries: what a member may read. Anything else (a legacy traceback) is
#: dropped by :func:`public_errors`.
PUBLIC_ERROR_KEYS = ("line", "column", "reason", "error", "retry_in_seconds")


class JobError(Exception):
    """A failure whose message is written for the people who started the run (a plain reason, no
    internals): it is shown as it is. Any other exception is shown as an internal error, and its
    text and traceback go to the log only."""


def internal_error_message(job_id: int) -> str:
    return (
        f"The run stopped on an internal error. Nothing is wrong with what you asked for; the operator "
        f"has the details in the server log (run #{job_id})."
    )


def public_errors(errors: Any, job_id: int) -> list[dict[str, Any]]:
    """A run's errors as members may see them: line, column and reason, never a traceback, an exception
    text or a server path (entries recorded before those were kept out are replaced by a plain reason)."""
    public: list[dict[str, Any]] = []
    for entry in errors if isinstance(errors, list) else []:
        if not isinstance(entry, dict):
            public.append({"error": str(entry)})
        elif "traceback" in entry:  # recorded by an older version with the exception's own text
            public.append({"error": internal_error_message(job_id)})
        else:
            public.append({key: entry[key] for key in PUBLIC_ERROR_KEYS if key in entry})
    return public


def create_job(*, organization_id: int, kind: str, params: dict[str, Any] | None = None, user: Any = None) -> JobRun:
    """A queued run, created before the task is enqueued so the UI can show it at once."""
    return JobRun.all_orgs.create(organization_id=organization_id, kind=kind, params=params or {}, created_by=user)


class JobRecorder:
    """Handle given to the job body for progress and counts."""

    def __init__(self, job: JobRun) -> None:
        self.job = job
        self._last_write = 0.0
        #: Set (seconds) by a task that will retry the error now propagating: the run then goes back
        #: to ``queued`` with the error shown, instead of ``failed``.
        self.retry_in: float | None = None

    def set_total(self, total: int) -> None:
        self.job.progress_total = total
        self._write(["progress_total"], force=True)

    def advance(self, done: int, *, force: bool = False) -> None:
        self.job.progress_done = done
        self._write(["progress_done"], force=force)

    def count(self, **counts: int) -> None:
        self.job.counts.update(counts)

    def _write(self, fields: list[str], *, force: bool) -> None:
        now = time.monotonic()
        if force or now - self._last_write >= PROGRESS_WRITE_INTERVAL:
            # A plain UPDATE on the task's connection: under autocommit it shows at once. Inside an
            # atomic block of the body it shows only when that block commits (see run_job).
            JobRun.all_orgs.filter(pk=self.job.pk).update(**{f: getattr(self.job, f) for f in fields})
            self._last_write = now


@contextmanager
def run_job(job_id: int, *, organization_id: int | None = None) -> Iterator[JobRecorder]:
    """Mark the run started, yield a recorder, then mark it succeeded, or failed with the error.

    With ``organization_id`` the run must belong to that organization (a task given ids from a
    message checks them rather than trusting them). Progress is written on the task's connection:
    a body that keeps one transaction open for all its work (an all-or-nothing import) shows its
    progress when it commits, so such a body should count while it validates, before it writes.
    """
    job = JobRun.all_orgs.get(pk=job_id)
    if organization_id is not None and job.organization_id != organization_id:
        raise OrgScopeError(f"job run {job_id} does not belong to organization {organization_id}")
    job.status = JobStatus.RUNNING
    job.started_at = timezone.now()
    job.finished_at = None
    job.attempts += 1
    job.errors = []
    job.save(update_fields=["status", "started_at", "finished_at", "attempts", "errors"])
    recorder = JobRecorder(job)
    try:
        yield recorder
    except Exception as exc:
        # The traceback and the exception's text (paths, hosts, SQL) go to the operator's log only; the
        # run keeps a plain reason that every member may read.
        if recorder.retry_in is not None:
            logger.warning("job run %s (%s) will retry: %s", job.pk, job.kind, exc, exc_info=True)
            job.status = JobStatus.QUEUED
            reason = f"A temporary problem reaching the database; the run will try again in {recorder.retry_in:.0f} s."
            job.errors = [{"error": reason, "retry_in_seconds": round(recorder.retry_in, 1)}]
            job.finished_at = None
        else:
            logger.error(
                "job run %s (%s) of organization %s failed", job.pk, job.kind, job.organization_id, exc_info=True
            )
            job.status = JobStatus.FAILED
            if isinstance(exc, JobError):
                reason = str(exc)
            elif isinstance(exc, SoftTimeLimitExceeded):
                minutes = settings.CELERY_TASK_SOFT_TIME_LIMIT // 60
                reason = f"The run took longer than the time limit ({minutes} min) and was stopped."
            else:
                reason = internal_error_message(job.pk)
            job.errors = [*job.errors, {"error": reason}]
            job.finished_at = timezone.now()
        if not connection.in_atomic_block:
            # After a dropped connection the outcome is still recorded, on a fresh one.
            connection.close_if_unusable_or_obsolete()
        with transaction.atomic():
            job.save(update_fields=["status", "errors", "finished_at", "counts", "progress_done"])
        raise
    else:
        job.status = JobStatus.SUCCEEDED if not job.errors else JobStatus.FAILED
        job.finished_at = timezone.now()
        if job.progress_total and job.status == JobStatus.SUCCEEDED:
            job.progress_done = job.progress_total
        job.save(update_fields=["status", "errors", "finished_at", "counts", "progress_done"])
