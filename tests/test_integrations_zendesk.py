"""The Zendesk tickets connector (incremental ticket export, cursor based) against a local Zendesk
(fake_zendesk). Real Postgres and Redis (the token bucket); loopback allowed as an operator would.
"""

from __future__ import annotations

import pytest

from health.models import Ticket, TicketPriority, TicketStatus
from integrations import services
from integrations.choices import JobStatus, RunMode
from integrations.models import ObjectSync, SyncRecordError

from .connector_helpers import connect, run
from .factories import AccountFactory
from .fake_zendesk import EMAIL, EXPORT, TOKEN, FakeZendesk

pytestmark = [
    pytest.mark.django_db(transaction=False),
    pytest.mark.usefixtures("loopback_allowed"),
]


@pytest.fixture
def zendesk():
    with FakeZendesk(per_page=4) as fake:
        yield fake


@pytest.fixture
def conn(org, zendesk):
    return connect(org, "zendesk", "Zendesk", zendesk.url, {"email": EMAIL, "api_token": TOKEN})


@pytest.fixture
def accounts(org):
    return {
        "acme": AccountFactory(organization=org, external_id="crm-acme", domain="acme.example"),
        "globex": AccountFactory(organization=org, external_id="crm-globex", domain="globex.example"),
    }


def tickets(conn) -> ObjectSync:
    return ObjectSync.objects.for_org(conn.organization).get(connection=conn, object_name="tickets")


def seed(zendesk: FakeZendesk) -> None:
    """Ten tickets: by organization external_id, by requester domain, solved/closed, every priority."""
    zendesk.add_organization(10, "crm-acme", "Acme")
    zendesk.add_organization(11, None, "Globex (no external id)")
    zendesk.add_user(100, "ann@acme.example", 10)
    zendesk.add_user(101, "bob@globex.example", 11)
    zendesk.add_user(102, "cy@GLOBEX.example")
    priorities = ["urgent", "high", "normal", "low", None]
    for i in range(1, 11):
        requester, org_id = [(100, 10), (101, 11), (102, None)][i % 3]
        status = {3: "solved", 6: "closed", 9: "pending"}.get(i, "open")
        extra = {"solved_at": "2023-11-20T08:00:00Z"} if status == "solved" else {}
        zendesk.add_ticket(
            i, requester_id=requester, organization_id=org_id, priority=priorities[i % 5], status=status, **extra
        )


def test_an_export_over_three_pages_lands_every_ticket_and_a_rerun_changes_nothing(org, conn, zendesk, accounts):
    seed(zendesk)
    first = run(tickets(conn))
    assert first.status == JobStatus.SUCCEEDED, first.error
    assert (first.fetched, first.created, first.failed) == (10, 10, 0)
    assert zendesk.count() == 3  # 4 + 4 + 2 tickets
    assert first.request_count == 3
    found = {t.external_id: t for t in Ticket.objects.for_org(org)}
    assert len(found) == 10
    # Matched by the organization's external_id (ticket 3: org 10), else by the requester's domain.
    assert found["3"].account == accounts["acme"]
    assert found["1"].account == accounts["globex"]  # org 11 has no external_id: bob@globex.example
    assert found["2"].account == accounts["globex"]  # no organization: cy@GLOBEX.example
    assert found["1"].priority == TicketPriority.P2  # high
    assert found["5"].priority == TicketPriority.P1  # urgent
    assert found["3"].priority == TicketPriority.P4  # low
    assert found["2"].priority == TicketPriority.P3  # normal
    assert found["4"].priority == TicketPriority.P3  # none: the kind's default
    assert found["9"].status == TicketStatus.PENDING
    assert found["3"].status == TicketStatus.SOLVED
    assert found["3"].resolved_at.isoformat() == "2023-11-20T08:00:00+00:00"  # metric_sets' solved_at
    assert found["6"].status == TicketStatus.CLOSED and found["6"].resolved_at is not None
    assert found["1"].resolved_at is None
    assert found["1"].opened_at.isoformat().startswith("2023-11-14T")
    # Sideloads asked for in the same request; token auth.
    _, _, query = zendesk.requests[0]
    assert query["start_time"] == ["0"] and "users,organizations,metric_sets" in query["include"][0]
    assert "cursor" in zendesk.requests[1][2]

    # A re-run asks from the stored cursor: nothing new, nothing written.
    snapshot = sorted(Ticket.objects.for_org(org).values_list("external_id", "priority", "status", "opened_at"))
    second = run(tickets(conn))
    assert second.status == JobStatus.SUCCEEDED
    assert (second.fetched, second.created, second.updated) == (0, 0, 0)
    assert zendesk.count() == 4
    # A full re-export (cursor reset) re-applies every ticket: all unchanged.
    ObjectSync.all_orgs.filter(pk=tickets(conn).pk).update(cursor={})
    third = run(tickets(conn))
    assert (third.fetched, third.created, third.updated, third.unchanged) == (10, 0, 0, 10)
    assert sorted(Ticket.objects.for_org(org).values_list("external_id", "priority", "status", "opened_at")) == snapshot


