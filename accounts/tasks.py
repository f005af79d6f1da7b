"""Celery tasks of the accounts app. Thin: take ids, are safe to retry, record their run (org_task).

The CSV import run (``accounts.tasks.run_import`` by name) lives in :mod:`cs_platform.imports.tasks`.
"""

from __future__ import annotations

from cs_platform.jobs import JobRecorder, create_job
from cs_platform.tasks import org_task, sweep_task

from .models import Organization
from .segment_membership import JOB_KIND as SEGMENTS_JOB_KIND
from .segment_membership import refresh_memberships, take_scheduled
from .services import refresh_current_arr


@sweep_task("beat: refresh_all_current_arr over every organization")
def refresh_all_current_arr() -> int:
    """Beat entry: contracts start and end with the calendar, so current ARR is refreshed on a schedule.

    Fans out one recorded, separately retried task per organization; returns how many it queued.
    """
    org_ids = list(Organization.objects.values_list("id", flat=True))
    for org_id in org_ids:
        job = create_job(organization_id=org_id, kind="refresh_current_arr")
        refresh_org_current_arr.delay(org_id, job_id=job.pk)
    return len(org_ids)


@org_task()
def refresh_org_current_arr(organization_id: int, *, job: JobRecorder | None = None) -> int:
    """Refresh one organization's current ARR, hierarchy ARR and next renewal dates."""
    changed = refresh_current_arr(organization_id)
    if job is not None:
        job.count(accounts_changed=changed)
    return changed


@sweep_task("beat: refresh_all_segment_memberships over every organization")
def refresh_all_segment_memberships() -> int:
    """Beat entry (``SEGMENT_REFRESH_SCHEDULE``): derived values move with the calendar and with signals that
    raise no domain event (usage, tickets, activities), so every organization's segments are refreshed on a
    schedule. Fans out one recorded task per organization; returns how many it queued."""
    org_ids = list(Organization.objects.values_list("id", flat=True))
    for org_id in org_ids:
        job = create_job(organization_id=org_id, kind=SEGMENTS_JOB_KIND, params={"trigger": "schedule"})
        refresh_segment_memberships.delay(org_id, job_id=job.pk)
    return len(org_ids)


@org_task()
def refresh_segment_memberships(
    organization_id: int, segment_ids: list[int] | None = None, *, job: JobRecorder | None = None
) -> dict[str, int]:
    """Refresh the stored members of one organization's segments (all, or ``segment_ids``). Safe to run twice:
    a second run finds nothing to change."""
    counts = refresh_memberships(organization_id, segment_ids).counts()
    if job is not None:
        job.count(**counts)
    return counts


@org_task()
def refresh_segments_soon(organization_id: int, *, job: JobRecorder | None = None) -> dict[str, int]:
    """The debounced refresh queued by :func:`accounts.segment_membership.schedule_refresh` after domain
    events: drops the organization's "scheduled" flag first (a change from now on schedules the next run),
    then refreshes every segment."""
    take_scheduled(organization_id)
    counts = refresh_memberships(organization_id).counts()
    if job is not None:
        job.count(**counts)
    return counts
