"""The Citus sharding plan of docs/operations.md is read from the models (cs_platform/citus.py), so it stays
true: every tenant table is distributed on organization_id, every other table is placed on purpose."""

from __future__ import annotations

from io import StringIO

from django.apps import apps
from django.core.management import call_command

from cs_platform.citus import sharding_plan
from cs_platform.tenancy import OrgScopedModel


def test_every_tenant_table_is_distributed_and_every_other_table_is_placed():
    plan = sharding_plan()
    tenant_tables = {m._meta.db_table for m in apps.get_models() if issubclass(m, OrgScopedModel)}
    assert set(plan.distributed) == tenant_tables
    assert {"accounts_account", "accounts_apikey", "cs_platform_auditentry", "playbooks_playbook"} <= tenant_tables
    assert {"accounts_organization", "auth_user", "accounts_userpreference"} <= set(plan.reference)
    assert {"django_session", "axes_accessattempt", "django_celery_beat_periodictask"} <= set(plan.local)
    # A new table that is not a tenant's must be placed (reference or local) in cs_platform/citus.py.
    assert plan.unplaced == []
    assert not set(plan.distributed) & set(plan.reference)


def test_the_blockers_name_the_global_unique_keys_and_cross_table_foreign_keys():
    blockers = sharding_plan().blockers
    assert "accounts_apikey: unique (key_hash) must include organization_id" in blockers
    assert "feedback_surveyinvitation: unique (token_hash) must include organization_id" in blockers
    assert any(
        b.startswith("accounts_contact.account_id: foreign key to distributed accounts_account") for b in blockers
    )
    # Keys to reference tables are fine in Citus: never listed.
    assert not any("accounts_organization" in b or "auth_user" in b for b in blockers)


def test_the_command_prints_the_placement_sql():
    out = StringIO()
    call_command("citus_plan", "--sql", stdout=out)
    sql = out.getvalue().splitlines()
    assert "SELECT create_reference_table('accounts_organization');" in sql
    first = next(line for line in sql if "create_distributed_table" in line)
    assert first.endswith("colocate_with => 'none');")
    anchor = first.split("'")[1]
    # Every other tenant table is co-located with the first: one organization's rows share a node.
    others = [line for line in sql if "create_distributed_table" in line and line != first]
    assert others and all(line.endswith(f"colocate_with => '{anchor}');") for line in others)
    contact = "SELECT create_distributed_table('accounts_contact', 'organization_id'"
    assert any(line.startswith(contact) for line in others)
