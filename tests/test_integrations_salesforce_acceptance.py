"""Issue 21's Salesforce acceptance, at full size, against the local Salesforce (``tests/fake_salesforce.py``:
SOQL + queryMore in batches of 2,000, ``SystemModstamp`` filters, Get Deleted Records):

- an initial sync of 5,000 Accounts (a hierarchy, one parent in a later batch), 15,000 Contacts and 3,000
  won Opportunities with their line items lands the same counts, with associations and hierarchy;
- a won Opportunity in a stage the mapping does not know is listed with its reason while the rest lands;
- a ``429`` with ``Retry-After`` is honoured (the wait recorded, the run completes); a ``403
  REQUEST_LIMIT_EXCEEDED`` (the org's daily allocation) fails the run in plain words and the next run
  resumes from the last page applied and completes with no duplicate; a run stopped after a page (a crash)
  and resumed completes with the same result and no duplicate;
- after 40 changes and 5 deletions the next syncs fetch only those — one query by ``SystemModstamp`` and one
  Get Deleted Records per object (+ the owners' query for accounts): the request count is asserted exactly —
  and apply them with docs/integrations.md's deletion semantics (accounts and contracts kept and flagged,
  contacts deactivated); a record restored from the recycle bin clears its flag at the next sync.

Push-back (only changed accounts, ≤ 200 per sObject Collections request) is proven by
``tests/test_integrations_salesforce.py::test_push_back_sends_only_changed_accounts_at_most_200_a_request``
(not repeated here). A Celery worker SIGKILLed mid-Salesforce-sync: ``tests/test_integrations_worker_kill.py``.
"""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.models import Account, Contact, Contract, ContractLine
from integrations import services
from integrations.choices import JobStatus
from integrations.connectors.salesforce import parse_stamp
from integrations.models import SyncDeletion, SyncRecordError
from integrations.sync import execute_run

from .connector_helpers import connect, run, sync_of
from .factories import MembershipFactory, UserFactory
from .fake_salesforce import TOKEN, FakeSalesforce, sfid

pytestmark = [
    pytest.mark.django_db(transaction=False),
    pytest.mark.usefixtures("loopback_allowed"),
]

ACCOUNTS, CONTACTS, OPPORTUNITIES = 5000, 15000, 3000  # issue 21's sizes
QUERY = "/services/data/v60.0/query/"


def parent_of(i: int) -> int | None:
    """Every account but the tens has a parent (an earlier one); account 3's parent is the last account."""
    if i == 3:
        return ACCOUNTS
    return i // 10 if i % 10 and i > 10 else None


def lines_of(i: int) -> list[tuple[str, str, float, float]]:
    """Two line items for every third opportunity, one for the others."""
    if i % 3 == 0:
        return [("PLAT", "Platform", 10, 1200.0), ("SUP", "Support", 1, 3000.0)]
    return [("PLAT", "Platform", 5, 1200.0)]


def seed(sf: FakeSalesforce, org) -> None:
    MembershipFactory(organization=org, role="csm", user=UserFactory(email="owner@acme.example"))
    owner = sf.add_user(1, "owner@acme.example")
    for i in range(1, ACCOUNTS + 1):
        parent = parent_of(i)
        sf.add_account(i, ParentId=sfid("Account", parent) if parent else None, OwnerId=owner, Industry="Media")
    for i in range(1, CONTACTS + 1):
        sf.add_contact(i, sfid("Account", (i % ACCOUNTS) + 1))
    for i in range(1, OPPORTUNITIES + 1):
        sf.add_opportunity(i, sfid("Account", (i % ACCOUNTS) + 1), lines=lines_of(i))
    # A won opportunity in an org's own stage: listed with its reason, the rest lands.
    sf.add_opportunity(OPPORTUNITIES + 1, sfid("Account", 9), lines=lines_of(1), StageName="Closed Won - Expansion")


