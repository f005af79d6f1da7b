"""CSV exports: ``?format=csv`` on API lists and ``?export=csv`` on My book, and the import round trip."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import Account
from accounts.services import refresh_current_arr
from cs_platform.imports import COLUMNS, import_csv
from tests.factories import AccountFactory, ContactFactory, ContractLineFactory

pytestmark = pytest.mark.django_db


def read_csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200, getattr(response, "content", b"")
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


def header_of(response_rows_text: bytes) -> list[str]:
    return next(csv.reader(io.StringIO(response_rows_text.decode("utf-8-sig"))))


def test_api_csv_streams_every_filtered_row_across_pages(org, other_org, api):
    # 120 rows in EMEA (more than two pages of 50), 30 elsewhere, and EMEA rows in another org.
    AccountFactory.create_batch(120, organization=org, region="EMEA")
    AccountFactory.create_batch(30, organization=org, region="APAC")
    theirs = AccountFactory.create_batch(5, organization=other_org, region="EMEA")
    client = api(org, "viewer")  # viewers can read, so they can export

    json_page = client.get("/api/v1/accounts/", {"region": "EMEA"}).json()
    assert json_page["count"] == 120 and len(json_page["results"]) == 50

    response = client.get("/api/v1/accounts/", {"region": "EMEA", "format": "csv", "ordering": "-name"})
    assert response.streaming
    assert response["Content-Disposition"].startswith('attachment; filename="accounts-')
    body = b"".join(response.streaming_content)
    from accounts.api.serializers import AccountSerializer

    assert header_of(body) == list(AccountSerializer.Meta.fields)
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    expected = Account.objects.for_org(org).filter(region="EMEA").order_by("-name")
    assert [int(r["id"]) for r in rows] == list(expected.values_list("pk", flat=True))
    assert {r["region"] for r in rows} == {"EMEA"}
    assert not {a.pk for a in theirs} & {int(r["id"]) for r in rows}
    # Each cell is what the JSON field holds.
    first = client.get(f"/api/v1/accounts/{rows[0]['id']}/").json()
    assert rows[0]["name"] == first["name"] and rows[0]["external_id"] == first["external_id"]


def test_api_csv_flattens_nested_lists_and_keeps_permissions(org, api):
    line = ContractLineFactory(contract__account__organization=org)
    ContactFactory(account=line.contract.account, roles=["champion", "end_user"])
    client = api(org, "csm")
    contacts = read_csv(client.get("/api/v1/contacts/", {"format": "csv"}))
    assert contacts[0]["roles"] == "champion|end_user"
    contracts = read_csv(client.get("/api/v1/contracts/", {"format": "csv"}))
    assert len(contracts) == 1 and str(line.pk) in contracts[0]["lines"]
    # One object as CSV: a one-row file.
    one = read_csv(client.get(f"/api/v1/contacts/{contacts[0]['id']}/", {"format": "csv"}))
    assert one == contacts
    # Errors stay JSON even when CSV was asked for.
    bad = client.get("/api/v1/accounts/", {"format": "csv", "ordering": "nope"})
    assert bad.status_code == 400 and bad["Content-Type"].startswith("application/json")
    assert "ordering" in bad.json()["errors"]
    # A key of another org never sees these rows; no key at all is refused.
    from rest_framework.test import APIClient

    refused = APIClient().get("/api/v1/accounts/", {"format": "csv"})
    assert refused.status_code == 401 and refused["Content-Type"].startswith("application/json")


def test_every_org_scoped_list_exports_csv(org, api):
    AccountFactory(organization=org)
    client = api(org, "admin")
    for resource in ("accounts", "contacts", "products", "contracts", "activities", "teams", "users", "imports"):
        response = client.get(f"/api/v1/{resource}/", {"format": "csv"})
        assert response.status_code == 200, resource
        assert response["Content-Type"].startswith("text/csv"), resource


def test_api_csv_queries_do_not_grow_with_rows(org, api):
    """Rows are read and serialized per chunk (select/prefetch per chunk), never one query per row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = api(org, "admin")

    def queries_for_export() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as captured:
            rows = read_csv(client.get("/api/v1/contracts/", {"format": "csv"}))
        return len(rows), len(captured.captured_queries)

    ContractLineFactory.create_batch(3, contract__account__organization=org)
    queries_for_export()  # warm up: the key's first use records its last-use time
    small = queries_for_export()
    ContractLineFactory.create_batch(40, contract__account__organization=org)
    large = queries_for_export()
    assert (small[0], large[0]) == (3, 43)
    assert large[1] == small[1]


