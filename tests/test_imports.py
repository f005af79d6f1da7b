"""CSV import (cs_platform.imports and the apps' kinds): upserts, all-or-nothing validation, tenancy, the task."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.choices import JobStatus
from accounts.events import contact_data
from accounts.models import Account, Activity, Contact, Contract, ContractLine, JobRun, Product
from cs_platform.imports import COLUMNS, UnsupportedKind, import_csv
from cs_platform.jobs import create_job
from cs_platform.models import DomainEvent
from tests.factories import AccountFactory, ContractFactory, ContractLineFactory, ProductFactory

pytestmark = pytest.mark.django_db

ACCOUNT_HEADER = ",".join(COLUMNS["accounts"])


def csv_file(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


def accounts_csv(tmp_path, rows: list[str], header: str = ACCOUNT_HEADER):
    return csv_file(tmp_path, "accounts.csv", "\n".join([header, *rows]))


def test_accounts_create_then_reimport_changes_nothing_then_update(org, bob, tmp_path):
    path = accounts_csv(
        tmp_path,
        [
            f"A1,Acme Rockets,acme.example,Aerospace,EMEA,250,{bob.email},,high,adoption,2024-02-01",
            "A2,Acme Rockets Europe,,Aerospace,EMEA,,,A1,,,",
        ],
    )
    first = import_csv(org, "accounts", path)
    assert first.ok and (first.created, first.updated, first.unchanged) == (2, 0, 0)
    parent = Account.objects.for_org(org).get(external_id="A1")
    child = Account.objects.for_org(org).get(external_id="A2")
    assert parent.owner == bob and parent.employees == 250 and parent.touch_model == "high"
    assert parent.customer_since == dt.date(2024, 2, 1)
    assert child.parent_id == parent.pk and child.lifecycle_stage == "onboarding" and child.touch_model == "low"
    stamp = parent.updated_at

    again = import_csv(org, "accounts", path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    parent.refresh_from_db()
    assert parent.updated_at == stamp

    path = accounts_csv(
        tmp_path,
        [
            f"A1,Acme Rockets Inc,acme.example,Aerospace,EMEA,300,{bob.email},,high,mature,2024-02-01",
            "A2,Acme Rockets Europe,,Aerospace,EMEA,,,A1,,,",
        ],
    )
    update = import_csv(org, "accounts", path)
    assert (update.created, update.updated, update.unchanged) == (0, 1, 1)
    parent.refresh_from_db()
    assert (parent.name, parent.employees, parent.lifecycle_stage) == ("Acme Rockets Inc", 300, "mature")
    assert Account.objects.for_org(org).count() == 2


def test_parent_later_in_the_same_file_and_existing_parent(org, tmp_path):
    AccountFactory(organization=org, external_id="OLD", name="Old parent")
    path = accounts_csv(tmp_path, ["C1,Child,,,,,,P1,,,", "P1,Parent,,,,,,OLD,,,"])
    assert import_csv(org, "accounts", path).ok
    accounts = {a.external_id: a for a in Account.objects.for_org(org)}
    assert accounts["C1"].parent_id == accounts["P1"].pk
    assert accounts["P1"].parent_id == accounts["OLD"].pk


def test_one_bad_row_imports_nothing_and_names_line_column_reason(org, tmp_path):
    path = accounts_csv(
        tmp_path,
        [
            "A1,Good,,,,,,,,,",
            "A2,Good too,,,,,,,,,",
            "A3,Bad owner,,,,,nobody@x.example,,,,",
        ],
    )
    result = import_csv(org, "accounts", path)
    assert not result.ok
    assert [str(e) for e in result.errors] == ["line 4, column owner_email: no member with email nobody@x.example"]
    assert not Account.objects.for_org(org).exists()


def test_every_bad_row_is_reported(org, tmp_path):
    path = accounts_csv(
        tmp_path,
        [
            "A1,,,,,,,,,,",
            "A2,Two,,,,many,,,,,",
            "A3,Three,,,,,,,medium,,",
            "A4,Four,,,,,,,,dormant,",
            "A5,Five,,,,,,,,,01/02/2024",
            "A5,Five again,,,,,,,,,",
            "A6,Six,,,,,,NOPE,,,",
            "A7,Seven,,,,,,A8,,,",
            "A8,Eight,,,,,,A7,,,",
            "A9,Nine,,,",
        ],
    )
    result = import_csv(org, "accounts", path)
    got = {(e.line, e.column) for e in result.errors}
    assert got == {
        (2, "name"),
        (3, "employees"),
        (4, "touch_model"),
        (5, "lifecycle_stage"),
        (6, "customer_since"),
        (7, "external_id"),
        (8, "parent_external_id"),
        (9, "parent_external_id"),
        (10, "parent_external_id"),
        (11, ""),
    }
    reasons = {(e.line, e.column): e.reason for e in result.errors}
    assert "cycle" in reasons[(9, "parent_external_id")]
    assert "first on line 6" in reasons[(7, "external_id")]
    assert result.error_count == 10
    assert not Account.objects.for_org(org).exists()


def test_cycle_through_existing_accounts_is_refused(org, tmp_path):
    top = AccountFactory(organization=org, external_id="TOP")
    AccountFactory(organization=org, external_id="MID", parent=top)
    path = accounts_csv(tmp_path, ["TOP,Top,,,,,,MID,,,"])
    result = import_csv(org, "accounts", path)
    assert [(e.line, e.column) for e in result.errors] == [(2, "parent_external_id")]
    assert "TOP → MID → TOP" in result.errors[0].reason


def test_missing_header_column(org, tmp_path):
    header = ACCOUNT_HEADER.replace(",customer_since", "")
    path = accounts_csv(tmp_path, ["A1,One,,,,,,,,"], header=header)
    result = import_csv(org, "accounts", path)
    assert [str(e) for e in result.errors] == ["line 1, column customer_since: missing column"]


def test_extra_account_column_is_a_custom_field(org, tmp_path):
    path = accounts_csv(tmp_path, ["A1,One,,,,,,,,,,gold", "A2,Two,,,,,,,,,,"], header=ACCOUNT_HEADER + ",Tier")
    assert import_csv(org, "accounts", path).ok
    one = Account.objects.for_org(org).get(external_id="A1")
    assert one.custom_fields == {"Tier": "gold"}
    assert Account.objects.for_org(org).get(external_id="A2").custom_fields == {}


def test_extra_column_is_an_error_for_other_kinds(org, account, tmp_path):
    header = ",".join([*COLUMNS["contacts"], "favourite_colour"])
    path = csv_file(tmp_path, "c.csv", f"{header}\nC1,{account.external_id},Ann,,,,,blue")
    result = import_csv(org, "contacts", path)
    assert [(e.line, e.column) for e in result.errors] == [(1, "favourite_colour")]
    assert not Contact.objects.for_org(org).exists()


def test_other_orgs_member_and_account_are_not_used(org, other_org, charlie, tmp_path):
    theirs = AccountFactory(organization=other_org, external_id="SHARED", name="Globex's account")
    bad = accounts_csv(tmp_path, [f"SHARED,Mine,,,,,{charlie.email},,,,"])
    result = import_csv(org, "accounts", bad)
    assert [str(e) for e in result.errors] == [f"line 2, column owner_email: no member with email {charlie.email}"]

    good = accounts_csv(tmp_path, ["SHARED,Mine,,,,,,,,,"])
    result = import_csv(org, "accounts", good)
    assert (result.created, result.updated) == (1, 0)
    theirs.refresh_from_db()
    assert theirs.name == "Globex's account"
    assert Account.objects.for_org(org).get(external_id="SHARED").name == "Mine"


def test_contacts_upsert_roles_and_departure(org, account, tmp_path):
    header = ",".join(COLUMNS["contacts"])
    ext = account.external_id
    path = csv_file(
        tmp_path,
        "contacts.csv",
        f"{header}\nC1,{ext},Ann Lee,ANN@x.example,CTO,champion|executive_sponsor,true\nC2,{ext},Bo,,,,",
    )
    first = import_csv(org, "contacts", path)
    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)
    ann = Contact.objects.for_org(org).get(external_id="C1")
    assert ann.roles == ["champion", "executive_sponsor"] and ann.email == "ann@x.example" and ann.is_active
    assert (import_csv(org, "contacts", path).unchanged) == 2

    path = csv_file(
        tmp_path,
        "contacts.csv",
        f"{header}\nC1,{ext},Ann Lee,ann@x.example,CTO,champion|executive_sponsor,no\nC2,{ext},Bo,,,,",
    )
    update = import_csv(org, "contacts", path)
    assert (update.updated, update.unchanged) == (1, 1)
    ann.refresh_from_db()
    assert not ann.is_active and ann.departed_at is not None


def test_contacts_import_records_contact_departed_for_each_contact_it_turns_inactive(org, account, tmp_path):
    """Set-based, in the import's transaction, with the API path's payload; nothing on a dry run or a
    re-import, nothing for a contact created inactive or already gone."""
    header = ",".join(COLUMNS["contacts"])
    ext = account.external_id
    departed = DomainEvent.all_orgs.filter(organization=org, name="contact.departed")
    path = csv_file(
        tmp_path,
        "contacts.csv",
        f"{header}\nC1,{ext},Ann Lee,ann@x.example,CTO,champion,true\nC2,{ext},Bo,,,,\nC3,{ext},Cy,,,,false",
    )
    assert import_csv(org, "contacts", path).created == 3
    assert not departed.exists()  # C3 was created inactive: not a departure

    leaving = csv_file(
        tmp_path,
        "contacts.csv",
        f"{header}\nC1,{ext},Ann Lee,ann@x.example,CTO,champion,no\nC2,{ext},Bo,,,,0\nC3,{ext},Cy,,,,false\n"
        f"C4,{ext},Di,,,,false",
    )
    dry = import_csv(org, "contacts", leaving, dry_run=True)
    assert (dry.created, dry.updated, dry.unchanged) == (1, 2, 1)
    assert not departed.exists()
    assert Contact.objects.for_org(org).get(external_id="C1").is_active

    with CaptureQueriesContext(connection) as queries:
        result = import_csv(org, "contacts", leaving)
    assert (result.created, result.updated, result.unchanged) == (1, 2, 1)
    inserts = [q for q in queries if q["sql"].startswith(f'INSERT INTO "{DomainEvent._meta.db_table}"')]
    assert len(inserts) == 1  # one insert for the batch, not one per contact
    contacts = {c.external_id: c for c in Contact.objects.for_org(org).select_related("account")}
    by_subject = {e.subject_id: e for e in departed}
    assert sorted(by_subject) == sorted(str(contacts[x].pk) for x in ("C1", "C2"))
    for external_id in ("C1", "C2"):
        contact = contacts[external_id]
        event = by_subject[str(contact.pk)]
        assert event.subject_type == "contact"
        # The payload the API path records for the same contact, as stored (JSON: dates as strings).
        assert event.payload == json.loads(json.dumps(contact_data(contact), cls=DjangoJSONEncoder))
    assert by_subject[str(contacts["C1"].pk)].payload["key_role"] is True
    assert by_subject[str(contacts["C1"].pk)].payload["departed_at"] == contacts["C1"].departed_at.isoformat()

    assert import_csv(org, "contacts", leaving).unchanged == 4
    assert departed.count() == 2  # re-importing the same file departs nobody again


def test_contacts_import_departures_roll_back_with_the_import(org, account, tmp_path):
    header = ",".join(COLUMNS["contacts"])
    ext = account.external_id
    import_csv(org, "contacts", csv_file(tmp_path, "contacts.csv", f"{header}\nC1,{ext},Ann,,,,true"))
    leaving = csv_file(tmp_path, "contacts.csv", f"{header}\nC1,{ext},Ann,,,,false")
    with pytest.raises(RuntimeError), transaction.atomic():
        import_csv(org, "contacts", leaving)
        assert DomainEvent.all_orgs.filter(organization=org, name="contact.departed").count() == 1
        raise RuntimeError("the caller's transaction fails after the import")
    assert not DomainEvent.all_orgs.filter(organization=org, name="contact.departed").exists()
    assert Contact.objects.for_org(org).get(external_id="C1").is_active


def test_contacts_errors(org, account, tmp_path):
    header = ",".join(COLUMNS["contacts"])
    path = csv_file(
        tmp_path,
        "contacts.csv",
        f"{header}\nC1,NOPE,Ann,,,,\nC2,{account.external_id},Bo,not-an-email,,boss,maybe",
    )
    result = import_csv(org, "contacts", path)
    assert {(e.line, e.column) for e in result.errors} == {
        (2, "account_external_id"),
        (3, "email"),
        (3, "roles"),
        (3, "active"),
    }


@pytest.mark.parametrize(
    ("kind", "row"),
    [
        ("contacts", "X1,{acc},Ann,ann@example.com,,,"),
        ("tickets", "X1,{acc},2026-01-02,P2,open,"),
        ("invoices", "X1,{acc},2026-01-02,100.00,"),
    ],
)
def test_a_repeated_external_id_is_an_error_naming_the_first_line(org, account, tmp_path, kind, row):
    """The same external_id twice in one file: an upsert would keep one row silently, so the second line is
    refused with the first's number, and nothing is imported."""
    line = row.format(acc=account.external_id)
    path = csv_file(tmp_path, f"{kind}.csv", "\n".join([",".join(COLUMNS[kind]), line, line.replace("X1", "X2"), line]))
    result = import_csv(org, kind, path)
    assert [(e.line, e.column) for e in result.errors] == [(4, "external_id")]
    assert "duplicate external_id X1 (first on line 2)" in result.errors[0].reason
    assert result.created == 0


