"""Where feature requests (feedback) meet what sits above them: the status-change notices and the check of a
link's blocked renewal (feedback may not import renewals, either way; playbooks may import both).

Notices: the ``feature-request-notices`` consumer of ``feature_request.status_changed``.

feedback records the event with the linked accounts and their owners (feedback sits below playbooks, where
the notification centre and email live); this consumer turns it into one in-app notification and one email
per CSM who owns a linked account (each CSM once, however many of their accounts are linked), except the
member who made the change. Active members only: a former member's account owner gets nothing.

Exactly once per event (the event stream's receipt); the email is sent after the notifications commit, and a
mail server outage is logged, never raised (the in-app notification is the record).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.urls import reverse

from accounts.models import Membership, Organization
from feedback.models_requests import RequestStatus

from .choices import NotificationKind
from .ctas import notify

__all__ = ["CONSUMER_NAME", "EVENTS", "check_blocked_renewal", "on_status_changed"]

logger = logging.getLogger(__name__)

CONSUMER_NAME = "feature-request-notices"
EVENTS = ("feature_request.status_changed",)


def _label(status: str) -> str:
    try:
        return str(RequestStatus(status).label)
    except ValueError:
        return status


def on_status_changed(event: Any) -> None:
    """Notify (in-app and by email) the owners of the accounts linked to the request."""
    payload = event.payload or {}
    org_id = event.organization_id
    owners = {a.get("owner") for a in payload.get("accounts", []) if a.get("owner")}
    changed_by = (payload.get("changed_by") or "").lower()
    members = set(
        Membership.all_orgs.filter(organization_id=org_id, user_id__in=owners, user__is_active=True).values_list(
            "user_id", flat=True
        )
    )
    users = list(get_user_model().objects.filter(pk__in=members).order_by("pk"))
    users = [u for u in users if not changed_by or (u.email or "").lower() != changed_by]
    if not users:
        return
    slug = Organization.objects.filter(pk=org_id).values_list("slug", flat=True).first()
    url = reverse("feature-request", kwargs={"org_slug": slug, "request_id": payload.get("id")}) if slug else ""
    title = payload.get("title", "")
    to_label, from_label = _label(payload.get("to", "")), _label(payload.get("from", ""))
    message = f"Feature request “{title}” moved from {from_label} to {to_label}."
    accounts_by_owner: dict[int, list[str]] = {}
    for account in payload.get("accounts", []):
        accounts_by_owner.setdefault(account.get("owner"), []).append(account.get("name", ""))
    messages = []
    for user in users:
        notify(user, organization=org_id, message=message, url=url, kind=NotificationKind.FEATURE_REQUEST)
        if user.email:
            names = ", ".join(sorted(accounts_by_owner.get(user.pk, [])))
            body = (
                f"{message}\n\nYour accounts waiting on it: {names}.\n"
                + (f"Issue: {payload.get('external_issue_key')}\n" if payload.get("external_issue_key") else "")
                + f"\nOpen it in Retain: {settings.PUBLIC_BASE_URL}{url}\n"
            )
            messages.append(
                EmailMessage(
                    " ".join(f"[Retain] {title}: {to_label}".split())[:200],
                    body,
                    settings.DEFAULT_FROM_EMAIL,
                    [user.email],
                )
            )

    def deliver() -> None:
        try:
            get_connection().send_messages(messages)
        except Exception:  # noqa: BLE001  (an outage must not undo the notifications that committed)
            logger.exception("feature request %s: sending %d notices failed", payload.get("id"), len(messages))

    if messages:
        transaction.on_commit(deliver)


def check_blocked_renewal(organization_id: int, account_id: int, renewal_id: int) -> str | None:
    """A link's ``blocked_renewal_id`` must be a renewal of the same organization and account."""
    from renewals.models import Renewal

    if Renewal.all_orgs.filter(organization_id=organization_id, account_id=account_id, pk=renewal_id).exists():
        return None
    return "No renewal of this account has that id."
