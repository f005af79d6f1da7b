"""Fail-closed row-level tenancy.

Every tenant-owned model inherits :class:`OrgScopedModel`. Its ``objects`` manager refuses to
build a queryset unless an organization is known, either from the ambient scope set with
:func:`org_scope` (the API base viewset, page decorator and Celery tasks set it) or explicitly
with ``Model.objects.for_org(org)``. The unscoped manager is deliberately named ``all_orgs`` so
that every bypass stands out in review; it is also the default manager, which keeps Django
internals (related managers, admin, migrations, deserialisation) working.

The manager is defence in depth, not the whole boundary: related-object access and raw SQL are
not scoped by it. Views and services resolve the organization first and only then reach data.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Generic, TypeVar

from django.db import models, transaction

__all__ = [
    "OrgScopeError",
    "OrgScopedManager",
    "OrgScopedModel",
    "current_org_id",
    "org_scope",
]

_current_org_id: ContextVar[int | None] = ContextVar("retain_current_org_id", default=None)

M = TypeVar("M", bound=models.Model)
#: An ``Organization`` (cs_platform.organizations, which builds on this module) or its id.
OrgRef = models.Model | int


class OrgScopeError(RuntimeError):
    """A tenant model was queried, or saved, without (or against) the current organization."""


def current_org_id() -> int | None:
    """The organization id of the ambient scope, or ``None`` outside any scope."""
    return _current_org_id.get()


def _org_id(org: OrgRef) -> int:
    org_id = org if isinstance(org, int) else org.pk
    if org_id is None:
        raise OrgScopeError("organization has no primary key")
    return org_id


@contextmanager
def org_scope(org: OrgRef) -> Iterator[int]:
    """Run a block with ``org`` as the ambient organization (nesting restores the outer one)."""
    token = _current_org_id.set(_org_id(org))
    try:
        yield _current_org_id.get()  # type: ignore[misc]
    finally:
        _current_org_id.reset(token)


class OrgScopedQuerySet(models.QuerySet[M], Generic[M]):
    """Queryset of a tenant model; always already filtered to one organization."""


class OrgScopedManager(models.Manager[M], Generic[M]):
    """Manager that filters by the ambient organization and raises when there is none."""

    def get_queryset(self) -> OrgScopedQuerySet[M]:
        org_id = _current_org_id.get()
        if org_id is None:
            raise OrgScopeError(
                f"No organization in scope for {self.model.__name__}: use org_scope(org), "
                f"{self.model.__name__}.objects.for_org(org), or the explicit all_orgs manager."
            )
        return OrgScopedQuerySet(self.model, using=self._db).filter(organization_id=org_id)

    def for_org(self, org: OrgRef) -> OrgScopedQuerySet[M]:
        """Explicitly scoped queryset, independent of the ambient scope."""
        return OrgScopedQuerySet(self.model, using=self._db).filter(organization_id=_org_id(org))


class OrgScopedModel(models.Model):
    """Abstract base of every tenant-owned row: carries ``organization`` and the fail-closed manager."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")

    all_orgs = models.Manager()  # explicit, greppable bypass; see module docstring
    objects: OrgScopedManager[Any] = OrgScopedManager()

    class Meta:
        abstract = True
        default_manager_name = "all_orgs"
        base_manager_name = "all_orgs"

    def save(self, *args: Any, **kwargs: Any) -> None:
        scope = _current_org_id.get()
        if self.organization_id is None:
            if scope is None:
                raise OrgScopeError(f"{type(self).__name__} saved without an organization")
            self.organization_id = scope
        elif scope is not None and scope != self.organization_id:
            raise OrgScopeError(f"{type(self).__name__} of organization {self.organization_id} saved in scope {scope}")
        # The row and what its save signals write (a domain event recorded in post_save, docs/events.md)
        # commit together: in autocommit Django sends post_save after the row's own commit, so an event
        # that failed to insert would leave the change without its event. Inside the caller's transaction
        # this joins it (no savepoint: a failure rolls back the caller's transaction as before).
        with transaction.atomic(using=kwargs.get("using"), savepoint=False):
            super().save(*args, **kwargs)
