"""The connector framework with the HubSpot companies connector, against a local HubSpot (fake_hubspot).

Real Postgres and Redis (the token bucket); the outbound guard allows loopback only here, as an
operator would allow a network (OUTBOUND_ALLOWED_NETWORKS).
"""

from __future__ import annotations

import pytest
from django.db import connection as db

from accounts.models import Account
from integrations import services
from integrations.choices import JobStatus, RunMode
from integrations.models import Connection, ObjectSync, SyncRecordError
from integrations.sync import execute_run

from .connector_helpers import connect, run
from .fake_hubspot import TOKEN, FakeHubSpot

pytestmark = [
    pytest.mark.django_db(transaction=False),
    pytest.mark.usefixtures("loopback_allowed"),
]


@pytest.fixture
def hubspot():
    with FakeHubSpot() as fake:
        yield fake


@pytest.fixture
def conn(org, hubspot, django_capture_on_commit_callbacks):
    return connect(org, "hubspot", "HubSpot", hubspot.url, {"access_token": TOKEN})


def companies(conn) -> ObjectSync:
    return ObjectSync.objects.for_org(conn.organization).get(connection=conn, object_name="companies")


def test_first_sync_lands_every_company_with_hierarchy(org, conn, hubspot):
    hubspot.add_company("0001", name="Parent Co", numberofemployees="250", country="France")
    for i in range(2, 251):
        # Children name a parent that comes in an earlier or a later page.
        parent = "0250" if i == 3 else ("0001" if i % 50 == 0 else "")
        hubspot.add_company(f"{i:04d}", hs_parent_company_id=parent)
    r = run(companies(conn))
    assert r.status == JobStatus.SUCCEEDED, r.error
    assert (r.fetched, r.created, r.failed) == (250, 250, 0)
    assert Account.objects.for_org(org).filter(external_id__isnull=False).count() == 250
    parent = Account.objects.for_org(org).get(external_id="0001")
    assert parent.employees == 250 and parent.region == "France"
    assert Account.objects.for_org(org).get(external_id="0050").parent_id == parent.pk
    # "0003" names "0250", which arrives two pages later: linked at the run's end.
    assert Account.objects.for_org(org).get(external_id="0003").parent.external_id == "0250"
    assert hubspot.count("GET", "/crm/v3/objects/companies") == 3  # 100 + 100 + 50
    assert r.request_count == 3
    sync = companies(conn)
    assert "since_ms" in sync.cursor and sync.next_run_at is not None


def test_malformed_and_unmappable_records_are_listed_and_the_rest_lands(org, conn, hubspot):
    for i in range(1, 11):
        hubspot.add_company(f"{i:04d}")
    hubspot.add_company("0011", numberofemployees="lots")  # not a whole number
    hubspot.add_company("0012", name="")  # name is required by the accounts import kind
    hubspot.add_raw({"id": "0013", "properties": "oops", "archived": False})
    hubspot.add_company("0014", numberofemployees="Infinity")  # a Decimal, but no number of employees
    r = run(companies(conn))
    assert r.status == JobStatus.SUCCEEDED
    assert (r.fetched, r.created, r.failed) == (14, 10, 4)
    errors = {e.external_id: e for e in SyncRecordError.objects.for_org(org).filter(run=r)}
    assert set(errors) == {"0011", "0012", "0013", "0014"}
    assert errors["0014"].field == "employees" and "whole number" in errors["0014"].reason
    assert errors["0011"].field == "employees" and "whole number" in errors["0011"].reason
    assert errors["0012"].field == "name" and "required" in errors["0012"].reason
    assert "malformed" in errors["0013"].reason
    assert errors["0011"].excerpt["properties.numberofemployees"] == "lots"
    assert not Account.objects.for_org(org).filter(external_id__in=["0011", "0012", "0013", "0014"]).exists()


def test_429_with_retry_after_is_honoured_and_5xx_backed_off(org, conn, hubspot):
    for i in range(1, 151):
        hubspot.add_company(f"{i:04d}")
    hubspot.fail_next = [(429, {"Retry-After": "7"}), (503, {}), (502, {})]
    sleeps: list[float] = []
    r = run(companies(conn), sleeps=sleeps)
    assert r.status == JobStatus.SUCCEEDED, r.error
    assert r.created == 150
    assert 7.0 in sleeps  # Retry-After honoured exactly
    assert r.request_count == 2 + 3  # two pages, three refused tries


def test_second_sync_fetches_only_changed_records(org, conn, hubspot):
    for i in range(1, 301):
        hubspot.add_company(f"{i:04d}")
    first = run(companies(conn))
    assert first.created == 300
    # The first (full) sync's watermark is its start; the fake's clock is in the past: move it on.
    sync = companies(conn)
    hubspot.clock_ms = sync.cursor["since_ms"] + 10_000
    for i in (5, 77, 150):
        hubspot.change_company(f"{i:04d}", industry="Software")
    hubspot.add_company("0301")
    before = len(hubspot.requests)
    second = run(companies(conn))
    assert second.status == JobStatus.SUCCEEDED
    assert (second.fetched, second.created, second.updated) == (4, 1, 3)
    assert len(hubspot.requests) - before == 2  # one search page, one page of archived companies
    assert hubspot.requests[-2][1] == "/crm/v3/objects/companies/search"
    assert Account.objects.for_org(org).get(external_id="0077").industry == "Software"
    third = run(companies(conn))
    assert third.fetched == 0  # the watermark moved past the newest change


