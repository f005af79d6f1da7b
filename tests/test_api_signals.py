"""The health-signal API: usage metrics (shape, filters, read-only), tickets and invoices (CRUD, upsert, filters)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from health.models import Invoice, Ticket, UsageMetric
from health.rollups import rollup_usage

from .factories import AccountFactory
from .signal_factories import InvoiceFactory, TicketFactory, UsageEventFactory, UsageMetricFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/usage-metrics/"


def rows(response) -> list[dict]:
    assert response.status_code == 200, response.json()
    return response.json()["results"]


@pytest.fixture
def usage(org):
    a1 = AccountFactory(organization=org, external_id="A1")
    a2 = AccountFactory(organization=org, external_id="A2")
    for account in (a1, a2):
        for day in (1, 2, 3):
            for metric, value in (("events", 10 * day), ("active_users", day), ("event:Login", 1)):
                UsageMetricFactory(account=account, date=dt.date(2026, 11, day), metric=metric, value=value)
    return a1, a2


def test_rows_have_the_usage_csv_shape(org, api, usage):
    a1, _ = usage
    found = rows(api(org, "viewer").get(URL, {"account_external_id": "A1", "date_after": "2026-11-02",
                                              "date_before": "2026-11-02", "metric": "events"}))  # fmt: skip
    assert found == [
        {"id": found[0]["id"], "account": a1.pk, "account_external_id": "A1", "date": "2026-11-02",
         "metric": "events", "value": "20.0000"},
    ]  # fmt: skip


def test_filters_by_account_date_range_and_several_metrics(org, api, usage):
    _, a2 = usage
    client = api(org, "viewer")
    found = rows(client.get(URL, {"account": a2.pk, "metric": ["events", "event:Login"], "date_after": "2026-11-02"}))
    assert sorted((r["account_external_id"], r["date"], r["metric"]) for r in found) == [
        ("A2", "2026-11-02", "event:Login"), ("A2", "2026-11-02", "events"),
        ("A2", "2026-11-03", "event:Login"), ("A2", "2026-11-03", "events"),
    ]  # fmt: skip
    assert rows(client.get(URL, {"metric": "nothing"})) == []
    assert client.get(URL, {"date_after": "yesterday"}).status_code == 400
    ordered = rows(client.get(URL, {"metric": "events", "ordering": "-value,account__external_id"}))
    assert [(r["account_external_id"], r["value"]) for r in ordered][:2] == [("A1", "30.0000"), ("A2", "30.0000")]


def test_usage_metrics_are_read_only_even_for_admins(org, api, usage):
    client = api(org, "admin")
    metric = UsageMetric.all_orgs.filter(organization=org).first()
    body = {"account": usage[0].pk, "date": "2026-12-01", "metric": "events", "value": "1"}
    assert client.post(URL, body, format="json").status_code == 405
    assert client.patch(f"{URL}{metric.pk}/", {"value": "99"}, format="json").status_code == 405
    assert client.delete(f"{URL}{metric.pk}/").status_code == 405
    assert UsageMetric.all_orgs.filter(pk=metric.pk, value=metric.value).exists()


def test_rolled_up_events_are_served_per_account_and_day(org, api):
    org.raw_event_retention_days = 36_500
    org.save()
    account = AccountFactory(organization=org, external_id="ACME")
    for user, hour in (("u1", 9), ("u1", 10), ("u2", 11)):
        UsageEventFactory(account=account, user_id=user, timestamp=dt.datetime(2026, 11, 2, hour, tzinfo=dt.UTC))
    rollup_usage(org.pk)
    found = rows(api(org, "viewer").get(URL, {"account_external_id": "ACME"}))
    assert {(r["date"], r["metric"]): Decimal(r["value"]) for r in found} == {
        ("2026-11-02", "events"): 3, ("2026-11-02", "active_users"): 2, ("2026-11-02", "event:Page Viewed"): 3,
    }  # fmt: skip


class TestTickets:
    URL = "/api/v1/tickets/"

    def test_crud_and_upsert_by_external_id(self, org, api, account):
        client = api(org, "admin")
        body = {"account": account.pk, "external_id": "ZD-1", "opened_at": "2026-11-02T09:00:00Z", "priority": "P1"}
        created = client.post(self.URL, body, format="json")
        assert created.status_code == 201, created.json()
        assert created.json() | {"id": 0} == {
            "id": 0, "external_id": "ZD-1", "account": account.pk, "account_external_id": account.external_id,
            "opened_at": "2026-11-02T09:00:00Z", "priority": "P1", "status": "open", "resolved_at": None,
            "subject": "", "issue_key": "", "updated_at": None,
        }  # fmt: skip
        upserted = client.put(
            f"{self.URL}external/ZD-1/", {"status": "solved", "resolved_at": "2026-11-03T09:00:00Z"}, format="json"
        )
        assert upserted.status_code == 200, upserted.json()
        assert upserted.json()["id"] == created.json()["id"]
        new = client.put(f"{self.URL}external/ZD-2/", {**body, "external_id": "ignored"}, format="json")
        assert new.status_code == 201 and new.json()["external_id"] == "ZD-2"
        assert Ticket.all_orgs.filter(organization=org).count() == 2
        assert client.delete(f"{self.URL}{created.json()['id']}/").status_code == 204

    def test_validation_errors_name_the_field(self, org, api, account):
        client = api(org, "admin")
        TicketFactory(account=account, external_id="ZD-1")
        body = {"account": account.pk, "external_id": "ZD-2", "opened_at": "2026-11-02T09:00Z"}

        def errors(**changes) -> dict:
            response = client.post(self.URL, {**body, **changes}, format="json")
            assert response.status_code == 400
            return response.json()["errors"]

        assert set(errors(priority="P7", status="lost")) == {"priority", "status"}
        assert set(errors(external_id="ZD-1")) == {"external_id"}
        assert errors(resolved_at="2026-11-01T09:00Z") == {"resolved_at": ["Resolved before it was opened."]}
        assert Ticket.all_orgs.filter(organization=org).count() == 1

    def test_filters(self, org, api):
        a1, a2 = AccountFactory(organization=org, external_id="A1"), AccountFactory(organization=org)
        at = lambda d: dt.datetime(2026, 11, d, 9, tzinfo=dt.UTC)  # noqa: E731
        t1 = TicketFactory(account=a1, external_id="T1", priority="P1", status="open", opened_at=at(1))
        t2 = TicketFactory(account=a1, external_id="T2", priority="P2", status="pending", opened_at=at(5))
        t3 = TicketFactory(account=a2, external_id="T3", priority="P1", status="solved", opened_at=at(9))
        client = api(org, "viewer")

        def ids(**params) -> list[str]:
            return [r["external_id"] for r in rows(client.get(self.URL, params))]

        assert ids() == ["T3", "T2", "T1"]  # newest first
        assert ids(open="true") == ["T2", "T1"]
        assert ids(open="false") == ["T3"]
        assert ids(priority="P1", ordering="opened_at") == ["T1", "T3"]
        assert ids(status=["open", "solved"], ordering="external_id") == ["T1", "T3"]
        assert ids(account=a1.pk, opened_after="2026-11-02T00:00:00Z") == ["T2"]
        assert ids(account_external_id="A1", opened_before="2026-11-02T00:00:00Z") == ["T1"]
        assert client.get(self.URL, {"ordering": "secret"}).status_code == 400
        assert {t1.pk, t2.pk, t3.pk} == {r["id"] for r in rows(client.get(self.URL))}

    def test_csm_writes_tickets_of_their_book_only(self, org, api, bob, make_member, account):
        other = AccountFactory(organization=org, owner=make_member(org, "csm").user)
        client = api(org, "csm", bob)
        body = {"external_id": "ZD-9", "opened_at": "2026-11-02T09:00Z"}
        assert client.post(self.URL, {**body, "account": account.pk}, format="json").status_code == 201
        assert (
            client.post(self.URL, {**body, "external_id": "ZD-10", "account": other.pk}, format="json").status_code
            == 403
        )
        theirs = TicketFactory(account=other)
        assert client.patch(f"{self.URL}{theirs.pk}/", {"status": "closed"}, format="json").status_code == 403
        assert api(org, "viewer").post(self.URL, {**body, "account": account.pk}, format="json").status_code == 403


class TestInvoices:
    URL = "/api/v1/invoices/"

    def test_crud_and_upsert_by_external_id(self, org, api, account):
        client = api(org, "admin")
        body = {"account": account.pk, "due_date": "2026-11-30", "amount": "1200.00"}
        created = client.put(f"{self.URL}external/INV-1/", body, format="json")
        assert created.status_code == 201, created.json()
        assert created.json() | {"id": 0} == {
            "id": 0, "external_id": "INV-1", "account": account.pk, "account_external_id": account.external_id,
            "issued_on": "2026-10-31", "due_date": "2026-11-30", "amount": "1200.00", "currency": org.currency,
            "paid_at": None,
        }  # fmt: skip
        paid = client.put(f"{self.URL}external/INV-1/", {"paid_at": "2026-11-20"}, format="json")
        assert paid.status_code == 200 and paid.json()["paid_at"] == "2026-11-20"
        bad = client.post(self.URL, {**body, "external_id": "INV-2", "amount": "-1", "currency": "dollars"},
                          format="json")  # fmt: skip
        assert bad.status_code == 400 and set(bad.json()["errors"]) == {"amount", "currency"}
        assert Invoice.all_orgs.filter(organization=org).count() == 1

    def test_filters_paid_overdue_and_due_range(self, org, api, account):
        today = timezone.localdate()
        InvoiceFactory(account=account, external_id="PAID", due_date=today - dt.timedelta(days=40), paid_at=today)
        InvoiceFactory(account=account, external_id="LATE", due_date=today - dt.timedelta(days=10))
        InvoiceFactory(account=account, external_id="DUE", due_date=today + dt.timedelta(days=10))
        client = api(org, "viewer")

        def ids(**params) -> list[str]:
            return [r["external_id"] for r in rows(client.get(self.URL, params))]

        assert ids() == ["DUE", "LATE", "PAID"]
        assert ids(overdue="true") == ["LATE"]
        assert ids(overdue="false") == ["DUE", "PAID"]
        assert ids(paid="true") == ["PAID"]
        assert ids(paid="false", ordering="due_date") == ["LATE", "DUE"]
        assert ids(due_after=str(today - dt.timedelta(days=20)), due_before=str(today)) == ["LATE"]
        assert ids(account_external_id=account.external_id, ordering="-amount,external_id") == ["DUE", "LATE", "PAID"]
