"""The optional daily digest email (issue 12 §2: "notify a user (in-app notification centre with unread count,
and an optional daily digest email)"; docs/playbooks.md, "Daily digest").

* **Who.** A member who turned it on (:class:`~playbooks.models.NotificationPreference`, off by default,
  toggled on the notifications page: :func:`set_daily_digest`), with an active user account and an email.
* **What.** One email a day with the member's unread notifications that arrived since their last digest
  (all unread ones for the first), and their open tasks due today or overdue (of open CTAs that are not
  snoozed: what the work queue shows them). A member with nothing of either gets no email that day.
* **When.** The beat (``playbooks.tasks.send_all_digests``, hourly) runs :func:`send_daily_digests` for each
  organization with a member who opted in; it sends from ``DIGEST_HOUR`` (settings, default 7) in the
  organization's time zone, so the first run after that hour sends the day's digests.
* **Exactly once a day.** :func:`send_digest` claims the member's day by inserting a
  :class:`~playbooks.models.DigestRun` (unique per organization, user and day) in the transaction that sends
  the email: a second run that day finds the claim and does nothing; an email the backend refuses rolls the
  claim back, so the next run (a retry, the next hour's beat) tries again. The run records what the digest
  held, or that there was nothing to say (``empty``: then nothing more that day).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Organization

from .choices import CtaStatus
from .models import CtaTask, DigestRun, DigestStatus, Notification, NotificationPreference

__all__ = [
    "Digest",
    "build_digest",
    "digest_enabled",
    "local_now",
    "send_daily_digests",
    "send_digest",
    "set_daily_digest",
]

logger = logging.getLogger(__name__)

#: Notifications and tasks listed in one email; the rest are counted ("and 12 more").
LISTED = 20


def digest_enabled(membership: Membership) -> bool:
    """Whether the member gets the daily digest (off unless they turned it on)."""
    return (
        NotificationPreference.objects.for_org(membership.organization_id)
        .filter(membership=membership, daily_digest=True)
        .exists()
    )


def set_daily_digest(membership: Membership, enabled: bool) -> NotificationPreference:
    """Turn the member's daily digest on or off (their own choice: any role)."""
    preference, _ = NotificationPreference.objects.for_org(membership.organization_id).update_or_create(
        organization_id=membership.organization_id, membership=membership, defaults={"daily_digest": enabled}
    )
    return preference


def local_now(organization: Organization, now: dt.datetime | None = None) -> dt.datetime:
    """``now`` in the organization's time zone."""
    return timezone.localtime(now or timezone.now(), ZoneInfo(organization.time_zone or "UTC"))


@dataclass
class Digest:
    """What one member's digest holds: the new unread notifications and the open tasks due today or overdue
    (each the first :data:`LISTED`, with the full counts)."""

    notifications: list[Notification] = field(default_factory=list)
    due_today: list[CtaTask] = field(default_factory=list)
    overdue: list[CtaTask] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not any(self.counts.values())


def build_digest(organization: Organization, user: Any, *, day: dt.date, since: dt.datetime | None) -> Digest:
    """The member's digest for ``day``: unread notifications created after ``since`` (``None``: all unread),
    and open tasks assigned to them due on ``day`` or before, of open CTAs not snoozed past ``day``.

    ``user=None``: the organization's digest (a chat channel's, ``playbooks.chat``): every member's open tasks
    due on ``day`` or before, and no notifications (those are personal)."""
    notifications = Notification.objects.for_org(organization).filter(user=user, read_at__isnull=True)
    if user is None:
        notifications = notifications.none()
    if since is not None:
        notifications = notifications.filter(created_at__gt=since)
    tasks = CtaTask.objects.for_org(organization).filter(
        done_at__isnull=True, due_date__lte=day, cta__status=CtaStatus.OPEN
    )
    if user is not None:
        tasks = tasks.filter(assignee=user)
    tasks = (
        tasks.filter(Q(cta__snoozed_until__isnull=True) | Q(cta__snoozed_until__lte=day))
        .select_related("cta__account", "assignee")
        .order_by("due_date", "cta__account__name", "position", "pk")
    )
    due, late = tasks.filter(due_date=day), tasks.filter(due_date__lt=day)
    return Digest(
        notifications=list(notifications.order_by("-created_at", "-pk")[:LISTED]),
        due_today=list(due[:LISTED]),
        overdue=list(late[:LISTED]),
        counts={"notifications": notifications.count(), "tasks_due": due.count(), "tasks_overdue": late.count()},
    )


