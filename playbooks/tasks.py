"""Celery tasks of the playbooks app (thin: ids in, the service does the work).

``deliver_webhook`` runs on the ``outbound`` queue (``CELERY_TASK_ROUTES`` in settings), served by
workers of its own: see docs/operations.md.
"""

from __future__ import annotations

from cs_platform.tasks import org_task, sweep_task

from . import services


# The outbound guard bounds every call (OUTBOUND_CONNECT_TIMEOUT + OUTBOUND_TIMEOUT); the time limits
# are a second fence for prefork workers, far below the project-wide default of an hour.
@org_task(soft_time_limit=90, time_limit=120)
def deliver_webhook(organization_id: int, delivery_id: int, attempt: int = 1) -> None:
    """Make try ``attempt`` of a webhook delivery. Safe to run twice: a repeated or stale message
    does nothing, and a succeeded delivery is never re-sent. Retries of a failed try, and a try put
    off because the organization's outbound slots were busy, are new messages with a countdown
    scheduled by the service, not raised retries."""
    services.attempt_delivery(organization_id, delivery_id, attempt=attempt)


@org_task(soft_time_limit=90, time_limit=120)
def deliver_chat(organization_id: int, delivery_id: int, attempt: int = 1) -> None:
    """Make try ``attempt`` of a chat (Slack/Teams) delivery (playbooks.chat.attempt_chat_delivery); the same
    rules as :func:`deliver_webhook`: safe to run twice, retries are new messages with a countdown."""
    from .chat import attempt_chat_delivery

    attempt_chat_delivery(organization_id, delivery_id, attempt=attempt)


@org_task(soft_time_limit=90, time_limit=120)
def post_notifications_to_chat(organization_id: int, notification_ids: list[int]) -> int:
    """Post new in-app notifications to the organization's chat channels subscribed to their kinds
    (playbooks.chat.post_notifications): once per channel and notification, so safe to run twice."""
    from .chat import post_notifications

    return post_notifications(organization_id, notification_ids)


@sweep_task("beat: evaluate_all_playbooks over every organization")
def evaluate_all_playbooks() -> int:
    """Beat entry (every 15 minutes): one :func:`evaluate_playbooks` per organization with an active playbook.

    Idempotent: occurrences already recorded are not fired again, so a run that overlaps the previous one, or
    repeats after a crash, does no harm."""
    from .models import Playbook

    queued = 0
    for org_id in Playbook.all_orgs.filter(active=True).values_list("organization_id", flat=True).distinct():
        evaluate_playbooks.delay(org_id)
        queued += 1
    return queued


@org_task(soft_time_limit=600, time_limit=660)
def evaluate_playbooks(organization_id: int) -> dict[str, int]:
    """Evaluate every active playbook of the organization (playbooks.engine.evaluate_organization)."""
    from .engine import evaluate_organization

    return evaluate_organization(organization_id)


@sweep_task("beat: send_all_digests over every organization")
def send_all_digests() -> int:
    """Beat entry (hourly): one :func:`send_digests` per organization where a member turned the daily digest
    on or an enabled chat channel receives it. Idempotent: each member's day is claimed once (playbooks.digest)."""
    from .models import ChatChannel, NotificationPreference

    queued = 0
    members = NotificationPreference.all_orgs.filter(daily_digest=True).order_by().values_list("organization_id")
    channels = ChatChannel.all_orgs.filter(daily_digest=True, is_active=True).order_by().values_list("organization_id")
    for org_id in sorted({pk for (pk,) in members.union(channels)}):
        send_digests.delay(org_id)
        queued += 1
    return queued


@org_task(soft_time_limit=600, time_limit=660)
def send_digests(organization_id: int) -> dict[str, int]:
    """The organization's daily digests (playbooks.digest.send_daily_digests), from DIGEST_HOUR local time."""
    from .chat import send_chat_digests
    from .digest import send_daily_digests

    counts = send_daily_digests(organization_id)
    counts["channels"] = send_chat_digests(organization_id)
    return counts
