"""The LTV API: ``/api/v1/acquisition-costs/`` (roles, validation) and the metrics
``/api/v1/metrics/lifetime-value/`` and ``/api/v1/metrics/product-retention/`` (figures, validated 400s, every
role reads, another organization never moves the figures). The figures are the golden book of
tests/test_value_ltv.py."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.models import Segment
from value.models import AcquisitionCost

from .factories import AccountFactory
from .renewal_factories import contract_with_lines
from .test_value_ltv import AS_OF, build_book

pytestmark = pytest.mark.django_db
COSTS = "/api/v1/acquisition-costs/"
LTV = "/api/v1/metrics/lifetime-value/"
PRODUCTS = "/api/v1/metrics/product-retention/"
ROLES = ("admin", "leader", "csm", "viewer")


@pytest.mark.parametrize("role", ROLES)
def test_costs_are_read_by_everyone_and_written_by_admins_and_leaders(api, org, role):
    account = AccountFactory(organization=org)
    segment = Segment.all_orgs.create(organization=org, name="Mid-market")
    client = api(org, role)
    assert client.get(COSTS).status_code == 200
    created = client.post(COSTS, {"account": account.pk, "acquisition_cost": "1000.00", "onboarding_cost": "250.50"},
                          format="json")  # fmt: skip
    cost = AcquisitionCost.all_orgs.create(organization=org, segment=segment, acquisition_cost="10")
    patched = client.patch(f"{COSTS}{cost.pk}/", {"notes": "Field sales"}, format="json")
    deleted = client.delete(f"{COSTS}{cost.pk}/")
    if role in ("admin", "leader"):
        assert created.status_code == 201, created.json()
        assert created.json()["total"] == "1250.50" and created.json()["account_external_id"] == account.external_id
        assert patched.status_code == 200 and deleted.status_code == 204
    else:
        assert (created.status_code, patched.status_code, deleted.status_code) == (403, 403, 403)
        assert created.json()["detail"]  # JSON errors, like every /api/ answer
        assert not AcquisitionCost.all_orgs.filter(account=account).exists()


def test_cost_validation(api, org):
    account = AccountFactory(organization=org)
    segment = Segment.all_orgs.create(organization=org, name="Mid-market")
    client = api(org, "admin")
    both = client.post(COSTS, {"account": account.pk, "segment": segment.pk, "acquisition_cost": "1"}, format="json")
    assert both.status_code == 400 and "not both" in both.json()["errors"]["account"][0]
    neither = client.post(COSTS, {"acquisition_cost": "1"}, format="json")
    assert neither.status_code == 400 and "account or a segment" in neither.json()["errors"]["segment"][0]
    negative = client.post(COSTS, {"account": account.pk, "acquisition_cost": "-1"}, format="json")
    assert negative.status_code == 400 and "acquisition_cost" in negative.json()["errors"]
    assert client.post(COSTS, {"segment": segment.pk, "acquisition_cost": "1"}, format="json").status_code == 201
    again = client.post(COSTS, {"segment": segment.pk, "acquisition_cost": "2"}, format="json")
    assert again.status_code == 400 and "already has a cost row" in again.json()["errors"]["segment"][0]
    listed = client.get(COSTS, {"owner": "segment"}).json()
    assert [row["segment_name"] for row in listed["results"]] == ["Mid-market"]


@pytest.mark.parametrize("role", ROLES)
def test_lifetime_value_by_segment_and_account(api, org, role):
    _accounts, segments = build_book(org)
    client = api(org, role)
    body = client.get(LTV, {"as_of": AS_OF.isoformat()}).json()
    assert (body["group_by"], body["currency"], body["gross_margin"], body["max_lifetime_years"]) == (
        "segment", "USD", 1.0, 10.0)  # fmt: skip
    assert body["accounts"] == []
    ent = body["segments"][0]
    assert (ent["name"], ent["ltv"], ent["cac"], ent["ltv_to_cac"], ent["payback_months"]) == (
        "Enterprise", "657000.00", "270000.00", 2.4333, 24.7)  # fmt: skip
    assert (body["total"]["ltv"], body["total"]["ltv_to_cac"]) == ("989150.00", 2.5894)

    drill = client.get(LTV, {"as_of": AS_OF.isoformat(), "group_by": "account",
                             "segment": segments["Strategic"].pk}).json()  # fmt: skip
    assert [(r["name"], r["ltv"], r["cac"], r["cost_source"]) for r in drill["accounts"]] == [
        ("N1", "255500.00", "100000.00", "segment"), ("E2", "182500.00", "50000.00", "segment")]  # fmt: skip
    assert drill["total"]["name"] == "Strategic" and drill["total"]["ltv"] == "438000.00"
    e1 = next(r for r in client.get(LTV, {"as_of": AS_OF.isoformat(), "group_by": "account"}).json()["accounts"]
              if r["name"] == "E1")  # fmt: skip
    assert (e1["payback_months"], e1["cac_recovered"], e1["months_to_recover"]) == (19.7, False, 1.7)
    margin = client.get(LTV, {"as_of": AS_OF.isoformat(), "gross_margin": "0.8"}).json()
    assert margin["segments"][0]["ltv"] == "525600.00"  # 657,000 × 0.8


def test_lifetime_value_validates_its_parameters(api, org, other_org):
    theirs = Segment.all_orgs.create(organization=other_org, name="Theirs")
    client = api(org, "viewer")
    for params, field in [
        ({"group_by": "region"}, "group_by"),
        ({"as_of": "2026-02-30"}, "as_of"),
        ({"gross_margin": "0"}, "gross_margin"),
        ({"gross_margin": "1.5"}, "gross_margin"),
        ({"segment": "x"}, "segment"),
        ({"segment": theirs.pk}, "segment"),  # another organization's segment is unknown here
        ({"segment": 2**63}, "segment"),  # beyond any id: refused before it reaches the database
        ({"as_of": "0001-01-01"}, "as_of"),  # a year earlier is no date
    ]:
        response = client.get(LTV, params)
        assert response.status_code == 400, params
        assert field in response.json()["errors"], response.json()


def test_another_organization_never_moves_the_figures(api, org, other_org):
    build_book(org)
    before = api(org, "viewer").get(LTV, {"as_of": AS_OF.isoformat(), "group_by": "account"}).json()
    build_book(other_org)
    AcquisitionCost.all_orgs.filter(organization=other_org).update(acquisition_cost=1)
    after = api(org, "viewer").get(LTV, {"as_of": AS_OF.isoformat(), "group_by": "account"}).json()
    assert after == before
    theirs = api(other_org, "viewer").get(LTV, {"as_of": AS_OF.isoformat()}).json()
    assert theirs["total"]["cac"] != before["total"]["cac"]  # their own costs, not ours


@pytest.mark.parametrize("role", ROLES)
def test_product_retention(api, org, role):
    build_book(org)
    body = api(org, role).get(PRODUCTS, {"end": AS_OF.isoformat(), "period": "year", "periods": 2}).json()
    assert [(p["start"], p["end"]) for p in body["periods"]] == [
        ("2024-06-30", "2025-06-30"), ("2025-06-30", "2026-06-30")]  # fmt: skip
    last = body["periods"][-1]
    # Cohort on 2025-06-30: E1..E5, S1, S2 (142,350 ARR: 36,500 + 36,500 + 18,250 + 3,650 + 36,500 + 7,300 +
    # 3,650); E5 churned 36,500; E1 grew 36,500 → 73,000. One product: product and account figures agree.
    assert last["account"]["start_arr"] == "142350.00"
    assert last["account"]["churn"] == "36500.00" and last["account"]["logo_retention"] == 0.8571
    (product,) = last["products"]
    assert product["start_arr"] == last["account"]["start_arr"] and product["masked"] is False


def test_product_retention_validates_its_parameters(api, org):
    client = api(org, "viewer")
    for params, field in [({"period": "week"}, "period"), ({"periods": 0}, "periods"), ({"periods": 13}, "periods"),
                          ({"end": "soon"}, "end"), ({"end": "0001-06-30"}, "end")]:  # fmt: skip
        response = client.get(PRODUCTS, params)
        assert response.status_code == 400 and field in response.json()["errors"], params
    assert client.get(PRODUCTS).status_code == 200  # defaults: four quarters to today


def test_metrics_need_a_key(client):
    assert client.get(LTV).status_code in (401, 403)
    assert client.get(PRODUCTS).json()["detail"]


def test_the_api_root_lists_the_new_metrics(api, org):
    root = api(org, "viewer").get("/api/v1/").json()
    assert root["metrics/lifetime-value"].endswith(LTV) and root["metrics/product-retention"].endswith(PRODUCTS)
    assert root["acquisition-costs"].endswith(COSTS)


def test_as_of_defaults_to_today(api, org, time_machine):
    time_machine.move_to(dt.datetime(2026, 7, 1, 12, tzinfo=dt.UTC))
    assert api(org, "viewer").get(LTV).json()["as_of"] == "2026-07-01"


def test_lifetime_value_queries_do_not_grow_with_the_book(api, org):
    """A fixed number of queries (plus one per segment for membership) whatever the number of accounts."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = api(org, "viewer")
    params = {"as_of": AS_OF.isoformat(), "group_by": "account"}

    def count() -> int:
        client.get(LTV, params)  # warm-up: the key's last use is written once
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(LTV, params).status_code == 200
        return len(ctx.captured_queries)

    build_book(org)
    small = count()
    for i in range(20):
        contract_with_lines(org, account=AccountFactory(organization=org, industry="software", external_id=f"X{i}"),
                            start=dt.date(2025, 1, 1), end=dt.date(2026, 12, 31))  # fmt: skip
    assert count() == small
