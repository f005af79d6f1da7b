"""Postgres row-level security (cs_platform/rls.py; issue 16 item 4).

The suite runs as a superuser, which bypasses every policy; each test here switches to the restricted
application role (``SET ROLE``, as ``DATABASE_APP_ROLE`` does in production) for the part it proves, and
installs the scope-to-settings wrapper on the test's connection. Postgres only: skipped on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client

from accounts.models import Account, ApiKey, Membership, Organization
from cs_platform import rls
from cs_platform.management.commands.rls_role import ensure_role
from cs_platform.tasks import org_task, sweep_task
from cs_platform.tenancy import OrgScopedModel, org_scope

from .factories import AccountFactory

pytestmark = [
    pytest.mark.postgres,  # CI (RETAIN_REQUIRE_SERVICES=1) fails instead of skipping
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-level security is Postgres-only"),
]

ROLE = "retain_app"
ACCOUNTS = Account._meta.db_table


@org_task()
def rls_count_accounts(organization_id: int) -> list[int]:
    """A task's raw, unscoped read: what the database lets it see."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT organization_id FROM {ACCOUNTS}")
        return sorted(row[0] for row in cursor.fetchall())


@sweep_task("test: a sweep reading every organization")
def rls_sweep_org_ids() -> list[int]:
    return raw_org_ids()


@pytest.fixture
def rls_db(db) -> Iterator[None]:
    ensure_role(ROLE)
    rls.install(connection)
    yield
    rls.uninstall(connection)


@contextmanager
def app_role() -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute(f'SET ROLE "{ROLE}"')
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")


def raw_org_ids() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT organization_id FROM {ACCOUNTS}")
        return sorted({row[0] for row in cursor.fetchall()})


@pytest.fixture
def two_orgs(org, other_org, alice, charlie):
    AccountFactory.create_batch(2, organization=org, name=factory_name("A"))
    AccountFactory.create_batch(3, organization=other_org, name=factory_name("B"))
    return org, other_org


def factory_name(prefix: str):
    import factory

    return factory.Sequence(lambda n: f"{prefix} account {n}")


# --- every tenant table is covered ------------------------------------------------------------------


