"""Enumerations of the accounts app (spec §1, §2).

``Role``, ``JobStatus`` and ``DEFAULT_LIFECYCLE_STAGES`` belong to the kernel (``cs_platform.choices``, used
by the tenancy models) and are re-exported here for the apps that always imported them from accounts.
"""

from django.db import models

from cs_platform.choices import DEFAULT_LIFECYCLE_STAGES, JobStatus, Role

__all__ = [
    "DEFAULT_LIFECYCLE_STAGES",
    "KEY_CONTACT_ROLES",
    "NON_TOUCH_ACTIVITY_TYPES",
    "ActivityType",
    "ContactRole",
    "JobStatus",
    "ObjectiveStatus",
    "Role",
    "Sentiment",
    "Seniority",
    "TouchModel",
    "ContractStatus",
]


class TouchModel(models.TextChoices):
    HIGH = "high", "High touch"
    LOW = "low", "Low touch"
    TECH = "tech", "Tech touch"


class ContactRole(models.TextChoices):
    CHAMPION = "champion", "Champion"
    EXECUTIVE_SPONSOR = "executive_sponsor", "Executive sponsor"
    ECONOMIC_BUYER = "economic_buyer", "Economic buyer"
    POWER_USER = "power_user", "Power user"
    ADMIN = "admin", "Admin"
    END_USER = "end_user", "End user"


KEY_CONTACT_ROLES = (ContactRole.CHAMPION, ContactRole.EXECUTIVE_SPONSOR, ContactRole.ECONOMIC_BUYER)


class Seniority(models.TextChoices):
    EXECUTIVE = "executive", "Executive"
    DIRECTOR = "director", "Director"
    MANAGER = "manager", "Manager"
    INDIVIDUAL = "individual", "Individual contributor"


class ContractStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ENDED = "ended", "Ended"
    CANCELLED = "cancelled", "Cancelled"


class ActivityType(models.TextChoices):
    CALL = "call", "Call"
    MEETING = "meeting", "Meeting"
    EMAIL = "email", "Email"
    QBR = "qbr", "QBR"
    EBR = "ebr", "EBR"
    ONSITE = "onsite", "Onsite"
    NOTE = "note", "Internal note"
    TRAINING = "training", "Training"


# Internal notes are not a customer touch (spec §2).
NON_TOUCH_ACTIVITY_TYPES = frozenset({ActivityType.NOTE})


class Sentiment(models.TextChoices):
    POSITIVE = "positive", "Positive"
    NEUTRAL = "neutral", "Neutral"
    NEGATIVE = "negative", "Negative"


class ObjectiveStatus(models.TextChoices):
    NOT_STARTED = "not_started", "Not started"
    ON_TRACK = "on_track", "On track"
    AT_RISK = "at_risk", "At risk"
    ACHIEVED = "achieved", "Achieved"
    MISSED = "missed", "Missed"


class VersionState(models.TextChoices):
    """Where a version of a configuration (segment, playbook) stands: a draft being edited, the one
    published (what the engine reads; one per object), or one published before and replaced since."""

    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
    SUPERSEDED = "superseded", "Superseded"
