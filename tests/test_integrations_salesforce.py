"""The Salesforce connector (simple-salesforce through ConnectorHttp) against a local Salesforce
(fake_salesforce): SOQL with queryMore, SystemModstamp increments, deleted records, errors, push-back.

Real Postgres and Redis (the token bucket); the outbound guard allows loopback only here.
"""

from __future__ import annotations

import pytest

from accounts.models import Account, Contact, Contract
from integrations import services
from integrations.choices import JobStatus, RunMode
from integrations.models import SyncRecordError, SyncRun
from integrations.sync import execute_run

from .connector_helpers import connect, run, sync_of
from .factories import MembershipFactory, UserFactory
from .fake_salesforce import TOKEN, FakeSalesforce, sfid

pytestmark = [
    pytest.mark.django_db(transaction=False),
    pytest.mark.usefixtures("loopback_allowed"),
]

QUERY = "/services/data/v60.0/query/"


@pytest.fixture
def sf():
    with FakeSalesforce() as fake:
        fake.batch_size = 100
        yield fake


@pytest.fixture
def conn(org, sf):
    return connect(org, "salesforce", "Salesforce", sf.url, {"access_token": TOKEN})


def seed(sf: FakeSalesforce, org, accounts=300, contacts=900, opportunities=200) -> None:
    MembershipFactory(organization=org, role="csm", user=UserFactory(email="Owner@Acme.example"))
    member_email = "Owner@Acme.example"  # Salesforce's case; Retain matches emails case-blind
    owner = sf.add_user(1, member_email)
    stranger = sf.add_user(2, "someone@elsewhere.example")
    sf.add_account(1, Industry="Software", BillingCountry="France", NumberOfEmployees=250, OwnerId=owner)
    for i in range(2, accounts + 1):
        # Children name a parent in an earlier or a later page (100 a page).
        parent = sfid("Account", accounts) if i == 3 else (sfid("Account", 1) if i % 50 == 0 else None)
        sf.add_account(i, ParentId=parent, OwnerId=stranger if i % 7 == 0 else owner)
    for i in range(1, contacts + 1):
        sf.add_contact(i, sfid("Account", (i % accounts) + 1))
    for i in range(1, opportunities + 1):
        lines = [("PLAT", "Platform", 10, 1200.0), ("SUP", "Support", 1, 3000.0)] if i % 2 else []
        sf.add_opportunity(i, sfid("Account", (i % accounts) + 1), lines=lines)


def test_first_sync_lands_accounts_contacts_and_contracts_with_hierarchy(org, conn, sf):
    seed(sf, org)
    accounts = run(sync_of(conn, "accounts"))
    assert accounts.status == JobStatus.SUCCEEDED, accounts.error
    assert (accounts.fetched, accounts.created, accounts.failed) == (300, 300, 0)
    assert sf.count("GET", QUERY) == 3 + 1  # the query, two queryMore calls, the owners' query
    parent = Account.objects.for_org(org).get(external_id=sfid("Account", 1))
    assert (parent.industry, parent.region, parent.employees) == ("Software", "France", 250)
    assert parent.domain == "a1.example" and parent.owner.email.lower() == "owner@acme.example"
    assert Account.objects.for_org(org).get(external_id=sfid("Account", 50)).parent_id == parent.pk
    # Account 3 names account 300, which comes two pages later: linked at the run's end.
    assert Account.objects.for_org(org).get(external_id=sfid("Account", 3)).parent.external_id == sfid("Account", 300)
    assert Account.objects.for_org(org).get(external_id=sfid("Account", 7)).owner is None  # not a member
    assert Account.objects.for_org(org).get(external_id=sfid("Account", 2)).custom_fields == {}

    contacts = run(sync_of(conn, "contacts"))
    assert contacts.status == JobStatus.SUCCEEDED, contacts.error
    assert (contacts.created, contacts.failed) == (900, 0)
    contact = Contact.objects.for_org(org).get(external_id=sfid("Contact", 5))
    assert contact.account.external_id == sfid("Account", 6) and contact.email == "contact5@example.com"

    opps = run(sync_of(conn, "opportunities"))
    assert opps.status == JobStatus.SUCCEEDED, opps.error
    assert opps.failed == 0
    assert Contract.objects.for_org(org).count() == 200
    with_lines = Contract.objects.for_org(org).get(number=sfid("Opportunity", 1))
    assert with_lines.account.external_id == sfid("Account", 2)
    assert (str(with_lines.start_date), str(with_lines.end_date)) == ("2024-03-01", "2025-02-28")
    assert sorted(line.product.sku for line in with_lines.lines.all()) == ["PLAT", "SUP"]
    assert with_lines.lines.get(product__sku="PLAT").quantity == 10
    no_lines = Contract.objects.for_org(org).get(number=sfid("Opportunity", 2))
    assert [line.product.sku for line in no_lines.lines.all()] == ["SF-OPPORTUNITY"]
    sync = sync_of(conn, "accounts")
    assert set(sync.cursor) == {"since", "deleted_since"}


