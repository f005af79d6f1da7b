"""CSV import kinds of the health signals: usage, tickets, invoices (spec §8 columns, all or nothing)."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command

from cs_platform.imports import import_csv
from health.models import Invoice, Ticket, UsageMetric

from .factories import AccountFactory
from .signal_factories import InvoiceFactory, TicketFactory, UsageMetricFactory

pytestmark = pytest.mark.django_db


def csv_text(*lines: str) -> io.StringIO:
    return io.StringIO("\n".join(lines) + "\n")


@pytest.fixture
def accounts(org):
    return AccountFactory(organization=org, external_id="A1"), AccountFactory(organization=org, external_id="A2")


def usage_rows(org) -> set[tuple[str, dt.date, str, Decimal]]:
    return {
        (m.account.external_id, m.date, m.metric, m.value)
        for m in UsageMetric.all_orgs.filter(organization=org).select_related("account")
    }


class TestUsage:
    HEADER = "account_external_id,date,metric,value"

    def test_happy_path_upserts_by_account_date_metric(self, org, accounts):
        a1, _ = accounts
        UsageMetricFactory(account=a1, date=dt.date(2026, 11, 1), metric="events", value=5)
        UsageMetricFactory(account=a1, date=dt.date(2026, 11, 2), metric="events", value=9)
        result = import_csv(org, "usage", csv_text(
            self.HEADER,
            "A1,2026-11-01,events,5",          # unchanged
            "A1,2026-11-02,events,10",         # updated
            "A1,2026-11-02,active_users,3",    # created
            "A2,2026-11-02,seats_used,12.5",   # created, a metric of its own
        ))  # fmt: skip
        assert result.ok, result.errors
        assert (result.rows, result.created, result.updated, result.unchanged) == (4, 2, 1, 1)
        assert usage_rows(org) == {
            ("A1", dt.date(2026, 11, 1), "events", Decimal(5)),
            ("A1", dt.date(2026, 11, 2), "events", Decimal(10)),
            ("A1", dt.date(2026, 11, 2), "active_users", Decimal(3)),
            ("A2", dt.date(2026, 11, 2), "seats_used", Decimal("12.5")),
        }
        again = import_csv(org, "usage", csv_text(self.HEADER, "A1,2026-11-02,events,10"))
        assert (again.created, again.updated, again.unchanged) == (0, 0, 1)

    def test_one_bad_row_imports_nothing_and_is_named(self, org, accounts):
        result = import_csv(org, "usage", csv_text(
            self.HEADER,
            "A1,2026-11-01,events,5",
            "A1,2026-11-31,events,5",
            "A9,2026-11-02,events,1",
            "A2,2026-11-02,events,1.00001",
            "A2,2026-11-03,,1",
            "A1,2026-11-01,events,6",
        ))  # fmt: skip
        assert not result.ok
        assert [str(e) for e in result.errors] == [
            "line 3, column date: '2026-11-31' is not a valid date",
            "line 4, column account_external_id: no account with external_id A9",
            "line 5, column value: 1.00001 has more than 4 decimal places",
            "line 6, column metric: is required",
            "line 7, column metric: events on 2026-11-01 for account A1 is already on line 2",
        ]
        assert not UsageMetric.all_orgs.filter(organization=org).exists()

    def test_accounts_of_another_organization_are_unknown(self, org, other_org):
        AccountFactory(organization=other_org, external_id="THEIRS")
        result = import_csv(org, "usage", csv_text(self.HEADER, "THEIRS,2026-11-01,events,5"))
        assert [str(e) for e in result.errors] == [
            "line 2, column account_external_id: no account with external_id THEIRS"
        ]
        assert not UsageMetric.all_orgs.exists()


class TestTickets:
    HEADER = "external_id,account_external_id,opened_at,priority,status,resolved_at"

    def test_happy_path_upserts_by_external_id(self, org, accounts):
        a1, _ = accounts
        TicketFactory(account=a1, external_id="T1", subject="Login broken", priority="P1", status="open")
        org.time_zone = "Europe/Paris"
        org.save()
        result = import_csv(org, "tickets", csv_text(
            self.HEADER,
            "T1,A1,2026-11-02T09:00:00Z,,solved,2026-11-03T10:00:00+00:00",
            "T2,A2,2026-11-02 09:00,p2,,",
            "T3,A2,2026-11-04,,,",
        ))  # fmt: skip
        assert result.ok, result.errors
        assert (result.created, result.updated, result.unchanged) == (2, 1, 0)
        tickets = {t.external_id: t for t in Ticket.all_orgs.filter(organization=org)}
        t1, t2, t3 = tickets["T1"], tickets["T2"], tickets["T3"]
        # Empty priority keeps P1; the subject (not a column) is kept.
        assert (t1.priority, t1.status, t1.subject) == ("P1", "solved", "Login broken")
        assert t1.resolved_at == dt.datetime(2026, 11, 3, 10, tzinfo=dt.UTC)
        # A time without a zone is read in the organization's time zone (Paris is UTC+1 in November).
        assert t2.opened_at == dt.datetime(2026, 11, 2, 8, tzinfo=dt.UTC)
        assert (t2.priority, t2.status, t2.resolved_at) == ("P2", "open", None)
        assert (t3.priority, t3.account.external_id) == ("P3", "A2")

    def test_one_bad_row_imports_nothing_and_is_named(self, org, accounts):
        result = import_csv(org, "tickets", csv_text(
            self.HEADER,
            "T1,A1,2026-11-02,P1,open,",
            "T2,A1,2026-11-02,P9,open,",
            "T3,A1,2026-11-05,P2,solved,2026-11-04",
            "T1,A2,2026-11-02,P1,nope,",
        ))  # fmt: skip
        assert [(e.line, e.column) for e in result.errors] == [
            (3, "priority"), (4, "resolved_at"), (5, "external_id"), (5, "status"),
        ]  # fmt: skip
        assert "P9" in result.errors[0].reason
        assert not Ticket.all_orgs.exists()


class TestInvoices:
    HEADER = "external_id,account_external_id,due_date,amount,paid_at"

    def test_happy_path_upserts_by_external_id(self, org, accounts):
        a1, _ = accounts
        InvoiceFactory(account=a1, external_id="I1", amount=Decimal("100.00"), currency="EUR")
        result = import_csv(org, "invoices", csv_text(
            self.HEADER, "I1,A1,2026-11-30,100.00,2026-11-20", "I2,A2,2026-12-31,2500.5,",
        ))  # fmt: skip
        assert result.ok, result.errors
        assert (result.created, result.updated) == (1, 1)
        invoices = {i.external_id: i for i in Invoice.all_orgs.filter(organization=org)}
        assert (invoices["I1"].paid_at, invoices["I1"].currency) == (dt.date(2026, 11, 20), "EUR")
        assert (invoices["I2"].amount, invoices["I2"].paid_at, invoices["I2"].currency) == (
            Decimal("2500.50"), None, org.currency,
        )  # fmt: skip

    def test_one_bad_row_imports_nothing_and_is_named(self, org, accounts):
        result = import_csv(org, "invoices", csv_text(
            self.HEADER, "I1,A1,2026-11-30,100.00,", "I2,A1,2026-11-30,-5,", "I3,A1,30/11/2026,1,",
        ))  # fmt: skip
        assert [str(e) for e in result.errors] == [
            "line 3, column amount: -5 is below 0",
            "line 4, column due_date: '30/11/2026' is not a date (expected YYYY-MM-DD)",
        ]
        assert not Invoice.all_orgs.exists()

    def test_header_must_be_the_spec_columns(self, org):
        result = import_csv(org, "invoices", csv_text("external_id,account_external_id,due_date,amount,currency"))
        assert {(e.column, e.reason.split(";")[0]) for e in result.errors} == {
            ("currency", "unknown column"), ("paid_at", "missing column"),
        }  # fmt: skip


def test_command_imports_the_new_kinds(org, accounts, tmp_path):
    path = tmp_path / "usage.csv"
    path.write_text("account_external_id,date,metric,value\nA1,2026-11-01,events,5\n")
    out = io.StringIO()
    call_command("import_csv", org.slug, "usage", str(path), stdout=out)
    assert "1 created" in out.getvalue()
    assert usage_rows(org) == {("A1", dt.date(2026, 11, 1), "events", Decimal(5))}
