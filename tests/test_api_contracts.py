"""Contracts with nested lines: one call writes the contract and its lines; the account's ARR follows."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import Account, Contract, ContractLine

from .factories import AccountFactory, ContractFactory, ContractLineFactory, ProductFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/contracts/"


@pytest.fixture
def client(org, api):
    return api(org, "admin")


@pytest.fixture
def products(org):
    return ProductFactory(organization=org, sku="CORE"), ProductFactory(organization=org, sku="ADDON")


def today_contract(account, lines, number="CT-1"):
    from django.utils import timezone

    year = timezone.localdate().year
    return {
        "account": account.pk,
        "number": number,
        "start_date": f"{year}-01-01",
        "end_date": f"{year}-12-31",
        "lines": lines,
    }


def test_create_with_lines_computes_arr_and_updates_the_account_on_commit(
    org, client, products, django_capture_on_commit_callbacks
):
    parent = AccountFactory(organization=org)
    account = AccountFactory(organization=org, parent=parent)
    core, addon = products
    lines = [
        {"product": core.pk, "quantity": "10", "annual_unit_price": "1200.00", "discount": "0.15"},
        {"product": addon.pk, "quantity": "3", "annual_unit_price": "333.33"},
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, today_contract(account, lines), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert [line["arr"] for line in body["lines"]] == ["10200.00", "999.99"]  # qty × price × (1 − discount)
    assert [line["product_sku"] for line in body["lines"]] == ["CORE", "ADDON"]
    assert body["arr"] == "11199.99"
    assert body["currency"] == org.currency
    account.refresh_from_db()
    parent.refresh_from_db()
    assert account.arr == account.hierarchy_arr == Decimal("11199.99")
    assert (parent.arr, parent.hierarchy_arr) == (Decimal("0"), Decimal("11199.99"))  # roll-up to the parent
    assert client.get(f"/api/v1/accounts/{parent.pk}/").json()["hierarchy_arr"] == "11199.99"


def test_lines_are_replaced_by_the_lines_given(org, client, products, django_capture_on_commit_callbacks):
    core, addon = products
    contract = ContractFactory(account__organization=org)
    keep = ContractLineFactory(contract=contract, product=core, quantity=1, annual_unit_price=Decimal("100"))
    drop = ContractLineFactory(contract=contract, product=addon, quantity=1, annual_unit_price=Decimal("50"))
    body = {
        "lines": [
            {"id": keep.pk, "quantity": "4"},
            {"product": addon.pk, "quantity": "2", "annual_unit_price": "10", "discount": "0.5"},
        ]
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.patch(f"{URL}{contract.pk}/", body, format="json")
    assert response.status_code == 200, response.json()
    lines = response.json()["lines"]
    assert [(line["id"] == keep.pk, line["arr"]) for line in lines] == [(True, "400.00"), (False, "10.00")]
    assert response.json()["arr"] == "410.00"
    assert not ContractLine.all_orgs.filter(pk=drop.pk).exists()
    assert Account.all_orgs.get(pk=contract.account_id).arr == Decimal("410.00")


def test_patch_without_lines_keeps_them(org, client):
    line = ContractLineFactory(contract__account__organization=org)
    response = client.patch(f"{URL}{line.contract_id}/", {"seats": 25}, format="json")
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["lines"]] == [line.pk]


def test_line_of_another_contract_is_rejected(org, client):
    mine = ContractLineFactory(contract__account__organization=org)
    elsewhere = ContractLineFactory(contract__account__organization=org)
    response = client.patch(
        f"{URL}{mine.contract_id}/", {"seats": 3, "lines": [{"id": elsewhere.pk, "quantity": "99"}]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"lines.0.id": [f"Line {elsewhere.pk} is not a line of this contract."]}
    elsewhere.refresh_from_db()
    assert elsewhere.contract_id != mine.contract_id and elsewhere.quantity == Decimal("10")
    assert Contract.all_orgs.get(pk=mine.contract_id).seats is None  # nothing of the call was saved


def test_product_of_another_organization_is_a_field_error(org, other_org, client, products):
    account = AccountFactory(organization=org)
    foreign = ProductFactory(organization=other_org)
    lines = [
        {"product": products[0].pk, "quantity": "1", "annual_unit_price": "1"},
        {"product": foreign.pk, "quantity": "1", "annual_unit_price": "1"},
    ]
    response = client.post(URL, today_contract(account, lines), format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["lines.1.product"]
    assert not Contract.all_orgs.filter(organization=org).exists()


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"quantity": "1", "annual_unit_price": "1"}, "lines.0.product"),
        ({"product": "P", "annual_unit_price": "1"}, "lines.0.quantity"),
        ({"product": "P", "quantity": "1", "annual_unit_price": "1", "discount": "1.5"}, "lines.0.discount"),
        ({"product": "P", "quantity": "-1", "annual_unit_price": "1"}, "lines.0.quantity"),
        ({"product": "P", "quantity": "1", "annual_unit_price": "1", "arr_override": "5"}, "lines.0.arr_override"),
    ],
)
def test_bad_lines_name_the_line_and_field(line, field, org, client, products):
    line = {k: (products[0].pk if v == "P" else v) for k, v in line.items()}
    response = client.post(URL, today_contract(AccountFactory(organization=org), [line]), format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()
    assert not Contract.all_orgs.filter(organization=org).exists()


def test_contract_level_errors(org, client):
    ContractFactory(account__organization=org, number="CT-9")
    account = AccountFactory(organization=org)
    duplicate = client.post(URL, {**today_contract(account, []), "number": "CT-9"}, format="json")
    assert duplicate.json()["errors"] == {"number": ["Contract with this number already exists."]}
    backwards = client.post(URL, {**today_contract(account, []), "end_date": "2000-01-01"}, format="json")
    assert list(backwards.json()["errors"]) == ["end_date"]


def test_upsert_by_number_then_replace_lines(org, client, products, django_capture_on_commit_callbacks):
    account = AccountFactory(organization=org)
    body = today_contract(account, [{"product": products[0].pk, "quantity": "1", "annual_unit_price": "500"}])
    body.pop("number")
    with django_capture_on_commit_callbacks(execute=True):
        created = client.put(f"{URL}external/SO-77/", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["number"] == "SO-77"
    new_lines = {"lines": [{"product": products[1].pk, "quantity": "2", "annual_unit_price": "100"}]}
    with django_capture_on_commit_callbacks(execute=True):
        updated = client.put(f"{URL}external/SO-77/", new_lines, format="json")
    assert updated.status_code == 200
    assert [line["product_sku"] for line in updated.json()["lines"]] == ["ADDON"]  # the response is fresh
    assert updated.json()["arr"] == "200.00"
    account.refresh_from_db()
    assert account.arr == Decimal("200.00")