def test_next_sync_fetches_only_changes_and_deletions(org, conn, sf):
    seed(sf, org, accounts=300, contacts=30, opportunities=10)
    assert run(sync_of(conn, "accounts")).created == 300
    assert run(sync_of(conn, "contacts")).created == 30
    # The first sync's watermark is its start (minus the skew); the fake's clock is in the past: move it on.
    since = sync_of(conn, "accounts").cursor["since"]
    from integrations.connectors.salesforce import parse_stamp

    sf.clock = parse_stamp(since) + __import__("datetime").timedelta(seconds=10)
    for i in range(10, 50):
        sf.change("Account", sfid("Account", i), Industry="Retail")
    for i in range(290, 295):
        sf.delete("Account", sfid("Account", i))
    sf.delete("Contact", sfid("Contact", 3))
    before = len(sf.requests)
    second = run(sync_of(conn, "accounts"))
    assert second.status == JobStatus.SUCCEEDED, second.error
    assert (second.fetched, second.updated, second.deleted) == (45, 40, 5)
    sent = sf.requests[before:]
    queries = [r for r in sent if r[1] == QUERY and "FROM+Account" in r[2]]
    assert len(queries) == 1 and "SystemModstamp+%3E+" in queries[0][2]
    assert sum(1 for r in sent if r[1].endswith("/sobjects/Account/deleted/")) == 1
    assert second.request_count == len(sent) == 3  # the changes, the owners, the deleted records
    assert Account.objects.for_org(org).get(external_id=sfid("Account", 33)).industry == "Retail"
    contacts = run(sync_of(conn, "contacts"))
    assert (contacts.fetched, contacts.deleted) == (1, 1)
    third = run(sync_of(conn, "accounts"))
    assert (third.fetched, third.deleted) == (0, 0)  # the watermark moved past the newest change


def test_unmappable_stage_and_malformed_records_are_listed_and_the_rest_lands(org, conn, sf):
    seed(sf, org, accounts=20, contacts=5, opportunities=10)
    sf.add_opportunity(11, sfid("Account", 3), StageName="Closed Won - Expansion")
    sf.add_opportunity(12, sfid("Account", 4), StageName="Prospecting", IsWon=False)  # not a contract: not read
    sf.add_raw("Opportunity", {"attributes": {"type": "Opportunity"}, "Name": "no id"})
    sf.add_account(21, Website="not a website")
    sf.add_raw("Account", "oops")
    assert run(sync_of(conn, "accounts")).failed == 2
    errors = {e.external_id: e for e in SyncRecordError.objects.for_org(org).filter(object_name="accounts")}
    assert errors[sfid("Account", 21)].field == "domain" and "web address" in errors[sfid("Account", 21)].reason
    assert "malformed" in errors[""].reason
    r = run(sync_of(conn, "opportunities"))
    assert r.status == JobStatus.SUCCEEDED
    assert r.failed == 2
    errors = {e.external_id: e for e in SyncRecordError.objects.for_org(org).filter(run=r)}
    stage = errors[sfid("Opportunity", 11)]
    assert stage.field == "status" and "Closed Won - Expansion" in stage.reason
    assert "no Id" in errors[""].reason
    assert Contract.objects.for_org(org).count() == 10
    assert not Contract.objects.for_org(org).filter(number__in=[sfid("Opportunity", 11), sfid("Opportunity", 12)])


def test_429_retry_after_and_503_are_honoured_and_request_limit_is_a_plain_reason(org, conn, sf):
    seed(sf, org, accounts=150, contacts=0, opportunities=0)
    sf.fail_next = [(429, {"Retry-After": "7"}), (503, {})]
    sleeps: list[float] = []
    r = run(sync_of(conn, "accounts"), sleeps=sleeps)
    assert r.status == JobStatus.SUCCEEDED, r.error
    assert r.created == 150 and 7.0 in sleeps
    assert r.request_count == 3 + 2  # two pages and the owners, two refused tries
    sf.fail_next = [(403, {})]
    failed = run(sync_of(conn, "contacts"))
    assert failed.status == JobStatus.FAILED and "REQUEST_LIMIT_EXCEEDED" in failed.error
    assert sync_of(conn, "contacts").cursor == {}