def my_book_rows(client, org, **params) -> list[str]:
    """Names shown on every page of My book with these filters."""
    names, page = [], 1
    while True:
        response = client.get(reverse("my-book", args=[org.slug]), {**params, "page": page})
        accounts = list(response.context["accounts"])
        names += [a.external_id for a in accounts]
        if not response.context["page"].has_next():
            return names
        page += 1


def test_page_export_is_the_filtered_my_book(client, org, other_org, alice, bob):
    AccountFactory.create_batch(60, organization=org, owner=bob, industry="Fintech")
    AccountFactory.create_batch(10, organization=org, owner=bob, industry="Retail")
    AccountFactory.create_batch(5, organization=org, owner=alice, industry="Fintech")
    AccountFactory.create_batch(5, organization=other_org, industry="Fintech")
    client.force_login(bob)
    params = {"scope": "mine", "industry": "Fintech", "ordering": "-name"}
    page = client.get(reverse("my-book", args=[org.slug]), params).content.decode()
    assert 'data-testid="export-csv"' in page and "export=csv" in page

    response = client.get(reverse("my-book", args=[org.slug]), {**params, "export": "csv"})
    rows = read_csv(response)
    assert [r["external_id"] for r in rows] == my_book_rows(client, org, **params)
    assert len(rows) == 60
    assert list(rows[0])[: len(COLUMNS["accounts"])] == COLUMNS["accounts"]
    assert list(rows[0])[-4:] == ["arr", "health_color", "health_score", "health_delta_7"]
    assert {r["owner_email"] for r in rows} == {bob.email}


def test_viewer_exports_everything_readable_in_their_org_only(client, org, other_org, make_member):
    AccountFactory.create_batch(3, organization=org)
    AccountFactory.create_batch(3, organization=other_org)
    viewer = make_member(org, "viewer").user
    client.force_login(viewer)
    rows = read_csv(client.get(reverse("my-book", args=[org.slug]), {"scope": "all", "export": "csv"}))
    assert sorted(r["external_id"] for r in rows) == sorted(
        Account.objects.for_org(org).values_list("external_id", flat=True)
    )
    # Another organization's export is a 404 for a non-member.
    assert client.get(reverse("my-book", args=[other_org.slug]), {"export": "csv"}).status_code == 404


def snapshot(org) -> list[tuple]:
    return list(
        Account.objects.for_org(org)
        .order_by("external_id")
        .values_list(
            "external_id", "name", "domain", "industry", "region", "employees", "owner_id", "parent_id",
            "touch_model", "lifecycle_stage", "customer_since", "custom_fields", "arr",
        )
    )  # fmt: skip


def test_export_then_reimport_leaves_the_data_unchanged(client, org, alice, bob, tmp_path):
    import datetime as dt

    parent = AccountFactory(
        organization=org, owner=bob, domain="acme.example", employees=250, customer_since=dt.date(2023, 4, 1),
        custom_fields={"crm_tier": "gold", "note": "a, \"quoted\" value"},
    )  # fmt: skip
    AccountFactory(organization=org, parent=parent, touch_model="high", custom_fields={"crm_tier": "silver"})
    AccountFactory(organization=org, region="", industry="")
    today = dt.date.today()
    ContractLineFactory(
        contract__account=parent, contract__start_date=today - dt.timedelta(days=30),
        contract__end_date=today + dt.timedelta(days=300),
    )  # fmt: skip
    refresh_current_arr(org)
    parent.refresh_from_db()
    before = snapshot(org)
    assert parent.arr > Decimal(0)

    client.force_login(alice)
    response = client.get(reverse("my-book", args=[org.slug]), {"scope": "all", "export": "csv", "columns": "import"})
    body = b"".join(response.streaming_content)
    assert "arr" not in header_of(body)
    assert {"crm_tier", "note"} <= set(header_of(body))
    path = tmp_path / "export.csv"
    path.write_bytes(body)

    result = import_csv(org, "accounts", path)
    assert result.ok, result.errors
    assert (result.created, result.updated, result.unchanged) == (0, 0, 3)
    assert snapshot(org) == before