def test_contracts_lines_replace_and_arr(org, tmp_path):
    AccountFactory(organization=org, external_id="A1")
    ProductFactory(organization=org, sku="CORE", name="Core platform")
    header = ",".join(COLUMNS["contracts"])
    today = dt.date.today()
    start, end = today - dt.timedelta(days=30), today + dt.timedelta(days=300)
    rows = [
        f"A1,CT-1,{start},{end},active,CORE,,10,1000,0.1,10",
        f"A1,CT-1,{start},{end},active,ADDON,Add-on,5,200,,10",
    ]
    path = csv_file(tmp_path, "contracts.csv", "\n".join([header, *rows]))
    result = import_csv(org, "contracts", path)
    assert result.ok and (result.created, result.updated) == (2, 0)
    assert result.extra["products_created"] == 1
    contract = Contract.objects.for_org(org).get(number="CT-1")
    assert contract.arr == Decimal("10000.00") and contract.seats == 10
    assert Product.objects.for_org(org).get(sku="ADDON").name == "Add-on"
    account = Account.objects.for_org(org).get(external_id="A1")
    assert account.arr == Decimal("10000.00") and account.next_renewal_date == end

    again = import_csv(org, "contracts", path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)

    path = csv_file(tmp_path, "contracts.csv", f"{header}\nA1,CT-1,{start},{end},active,CORE,,20,1000,0.1,10")
    update = import_csv(org, "contracts", path)
    assert (update.updated, update.extra["lines_deleted"]) == (1, 1)
    lines = list(ContractLine.objects.for_org(org).filter(contract=contract))
    assert [(line.product.sku, line.quantity, line.arr) for line in lines] == [
        ("CORE", Decimal("20.00"), Decimal("18000.00"))
    ]
    account.refresh_from_db()
    assert account.arr == Decimal("18000.00")


