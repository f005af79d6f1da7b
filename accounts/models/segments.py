"""Segments: named rule sets over account fields (spec §5), used by scorecards, dashboards and playbooks."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from cs_platform.tenancy import OrgScopedModel

from ..segments import rule_problems
from .versions import ConfigVersionBase, version_constraints

__all__ = ["Segment", "SegmentMembership", "SegmentTransition", "SegmentVersion", "TransitionKind"]


class Segment(OrgScopedModel):
    """A named rule set over account fields (spec §5), used to bind scorecards and to split dashboards.

    ``rules`` shape (validated and compiled to one SQL condition by :mod:`accounts.segments`)::

        {"match": "all" | "any",
         "conditions": [{"field": "arr", "op": "gte", "value": "500000"},
                        {"any": [...conditions...]}]}          # a nested OR/AND group

    Fields: account columns (``arr``, ``hierarchy_arr``, ``touch_model``, ``lifecycle_stage``,
    ``industry``, ``region``, ``owner``, ``tags``, ``employees``, ``customer_since``,
    ``custom_fields.<name>``) and the derived values the apps register (team, days since last touch,
    health colour/score/Δ7/Δ30, usage trends, open P1 tickets, days to renewal, NPS): docs/segments.md.
    Members are stored (:class:`SegmentMembership`) by :func:`accounts.segment_membership.refresh_memberships`;
    ``refreshed_at`` is when that last ran for this segment.
    """

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    rules = models.JSONField(default=dict)
    position = models.PositiveIntegerField(default=0, help_text="Display order on dashboards")
    refreshed_at = models.DateTimeField(null=True, blank=True, help_text="When its stored members were last refreshed")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(OrgScopedModel.Meta):
        # Moved from playbooks without moving data (migrations accounts 0006, playbooks 0004): same table.
        db_table = "playbooks_segment"
        ordering = ["position", "name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="playbooks_segment_unique_name")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        problems = rule_problems(self.rules)
        if problems:
            raise ValidationError({"rules": problems})

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Every save path (API, forms, django-admin, scripts) refuses rules that could not be compiled;
        # only a raw write can store them, and then the segment matches nothing (accounts.segments).
        self.clean()
        super().save(*args, **kwargs)


class SegmentVersion(ConfigVersionBase):
    """One version of a segment's configuration (docs/admin-guide.md, "Drafts"): ``content`` is
    ``{"name", "description", "rules"}``. A ``draft`` is edited and changes nothing live; publishing it
    (:func:`accounts.segment_drafts.publish`) copies its content onto the :class:`Segment` (which is what
    everything reads), makes it ``published`` and the previous one ``superseded``. At most one version of a
    segment is published, and its content is the segment's."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="versions")

    class Meta(OrgScopedModel.Meta):
        ordering = ["segment", "-number"]
        constraints = version_constraints("segment", "accounts_segmentversion")

    def __str__(self) -> str:
        return f"{self.segment_id} v{self.number} ({self.state})"


class SegmentMembership(OrgScopedModel):
    """An account that matched a segment's rules at the last refresh, since ``entered_at`` (the refresh that
    first saw it match). Written only by :func:`accounts.segment_membership.refresh_memberships`, set-based."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="segment_memberships")
    entered_at = models.DateTimeField()

    class Meta(OrgScopedModel.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "segment", "account"], name="accounts_segment_membership_unique"
            )
        ]
        indexes = [models.Index(fields=["organization", "account"], name="accounts_segmember_org_acct")]

    def __str__(self) -> str:
        return f"{self.account_id} in {self.segment_id}"


class TransitionKind(models.TextChoices):
    ENTERED = "entered", "Entered"
    LEFT = "left", "Left"


class SegmentTransition(OrgScopedModel):
    """An account entering or leaving a segment, as a refresh saw it (the history behind the
    ``segment.entered`` / ``segment.left`` domain events, which are recorded in the same transaction)."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="transitions")
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="segment_transitions")
    kind = models.CharField(max_length=8, choices=TransitionKind.choices)
    at = models.DateTimeField()

    class Meta(OrgScopedModel.Meta):
        ordering = ["-at", "-pk"]
        indexes = [
            models.Index(fields=["organization", "segment", "-at"], name="accounts_segtrans_org_seg_at"),
            models.Index(fields=["organization", "account", "-at"], name="accounts_segtrans_org_acct_at"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.kind} {self.segment_id}"
