"""Choices of the value-story app."""

from django.db import models


class MilestoneMark(models.TextChoices):
    """What reaching a milestone means for the onboarding clock (configurable per template)."""

    NONE = "", "—"
    KICKOFF = "kickoff", "Kickoff (starts the clock)"
    GO_LIVE = "go_live", "Go-live (stops the go-live clock)"
    FIRST_VALUE = "first_value", "First value (stops the time-to-value clock)"


class MilestoneOwnerRole(models.TextChoices):
    """Who owns a template's milestone; ``csm`` resolves to the account's owner when a project starts."""

    CSM = "csm", "CSM"
    IMPLEMENTATION = "implementation", "Implementation"
    CUSTOMER = "customer", "Customer"
    SALES = "sales", "Sales"


class OnboardingStatus(models.TextChoices):
    """Where an onboarding project stands: ``active`` until go-live, ``live`` until first value (or every
    milestone) is reached, then ``completed``; ``cancelled`` projects leave every figure."""

    ACTIVE = "active", "Onboarding"
    LIVE = "live", "Live, first value pending"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


#: Statuses of a project that is still running (at most one per account).
OPEN_ONBOARDING_STATUSES = (OnboardingStatus.ACTIVE, OnboardingStatus.LIVE)


class ReviewKind(models.TextChoices):
    QBR = "qbr", "QBR"
    EBR = "ebr", "EBR"


class ReviewStatus(models.TextChoices):
    """A business review is prepared (``open``) and then ``closed``: closing records the activity and the
    next review's objectives, and freezes the report's figures."""

    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"
