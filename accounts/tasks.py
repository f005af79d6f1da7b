"""Celery tasks of the accounts app. Thin: take ids, are safe to retry, record their run (org_task)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import shared_task

from cs_platform.jobs import JobError, JobRecorder, create_job
from cs_platform.tasks import TRANSIENT_ERRORS, org_task

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


@org_task()
def run_import(organization_id: int, *, job: JobRecorder | None = None) -> None:
    """Run the CSV import recorded as the JobRun passed with ``job_id`` (params: kind, path, dry_run).

    Safe to retry: imports upsert by external id (activities skip identical rows), and a file with
    any bad row writes nothing. The row errors are stored on the run, and mark it failed. The uploaded
    file is deleted when the run ends, whatever its outcome, unless a retry is coming (a worker that
    dies mid-run leaves it, so the stalled run can run again).
    """
    from .imports import import_csv, import_limits
    from .uploads import discard_upload

    if job is None:
        raise ValueError("run_import needs job_id: the import's parameters live on its JobRun")
    params: dict[str, Any] = job.job.params
    path = Path(params["path"])
    retry_coming = False
    try:
        if not path.is_file():
            raise JobError(
                "The uploaded file is no longer on the server (an upload is deleted when its run ends). "
                "Upload the file again."
            )
        organization = Organization.objects.get(pk=organization_id)
        result = import_csv(
            organization,
            params["kind"],
            path,
            dry_run=bool(params.get("dry_run")),
            recorder=job,
            max_rows=import_limits(organization).max_rows,
        )
    except TRANSIENT_ERRORS:
        retry_coming = run_import.request.retries < run_import.max_retries
        raise
    finally:
        if not retry_coming:
            discard_upload(path)
    job.count(**result.counts())
    if not result.ok:
        job.job.errors = [error.as_dict() for error in result.errors]