def test_every_tenant_table_has_rls_forced_and_both_policies(db):
    tables = rls.tenant_tables()
    # The detection itself: every concrete OrgScopedModel, and the tenancy models that matter most.
    scoped = {
        m._meta.db_table
        for m in rls.apps.get_models()
        if issubclass(m, OrgScopedModel) and not m._meta.proxy and m._meta.managed
    }
    assert scoped <= set(tables)
    for model in (Account, Membership, ApiKey):
        assert model._meta.db_table in tables
    assert Organization._meta.db_table not in tables
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                      array(SELECT p.policyname::text FROM pg_policies p
                             WHERE p.tablename = c.relname AND p.schemaname = current_schema() ORDER BY 1)
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = current_schema() AND c.relname = ANY(%s)""",
            [tables],
        )
        found = {row[0]: row[1:] for row in cursor.fetchall()}
    assert set(found) == set(tables)
    wrong = {t: v for t, v in found.items() if v != (True, True, [rls.SYSTEM_POLICY, rls.TENANT_POLICY])}
    assert wrong == {}
    assert rls.missing_tables(connection) == []


def test_policy_is_the_indexable_equality(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT policyname, qual FROM pg_policies WHERE tablename = %s AND schemaname = current_schema()",
            [ACCOUNTS],
        )
        quals = dict(cursor.fetchall())
    assert "organization_id = (NULLIF(current_setting('retain.organization_id'" in quals[rls.TENANT_POLICY]
    assert "organization_id >= (NULLIF(current_setting('retain.system_min_org'" in quals[rls.SYSTEM_POLICY]


def test_apply_policies_restores_a_dropped_policy(db):
    with connection.cursor() as cursor:
        cursor.execute(f"DROP POLICY {rls.TENANT_POLICY} ON {ACCOUNTS}")
        cursor.execute(f"ALTER TABLE {ACCOUNTS} NO FORCE ROW LEVEL SECURITY")
    assert rls.missing_tables(connection) == [ACCOUNTS]
    assert rls.apply_policies(connection) == [ACCOUNTS]
    assert rls.missing_tables(connection) == []


# --- the role ---------------------------------------------------------------------------------------


def test_app_role_cannot_bypass_or_disable(rls_db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", [ROLE])
        assert cursor.fetchone() == (False, False)
    with app_role():
        for statement in (
            f"ALTER TABLE {ACCOUNTS} DISABLE ROW LEVEL SECURITY",
            f"ALTER TABLE {ACCOUNTS} NO FORCE ROW LEVEL SECURITY",
            f"DROP POLICY {rls.TENANT_POLICY} ON {ACCOUNTS}",
            "SET row_security = off",
        ):
            with pytest.raises(DatabaseError), transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(statement)
                    if statement.startswith("SET"):
                        # row_security=off is accepted, but then a query that RLS would filter is an error.
                        cursor.execute(f"SELECT count(*) FROM {ACCOUNTS}")


# --- fail closed, scope, system context ----------------------------------------------------------


def test_no_context_sees_nothing_and_writes_nothing(rls_db, two_orgs):
    org, _ = two_orgs
    assert raw_org_ids() == sorted(o.pk for o in two_orgs)  # as the superuser: all of them (control)
    with app_role():
        assert raw_org_ids() == []
        assert Account.all_orgs.count() == 0
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"INSERT INTO {ACCOUNTS} (organization_id, name) VALUES (%s, 'x')", [org.pk])


def test_org_scope_sees_only_its_rows_and_cannot_write_another(rls_db, two_orgs):
    org, other = two_orgs
    with app_role():
        with org_scope(org):
            assert raw_org_ids() == [org.pk]
            assert Account.all_orgs.count() == 2
            with pytest.raises(DatabaseError), transaction.atomic():
                Account.all_orgs.filter(organization=org).update(organization_id=other.pk)
        with org_scope(other):
            assert raw_org_ids() == [other.pk]
        assert raw_org_ids() == []  # out of scope again: the setting followed


def test_system_context_sees_every_organization(rls_db, two_orgs):
    with app_role():
        with rls.system_context("test: a cross-organization sweep"):
            assert raw_org_ids() == sorted(o.pk for o in two_orgs)
        assert raw_org_ids() == []


def test_rollback_does_not_leave_a_stale_setting(rls_db, two_orgs):
    org, other = two_orgs
    with app_role():
        with org_scope(org):
            assert raw_org_ids() == [org.pk]
            with org_scope(other):
                with pytest.raises(ZeroDivisionError), transaction.atomic():
                    assert raw_org_ids() == [other.pk]  # set inside the savepoint...
                    1 / 0  # noqa: B018  ...which is rolled back, undoing the set_config
                assert raw_org_ids() == [other.pk]  # the wrapper set it again, not org's rows


# --- a request of org A ---------------------------------------------------------------------------


@pytest.mark.urls("tests.rls_urls")
@pytest.mark.parametrize("probe", ["raw", "orm"])
def test_injected_unscoped_query_in_a_request_sees_only_its_org(rls_db, two_orgs, alice, charlie, probe):
    org, other = two_orgs
    client = Client()
    client.force_login(alice)
    url = f"/o/{org.slug}/rls-probe/{probe}/"
    # Control: as the superuser (RLS bypassed), the injected query leaks the other organization.
    leaked = {row[0] for row in client.get(url).json()["rows"]}
    assert leaked == {org.pk, other.pk}
    with app_role():
        response = client.get(url)
        assert response.status_code == 200
        rows = response.json()["rows"]
        assert {row[0] for row in rows} == {org.pk}
        assert len(rows) == 2
        assert all(name.startswith("A ") for _, name in rows)
        # The request is over: the connection (reused, as CONN_MAX_AGE does) carries nothing to the next.
        assert raw_org_ids() == []
        # Another member's request on the same connection gets its own organization only.
        other_client = Client()
        other_client.force_login(charlie)
        rows = other_client.get(f"/o/{other.slug}/rls-probe/{probe}/").json()["rows"]
        assert {row[0] for row in rows} == {other.pk}


def test_api_request_with_a_key_works_under_the_role(rls_db, two_orgs, api):
    org, _ = two_orgs
    client = api(org, "admin")
    with app_role():
        response = client.get("/api/v1/accounts/")
        assert response.status_code == 200, response.content
        assert {row["name"][:2] for row in response.json()["results"]} == {"A "}


# --- tasks, migrate, demo -------------------------------------------------------------------------


def test_task_for_org_a_sees_only_org_a(rls_db, two_orgs):
    org, other = two_orgs
    with app_role():
        assert rls_count_accounts.apply(args=[org.pk]).get() == [org.pk]
        assert rls_count_accounts.apply(args=[other.pk]).get() == [other.pk]


def test_sweep_task_sees_every_organization_and_org_tasks_do_not(rls_db, two_orgs):
    with app_role():
        assert rls_sweep_org_ids.apply().get() == sorted(o.pk for o in two_orgs)
        assert raw_org_ids() == []  # the system context ended with the sweep


def test_session_api_request_resolves_the_organization_under_the_role(rls_db, two_orgs, alice):
    client = Client()
    client.force_login(alice)
    with app_role():
        response = client.get("/api/v1/accounts/", HTTP_X_ORGANIZATION=two_orgs[0].slug)
        assert response.status_code == 200, response.content
        assert {row["name"][:2] for row in response.json()["results"]} == {"A "}
        assert client.get("/api/v1/accounts/", HTTP_X_ORGANIZATION=two_orgs[1].slug).status_code == 404


def test_migrate_runs_as_owner_and_returns_to_the_role(rls_db, settings):
    settings.DATABASE_APP_ROLE = ROLE
    with app_role():
        call_command("migrate", verbosity=0)
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == ROLE
    assert rls.missing_tables(connection) == []


def test_demo_seed_works_under_the_role(rls_db):
    with app_role():
        call_command("seed_demo", "--org", "rlsdemo", "--accounts", "3", verbosity=0)
        demo = Organization.objects.get(slug="rlsdemo")
        assert raw_org_ids() == []
        with org_scope(demo):
            assert raw_org_ids() == [demo.pk]
            assert Account.objects.count() == 3


def test_new_connection_switches_to_the_app_role_and_installs_the_wrapper(rls_db, settings, two_orgs):
    settings.DATABASE_APP_ROLE = ROLE
    rls.uninstall(connection)
    try:
        rls.on_connection_created(sender=None, connection=connection)  # what connection_created runs
        assert rls._rls_wrapper in connection.execute_wrappers
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == ROLE
        assert raw_org_ids() == []
        with org_scope(two_orgs[0]):
            assert raw_org_ids() == [two_orgs[0].pk]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")


def test_public_stripe_hook_finds_its_connection_and_writes_under_the_role(rls_db, two_orgs):
    """A public endpoint resolves the organization from the URL, then works inside its scope: the signed
    event is verified against the organization's connection and its invoice lands (before, the connection
    was looked up across organizations and, under the role, never found: a 404 for every event)."""
    import json

    import stripe

    from health.models import Invoice
    from integrations import services

    org, _other = two_orgs
    AccountFactory(organization=org, external_id="crm-acme", domain="acme.example")
    services.create_connection(org, kind="stripe", name="Stripe", credentials={"signing_secret": "whsec_rls"})
    invoice = {
        "id": "in_rls", "object": "invoice", "customer": "cus_R", "customer_email": "billing@acme.example",
        "amount_due": 5000, "currency": "usd", "created": 1_764_000_000, "due_date": 1_766_592_000,
        "status": "open", "status_transitions": {"finalized_at": 1_764_000_000, "paid_at": None}, "metadata": {},
    }  # fmt: skip
    body = json.dumps({"id": "evt_rls", "object": "event", "created": 1_764_000_060, "type": "invoice.finalized",
                       "data": {"object": invoice}})  # fmt: skip
    header = stripe.WebhookSignature.generate_signature_header(body, "whsec_rls")
    with app_role():
        response = Client().post(
            f"/hooks/{org.slug}/stripe/", data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
        )
        assert response.status_code == 200, response.content
        assert response.json()["outcome"] == "applied"
    assert Invoice.all_orgs.filter(organization=org, external_id="in_rls").count() == 1


def test_invitation_link_is_found_and_accepted_under_the_role(rls_db, two_orgs, bob, client):
    """The invitation page finds its invitation across organizations (the link names none: system context)
    and accepts it inside the invitation's organization: the membership is written under the role."""
    from accounts.services import invite_member

    _org, other = two_orgs
    sent: list[str] = []
    with org_scope(other):
        invite_member(organization=other, email=bob.email, role="csm", invited_by=None,
                      accept_url=lambda token: sent.append(token) or f"/invite/{token}/")  # fmt: skip
    from django.urls import reverse

    path = reverse("invitation", args=[sent[0]])
    client.force_login(bob)
    with app_role():
        assert client.get(path).status_code == 200
        accepted = client.post(path, {"action": "accept"})
        assert accepted.status_code == 302, accepted.content[:300]
    assert Membership.all_orgs.filter(organization=other, user=bob, role="csm").exists()


