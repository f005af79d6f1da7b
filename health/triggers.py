"""Debounced per-account recompute: when an account's signals change, its health is recomputed soon
after (spec §3), in one task per organization whatever the number of changes.

``post_save``/``post_delete`` of tickets, invoices, survey responses, CSM pulses, contacts and
activities call :func:`schedule_recompute` (the usage rollup queues ``recompute_accounts`` for the
accounts it touched directly, without the countdown: see :func:`health.rollups.queue_rescore`). After
the transaction commits, the account ids are added to the organization's pending set and, unless a
task is already scheduled, ``health.tasks.recompute_accounts`` is enqueued with a countdown of
:func:`debounce_seconds` (the ``HEALTH_RECOMPUTE_DEBOUNCE_SECONDS`` setting, 60 s by default):
changes arriving meanwhile join the same run.

With Redis (``REDIS_URL``, production) the pending set is a Redis set (``SADD``) and the "scheduled"
flag a ``SET NX EX`` key, shared by every web and worker process. The task first drops the flag, then
takes the whole set atomically (``SMEMBERS`` + ``DEL`` in one ``MULTI``): an id added in between is
taken by this run and merely schedules a second, empty-handed one — none is lost. Without Redis (the
demo and SQLite), processes share nothing, so each committed transaction enqueues its own task
carrying its account ids (still batched per transaction, no cross-process debouncing).

Set-based writes (CSV imports, ``bulk_create``, COPY) send no model signals: a CSV import schedules one
recorded recompute of its organization through the hook in :mod:`health.import_kinds`
(:func:`schedule_org_recompute`); the hourly full recompute covers the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from cs_platform.redis_client import shared_redis

from .queueing import RECOMPUTE_ACCOUNTS, RECOMPUTE_HEALTH, health_task

__all__ = ["DEBOUNCE_SECONDS", "connect", "debounce_seconds", "schedule_recompute", "take_pending"]

DEBOUNCE_SECONDS = 60  # the default of settings.HEALTH_RECOMPUTE_DEBOUNCE_SECONDS
KEY_PREFIX = "retain:health:recompute"

#: ``enqueue(organization_id, account_ids_or_None, countdown)``; replaceable in tests.
Enqueue = Callable[[int, list[int] | None, int], None]


#: The shared per-process client (``None`` without Redis); a name of its own so tests can reach it.
_redis = shared_redis


def debounce_seconds() -> int:
    """The countdown of a scheduled recompute, read at call time (tests shorten it to see it reach Celery)."""
    return int(getattr(settings, "HEALTH_RECOMPUTE_DEBOUNCE_SECONDS", DEBOUNCE_SECONDS))


def _keys(organization_id: int) -> tuple[str, str]:
    return f"{KEY_PREFIX}:{organization_id}:pending", f"{KEY_PREFIX}:{organization_id}:scheduled"


def _default_enqueue(organization_id: int, account_ids: list[int] | None, countdown: int) -> None:
    kwargs = {"account_ids": account_ids} if account_ids is not None else {}
    health_task(RECOMPUTE_ACCOUNTS).apply_async((organization_id,), kwargs, countdown=countdown)


def schedule_recompute(
    organization_id: int, account_ids: Iterable[int | None], *, enqueue: Enqueue | None = None
) -> None:
    """Recompute these accounts' health about :func:`debounce_seconds` after the current transaction
    commits (nothing for a rolled-back change); see the module docstring."""
    ids = sorted({int(a) for a in account_ids if a is not None})
    if not ids or not organization_id:
        return
    send = enqueue or _default_enqueue

    def on_commit() -> None:
        countdown = debounce_seconds()
        client = _redis()
        if client is None:
            send(organization_id, ids, countdown)
            return
        pending, scheduled = _keys(organization_id)
        with client.pipeline() as pipe:
            pipe.sadd(pending, *ids)
            # The keys outlive the countdown by far, so a slow worker never finds them expired; at least
            # a minute / ten minutes even when the countdown is short.
            pipe.expire(pending, max(countdown, DEBOUNCE_SECONDS) * 60)
            pipe.set(scheduled, "1", nx=True, ex=max(countdown, DEBOUNCE_SECONDS) * 10)
            _, _, first = pipe.execute()
        if first:
            send(organization_id, None, countdown)

    transaction.on_commit(on_commit)


def schedule_org_recompute(organization_id: int, *, reason: str) -> None:
    """A recorded bulk recompute of the whole organization once the current transaction commits (after a
    bulk write that sends no model signals, such as a CSV import). Nothing for a rolled-back change."""
    from cs_platform.jobs import create_job

    def on_commit() -> None:
        job = create_job(organization_id=organization_id, kind="recompute_health", params={"trigger": reason})
        health_task(RECOMPUTE_HEALTH).delay(organization_id, job_id=job.pk)

    transaction.on_commit(on_commit)


def take_pending(organization_id: int) -> list[int]:
    """The organization's pending account ids, removed from the set (Redis); ``[]`` without Redis."""
    client = _redis()
    if client is None:
        return []
    pending, scheduled = _keys(organization_id)
    client.delete(scheduled)  # first: a change arriving from now on schedules a new run
    with client.pipeline(transaction=True) as pipe:
        pipe.smembers(pending)
        pipe.delete(pending)
        members, _ = pipe.execute()
    return sorted(int(m) for m in members)


def _changed(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    if raw:  # loaddata
        return
    schedule_recompute(instance.organization_id, [getattr(instance, "account_id", None)])


def _deleted(sender: Any, instance: Any, origin: Any = None, **kwargs: Any) -> None:
    if origin is not None and not isinstance(origin, sender) and getattr(origin, "model", None) is not sender:
        return  # cascaded from deleting the account (or the organization): nothing left to score
    _changed(sender, instance)


def connect() -> None:
    """Wire the model signals (called from ``HealthConfig.ready``)."""
    from accounts.models import Activity, Contact
    from feedback.models import SurveyResponse

    from .models import CsmPulse, Invoice, Ticket

    for model in (Ticket, Invoice, SurveyResponse, CsmPulse, Contact, Activity):
        uid = f"health.recompute.{model._meta.label_lower}"
        post_save.connect(_changed, sender=model, dispatch_uid=f"{uid}.save")
        post_delete.connect(_deleted, sender=model, dispatch_uid=f"{uid}.delete")