def test_a_crash_mid_sync_resumes_without_duplicates_even_when_the_locator_expired(org, conn, sf):
    seed(sf, org, accounts=350, contacts=0, opportunities=0)
    sync = sync_of(conn, "accounts")
    r = services.start_run(sync)
    assert execute_run(r.pk, max_pages=2, sleep=lambda s: None) is False
    assert sync_of(conn, "accounts").cursor["next"].endswith("-200")
    assert execute_run(r.pk, max_pages=1000, sleep=lambda s: None) is True
    r.refresh_from_db()
    assert r.status == JobStatus.SUCCEEDED and r.created == 350
    assert Account.objects.for_org(org).count() == 350
    # Again, with the query locator gone when the run resumes (a worker down for more than 15 minutes).
    sf.clock = sf.clock.replace(year=2030)
    for i in range(1, 351):
        sf.change("Account", sfid("Account", i), Industry="Media")
    r2 = services.start_run(sync_of(conn, "accounts"))
    assert execute_run(r2.pk, max_pages=2, sleep=lambda s: None) is False
    sf.expire_locators()
    assert execute_run(r2.pk, max_pages=1000, sleep=lambda s: None) is True
    r2.refresh_from_db()
    assert r2.status == JobStatus.SUCCEEDED, r2.error
    assert Account.objects.for_org(org).count() == 350
    assert Account.objects.for_org(org).filter(industry="Media").count() == 350


def test_dry_run_writes_nothing_and_keeps_the_cursor(org, conn, sf):
    seed(sf, org, accounts=120, contacts=0, opportunities=0)
    r = run(sync_of(conn, "accounts"), mode=RunMode.DRY_RUN)
    assert r.status == JobStatus.SUCCEEDED and r.created == 120
    assert not Account.objects.for_org(org).exists()
    assert sync_of(conn, "accounts").cursor == {}


def test_wrong_token_fails_the_test_with_a_plain_reason(org, conn, sf):
    assert services.test_connection(conn)[0]
    services.update_connection(conn, credentials={"access_token": "wrong"})
    ok, message = services.test_connection(conn)
    assert not ok and "INVALID_SESSION_ID" in message and "wrong" not in message


def test_push_back_sends_only_changed_accounts_at_most_200_a_request(org, conn, sf):
    import datetime as dt
    from decimal import Decimal

    from django.utils import timezone

    from health.models import HealthScore
    from integrations.models import PushState
    from renewals.models import Renewal

    seed(sf, org, accounts=250, contacts=0, opportunities=3)
    assert run(sync_of(conn, "accounts")).created == 250
    assert run(sync_of(conn, "opportunities")).failed == 0
    accounts = list(Account.objects.for_org(org).order_by("external_id"))
    now = timezone.now()
    HealthScore.all_orgs.bulk_create(
        HealthScore(organization=org, account=a, score=Decimal("72.5"), color="green", trend="up", computed_at=now)
        for a in accounts[:240]
    )
    contract = Contract.objects.for_org(org).get(number=sfid("Opportunity", 1))
    Renewal.all_orgs.create(
        organization=org, account=contract.account, contract=contract, due_date=dt.date(2025, 2, 28),
        forecast_category="commit",
    )  # fmt: skip
    sf.delete("Account", sfid("Account", 250))  # gone in Salesforce: refused, listed, sent again next time
    first = run(sync_of(conn, "accounts"), mode=RunMode.PUSH)
    assert first.status == JobStatus.SUCCEEDED, first.error
    assert (first.updated, first.failed, first.unchanged) == (249, 1, 0)
    assert [len(batch) for batch in sf.pushed] == [200, 50]
    assert first.request_count == 2
    pushed = sf.records["Account"][sfid("Account", 1)]
    assert (pushed["Retain_Health_Score__c"], pushed["Retain_Health_Color__c"]) == (72.5, "green")
    renewing = sf.records["Account"][contract.account.external_id]
    assert renewing["Retain_Next_Renewal_Date__c"] == "2025-02-28"
    assert renewing["Retain_Forecast_Category__c"] == "commit"
    assert sf.records["Account"][sfid("Account", 245)]["Retain_Health_Score__c"] is None
    error = SyncRecordError.objects.for_org(org).get(run=first)
    assert error.external_id == sfid("Account", 250) and "ENTITY_IS_DELETED" in error.reason
    assert PushState.objects.for_org(org).filter(connection=conn).count() == 249
    refused = Account.objects.for_org(org).get(external_id=sfid("Account", 250))
    assert not PushState.objects.for_org(org).filter(account=refused).exists()  # its digest is not "pushed"

    sf.pushed.clear()
    second = run(sync_of(conn, "accounts"), mode=RunMode.PUSH)
    assert [len(batch) for batch in sf.pushed] == [1]  # only the refused one again
    assert (second.updated, second.failed, second.unchanged) == (0, 1, 249)

    HealthScore.objects.for_org(org).filter(account__in=accounts[:3]).update(color="red", trend="down")
    sf.pushed.clear()
    third = run(sync_of(conn, "accounts"), mode=RunMode.PUSH)
    assert third.updated == 3 and [len(batch) for batch in sf.pushed] == [4]
    assert sf.records["Account"][accounts[0].external_id]["Retain_Health_Color__c"] == "red"


