"""Celery tasks of the value-story app. Thin: take ids, are safe to run twice, the service does the work."""

from __future__ import annotations

from accounts.models import Organization
from cs_platform.tasks import org_task, sweep_task

from .choices import OPEN_ONBOARDING_STATUSES
from .models import OnboardingProject
from .stalls import detect_stalls


@sweep_task("beat: detect_all_stalls over every organization")
def detect_all_stalls() -> int:
    """Beat entry (hourly, so each organization's "today" turns over within the hour of its midnight): one
    :func:`detect_stalls_task` per organization with a running onboarding project. Returns how many it queued.

    Idempotent: a milestone already marked stalled raises nothing more, so overlapping or repeated runs do
    no harm and a missed run is caught up by the next."""
    org_ids = list(
        OnboardingProject.all_orgs.filter(status__in=[s.value for s in OPEN_ONBOARDING_STATUSES])
        .values_list("organization_id", flat=True)
        .distinct()
        .order_by("organization_id")
    )
    for org_id in org_ids:
        detect_stalls_task.delay(org_id)
    return len(org_ids)


@org_task()
def detect_stalls_task(organization_id: int) -> int:
    """Mark one organization's newly stalled milestones and record their events (:func:`value.stalls.detect_stalls`)."""
    return detect_stalls(Organization.objects.get(pk=organization_id))
