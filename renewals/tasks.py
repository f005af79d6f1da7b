"""Celery tasks of the renewals app. Thin: take ids, are safe to retry, record their run (org_task)."""

from __future__ import annotations

from accounts.models import Organization
from cs_platform.jobs import JobError, JobRecorder, create_job
from cs_platform.tasks import org_task, sweep_task

from .backtest import run_backtest
from .models import Backtest
from .services import create_due_renewals

JOB_KIND = "create_due_renewals"


@sweep_task("beat: create_all_due_renewals over every organization")
def create_all_due_renewals() -> int:
    """Beat entry (daily): queue one recorded run of :func:`create_due_renewals_task` per organization.

    Returns how many it queued. Each run is idempotent, so a missed day is caught up by the next one.
    """
    org_ids = list(Organization.objects.order_by("id").values_list("id", flat=True))
    for org_id in org_ids:
        job = create_job(organization_id=org_id, kind=JOB_KIND)
        create_due_renewals_task.delay(org_id, job_id=job.pk)
    return len(org_ids)


@org_task()
def create_due_renewals_task(organization_id: int, *, job: JobRecorder | None = None) -> int:
    """Open the renewals of one organization's contracts that entered the renewal window (idempotent)."""
    created = create_due_renewals(Organization.objects.get(pk=organization_id))
    if job is not None:
        job.count(renewals_opened=created)
    return created


@org_task()
def run_backtest_task(organization_id: int, backtest_id: int, *, job: JobRecorder | None = None) -> int:
    """Run one scorecard backtest (``renewals.backtest.run_backtest``); safe to retry: the result is replaced.
    Published name :data:`renewals.backtest.BACKTEST_TASK`. Returns the number of renewals scored."""
    organization = Organization.objects.get(pk=organization_id)
    backtest = Backtest.objects.select_related("scorecard_version").filter(pk=backtest_id).first()
    if backtest is None:  # its scorecard or version was removed while the message waited
        raise JobError("This backtest no longer exists: its scorecard or version was removed.")
    return run_backtest(organization, backtest, job=job)["scored"]