def test_tracking_api_stores_events_and_counts_refusals_under_the_role(rls_db, two_orgs):
    """A write key's batch lands under the role, and a refused batch is counted for the admins (before, the
    key was found but the refusal counters were written outside any scope: refused by the database and lost)."""
    import base64
    import json

    from accounts.models import WriteKey
    from health.models import IngestionRefusal

    org, _other = two_orgs
    _key, raw = WriteKey.issue(organization=org, name="rls")
    auth = "Basic " + base64.b64encode(f"{raw}:".encode()).decode()
    good = {"batch": [{"type": "track", "event": "Report Exported", "userId": "u1", "messageId": "m-rls-1",
                       "timestamp": "2026-11-30T10:00:00Z"}]}  # fmt: skip
    bad = {"batch": [{"type": "track", "userId": "u1", "messageId": "m-rls-2"}]}  # no event name
    with app_role():
        stored = Client().post("/v1/batch", json.dumps(good), content_type="application/json", HTTP_AUTHORIZATION=auth)
        refused = Client().post("/v1/batch", json.dumps(bad), content_type="application/json", HTTP_AUTHORIZATION=auth)
    assert stored.status_code == 200, stored.content
    assert refused.status_code == 400, refused.content
    assert IngestionRefusal.all_orgs.filter(organization=org).count() == 1


