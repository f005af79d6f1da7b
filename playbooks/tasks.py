"""Celery tasks of the playbooks app (thin: ids in, the service does the work)."""

from __future__ import annotations

from cs_platform.tasks import org_task

from . import services


@org_task()
def deliver_webhook(organization_id: int, delivery_id: int, attempt: int = 1) -> None:
    """Make try ``attempt`` of a webhook delivery. Safe to run twice: a repeated or stale message
    does nothing, and a succeeded delivery is never re-sent. Retries of a failed try are scheduled
    by the service as a new message with a countdown, not by raising."""
    services.attempt_delivery(organization_id, delivery_id, attempt=attempt)
