"""Records deleted in the CRM (docs/integrations.md "Deletions in the CRM"): HubSpot's archived companies,
contacts and deals, through the whole framework against the local HubSpot; the service
(``accounts.source_deletions``) on its own; the dry run; the API fields and filters; Account 360's Source
panel. Salesforce's deletions at scale: ``tests/test_integrations_salesforce_acceptance.py``.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Account, Contact, Contract
from accounts.source_deletions import Outcome, mark_deleted_in_source, restore_in_source
from cs_platform.models import DomainEvent
from integrations.choices import JobStatus, RunMode
from integrations.models import SyncDeletion
from integrations.sync import execute_run

from .connector_helpers import connect, run, sync_of
from .factories import AccountFactory, ContactFactory
from .fake_hubspot import TOKEN, FakeHubSpot

pytestmark = [
    pytest.mark.django_db(transaction=False),
    pytest.mark.usefixtures("loopback_allowed"),
]


@pytest.fixture
def hubspot():
    with FakeHubSpot() as fake:
        for i in range(1, 11):
            fake.add_company(f"{i:05d}")
            fake.add_contact(f"{i:06d}", company=f"{i:05d}")
            fake.add_deal(f"{i:05d}", company=f"{i:05d}")
        yield fake


@pytest.fixture
def conn(org, hubspot):
    connection = connect(org, "hubspot", "HubSpot", hubspot.url, {"access_token": TOKEN})
    for name in ("companies", "contacts", "deals"):
        assert run(sync_of(connection, name)).status == JobStatus.SUCCEEDED
    hubspot.clock_ms = max(sync_of(connection, n).cursor["since_ms"] for n in ("companies", "contacts", "deals"))
    hubspot.clock_ms += 10_000
    return connection


def outcomes(r) -> list[tuple[str, str]]:
    return list(SyncDeletion.objects.for_org(r.organization).filter(run=r).values_list("external_id", "outcome"))


def test_hubspot_archived_records_are_flagged_deactivated_and_restored(org, conn, hubspot):
    Contact.objects.for_org(org).filter(external_id="000003").update(is_active=False)  # an admin's choice before
    hubspot.archive("companies", "00001")
    hubspot.archive("contacts", "000002")
    hubspot.archive("contacts", "000003")
    hubspot.archive("deals", "00004")
    companies, contacts, deals = (run(sync_of(conn, n)) for n in ("companies", "contacts", "deals"))
    assert (companies.deleted, contacts.deleted, deals.deleted) == (1, 1, 1)
    assert outcomes(companies) == [("00001", Outcome.FLAGGED)]
    assert sorted(outcomes(contacts)) == [("000002", Outcome.DEACTIVATED), ("000003", Outcome.ALREADY_INACTIVE)]
    assert outcomes(deals) == [("00004", Outcome.FLAGGED)]
    account = Account.objects.for_org(org).get(external_id="00001")
    assert account.source_deleted_at is not None and account.contacts.count() == 1  # nothing destroyed
    assert Contract.objects.for_org(org).get(number="00004").source_deleted_at is not None
    deactivated = Contact.objects.for_org(org).get(external_id="000002")
    assert not deactivated.is_active and deactivated.source_deleted_at is not None
    assert Contact.objects.for_org(org).get(external_id="000003").source_deleted_at is None  # left alone
    events = list(DomainEvent.all_orgs.filter(organization=org, name__endswith="_in_source"))
    assert [(e.name, e.subject_id) for e in events] == [("account.deleted_in_source", str(account.pk))]
    assert events[0].payload["external_id"] == "00001" and events[0].payload["source_deleted_at"]
    assert not DomainEvent.all_orgs.filter(organization=org, name="contact.departed").exists()
    # Nothing new: a run that sees no deletion changes nothing and lists nothing.
    again = run(sync_of(conn, "companies"))
    assert again.deleted == 0 and outcomes(again) == []

    # Restored in HubSpot: the record is answered again by the search; the flag goes, the contact is back.
    for otype, oid in (("companies", "00001"), ("contacts", "000002"), ("contacts", "000003")):
        hubspot.objects[otype][oid]["archived"] = False
        hubspot.change(otype, oid)
    companies, contacts = run(sync_of(conn, "companies")), run(sync_of(conn, "contacts"))
    assert outcomes(companies) == [("00001", Outcome.RESTORED)]
    assert outcomes(contacts) == [("000002", Outcome.RESTORED)]  # 000003 was never flagged
    assert Account.objects.for_org(org).get(external_id="00001").source_deleted_at is None
    back = Contact.objects.for_org(org).get(external_id="000002")
    assert back.is_active and back.source_deleted_at is None
    assert not Contact.objects.for_org(org).get(external_id="000003").is_active  # the admin's choice stays
    restored = DomainEvent.all_orgs.get(organization=org, name="account.restored_in_source")
    assert restored.subject_id == str(account.pk) and restored.payload["source_deleted_at"] is None


def test_a_dry_run_lists_what_would_be_flagged_and_writes_nothing(org, conn, hubspot):
    hubspot.archive("companies", "00005")
    cursor = sync_of(conn, "companies").cursor
    dry = run(sync_of(conn, "companies"), mode=RunMode.DRY_RUN)
    assert dry.status == JobStatus.SUCCEEDED and dry.deleted == 1
    assert outcomes(dry) == [("00005", Outcome.FLAGGED)]
    assert not Account.objects.for_org(org).filter(source_deleted_at__isnull=False).exists()
    assert sync_of(conn, "companies").cursor == cursor
    assert not DomainEvent.all_orgs.filter(organization=org, name__endswith="_in_source").exists()
    real = run(sync_of(conn, "companies"))
    assert real.deleted == 1 and Account.objects.for_org(org).get(external_id="00005").source_deleted_at


def test_the_service_answers_every_outcome_and_never_crosses_organizations(org, other_org):
    mine = AccountFactory(organization=org, external_id="A-1")
    theirs = AccountFactory(organization=other_org, external_id="A-2")
    found = mark_deleted_in_source(org, "accounts", ["A-1", "A-2", "A-1", ""], dry_run=True)
    assert [(d.external_id, d.outcome) for d in found] == [("A-1", Outcome.FLAGGED), ("A-2", Outcome.NOT_IN_RETAIN)]
    mine.refresh_from_db()
    assert mine.source_deleted_at is None  # dry run
    assert mark_deleted_in_source(org, "accounts", ["A-1"])[0].outcome == Outcome.FLAGGED
    assert mark_deleted_in_source(org, "accounts", ["A-1"])[0].outcome == Outcome.ALREADY_FLAGGED
    theirs.refresh_from_db()
    assert theirs.source_deleted_at is None
    assert restore_in_source(other_org, "accounts", ["A-1"]) == []  # another organization's id: nothing
    assert restore_in_source(org, "accounts", ["A-1"], dry_run=True) == ["A-1"]
    assert Account.objects.for_org(org).get(pk=mine.pk).source_deleted_at is not None
    assert restore_in_source(org, "accounts", ["A-1"]) == ["A-1"]
    assert Account.objects.for_org(org).get(pk=mine.pk).source_deleted_at is None
    assert restore_in_source(org, "tickets", ["A-1"]) == []
    with pytest.raises(KeyError):
        mark_deleted_in_source(org, "tickets", ["T-1"])


def test_the_api_answers_and_filters_deleted_in_source(org, api):
    kept = AccountFactory(organization=org, external_id="K-1")
    gone = AccountFactory(organization=org, external_id="G-1")
    contact = ContactFactory(organization=org, account=gone, external_id="C-1")
    mark_deleted_in_source(org, "accounts", ["G-1"])
    mark_deleted_in_source(org, "contacts", ["C-1"])
    client = api(org, role="viewer")
    flagged = client.get("/api/v1/accounts/", {"deleted_in_source": "true"}).json()["results"]
    assert [a["id"] for a in flagged] == [gone.pk] and flagged[0]["source_deleted_at"]
    others = client.get("/api/v1/accounts/", {"deleted_in_source": "false"}).json()["results"]
    assert [a["id"] for a in others] == [kept.pk] and others[0]["source_deleted_at"] is None
    assert client.get("/api/v1/accounts/", {"deleted_in_source": "maybe"}).status_code == 400
    contacts = client.get("/api/v1/contacts/", {"deleted_in_source": "true"}).json()["results"]
    assert [c["id"] for c in contacts] == [contact.pk] and contacts[0]["is_active"] is False
    # Read-only: a client cannot set or clear it.
    admin = api(org)
    response = admin.patch(f"/api/v1/accounts/{gone.pk}/", {"source_deleted_at": None}, format="json")
    assert response.status_code == 200 and response.json()["source_deleted_at"] is not None


def test_the_sync_runs_api_and_page_list_the_deletions(org, conn, hubspot, api, client, alice):
    hubspot.archive("companies", "00006")
    r = run(sync_of(conn, "companies"))
    body = api(org).get(f"/api/v1/sync-runs/{r.pk}/").json()
    assert [(d["external_id"], d["outcome"]) for d in body["deletions"]] == [("00006", "flagged")]
    client.force_login(alice)
    page = client.get(reverse("admin-connector-sync", args=[org.slug, sync_of(conn, "companies").pk]))
    assert f'data-testid="deletions-{r.pk}"' in page.content.decode()


def test_account_360_says_the_account_was_deleted_in_the_crm(org, conn, hubspot, client, bob):
    hubspot.archive("companies", "00007")
    run(sync_of(conn, "companies"))
    account = Account.objects.for_org(org).get(external_id="00007")
    Account.all_orgs.filter(pk=account.pk).update(owner=bob)
    client.force_login(bob)
    url = reverse("account-detail", args=[org.slug, account.pk])
    page = client.get(url).content.decode()
    assert 'data-testid="account-source-deleted"' in page and "Deleted in the CRM" in page
    restore_in_source(org, "accounts", ["00007"])
    assert 'data-testid="account-source-deleted"' not in client.get(url).content.decode()


def test_a_run_resumed_after_a_crash_lists_each_deletion_once(org, conn, hubspot):
    for i in range(1, 4):
        hubspot.archive("companies", f"{i:05d}")
    sync = sync_of(conn, "companies")
    from integrations import services

    r = services.start_run(sync)
    execute_run(r.pk, max_pages=1, sleep=lambda s: None)  # the search page (nothing changed)
    execute_run(r.pk, max_pages=100, sleep=lambda s: None)
    r.refresh_from_db()
    assert r.deleted == 3 and len(outcomes(r)) == 3
