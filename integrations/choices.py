"""Choices of the integrations app."""

from django.db import models

from cs_platform.choices import JobStatus

__all__ = ["ConnectionStatus", "Direction", "JobStatus", "RunMode", "RunTrigger", "WebhookOutcome"]


class ConnectionStatus(models.TextChoices):
    UNTESTED = "untested", "Not tested yet"
    OK = "ok", "Connected"
    FAILING = "failing", "Failing"


class Direction(models.TextChoices):
    PULL = "pull", "Pull into Retain"
    PUSH = "push", "Push to the vendor"
    BOTH = "both", "Both ways"


class RunMode(models.TextChoices):
    DRY_RUN = "dry_run", "Dry run"
    SYNC = "sync", "Sync"
    PUSH = "push", "Push"


class RunTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "Manual"
    WEBHOOK = "webhook", "Webhook (the day's events)"


class WebhookOutcome(models.TextChoices):
    """What became of one event received by a connector's webhook (Stripe)."""

    APPLIED = "applied", "Applied"
    UNCHANGED = "unchanged", "Already there"
    STALE = "stale", "Older than an event already applied"
    UNMATCHED = "unmatched", "No account matched"
    FAILED = "failed", "Refused by the import"
    IGNORED = "ignored", "Not an event Retain uses"
