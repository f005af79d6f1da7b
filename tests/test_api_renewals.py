"""The renewals API: filters, forecast PATCH, close, bridge, history, churn reasons, targets; per role."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Contract, Membership
from renewals.models import ChurnReason, Renewal, RenewalForecastChange, RenewalTarget

from .factories import ProductFactory, TeamFactory
from .renewal_factories import contract_with_lines, renewal_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def book(org, bob, make_member):
    """bob's renewal (due in 30 days) and a colleague's (due in 200 days), one closed churn."""
    today = timezone.localdate()
    other = make_member(org, "csm").user
    mine = renewal_for(
        contract_with_lines(org, owner=bob, start=today - dt.timedelta(days=335), end=today + dt.timedelta(days=30)),
        forecast_category="at_risk",
    )
    theirs = renewal_for(
        contract_with_lines(
            org,
            owner=other,
            start=today - dt.timedelta(days=165),
            end=today + dt.timedelta(days=200),
            lines=[(None, "5", "1000", "0")],
        ),  # fmt: skip
        forecast_category="commit",
        stage="verbal",
    )
    lost = renewal_for(
        contract_with_lines(org, owner=other, start=today - dt.timedelta(days=500), end=today - dt.timedelta(days=135))
    )
    lost.outcome, lost.stage, lost.new_arr = "churned", "lost", Decimal("0")
    lost.churn_reason = ChurnReason.objects.for_org(org).get(code="competitor")
    lost.save()
    return {"mine": mine, "theirs": theirs, "lost": lost, "other": other}


def ids(response):
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def test_filters_and_ordering(org, bob, api, book):
    client = api(org, "csm", bob)
    mine, theirs, lost = book["mine"], book["theirs"], book["lost"]
    today = timezone.localdate()
    assert ids(client.get("/api/v1/renewals/", {"owner": "me"})) == [mine.pk]
    assert ids(client.get("/api/v1/renewals/", {"due_within_days": 90})) == [mine.pk]
    assert ids(client.get("/api/v1/renewals/", {"due_after": today.isoformat()})) == [mine.pk, theirs.pk]
    assert ids(client.get("/api/v1/renewals/", {"due_before": today.isoformat()})) == [lost.pk]
    assert ids(client.get("/api/v1/renewals/", {"forecast_category": ["commit", "at_risk"]})) == [mine.pk, theirs.pk]
    assert ids(client.get("/api/v1/renewals/", {"stage": "verbal"})) == [theirs.pk]
    assert ids(client.get("/api/v1/renewals/", {"outcome": "churned"})) == [lost.pk]
    assert ids(client.get("/api/v1/renewals/", {"open": "true"})) == [mine.pk, theirs.pk]
    assert ids(client.get("/api/v1/renewals/", {"open": "false"})) == [lost.pk]
    assert ids(client.get("/api/v1/renewals/", {"account": theirs.account_id})) == [theirs.pk]
    assert ids(client.get("/api/v1/renewals/", {"churn_reason_code": "competitor"})) == [lost.pk]
    assert ids(client.get("/api/v1/renewals/", {"ordering": "-current_arr,due_date"}))[-1] == theirs.pk
    assert ids(client.get("/api/v1/renewals/", {"ordering": "forecast_arr"}))[0] == theirs.pk
    bad = client.get("/api/v1/renewals/", {"forecast_category": "maybe", "owner": "x", "ordering": "notes"})
    assert bad.status_code == 400
    row = client.get(f"/api/v1/renewals/{lost.pk}/").json()
    assert (row["churn_reason_code"], row["is_open"], row["owner"]) == ("competitor", False, book["other"].email)


def test_patch_forecast_is_audited(org, bob, api, book):
    client = api(org, "csm", bob)
    mine = book["mine"]
    response = client.patch(
        f"/api/v1/renewals/{mine.pk}/",
        {"forecast_category": "commit", "forecast_arr": "9500.00", "csm_call": "commit", "csm_call_arr": "9500"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert (response.json()["forecast_category"], response.json()["forecast_arr"]) == ("commit", "9500.00")
    history = client.get(f"/api/v1/renewals/{mine.pk}/history/").json()
    assert {row["field"] for row in history} == {"forecast_category", "forecast_arr", "csm_call", "csm_call_arr"}
    assert {row["changed_by"] for row in history} == {bob.email}
    errors = client.patch(
        f"/api/v1/renewals/{mine.pk}/", {"stage": "won", "final_call": "commit", "probability": 90}, format="json"
    )
    assert errors.status_code == 400
    assert set(errors.json()["errors"]) == {"stage", "final_call"}
    bad = client.patch(f"/api/v1/renewals/{mine.pk}/", {"probability": 101, "forecast_arr": "x"}, format="json")
    assert set(bad.json()["errors"]) == {"probability", "forecast_arr"}
    assert client.get(f"/api/v1/renewals/{mine.pk}/").json()["probability"] == 70
    assert (
        client.patch(f"/api/v1/renewals/{mine.pk}/", {"contract": mine.contract_id}, format="json").status_code == 400
    )
    assert client.patch(f"/api/v1/renewals/{mine.pk}/", {"outcome": "renewed"}, format="json").json()["outcome"] == ""


def test_put_and_delete_are_refused(org, api, book):
    client = api(org, "admin")
    mine = book["mine"]
    assert client.put(f"/api/v1/renewals/{mine.pk}/", {"notes": "x"}, format="json").status_code == 405
    assert client.delete(f"/api/v1/renewals/{mine.pk}/").status_code == 405
    assert Renewal.objects.for_org(org).filter(pk=mine.pk).exists()


def test_close_endpoint_with_lines_and_bridge(org, bob, api, book):
    client = api(org, "csm", bob)
    mine = book["mine"]
    old_line = mine.contract.lines.get()
    added = ProductFactory(organization=org, sku="ADDON")
    body = {
        "outcome": "expanded",
        "lines": [
            {"product": old_line.product_id, "quantity": "12", "annual_unit_price": "1000", "discount": "0.05"},
            {"product": added.pk, "quantity": "1", "annual_unit_price": "2500.50"},
        ],
        "churn_notes": "",
    }
    response = client.post(f"/api/v1/renewals/{mine.pk}/close/", body, format="json")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["outcome"], data["stage"], data["new_arr"], data["closed_by"]) == (
        "expanded", "won", "13900.50", bob.email
    )  # fmt: skip
    assert {c["kind"] for c in data["line_changes"]} == {"quantity_price", "added"}
    assert data["bridge"]["by_kind"]["added"] == "2500.50"
    assert sum(Decimal(c["delta"]) for c in data["line_changes"]) == Decimal("3900.50")
    successor = Contract.objects.for_org(org).get(pk=data["successor_contract"])
    assert data["successor_contract_number"] == successor.number
    bridge = client.get(f"/api/v1/renewals/{mine.pk}/bridge/").json()
    assert bridge == data["bridge"]
    again = client.post(f"/api/v1/renewals/{mine.pk}/close/", body, format="json")
    assert again.status_code == 400 and "outcome" in again.json()["errors"]


def test_close_errors_are_per_field(org, api, book, other_org):
    client = api(org, "admin")
    mine = book["mine"]
    url = f"/api/v1/renewals/{mine.pk}/close/"
    foreign_product = ProductFactory(organization=other_org)
    cases = [
        ({"outcome": "won"}, "outcome"),
        ({"outcome": "churned"}, "churn_reason"),
        ({"outcome": "churned", "churn_reason": "nope"}, "churn_reason"),
        ({"outcome": "expanded"}, "outcome"),
        ({"outcome": "renewed", "lines": [{"product": foreign_product.pk, "quantity": "1", "annual_unit_price": "1"}]},
         "lines.0.product"),
        ({"outcome": "renewed", "lines": [{"product": foreign_product.pk}]}, "lines.0.quantity"),
        ({"outcome": "renewed", "start_date": "2020-01-01"}, "start_date"),
        ({"outcome": "renewed", "bogus": 1}, "bogus"),
    ]  # fmt: skip
    for body, field in cases:
        response = client.post(url, body, format="json")
        assert response.status_code == 400, body
        assert field in response.json()["errors"], (body, response.json())
    reason = ChurnReason.objects.for_org(org).get(code="out_of_business")
    ok = client.post(url, {"outcome": "churned", "churn_reason": str(reason.pk), "churn_notes": "Gone"}, format="json")
    assert ok.status_code == 200, ok.json()
    assert (ok.json()["churn_reason_code"], ok.json()["avoidable"], ok.json()["new_arr"]) == (
        "out_of_business", False, "0.00"
    )  # fmt: skip


def test_roles(org, bob, api, book, make_member):
    mine, theirs = book["mine"], book["theirs"]
    leader = make_member(org, "leader").user
    team = TeamFactory(organization=org, manager=leader)
    Membership.all_orgs.filter(organization=org, user=book["other"]).update(team=team)
    viewer = api(org, "viewer")
    assert viewer.get("/api/v1/renewals/").status_code == 200
    assert viewer.patch(f"/api/v1/renewals/{mine.pk}/", {"notes": "x"}, format="json").status_code == 403
    assert viewer.post(f"/api/v1/renewals/{mine.pk}/close/", {"outcome": "renewed"}, format="json").status_code == 403
    csm = api(org, "csm", bob)
    assert csm.get(f"/api/v1/renewals/{theirs.pk}/").status_code == 200  # reads are open
    assert csm.patch(f"/api/v1/renewals/{theirs.pk}/", {"notes": "x"}, format="json").status_code == 403
    assert csm.post(f"/api/v1/renewals/{theirs.pk}/close/", {"outcome": "renewed"}, format="json").status_code == 403
    assert csm.patch(f"/api/v1/renewals/{mine.pk}/", {"final_call": "commit"}, format="json").status_code == 400
    lead = api(org, "leader", leader)
    assert lead.patch(f"/api/v1/renewals/{theirs.pk}/", {"final_call": "commit"}, format="json").status_code == 200
    assert lead.patch(f"/api/v1/renewals/{mine.pk}/", {"final_call": "commit"}, format="json").status_code == 403
    assert lead.post(f"/api/v1/renewals/{theirs.pk}/close/", {"outcome": "renewed"}, format="json").status_code == 200
    admin = api(org, "admin")
    assert admin.patch(f"/api/v1/renewals/{mine.pk}/", {"final_call": "churn"}, format="json").status_code == 200
    assert RenewalForecastChange.objects.for_org(org).filter(field="final_call").count() == 2
    # Opening a renewal by hand: only for a contract of one's own book.
    contract = contract_with_lines(org, owner=book["other"])
    assert csm.post("/api/v1/renewals/", {"contract": contract.pk}, format="json").status_code == 403
    assert lead.post("/api/v1/renewals/", {"contract": contract.pk}, format="json").status_code == 201
    assert lead.post("/api/v1/renewals/", {"contract": contract.pk}, format="json").status_code == 400


def test_churn_reasons_admin_writes_others_read(org, bob, api, book):
    assert len(api(org, "csm", bob).get("/api/v1/churn-reasons/").json()["results"]) == 9
    for role in ("csm", "leader", "viewer"):
        assert (
            api(org, role).post("/api/v1/churn-reasons/", {"code": "x", "label": "X"}, format="json").status_code == 403
        )
    admin = api(org, "admin")
    created = admin.post(
        "/api/v1/churn-reasons/", {"code": "reorg", "label": "Re-org", "avoidable": False}, format="json"
    )
    assert created.status_code == 201
    in_use = ChurnReason.objects.for_org(org).get(code="competitor")
    assert admin.delete(f"/api/v1/churn-reasons/{in_use.pk}/").status_code == 409
    assert admin.patch(f"/api/v1/churn-reasons/{in_use.pk}/", {"is_active": False}, format="json").status_code == 200
    assert api(org, "csm", bob).get("/api/v1/churn-reasons/", {"is_active": "false"}).json()["count"] == 1


def test_renewal_targets(org, api):
    leader = api(org, "leader")
    response = leader.post(
        "/api/v1/renewal-targets/", {"quarter_start": "2027-04-01", "target_grr": "0.92"}, format="json"
    )
    assert response.status_code == 201, response.json()
    bad = leader.post("/api/v1/renewal-targets/", {"quarter_start": "2027-05-01", "target_grr": "1.5"}, format="json")
    assert bad.status_code == 400 and set(bad.json()["errors"]) == {"quarter_start", "target_grr"}
    dup = leader.post("/api/v1/renewal-targets/", {"quarter_start": "2027-04-01"}, format="json")
    assert dup.status_code == 400 and "quarter_start" in dup.json()["errors"]
    assert (
        api(org, "csm").post("/api/v1/renewal-targets/", {"quarter_start": "2027-07-01"}, format="json").status_code
        == 403
    )
    assert RenewalTarget.objects.for_org(org).count() == 1
