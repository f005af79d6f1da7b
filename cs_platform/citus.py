"""How Retain's tables map onto a Citus cluster sharded by organization (docs/operations.md, "Scaling out").

Read from the models, so it stays true as apps add tables: every table of a model inheriting
:class:`~cs_platform.tenancy.OrgScopedModel` is **distributed** on ``organization_id`` (all co-located, so
one organization's joins stay on one node); the tables those rows point at from outside any tenant are
**reference** tables (copied to every node); the rest stay **local** to the coordinator. ``blockers`` lists
what the schema would have to change first, table by table (``manage.py citus_plan`` prints it all).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.apps import apps
from django.db import models

from .tenancy import OrgScopedModel

__all__ = ["LOCAL", "REFERENCE", "ShardingPlan", "sharding_plan"]

DISTRIBUTION_COLUMN = "organization_id"
#: Shared by every organization and joined from tenant rows (organizations, users and what auth reads with
#: them on every request, content types): a full copy on every node.
REFERENCE = (
    "accounts_organization",
    "accounts_userpreference",
    "auth_user",
    "auth_group",
    "auth_group_permissions",
    "auth_permission",
    "auth_user_groups",
    "auth_user_user_permissions",
    "django_content_type",
)
#: Only the coordinator reads them (sessions, sign-in throttling, beat's schedule, the Django admin's log).
LOCAL_PREFIXES = ("django_session", "django_admin_log", "axes_", "django_celery_beat_")
LOCAL = LOCAL_PREFIXES


@dataclass
class ShardingPlan:
    """Tables by role, and the schema changes Citus needs first."""

    distributed: list[str] = field(default_factory=list)
    reference: list[str] = field(default_factory=list)
    local: list[str] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)

    def sql(self) -> str:
        """The statements that place the tables, once the blockers are resolved."""
        lines = [f"SELECT create_reference_table('{table}');" for table in self.reference]
        first = self.distributed[0] if self.distributed else ""
        for table in self.distributed:
            colocate = "'none'" if table == first else f"'{first}'"
            lines.append(
                f"SELECT create_distributed_table('{table}', '{DISTRIBUTION_COLUMN}', colocate_with => {colocate});"
            )
        return "\n".join(lines)


def _unique_sets(model: type[models.Model]) -> list[tuple[str, ...]]:
    sets = [(f.column,) for f in model._meta.local_fields if f.unique and not f.primary_key]
    sets += [tuple(model._meta.get_field(n).column for n in fs) for fs in model._meta.unique_together]
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint) and constraint.fields:
            sets.append(tuple(model._meta.get_field(n).column for n in constraint.fields))
    return sets


def sharding_plan() -> ShardingPlan:
    """The plan for the installed models (concrete and auto-created many-to-many tables)."""
    plan = ShardingPlan()
    tables: dict[str, type[models.Model]] = {}
    for model in apps.get_models(include_auto_created=True):
        if model._meta.managed and not model._meta.proxy:
            tables.setdefault(model._meta.db_table, model)
    distributed = {t for t, m in tables.items() if issubclass(m, OrgScopedModel)}
    for table in sorted(tables):
        if table in distributed:
            plan.distributed.append(table)
        elif table in REFERENCE:
            plan.reference.append(table)
        elif table.startswith(LOCAL_PREFIXES):
            plan.local.append(table)
        else:
            plan.unplaced.append(table)
    for table in plan.distributed:
        model = tables[table]
        if model._meta.pk.column != DISTRIBUTION_COLUMN:
            plan.blockers.append(f"{table}: primary key ({model._meta.pk.column}) must become (organization_id, id)")
        for columns in _unique_sets(model):
            if DISTRIBUTION_COLUMN not in columns:
                plan.blockers.append(f"{table}: unique ({', '.join(columns)}) must include organization_id")
        for fk in model._meta.local_fields:
            target = getattr(fk, "related_model", None)
            if fk.is_relation and fk.db_constraint and target is not None and target._meta.db_table in distributed:
                plan.blockers.append(
                    f"{table}.{fk.column}: foreign key to distributed {target._meta.db_table} must include "
                    "organization_id (or be dropped in the database)"
                )
    return plan
