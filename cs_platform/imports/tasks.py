"""Background import runs: :func:`start_import` records a queued JobRun and enqueues :func:`run_import`.

``run_import`` keeps the Celery name it had when it lived in ``accounts.tasks``
(``accounts.tasks.run_import``): messages already queued under that name, and a stalled run enqueued
again, still find it. The worker imports this module through ``cs_platform.celery``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db import transaction

from cs_platform.jobs import JobError, JobRecorder, create_job
from cs_platform.tasks import TRANSIENT_ERRORS, org_task

from .engine import check_kind, import_csv
from .limits import import_limits, organization_model
from .uploads import discard_upload

__all__ = ["IMPORT_JOB_KIND", "RUN_IMPORT_TASK", "rerun_import", "run_import", "start_import", "upload_available"]

IMPORT_JOB_KIND = "import_csv"  # the JobRun kind of an import run
RUN_IMPORT_TASK = "accounts.tasks.run_import"  # the published task name (see the module docstring)


@org_task(name=RUN_IMPORT_TASK)
def run_import(organization_id: int, *, job: JobRecorder | None = None) -> None:
    """Run the CSV import recorded as the JobRun passed with ``job_id`` (params: kind, path, dry_run).

    Safe to retry: imports upsert by external id (activities skip identical rows), and a file with
    any bad row writes nothing. The row errors are stored on the run, and mark it failed. The uploaded
    file is deleted when the run ends, whatever its outcome, unless a retry is coming (a worker that
    dies mid-run leaves it, so the stalled run can run again).
    """
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
        organization = organization_model().objects.get(pk=organization_id)
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


def start_import(
    organization: Any,
    kind: str,
    path: str | Path,
    *,
    user: Any = None,
    dry_run: bool = False,
    filename: str = "",
) -> Any:
    """Record a queued import run and enqueue it once the caller's transaction commits.

    ``path`` must be readable by the workers (shared media storage); the run deletes it when it ends.
    ``filename`` is the name the user gave the file (shown on the run's page). Returns the JobRun.
    """
    check_kind(kind)
    job = create_job(
        organization_id=organization.pk,
        kind=IMPORT_JOB_KIND,
        params={"kind": kind, "path": str(path), "dry_run": dry_run, "filename": filename[:255]},
        user=user,
    )
    transaction.on_commit(lambda: run_import.delay(organization.pk, job_id=job.pk))
    return job


def upload_available(job: Any) -> bool:
    """Whether the run's uploaded file is still on the server: a run that ended deleted it; one whose
    worker died (stalled) did not."""
    path = (job.params or {}).get("path")
    return bool(path) and Path(path).is_file()


def rerun_import(job: Any) -> None:
    """Enqueue an import run again (an admin's "Run again" on a stalled run, whose file is still there).

    Safe because an import is one transaction: a run that died wrote nothing, and a finished one
    re-imports as "unchanged". The run keeps its id; ``attempts`` counts the tries.
    """
    transaction.on_commit(lambda: run_import.delay(job.organization_id, job_id=job.pk))