def _message(organization: Organization, user: Any, digest: Digest, day: dt.date) -> EmailMultiAlternatives:
    base = settings.PUBLIC_BASE_URL
    counts = digest.counts
    parts = []
    if counts["notifications"]:
        parts.append(f"{counts['notifications']} new notification{'s' if counts['notifications'] != 1 else ''}")
    tasks = counts["tasks_due"] + counts["tasks_overdue"]
    if tasks:
        parts.append(f"{tasks} task{'s' if tasks != 1 else ''} due")
    context = {
        "organization": organization,
        "user": user,
        "day": day,
        "digest": digest,
        "counts": counts,
        "more": {
            "notifications": counts["notifications"] - len(digest.notifications),
            "tasks_due": counts["tasks_due"] - len(digest.due_today),
            "tasks_overdue": counts["tasks_overdue"] - len(digest.overdue),
        },
        "base": base,
        "work_url": base + reverse("work", args=[organization.slug]),
        "settings_url": base + reverse("notifications", args=[organization.slug]),
    }
    message = EmailMultiAlternatives(
        subject=f"{organization.name}: {' and '.join(parts)} ({day:%d %b})",
        body=render_to_string("playbooks/email/digest.txt", context),
        to=[user.email],
    )
    message.attach_alternative(render_to_string("playbooks/email/digest.html", context), "text/html")
    return message


def send_digest(membership: Membership, *, day: dt.date, now: dt.datetime | None = None) -> DigestRun | None:
    """Send ``membership``'s digest of ``day`` unless that day is already claimed; returns the run recorded
    (``sent`` or ``empty``), or ``None`` when another run had it. An error of the email backend propagates
    and leaves the day unclaimed (see the module doc)."""
    now = now or timezone.now()
    organization, user = membership.organization, membership.user
    last = (
        DigestRun.objects.for_org(organization)
        .filter(user=user, status=DigestStatus.SENT, day__lt=day)
        .order_by("-day")
        .values_list("at", flat=True)
        .first()
    )
    try:
        with transaction.atomic():
            run = DigestRun.all_orgs.create(
                organization_id=organization.pk, user=user, day=day, status=DigestStatus.EMPTY, at=now
            )
            digest = build_digest(organization, user, day=day, since=last)
            run.notifications = digest.counts["notifications"]
            run.tasks_due, run.tasks_overdue = digest.counts["tasks_due"], digest.counts["tasks_overdue"]
            if not digest.empty:
                get_connection().send_messages([_message(organization, user, digest, day)])
                run.status = DigestStatus.SENT
            run.save(update_fields=["status", "notifications", "tasks_due", "tasks_overdue"])
        return run
    except IntegrityError:
        return None  # that day's digest is claimed already


def send_daily_digests(organization_id: int, *, now: dt.datetime | None = None, force: bool = False) -> dict[str, int]:
    """The beat's work for one organization: each opted-in member's digest of the organization's local day,
    once it is ``DIGEST_HOUR`` there (``force``: whatever the hour). A member whose digest failed to send is
    logged and tried again on the next run. Returns counts (sent, empty, failed, already done)."""
    organization = Organization.objects.get(pk=organization_id)
    local = local_now(organization, now)
    counts = {"sent": 0, "empty": 0, "failed": 0, "done_before": 0}
    if not force and local.hour < settings.DIGEST_HOUR:
        return counts
    day = local.date()
    done = set(DigestRun.objects.for_org(organization).filter(day=day).values_list("user_id", flat=True))
    members = (
        Membership.objects.for_org(organization)
        .filter(
            pk__in=NotificationPreference.objects.for_org(organization)
            .filter(daily_digest=True)
            .values("membership_id"),
            user__is_active=True,
        )
        .exclude(user__email="")
        .select_related("organization", "user")
        .order_by("pk")
    )
    for membership in members:
        if membership.user_id in done:
            counts["done_before"] += 1
            continue
        try:
            run = send_digest(membership, day=day, now=now)
        except Exception:
            logger.exception("digest of %s for member %s failed", day, membership.pk)
            counts["failed"] += 1
            continue
        if run is None:
            counts["done_before"] += 1
        else:
            counts[run.status] += 1
    return counts
