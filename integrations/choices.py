"""Choices of the integrations app."""

from django.db import models

from cs_platform.choices import JobStatus

__all__ = [
    "CapturedEmailStatus",
    "ConnectionStatus",
    "Direction",
    "InboundOutcome",
    "InboundSource",
    "JobStatus",
    "RunMode",
    "RunTrigger",
    "WebhookOutcome",
]


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


class InboundSource(models.TextChoices):
    SMTP = "smtp", "SMTP listener"
    IMAP = "imap", "IMAP mailbox"


class InboundOutcome(models.TextChoices):
    """What became of one received message (email to the timeline)."""

    QUEUED = "queued", "Queued"
    CAPTURED = "captured", "On an account's timeline"
    UNMATCHED = "unmatched", "In the unmatched inbox"
    DUPLICATE = "duplicate", "Duplicate Message-ID"
    SKIPPED = "skipped", "Skipped (never-capture domains only)"
    FAILED = "failed", "Failed"


class CapturedEmailStatus(models.TextChoices):
    MATCHED = "matched", "On an account's timeline"
    UNMATCHED = "unmatched", "Unmatched"
    DISCARDED = "discarded", "Discarded"


class WebhookOutcome(models.TextChoices):
    """What became of one event received by a connector's webhook (Stripe)."""

    APPLIED = "applied", "Applied"
    UNCHANGED = "unchanged", "Already there"
    STALE = "stale", "Older than an event already applied"
    UNMATCHED = "unmatched", "No account matched"
    FAILED = "failed", "Refused by the import"
    IGNORED = "ignored", "Not an event Retain uses"
