"""Enumerations of the work queue (spec §5): CTA status, priority, outcomes, snooze reasons, log actions."""

from django.db import models


class CtaStatus(models.TextChoices):
    """Where a CTA stands. Snoozed is not a status: a snoozed CTA is ``open`` with ``snoozed_until`` ahead."""

    OPEN = "open", "Open"
    COMPLETED = "completed", "Completed"
    CLOSED = "closed", "Closed"
    AUTO_CLOSED = "auto_closed", "Closed automatically"


class CtaPriority(models.TextChoices):
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


class CtaOutcome(models.TextChoices):
    """What completing a CTA achieved, chosen by the person who completes it."""

    RESOLVED = "resolved", "Resolved"
    PARTLY_RESOLVED = "partly_resolved", "Partly resolved"
    NOT_RESOLVED = "not_resolved", "Not resolved"
    NO_ACTION_NEEDED = "no_action_needed", "No action needed"


class SnoozeReason(models.TextChoices):
    CUSTOMER_UNAVAILABLE = "customer_unavailable", "Customer unavailable (holiday, leave)"
    WAITING_ON_CUSTOMER = "waiting_on_customer", "Waiting on the customer"
    WAITING_INTERNAL = "waiting_internal", "Waiting on another team"
    ALREADY_IN_HAND = "already_in_hand", "Already in hand elsewhere"
    OTHER = "other", "Other"


class CtaLogAction(models.TextChoices):
    """Every entry of a CTA's audit: why it fired, why it did not, and what happened to it."""

    OPENED = "opened", "Opened"
    UPDATED = "updated", "Fired again: updated, not duplicated"
    SUPPRESSED = "suppressed", "Fired while snoozed: suppressed"
    SNOOZED = "snoozed", "Snoozed"
    WOKEN = "woken", "Snooze ended"
    COMPLETED = "completed", "Completed"
    CLOSED = "closed", "Closed"
    AUTO_CLOSED = "auto_closed", "Closed automatically"
    REASSIGNED = "reassigned", "Reassigned"
    TASK_DONE = "task_done", "Task done"
    TASK_REOPENED = "task_reopened", "Task reopened"


class AssigneeRule(models.TextChoices):
    """Who gets a CTA or a task: the account's owner, the owner's team manager, or round-robin over a team."""

    OWNER = "owner", "Account owner (CSM)"
    MANAGER = "manager", "Owner's team manager"
    ROUND_ROBIN = "round_robin", "Round-robin over a team"


class NotificationKind(models.TextChoices):
    """What an in-app notification is about (``Notification.kind``). A chat channel may subscribe to any of
    them but ``other`` (``ChatChannel.notification_kinds``; docs/chat.md)."""

    CTA_OPENED = "cta_opened", "A CTA opened (for its owner)"
    CTA_ASSIGNED = "cta_assigned", "A CTA assigned to someone"
    TASK_ASSIGNED = "task_assigned", "A task assigned to someone"
    PLAYBOOK = "playbook", "A playbook's notify action"
    FEATURE_REQUEST = "feature_request", "A feature request moved"
    OTHER = "other", "Other"


#: The kinds a chat channel may subscribe to.
SUBSCRIBABLE_NOTIFICATION_KINDS = [(value, label) for value, label in NotificationKind.choices if value != "other"]


def ordered_notification_kinds(values: list[str]) -> list[str]:
    """One spelling of each set of subscribable kinds (deduplicated, in the catalogue's order): the API and the
    admin page store the same list for the same choice, so audit diffs stay meaningful."""
    order = [kind for kind, _ in SUBSCRIBABLE_NOTIFICATION_KINDS]
    return sorted(set(values), key=order.index)