def test_dry_run_writes_nothing_and_keeps_the_cursor(org, conn, hubspot):
    for i in range(1, 121):
        hubspot.add_company(f"{i:04d}")
    hubspot.add_company("0121", numberofemployees="x")
    r = run(companies(conn), mode=RunMode.DRY_RUN)
    assert r.status == JobStatus.SUCCEEDED
    assert (r.created, r.failed) == (120, 1)
    assert not Account.objects.for_org(org).exists()
    assert companies(conn).cursor == {}


def test_a_crash_mid_sync_resumes_from_the_stored_cursor_without_duplicates(org, conn, hubspot):
    for i in range(1, 351):
        hubspot.add_company(f"{i:04d}")
    sync = companies(conn)
    r = services.start_run(sync)
    assert execute_run(r.pk, max_pages=2, sleep=lambda s: None) is False  # stopped after two pages
    assert companies(conn).cursor.get("after") == "200"
    # The worker "dies" during page 3: the page's transaction rolled back, the task is redelivered.
    assert execute_run(r.pk, max_pages=1000, sleep=lambda s: None) is True
    r.refresh_from_db()
    assert r.status == JobStatus.SUCCEEDED and r.created == 350
    assert Account.objects.for_org(org).count() == 350
    assert hubspot.count("GET", "/crm/v3/objects/companies") == 4


def test_a_failed_run_hands_its_pending_parent_links_to_the_next_run(org, conn, hubspot):
    """0005 (page 1) names 0150 (page 2) as its parent; page 2 fails for good, so the run fails with the link
    still owed. The next run resumes at page 2 and links 0005 at its end (before, the link was lost)."""
    for i in range(1, 151):
        hubspot.add_company(f"{i:04d}", hs_parent_company_id="0150" if i == 5 else "")
    sync = companies(conn)
    first = services.start_run(sync)
    assert execute_run(first.pk, max_pages=1, sleep=lambda s: None) is False
    hubspot.fail_next = [(500, {})] * 10  # every try of page 2
    assert execute_run(first.pk, max_pages=1000, sleep=lambda s: None) is True
    first.refresh_from_db()
    assert first.status == JobStatus.FAILED and first.pending == [["0005", "0150"]]
    assert Account.objects.for_org(org).get(external_id="0005").parent_id is None
    hubspot.fail_next = []
    second = run(companies(conn))
    assert second.status == JobStatus.SUCCEEDED and second.pending == []
    child = Account.objects.for_org(org).get(external_id="0005")
    assert child.parent is not None and child.parent.external_id == "0150"
    assert Account.objects.for_org(org).count() == 150


def test_wrong_token_fails_the_test_and_the_run_with_a_plain_reason(org, conn, hubspot):
    services.update_connection(conn, credentials={"access_token": "wrong"})
    ok, message = services.test_connection(conn)
    assert not ok and "401" in message and "wrong" not in message
    conn.refresh_from_db()
    assert conn.status == "failing" and conn.last_test_ok is False
    services.update_connection(conn, credentials={"access_token": TOKEN})
    assert services.test_connection(conn)[0]


def test_credentials_are_encrypted_at_rest(org, conn):
    with db.cursor() as cursor:
        cursor.execute("SELECT credentials_encrypted FROM integrations_connection WHERE id = %s", [conn.pk])
        raw = cursor.fetchone()[0]
    assert TOKEN not in raw and "access_token" not in raw and raw
    assert Connection.objects.for_org(org).get(pk=conn.pk).credentials == {"access_token": TOKEN}


def test_the_guard_refuses_an_internal_base_url(org, hubspot, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    connection = services.create_connection(
        org, kind="hubspot", name="Internal", base_url=hubspot.url, credentials={"access_token": TOKEN}
    )
    ok, message = services.test_connection(connection)
    assert not ok and "loopback" in message
    assert hubspot.requests == []


def test_run_sync_task_yields_when_the_organizations_slots_are_taken(
    org, conn, hubspot, settings, django_capture_on_commit_callbacks
):
    from cs_platform import outbound
    from integrations.tasks import run_sync

    for i in range(1, 4):
        hubspot.add_company(f"{i:04d}")
    with django_capture_on_commit_callbacks(execute=False):
        r = services.start_run(companies(conn))
    settings.OUTBOUND_ORG_CONCURRENCY = 1
    token = outbound.acquire_slot(org.pk)
    try:
        with django_capture_on_commit_callbacks(execute=False) as requeued:
            run_sync.apply(args=[org.pk, r.pk])
        r.refresh_from_db()
        assert r.status == JobStatus.QUEUED and hubspot.requests == []
        assert len(requeued) == 1  # queued again, a few seconds later
    finally:
        outbound.release_slot(org.pk, token)
    run_sync.apply(args=[org.pk, r.pk])
    r.refresh_from_db()
    assert r.status == JobStatus.SUCCEEDED and r.created == 3
    assert outbound.slots_held(org.pk) == 0


def test_no_log_line_carries_the_token(org, conn, hubspot, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    for i in range(1, 4):
        hubspot.add_company(f"{i:04d}")
    hubspot.fail_next = [(429, {"Retry-After": "0"}), (500, {})]
    assert run(companies(conn)).created == 3
    services.test_connection(conn)
    assert caplog.records  # the libraries did log (urllib3, hubspot-api-client at DEBUG)
    assert TOKEN not in caplog.text


def test_an_unknown_host_is_a_plain_reason_not_an_error(org):
    connection = services.create_connection(
        org, kind="hubspot", name="Typo", base_url="https://no-such-host.invalid", credentials={"access_token": TOKEN}
    )
    ok, message = services.test_connection(connection)
    assert not ok and "could not be resolved" in message
