"""The one way to write a tenant Celery task: :func:`org_task`.

A task takes ids, never model instances (a message may wait in the queue while rows change), and
its first argument is always the organization's id. The decorator then does what every task needs
and none should repeat:

* runs the body inside :func:`~cs_platform.tenancy.org_scope`, so the fail-closed managers work and
  nothing of another organization can be read by accident;
* records the run in a :class:`~cs_platform.organizations.JobRun` when the caller passes ``job_id=`` (created
  beforehand with :func:`~cs_platform.jobs.create_job`, so the UI shows it as queued at once) and
  hands the body a recorder for progress and counts;
* retries with exponential back-off on transient database errors (a failover, a deadlock, a
  dropped connection); any other error fails the run at once with the error recorded.

Example::

    @org_task()
    def recompute_health(organization_id: int, account_ids: list[int] | None = None, *, job=None) -> None:
        ...

    job = create_job(organization_id=org.pk, kind="recompute_health")
    recompute_health.delay(org.pk, job_id=job.pk)

A task must be safe to run twice: with ``acks_late`` a worker that dies mid-task has its message
redelivered, and a retried run starts from the beginning.
"""

from __future__ import annotations

import functools
import inspect
import logging
import random
from collections.abc import Callable
from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError, connection

from .jobs import run_job
from .organizations import Organization
from .rls import system_context
from .tenancy import org_scope

__all__ = ["TRANSIENT_ERRORS", "org_task", "retry_delay", "sweep_task"]

logger = logging.getLogger(__name__)

#: Errors worth another try: Django wraps a lost connection, a deadlock, a serialization failure and
#: a database restart in these. Programming and data errors are not retried: they would fail again.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)


def retry_delay(retries: int, *, base: float, maximum: float) -> float:
    """Seconds before try ``retries + 1``: exponential, capped, with jitter so that many tasks that
    failed together (a database restart) do not all come back in the same second."""
    delay = min(maximum, base * (2**retries))
    return delay / 2 + random.uniform(0, delay / 2)


def org_task(
    *,
    name: str | None = None,
    max_retries: int = 5,
    retry_backoff: float = 2.0,
    retry_backoff_max: float = 300.0,
    retry_on: tuple[type[BaseException], ...] = TRANSIENT_ERRORS,
    **options: Any,
) -> Callable[[Callable[..., Any]], Any]:
    """Turn ``fn(organization_id, *args, **kwargs)`` into a retry-safe, org-scoped Celery task.

    The task accepts an extra keyword ``job_id``. When given, the run is recorded in that JobRun and,
    if ``fn`` has a ``job`` parameter, ``fn`` receives the :class:`~cs_platform.jobs.JobRecorder`
    (``job.set_total``, ``job.advance``, ``job.count``); without ``job_id`` it receives ``job=None``.
    Other ``options`` go to :func:`celery.shared_task` (``queue``, ``time_limit``, …).
    """

    def decorator(fn: Callable[..., Any]) -> Any:
        wants_job = "job" in inspect.signature(fn).parameters
        task_name = name or f"{fn.__module__}.{fn.__name__}"

        @shared_task(
            bind=True,
            name=task_name,
            ignore_result=True,
            acks_late=True,
            max_retries=max_retries,
            **options,
        )
        @functools.wraps(fn)
        def task(self: Any, organization_id: int, *args: Any, job_id: int | None = None, **kwargs: Any) -> Any:
            if not isinstance(organization_id, int) or isinstance(organization_id, bool):
                raise TypeError(f"{task_name}: the first argument must be an organization id, got {organization_id!r}")
            if not Organization.objects.filter(pk=organization_id).exists():
                # Deleted while the message waited: nothing to do, and nothing to retry.
                logger.warning("%s: organization %s no longer exists; skipped", task_name, organization_id)
                return None
            if wants_job:
                kwargs["job"] = None
            # Decided up front so that a run about to be retried is shown as queued, never as failed.
            retries_left = self.request.retries < self.max_retries
            countdown = retry_delay(self.request.retries, base=retry_backoff, maximum=retry_backoff_max)
            try:
                with org_scope(organization_id):
                    if job_id is None:
                        return fn(organization_id, *args, **kwargs)
                    with run_job(job_id, organization_id=organization_id) as recorder:
                        if wants_job:
                            kwargs["job"] = recorder
                        try:
                            return fn(organization_id, *args, **kwargs)
                        except retry_on:
                            if retries_left:
                                recorder.retry_in = countdown
                            raise
            except retry_on as exc:
                if not retries_left:
                    logger.error("%s: giving up after %s tries: %s", task_name, self.request.retries + 1, exc)
                    raise
                # A broken connection must not be reused by the next try (outside a transaction only:
                # eager runs inside a test's transaction keep theirs).
                if not connection.in_atomic_block:
                    connection.close_if_unusable_or_obsolete()
                logger.warning("%s: transient error, retry in %.1fs: %s", task_name, countdown, exc)
                raise self.retry(exc=exc, countdown=countdown) from exc

        return task

    return decorator


def sweep_task(reason: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """A beat sweep over every organization: :func:`celery.shared_task` (``ignore_result``, ``acks_late``,
    then ``options``) whose body runs in :func:`cs_platform.rls.system_context` ``(reason)``.

    Row-level security shows a task no tenant row outside a scope; a sweep reads across organizations
    (which are due, which have pending events) and fans out ``@org_task`` runs, each then in its own
    organization. The task's name is the function's, as with ``shared_task``.
    """

    def decorator(fn: Callable[..., Any]) -> Any:
        @shared_task(**{"ignore_result": True, "acks_late": True, **options})
        @functools.wraps(fn)
        def task(*args: Any, **kwargs: Any) -> Any:
            with system_context(reason):
                return fn(*args, **kwargs)

        return task

    return decorator
