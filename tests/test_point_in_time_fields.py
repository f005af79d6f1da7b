"""The dates point-in-time signals need (issue 14): Contact.started_on and Invoice.issued_on — their
backfills, the API (optional fields) and the imports (the CSV columns are fixed: derived)."""

from __future__ import annotations

import datetime as dt
import importlib
from zoneinfo import ZoneInfo

from django.apps import apps
from django.db import connection

from accounts.models import Contact
from cs_platform.imports import COLUMNS, import_csv
from health.models import Invoice

from .factories import AccountFactory, ContactFactory
from .signal_factories import InvoiceFactory


class _Editor:
    connection = connection

    def quote_name(self, name: str) -> str:
        return connection.ops.quote_name(name)

    def execute(self, sql: str, params: tuple = ()) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def test_backfills(org):
    org.time_zone = "Asia/Tokyo"
    org.save(update_fields=["time_zone"])
    account = AccountFactory(organization=org)
    contact = ContactFactory(account=account, started_on=None)
    # 2026-03-01 20:00 UTC is already 2026-03-02 in Tokyo.
    Contact.all_orgs.filter(pk=contact.pk).update(created_at=dt.datetime(2026, 3, 1, 20, 0, tzinfo=ZoneInfo("UTC")))
    kept = ContactFactory(account=account, started_on=dt.date(2024, 5, 5))
    invoice = InvoiceFactory(account=account, due_date=dt.date(2026, 3, 10))
    Invoice.all_orgs.filter(pk=invoice.pk).update(issued_on=None)
    given = InvoiceFactory(account=account, due_date=dt.date(2026, 3, 10), issued_on=dt.date(2026, 3, 1))
    contacts = importlib.import_module("accounts.migrations.0008_contact_started_on")
    invoices = importlib.import_module("health.migrations.0008_invoice_issued_on")
    editor = _Editor()  # what the backfills use of a schema editor (SQLite's refuses inside a test's transaction)
    contacts.backfill_started_on(apps, editor)
    invoices.backfill_issued_on(apps, editor)
    assert Contact.all_orgs.get(pk=contact.pk).started_on == dt.date(2026, 3, 2)
    assert Contact.all_orgs.get(pk=kept.pk).started_on == dt.date(2024, 5, 5)
    assert Invoice.all_orgs.get(pk=invoice.pk).issued_on == dt.date(2026, 2, 8)
    assert Invoice.all_orgs.get(pk=given.pk).issued_on == dt.date(2026, 3, 1)


def test_api_takes_the_dates_as_optional_fields(org, api, account):
    client = api(org, "admin")
    body = {"account": account.pk, "due_date": "2026-11-30", "amount": "10.00"}
    derived = client.post("/api/v1/invoices/", {**body, "external_id": "I-1"}, format="json")
    given = client.post("/api/v1/invoices/", {**body, "external_id": "I-2", "issued_on": "2026-11-15"}, format="json")
    assert (derived.status_code, given.status_code) == (201, 201)
    assert (derived.json()["issued_on"], given.json()["issued_on"]) == ("2026-10-31", "2026-11-15")
    moved = client.patch(f"/api/v1/invoices/{derived.json()['id']}/", {"due_date": "2026-12-30"}, format="json")
    assert moved.json()["issued_on"] == "2026-10-31"  # an issue day, once set, stays

    contact = {"account": account.pk, "name": "Ada"}
    plain = client.post("/api/v1/contacts/", contact, format="json")
    dated = client.post("/api/v1/contacts/", {**contact, "started_on": "2024-01-15"}, format="json")
    assert (plain.status_code, dated.status_code) == (201, 201)
    assert (plain.json()["started_on"], dated.json()["started_on"]) == (None, "2024-01-15")
    assert client.post("/api/v1/contacts/", {**contact, "started_on": "soon"}, format="json").status_code == 400


def test_imports_keep_the_spec_columns_and_derive_the_issue_day(org, tmp_path):
    assert "issued_on" not in COLUMNS["invoices"] and "started_on" not in COLUMNS["contacts"]
    account = AccountFactory(organization=org, external_id="A1")
    path = tmp_path / "invoices.csv"
    path.write_text(",".join(COLUMNS["invoices"]) + "\nINV-1,A1,2026-11-30,100.00,\n", encoding="utf-8")
    assert import_csv(org, "invoices", path).ok
    invoice = Invoice.all_orgs.get(organization=org, external_id="INV-1")
    assert invoice.issued_on == dt.date(2026, 10, 31)
    path.write_text(",".join(COLUMNS["invoices"]) + "\nINV-1,A1,2026-12-30,100.00,\n", encoding="utf-8")
    assert import_csv(org, "invoices", path).ok
    invoice.refresh_from_db()
    assert (invoice.due_date, invoice.issued_on) == (dt.date(2026, 12, 30), dt.date(2026, 10, 31))

    path = tmp_path / "contacts.csv"
    path.write_text(",".join(COLUMNS["contacts"]) + "\nC1,A1,Ada,ada@x.example,,champion,true\n", encoding="utf-8")
    assert import_csv(org, "contacts", path).ok
    contact = Contact.all_orgs.get(organization=org, external_id="C1")
    assert contact.account_id == account.pk and contact.started_on is None  # counted from created_at
