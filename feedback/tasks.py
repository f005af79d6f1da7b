"""Celery tasks of the feedback app: thin (ids in, a service call, the run recorded), safe to run twice.

* ``run_all_survey_sends`` (beat, every 5 minutes): one recorded ``run_survey_sends`` per organization
  with something due (a send's run, or a drip email).
* ``run_survey_sends(org)``: :func:`feedback.services.run_due_sends` — due runs, then due emails.
"""

from __future__ import annotations

from django.utils import timezone

from accounts.models import Organization
from cs_platform.jobs import JobRecorder, create_job
from cs_platform.tasks import org_task, sweep_task

from .models import InvitationStatus, SendStatus, SurveyInvitation, SurveySend
from .services import run_due_sends

JOB_KIND = "run_survey_sends"


@sweep_task("beat: run_all_survey_sends over every organization")
def run_all_survey_sends() -> int:
    """Beat entry: queue one recorded run per organization that has a send or a drip email due."""
    now = timezone.now()
    due = set(
        SurveySend.all_orgs.filter(status__in=(SendStatus.SCHEDULED, SendStatus.ACTIVE), next_run_at__lte=now)
        .values_list("organization_id", flat=True)
        .distinct()
    ) | set(
        SurveyInvitation.all_orgs.filter(status=InvitationStatus.SCHEDULED, scheduled_for__lte=now)
        .values_list("organization_id", flat=True)
        .distinct()
    )
    org_ids = sorted(set(Organization.objects.filter(pk__in=due).values_list("id", flat=True)))
    for org_id in org_ids:
        job = create_job(organization_id=org_id, kind=JOB_KIND)
        run_survey_sends.delay(org_id, job_id=job.pk)
    return len(org_ids)


@org_task()
def run_survey_sends(organization_id: int, *, job: JobRecorder | None = None) -> dict[str, int]:
    """Do one organization's due survey runs and emails."""
    counts = run_due_sends(organization_id)
    if job is not None:
        job.count(**counts)
    return counts