def test_a_changed_ticket_comes_again_and_updates(org, conn, zendesk, accounts):
    seed(zendesk)
    run(tickets(conn))
    zendesk.change_ticket(2, status="solved", priority="urgent", solved_at="2023-11-30T10:00:00Z")
    again = run(tickets(conn))
    assert (again.fetched, again.updated) == (1, 1)
    ticket = Ticket.objects.for_org(org).get(external_id="2")
    assert ticket.status == TicketStatus.SOLVED and ticket.priority == TicketPriority.P1
    assert ticket.resolved_at.isoformat() == "2023-11-30T10:00:00+00:00"


def test_unmatched_and_malformed_tickets_are_listed_while_the_rest_lands(org, conn, zendesk, accounts):
    seed(zendesk)
    zendesk.add_organization(12, "crm-unknown")
    zendesk.add_user(103, "dee@nowhere.example", 12)
    zendesk.add_ticket(11, requester_id=103, organization_id=12)
    zendesk.add_ticket(12, requester_id=None, organization_id=None)
    zendesk.add_raw("bad", {"id": None, "subject": "no id", "status": "open"})
    zendesk.add_ticket(13, requester_id=100, status="weird")
    zendesk.add_ticket(14, requester_id=100, status="deleted")
    r = run(tickets(conn))
    assert r.status == JobStatus.SUCCEEDED, r.error
    assert (r.fetched, r.created, r.failed, r.deleted) == (15, 10, 4, 1)
    errors = {e.external_id: e for e in SyncRecordError.objects.for_org(org).filter(run=r)}
    assert set(errors) == {"11", "12", "", "13"}
    assert errors["11"].field == "account_external_id"
    assert "'crm-unknown'" in errors["11"].reason and "'nowhere.example'" in errors["11"].reason
    assert "no organization" in errors["12"].reason and "no email" in errors["12"].reason
    assert "malformed" in errors[""].reason and "no id" in errors[""].reason
    assert errors["13"].field == "status"
    assert Ticket.objects.for_org(org).count() == 10


def test_429_retry_after_is_honoured(org, conn, zendesk, accounts):
    seed(zendesk)
    zendesk.fail_next = [(429, {"Retry-After": "17"}), (503, {})]
    sleeps: list[float] = []
    r = run(tickets(conn), sleeps=sleeps)
    assert r.status == JobStatus.SUCCEEDED, r.error
    assert r.created == 10
    assert 17.0 in sleeps
    assert r.request_count == 3 + 2


def test_the_export_limit_is_ten_requests_a_minute(org, conn, zendesk, accounts):
    zendesk.per_page = 1
    seed(zendesk)
    sleeps: list[float] = []
    r = run(tickets(conn), sleeps=sleeps)
    assert r.created == 10 and zendesk.count() == 10
    assert sum(sleeps) == 0  # ten requests fit in the minute's bucket
    zendesk.add_ticket(11, requester_id=100)
    r = run(tickets(conn), sleeps=sleeps)
    assert r.created == 1
    assert sum(sleeps) >= 5  # the eleventh waits for a token (6 s per request)


def test_dry_run_writes_nothing_and_keeps_the_cursor(org, conn, zendesk, accounts):
    seed(zendesk)
    r = run(tickets(conn), mode=RunMode.DRY_RUN)
    assert (r.created, r.failed) == (10, 0)
    assert not Ticket.objects.for_org(org).exists()
    assert tickets(conn).cursor == {}


def test_connection_test_and_wrong_token(org, conn, zendesk):
    ok, message = services.test_connection(conn)
    assert ok and EMAIL in message
    services.update_connection(conn, credentials={"email": EMAIL, "api_token": "wrong"})
    ok, message = services.test_connection(conn)
    assert not ok and "401" in message and "wrong" not in message
    assert zendesk.requests[-1][1] == "/api/v2/users/me.json"
    assert EXPORT not in {p for _, p, _ in zendesk.requests}