def test_contract_row_errors(org, tmp_path):
    AccountFactory(organization=org, external_id="A1")
    header = ",".join(COLUMNS["contracts"])
    rows = [
        "A1,CT-1,2025-01-01,2024-12-31,active,CORE,Core,1,100,,",
        "A1,CT-2,2025-01-01,2025-12-31,open,CORE,Core,1,100,1.5,",
        "A1,CT-2,2025-02-01,2025-12-31,active,CORE,Core,1,100,,",
        "A1,CT-3,2025-01-01,2025-12-31,active,NEWSKU,,-1,1e3,,",
    ]
    result = import_csv(org, "contracts", csv_file(tmp_path, "c.csv", "\n".join([header, *rows])))
    assert {(e.line, e.column) for e in result.errors} == {
        (2, "end_date"),
        (3, "status"),
        (3, "discount"),
        (4, "start_date"),
        (4, "product_sku"),
        (5, "quantity"),
        (5, "annual_unit_price"),
        (5, "product_name"),
    }
    assert not Contract.objects.for_org(org).exists() and not Product.objects.for_org(org).exists()


def test_activities_append_and_dedupe(org, account, alice, tmp_path):
    header = ",".join(COLUMNS["activities"])
    ext = account.external_id
    rows = [
        f"{ext},call,2026-03-01,{alice.email},Kick-off",
        f"{ext},qbr,2026-03-05T14:30:00+00:00,,QBR Q1",
        f"{ext},call,2026-03-01,{alice.email},Kick-off",
    ]
    path = csv_file(tmp_path, "a.csv", "\n".join([header, *rows]))
    first = import_csv(org, "activities", path)
    assert (first.created, first.unchanged) == (2, 1)
    assert import_csv(org, "activities", path).created == 0
    assert Activity.objects.for_org(org).count() == 2
    qbr = Activity.objects.for_org(org).get(type="qbr")
    assert qbr.occurred_at == dt.datetime(2026, 3, 5, 14, 30, tzinfo=dt.UTC)

    bad = csv_file(tmp_path, "b.csv", f"{header}\n{ext},lunch,2026-13-01,x@y.example,")
    result = import_csv(org, "activities", bad)
    assert {(e.line, e.column) for e in result.errors} == {(2, "type"), (2, "occurred_at"), (2, "author_email")}