def test_salesforce_initial_and_incremental_sync_at_scale(org):
    with FakeSalesforce() as sf:
        seed(sf, org)
        conn = connect(org, "salesforce", "Salesforce", sf.url, {"access_token": TOKEN})

        # --- initial sync ----------------------------------------------------------------------------
        sf.fail_next = [(429, {"Retry-After": "4"})]  # Salesforce (or a proxy in front) asks to wait
        sleeps: list[float] = []
        accounts = run(sync_of(conn, "accounts"), sleeps=sleeps)
        assert accounts.status == JobStatus.SUCCEEDED, accounts.error
        assert 4.0 in sleeps  # Retry-After honoured, then the same request again
        assert (accounts.fetched, accounts.created, accounts.failed) == (ACCOUNTS, ACCOUNTS, 0)
        assert accounts.request_count == 3 + 1 + 1  # query + 2 queryMore, the owners, the refused try

        # Contacts: the org's daily allocation runs out after the first batch (403 REQUEST_LIMIT_EXCEEDED).
        contacts_sync = sync_of(conn, "contacts")
        first = services.start_run(contacts_sync)
        assert execute_run(first.pk, max_pages=1, sleep=lambda s: None) is False
        sf.fail_next = [(403, {})]
        assert execute_run(first.pk, max_pages=1000, sleep=lambda s: None) is True
        first.refresh_from_db()
        assert first.status == JobStatus.FAILED and "REQUEST_LIMIT_EXCEEDED" in first.error
        assert first.created == 2000 and sync_of(conn, "contacts").cursor["next"].endswith("-2000")
        before = sf.count("GET", QUERY)
        resumed = run(sync_of(conn, "contacts"))  # the next run goes on from the last batch applied
        assert resumed.status == JobStatus.SUCCEEDED, resumed.error
        assert (resumed.created, resumed.failed) == (CONTACTS - 2000, 0)
        assert sf.count("GET", QUERY) - before == -(-CONTACTS // 2000) - 1  # the remaining queryMore calls only

        # Opportunities: the worker "crashes" after the first batch; the same run is executed again.
        opps_run = services.start_run(sync_of(conn, "opportunities"))
        assert execute_run(opps_run.pk, max_pages=1, sleep=lambda s: None) is False
        assert execute_run(opps_run.pk, max_pages=1000, sleep=lambda s: None) is True
        opps_run.refresh_from_db()
        assert opps_run.status == JobStatus.SUCCEEDED, opps_run.error
        assert opps_run.failed == 1
        stage = SyncRecordError.objects.for_org(org).get(run=opps_run)
        assert stage.external_id == sfid("Opportunity", OPPORTUNITIES + 1) and stage.field == "status"
        assert "Closed Won - Expansion" in stage.reason

        accounts_qs = Account.objects.for_org(org)
        assert accounts_qs.count() == ACCOUNTS
        assert accounts_qs.filter(parent__isnull=False).count() == sum(
            1 for i in range(1, ACCOUNTS + 1) if parent_of(i)
        )
        assert accounts_qs.get(external_id=sfid("Account", 123)).parent.external_id == sfid("Account", 12)
        assert accounts_qs.get(external_id=sfid("Account", 3)).parent.external_id == sfid("Account", ACCOUNTS)
        assert accounts_qs.filter(owner__email="owner@acme.example").count() == ACCOUNTS
        assert Contact.objects.for_org(org).count() == CONTACTS  # no duplicate after the failed run
        assert Contact.objects.for_org(org).get(external_id=sfid("Contact", 7)).account.external_id == sfid(
            "Account", 8
        )
        assert Contract.objects.for_org(org).count() == OPPORTUNITIES  # no duplicate after the crash
        assert ContractLine.objects.for_org(org).count() == OPPORTUNITIES + OPPORTUNITIES // 3
        contract = Contract.objects.for_org(org).get(number=sfid("Opportunity", 6))
        assert contract.account.external_id == sfid("Account", 7)
        assert sorted(line.product.sku for line in contract.lines.all()) == ["PLAT", "SUP"]
        assert contract.arr == 10 * 1200 + 3000

        # --- 40 changes and 5 deletions ----------------------------------------------------------------
        since = max(parse_stamp(sync_of(conn, n).cursor["since"]) for n in ("accounts", "contacts", "opportunities"))
        sf.clock = since + dt.timedelta(seconds=10)
        for i in range(1, 16):
            sf.change("Account", sfid("Account", i * 7), Industry="Software")
        for i in range(1, 16):
            sf.change("Contact", sfid("Contact", i * 11), Title="Champion")
        for i in range(1, 11):
            sf.change("Opportunity", sfid("Opportunity", i * 3), CloseDate="2024-06-01")
        flagged_accounts = [sfid("Account", 4001), sfid("Account", 4002)]
        gone_contacts = [sfid("Contact", 9001), sfid("Contact", 9002)]
        gone_opportunity = sfid("Opportunity", 2999)
        for rid in flagged_accounts:
            sf.delete("Account", rid)
        for rid in gone_contacts:
            sf.delete("Contact", rid)
        sf.delete("Opportunity", gone_opportunity)
        arr_before = Account.objects.for_org(org).get(external_id=sfid("Account", 3000)).arr

        before = len(sf.requests)
        accounts, contacts, opps = (run(sync_of(conn, n)) for n in ("accounts", "contacts", "opportunities"))
        sent = sf.requests[before:]
        assert all(r.status == JobStatus.SUCCEEDED for r in (accounts, contacts, opps))
        # Per object one SOQL query by SystemModstamp and one Get Deleted Records; the accounts' owners once.
        assert (accounts.request_count, contacts.request_count, opps.request_count) == (3, 2, 2)
        assert len(sent) == 7
        assert sum(1 for r in sent if r[1].endswith("/deleted/")) == 3
        assert all("SystemModstamp+%3E+" in r[2] for r in sent if r[1] == QUERY and "FROM+User" not in r[2])
        assert (accounts.fetched, accounts.updated, accounts.deleted, accounts.failed) == (17, 15, 2, 0)
        assert (contacts.fetched, contacts.updated, contacts.deleted, contacts.failed) == (17, 15, 2, 0)
        # 10 opportunities (multiples of 3: two lines each): 20 contract lines (the import counts lines), and
        # the deleted one.
        assert (opps.fetched, opps.updated, opps.deleted, opps.failed) == (20 + 1, 20, 1, 0)
        assert accounts_qs.get(external_id=sfid("Account", 70)).industry == "Software"
        assert Contact.objects.for_org(org).get(external_id=sfid("Contact", 55)).title == "Champion"
        assert str(Contract.objects.for_org(org).get(number=sfid("Opportunity", 30)).start_date) == "2024-06-01"

        # Deletion semantics: nothing destroyed, everything said.
        assert accounts_qs.count() == ACCOUNTS and Contact.objects.for_org(org).count() == CONTACTS
        assert Contract.objects.for_org(org).count() == OPPORTUNITIES
        assert set(accounts_qs.filter(source_deleted_at__isnull=False).values_list("external_id", flat=True)) == set(
            flagged_accounts
        )
        gone = Contact.objects.for_org(org).filter(external_id__in=gone_contacts)
        assert all(not c.is_active and c.source_deleted_at for c in gone)
        deleted_contract = Contract.objects.for_org(org).get(number=gone_opportunity)
        assert deleted_contract.source_deleted_at is not None and deleted_contract.lines.count() == 1
        assert Account.objects.for_org(org).get(external_id=sfid("Account", 3000)).arr == arr_before  # ARR stays
        outcomes = sorted(SyncDeletion.objects.for_org(org).values_list("object_name", "external_id", "outcome"))
        assert outcomes == sorted(
            [("accounts", rid, "flagged") for rid in flagged_accounts]
            + [("contacts", rid, "deactivated") for rid in gone_contacts]
            + [("opportunities", gone_opportunity, "flagged")]
        )

        # --- a restore in Salesforce clears the flag at the next sync ------------------------------------
        sf.undelete("Account", flagged_accounts[0])
        sf.undelete("Contact", gone_contacts[0])
        accounts, contacts = run(sync_of(conn, "accounts")), run(sync_of(conn, "contacts"))
        assert (accounts.fetched, accounts.deleted, contacts.fetched, contacts.deleted) == (1, 0, 1, 0)
        assert accounts_qs.get(external_id=flagged_accounts[0]).source_deleted_at is None
        assert accounts_qs.get(external_id=flagged_accounts[1]).source_deleted_at is not None
        restored = Contact.objects.for_org(org).get(external_id=gone_contacts[0])
        assert restored.is_active and restored.source_deleted_at is None
        assert SyncDeletion.objects.for_org(org).filter(run__in=[accounts, contacts], outcome="restored").count() == 2
