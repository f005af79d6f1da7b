"""Enumerations of the kernel: member roles and job statuses (the tenancy models and every app use them).

``accounts.choices`` re-exports them, so ``from accounts.choices import Role`` keeps working above the kernel.
"""

from django.db import models

__all__ = ["DEFAULT_LIFECYCLE_STAGES", "JobStatus", "Role"]


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    LEADER = "leader", "Leader"
    CSM = "csm", "CSM"
    VIEWER = "viewer", "Viewer"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


#: An organization's lifecycle stages until its admins change them (``Organization.lifecycle_stages``).
DEFAULT_LIFECYCLE_STAGES = ["onboarding", "adoption", "mature", "renewal", "churned"]
