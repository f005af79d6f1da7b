"""Celery tasks of the accounts app. Thin: take ids, are safe to retry, record their run."""

from __future__ import annotations

from celery import shared_task

from .models import Organization
from .services import refresh_current_arr


@shared_task(ignore_result=True, acks_late=True, max_retries=3)
def refresh_all_current_arr() -> int:
    """Contracts start and end with the calendar, so current ARR is refreshed on a schedule too."""
    changed = 0
    for org_id in Organization.objects.values_list("id", flat=True):
        changed += refresh_current_arr(org_id)
    return changed


@shared_task(ignore_result=True, acks_late=True, max_retries=3)
def run_import(job_id: int) -> None:
    """Run the CSV import recorded as JobRun ``job_id`` (params: kind, path, dry_run).

    Safe to retry: imports upsert by external id (activities skip identical rows), and a file with
    any bad row writes nothing. The row errors are stored on the run, and mark it failed.
    """
    from cs_platform.jobs import run_job
    from cs_platform.tenancy import org_scope

    from .imports import import_csv
    from .models import JobRun

    job = JobRun.all_orgs.select_related("organization").get(pk=job_id)
    params = job.params
    with org_scope(job.organization), run_job(job_id) as recorder:
        result = import_csv(
            job.organization,
            params["kind"],
            params["path"],
            dry_run=bool(params.get("dry_run")),
            recorder=recorder,
        )
        recorder.count(**result.counts())
        if not result.ok:
            recorder.job.errors = [error.as_dict() for error in result.errors]
