"""Celery tasks of the accounts app. Thin: take ids, are safe to retry, record their run (org_task).

The CSV import run (``accounts.tasks.run_import`` by name) lives in :mod:`cs_platform.imports.tasks`.
"""

from __future__ import annotations

from celery import shared_task

from cs_platform.jobs import JobRecorder, create_job
from cs_platform.tasks import org_task

from .models import Organization
from .services import refresh_current_arr


@shared_task(ignore_result=True, acks_late=True)
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
