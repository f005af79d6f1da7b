"""The columns every kind of versioned configuration shares (docs/admin-guide.md, "Drafts"; the rules are
:mod:`accounts.versioning`'s): :class:`ConfigVersionBase` is abstract, each concrete version model adds its
foreign key to the live object and its own ``Meta`` (ordering and constraints, named per model)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from cs_platform.tenancy import OrgScopedModel

from ..choices import VersionState

__all__ = ["ConfigVersionBase", "version_constraints"]


class ConfigVersionBase(OrgScopedModel):
    """One version of a live object's configuration: ``number`` (1, 2, … per object), ``state`` (draft,
    published, superseded), ``content`` (the kind's content keys), ``note``, who created and published it
    and when. A concrete model adds the foreign key to its live object (``segment``, ``playbook``) and the
    two constraints of :func:`version_constraints` in its ``Meta``."""

    number = models.PositiveIntegerField()
    state = models.CharField(max_length=12, choices=VersionState.choices, default=VersionState.DRAFT)
    content = models.JSONField(default=dict)
    note = models.CharField(max_length=300, blank=True, help_text="What changed, written by the editor")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta(OrgScopedModel.Meta):
        abstract = True


def version_constraints(parent: str, prefix: str) -> list[models.BaseConstraint]:
    """A version model's two constraints, named ``<prefix>_unique_number`` and ``<prefix>_one_published``
    (``prefix``: ``<app_label>_<model name>``, as the migrations named them): the number unique per live
    object (its foreign key ``parent``), and at most one ``published`` version per live object."""
    return [
        models.UniqueConstraint(fields=["organization", parent, "number"], name=f"{prefix}_unique_number"),
        models.UniqueConstraint(
            fields=["organization", parent], condition=models.Q(state="published"), name=f"{prefix}_one_published"
        ),
    ]