def test_dry_run_writes_nothing_but_counts(org, tmp_path):
    path = accounts_csv(tmp_path, ["A1,One,,,,,,,,,", "A2,Two,,,,,,A1,,,"])
    result = import_csv(org, "accounts", path, dry_run=True)
    assert result.ok and result.created == 2
    assert not Account.objects.for_org(org).exists()


def test_streams_and_unknown_kinds(org):
    stream = io.BytesIO(("\ufeff" + ACCOUNT_HEADER + "\nA1,One,,,,,,,,,\n").encode())
    assert import_csv(org, "accounts", stream).created == 1
    with pytest.raises(UnsupportedKind, match="unknown kind 'surveys'"):
        import_csv(org, "surveys", io.StringIO(""))
    assert import_csv(org, "accounts", io.StringIO("")).errors[0].line == 1


def test_command_reports_errors_on_stderr_and_fails(org, tmp_path):
    path = accounts_csv(tmp_path, ["A1,,,,,,,,,,", "A2,Two,,,,x,,,,,"])
    err = io.StringIO()
    with pytest.raises(CommandError, match="2 error"):
        call_command("import_csv", org.slug, "accounts", str(path), stderr=err)
    assert err.getvalue().splitlines() == [
        "line 2, column name: is required",
        "line 3, column employees: 'x' is not a non-negative whole number",
    ]
    with pytest.raises(CommandError, match="unknown kind"):
        call_command("import_csv", org.slug, "surveys", str(path))
    out = io.StringIO()
    good = accounts_csv(tmp_path, ["A1,One,,,,,,,,,"])
    call_command("import_csv", org.slug, "accounts", str(good), stdout=out)
    assert "1 created" in out.getvalue()


