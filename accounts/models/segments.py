"""Segments: named rule sets over account fields (spec §5), used by scorecards, dashboards and playbooks."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from cs_platform.tenancy import OrgScopedModel

from ..segments import rule_problems

__all__ = ["Segment"]


class Segment(OrgScopedModel):
    """A named rule set over account fields (spec §5), used to bind scorecards and to split dashboards.

    ``rules`` shape (validated and compiled to one SQL condition by :mod:`accounts.segments`)::

        {"match": "all" | "any",
         "conditions": [{"field": "arr", "op": "gte", "value": "500000"},
                        {"any": [...conditions...]}]}          # a nested OR/AND group

    Fields for now: account columns (``arr``, ``hierarchy_arr``, ``touch_model``, ``lifecycle_stage``,
    ``industry``, ``region``, ``owner``, ``tags``, ``employees``, ``customer_since``,
    ``custom_fields.<name>``) and the latest health (``health_color``, ``health_score``). The
    playbooks issue adds derived values (days to renewal, NPS, usage trend), live membership and
    enter/leave events.
    """

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    rules = models.JSONField(default=dict)
    position = models.PositiveIntegerField(default=0, help_text="Display order on dashboards")
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