def test_the_login_host_is_not_an_instance_url_and_the_push_mapping_is_validated(org, sf):
    connection = services.create_connection(org, kind="salesforce", name="Login", credentials={"access_token": TOKEN})
    assert connection.base_url == "https://login.salesforce.com"
    ok, message = services.test_connection(connection)
    assert not ok and "instance URL" in message
    accounts = sync_of(connection, "accounts")
    assert services.mapping_problems(accounts, {"fields": [], "push": {"health_score": "Score__c"}}) == []
    assert services.mapping_problems(accounts, {"fields": [], "push": ["x"]})[0]["path"] == "push"


def test_no_log_line_or_record_error_carries_the_token(org, conn, sf, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    seed(sf, org, accounts=5, contacts=0, opportunities=0)
    sf.fail_next = [(429, {"Retry-After": "0"}), (503, {})]
    assert run(sync_of(conn, "accounts")).created == 5
    services.update_connection(conn, credentials={"access_token": TOKEN + "x"})
    assert not services.test_connection(conn)[0]
    assert caplog.records  # urllib3 and the library did log
    assert TOKEN not in caplog.text
    assert all(TOKEN not in str(r.error) for r in SyncRun.objects.for_org(org))


def test_the_old_push_task_name_starts_the_unified_push_run(org, conn, sf, django_capture_on_commit_callbacks):
    """Messages queued under the old task name (before the push paths were folded together) still push:
    the alias starts the accounts sync's ``mode=push`` run, executed like every run."""
    from integrations.tasks import push_salesforce_accounts

    seed(sf, org, accounts=4, contacts=0, opportunities=0)
    assert run(sync_of(conn, "accounts")).created == 4
    with django_capture_on_commit_callbacks(execute=False):
        push_salesforce_accounts.apply(args=[org.pk, conn.pk])
    push = SyncRun.objects.for_org(org).get(mode=RunMode.PUSH)
    assert push.status == JobStatus.QUEUED and push.sync.object_name == "accounts"
    execute_run(push.pk, sleep=lambda s: None)
    push.refresh_from_db()
    assert push.status == JobStatus.SUCCEEDED and push.updated == 4
    assert [len(batch) for batch in sf.pushed] == [4]


def test_a_sync_in_both_directions_queues_the_same_push_run(org, conn, sf, django_capture_on_commit_callbacks):
    """No Salesforce special case: a sync of the accounts object set to ``both`` queues a ``mode=push`` run
    of the same sync (not a separate task)."""
    from integrations.choices import Direction

    seed(sf, org, accounts=4, contacts=0, opportunities=0)
    sync = sync_of(conn, "accounts")
    sync.direction = Direction.BOTH
    sync.save()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert run(sync).created == 4
    assert callbacks  # the push run's task, queued after commit
    push = SyncRun.objects.for_org(org).get(sync=sync, mode=RunMode.PUSH)
    execute_run(push.pk, sleep=lambda s: None)
    push.refresh_from_db()
    assert (push.status, push.updated, push.failed) == (JobStatus.SUCCEEDED, 4, 0)
    assert sf.records["Account"][sfid("Account", 1)]["Retain_Health_Score__c"] is None