def test_email_capture_routes_stores_processes_and_requeues_under_the_role(
    rls_db, two_orgs, django_capture_on_commit_callbacks, monkeypatch
):
    """The SMTP listener's two calls (``find_capture`` on RCPT, ``store_inbound`` on DATA), the processing
    task and the requeue sweep, each on a connection under the role: the organization comes from the address's
    slug, everything else in its scope; the other organization's capture is never reached."""
    from django.utils import timezone

    from accounts.models import Activity
    from integrations import email_capture as ec
    from integrations.choices import InboundSource
    from integrations.models import InboundEmail
    from integrations.tasks import process_inbound_email, requeue_unprocessed_emails

    from .email_capture_helpers import message

    org, other = two_orgs
    AccountFactory(organization=org, domain="customer.example")
    address = ec.capture_address(ec.ensure_capture(org), org)
    other_address = ec.capture_address(ec.ensure_capture(other), other)
    raw = message(sender="jane@customer.example", to=address).as_bytes()
    with app_role():
        found = ec.find_capture(address)
        assert found is not None and found.organization_id == org.pk
        assert ec.find_capture(other_address.replace(f"{other.slug}+", f"{org.slug}+")) is None  # a token of another
        with django_capture_on_commit_callbacks(execute=False):
            row = ec.store_inbound(org.pk, raw, InboundSource.SMTP)
        assert raw_org_ids() == []  # no scope left behind
        assert process_inbound_email.apply(args=[org.pk, row.pk]).get() == "captured"
        with django_capture_on_commit_callbacks(execute=False):
            again = ec.store_inbound(org.pk, raw, InboundSource.SMTP)
    InboundEmail.all_orgs.filter(pk=again.pk).update(received_at=timezone.now() - timezone.timedelta(minutes=5))
    queued: list[tuple] = []
    monkeypatch.setattr(process_inbound_email, "delay", lambda *args: queued.append(args))
    with app_role():
        assert requeue_unprocessed_emails.apply().get() == 1  # the sweep sees the stored row across organizations
    assert queued == [(org.pk, again.pk)]
    assert Activity.all_orgs.filter(organization=org, type="email").count() == 1
    assert InboundEmail.all_orgs.filter(organization=org).count() == 2
