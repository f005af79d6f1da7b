"""Migrations that move or seed data run on a database that already holds organizations.

The test database is empty when pytest-django migrates it, so a data migration that breaks on real rows
(e.g. one that reaches for a manager historical models do not have) passes every other test and fails
on the first production upgrade. Here the migration is unapplied, an organization is created, and the
migration is applied again over it.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.models import Organization
from playbooks.defaults import DEFAULT_CTA_TYPES
from playbooks.models import CtaReason, CtaType

BEFORE_WORK_QUEUE = ("playbooks", "0005_webhook_delivery_per_event")


def _executor() -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    return executor


@pytest.mark.django_db(transaction=True)
def test_the_work_queue_migration_seeds_cta_types_for_existing_organizations():
    latest = _executor().loader.graph.leaf_nodes()
    _executor().migrate([BEFORE_WORK_QUEUE])
    try:
        # The schema is behind the model classes now: create the organization with the historical model,
        # as the database held it before the work queue existed.
        historical = _executor().loader.project_state([BEFORE_WORK_QUEUE]).apps
        org_id = (
            historical.get_model("accounts", "Organization")
            ._default_manager.create(name="Existing Co", slug="existing-co")
            .pk
        )
    finally:
        _executor().migrate(latest)
    org = Organization.objects.get(pk=org_id)
    keys = set(CtaType.all_orgs.filter(organization=org).values_list("key", flat=True))
    assert keys == {key for key, _label, _reasons in DEFAULT_CTA_TYPES}
    expected_reasons = sum(len(reasons) for _key, _label, reasons in DEFAULT_CTA_TYPES)
    assert CtaReason.all_orgs.filter(organization=org).count() == expected_reasons
