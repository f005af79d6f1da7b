"""Recorded background job runs, shown to admins with their progress and errors."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from cs_platform.tenancy import OrgScopedModel

from ..choices import JobStatus

__all__ = ["JobRun"]


class JobRun(OrgScopedModel):
    """One run of a background job (import, recompute, ARR refresh, …) and what came of it."""

    kind = models.CharField(max_length=60)
    status = models.CharField(max_length=12, choices=JobStatus.choices, default=JobStatus.QUEUED)
    params = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "kind", "-created_at"], name="accounts_jobrun_org_kind")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def progress_percent(self) -> int:
        if not self.progress_total:
            return 100 if self.status == JobStatus.SUCCEEDED else 0
        return min(100, round(100 * self.progress_done / self.progress_total))

    @property
    def is_stalled(self) -> bool:
        """Running for longer than the hard task time limit: its worker died (a killed process records
        nothing), so it will only come back when the broker redelivers it, or when an admin runs it again."""
        limit = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
        return (
            self.status == JobStatus.RUNNING
            and self.started_at is not None
            and timezone.now() - self.started_at > limit
        )

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None