def test_import_task_records_the_run(org, tmp_path):
    from cs_platform.imports.tasks import run_import

    path = accounts_csv(tmp_path, [f"A{i},Account {i},,,,,,,,," for i in range(5)])
    job = create_job(organization_id=org.pk, kind="import_csv", params={"kind": "accounts", "path": str(path)})
    run_import(org.pk, job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert (job.progress_done, job.progress_total) == (10, 10)
    assert job.counts["created"] == 5 and job.attempts == 1

    bad = accounts_csv(tmp_path, ["B1,,,,,,,,,,"])
    job = create_job(organization_id=org.pk, kind="import_csv", params={"kind": "accounts", "path": str(bad)})
    run_import(org.pk, job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.errors == [{"line": 2, "column": "name", "reason": "is required"}]
    assert JobRun.objects.for_org(org).count() == 2


def test_contract_for_other_orgs_account_is_refused(org, other_org, tmp_path):
    theirs = ContractLineFactory(
        contract=ContractFactory(account=AccountFactory(organization=other_org, external_id="X1"), number="CT-9")
    ).contract
    header = ",".join(COLUMNS["contracts"])
    path = csv_file(tmp_path, "c.csv", f"{header}\nX1,CT-9,2026-01-01,2026-12-31,active,S,S,1,1,,")
    result = import_csv(org, "contracts", path)
    assert [str(e) for e in result.errors] == ["line 2, column account_external_id: no account with external_id X1"]
    theirs.refresh_from_db()
    assert theirs.lines.count() == 1


def test_start_import_queues_a_run_after_commit(org, tmp_path, django_capture_on_commit_callbacks):
    from cs_platform.imports.tasks import start_import

    path = accounts_csv(tmp_path, ["A1,One,,,,,,,,,"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = start_import(org, "accounts", path)
    assert job.status == JobStatus.QUEUED and job.params == {
        "kind": "accounts", "path": str(path), "dry_run": False, "filename": ""
    }  # fmt: skip
    assert len(callbacks) == 1
    with pytest.raises(UnsupportedKind):
        start_import(org, "surveys", path)
