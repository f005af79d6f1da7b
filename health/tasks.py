"""Celery tasks of the health app. Thin: take ids, are safe to retry, record their run (org_task).

The top of the app: nothing in health imports this module. The rollup and the triggers queue these
tasks by their published names (:mod:`health.queueing`), so keep each task's name as it is."""

from __future__ import annotations

from django.utils import timezone

from accounts.models import Organization
from cs_platform.jobs import JobRecorder, create_job
from cs_platform.tasks import org_task, sweep_task

from .ingest_state import record_rollup, start_rollup
from .models import EventType, UsageEvent
from .rollups import purge_raw_events, queue_rescore, rescore_usage_history, rollup_usage
from .services import recompute_health
from .triggers import take_pending

PURGE_MINUTES = 5  # the fan-out also queues the purge when it runs in the first minutes of an hour


@sweep_task("beat: rollup_all_usage over every organization")
def rollup_all_usage() -> int:
    """Beat entry (every 5 minutes), the safety net: each ingest already queues its organization's rollup
    within seconds (:func:`health.ingest_state.schedule_rollup`). Queues a rollup for each organization with
    pending ``track`` events, and about once an hour a purge of raw events past retention for every
    organization.

    Runs are not recorded as JobRuns (one every few seconds per organization would bury the imports);
    pass ``job_id=`` when calling the tasks by hand to record one. Returns how many rollups it queued.
    """
    purge = timezone.now().minute < PURGE_MINUTES
    queued = 0
    for org_id in Organization.objects.order_by("id").values_list("id", flat=True):
        pending = UsageEvent.all_orgs.filter(
            organization_id=org_id, rolled_up=False, type=EventType.TRACK, account__isnull=False
        ).exists()
        if pending:
            rollup_usage_task.delay(org_id)
            queued += 1
        if purge:
            purge_raw_events_task.delay(org_id)
    return queued


@org_task()
def rollup_usage_task(organization_id: int, *, job: JobRecorder | None = None) -> dict[str, int]:
    """Count every pending usage event of the organization into its daily metrics (idempotent), then
    queue the rescore of the accounts it touched (today's health at once; past days' snapshots when
    usage of past days changed)."""
    start_rollup(organization_id)  # first: events committed from now on queue the next run
    touched: dict[int, set] = {}
    counts = rollup_usage(organization_id, touched_days=touched)
    record_rollup(organization_id, counts["events"])
    if touched:
        queue_rescore(organization_id, touched)
    if job is not None:
        job.count(**counts)
    return counts


@org_task()
def rescore_usage_history_task(
    organization_id: int, spans: list[list], *, job: JobRecorder | None = None
) -> dict[str, int]:
    """Recompute the past health snapshots that read usage of the changed past days (a backfill), then
    today's score of those accounts. ``spans``: ``[[account_id, first_day, last_day], ...]`` (ISO days)."""
    return rescore_usage_history(organization_id, spans, job=job)


@org_task()
def purge_raw_events_task(organization_id: int, *, job: JobRecorder | None = None) -> int:
    """Delete the organization's raw events past its retention window (counted ones only for usage)."""
    counts = purge_raw_events(organization_id)
    if job is not None:
        job.count(**counts)
    return counts["deleted"]


@sweep_task("beat: recompute_all_health over every organization")
def recompute_all_health() -> int:
    """Beat entry (hourly): one recorded ``recompute_health`` run per organization. Returns how many."""
    queued = 0
    for org_id in Organization.objects.order_by("id").values_list("id", flat=True):
        job = create_job(organization_id=org_id, kind="recompute_health", params={"trigger": "schedule"})
        recompute_health_task.delay(org_id, job_id=job.pk)
        queued += 1
    return queued


@org_task()
def recompute_health_task(
    organization_id: int, account_ids: list[int] | None = None, *, job: JobRecorder | None = None
) -> dict[str, int]:
    """Recompute the health of every account of the organization (or ``account_ids``): the bulk path."""
    counts = recompute_health(organization_id, account_ids, job=job).counts()
    # Count the Portfolio's past trend days now (cached per day), so the first leader who opens the page
    # after a deploy or a cache flush does not pay for aggregating 90 days of snapshots.
    if account_ids is None:
        from .portfolio import color_trend

        color_trend(Organization.objects.get(pk=organization_id))
    return counts


@org_task()
def recompute_accounts(
    organization_id: int, account_ids: list[int] | None = None, *, job: JobRecorder | None = None
) -> dict[str, int]:
    """The debounced per-account recompute (see :mod:`health.triggers`): the accounts pending in Redis
    plus ``account_ids`` from the message (the no-Redis path). Safe to run twice."""
    ids = sorted(set(take_pending(organization_id)) | set(account_ids or []))
    if not ids:
        return {"accounts": 0}
    return recompute_health(organization_id, ids, job=job).counts()
