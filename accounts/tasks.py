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
