"""Security finding 9: a saved segment with ``arr gt "1e999999"``, NaN/Infinity or a malformed date made
Portfolio, Renewals, ``/metrics/portfolio/`` and retention by segment answer 500 for every member.

Both halves of the fix are attacked here: the API refuses such rules at save (400 naming the value),
and rules already stored — written straight to the database, bypassing every check — degrade only
their own segment: it matches nothing and shows why, while the pages and endpoints answer 200 and the
valid segments keep their figures.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import Contract, ContractLine, Segment
from health.models import HealthScore, Scorecard
from health.services import recompute_health, save_scorecard_version
from renewals.analytics import retention

from .factories import AccountFactory, ProductFactory

pytestmark = pytest.mark.django_db

# Each of these failed at query time before the fix (Postgres: numeric overflow; both databases:
# Django refusing NaN/Infinity and the date).
HOSTILE = {
    "Huge": {"match": "all", "conditions": [{"field": "arr", "op": "gt", "value": "1e999999"}]},
    "NaN": {"match": "all", "conditions": [{"field": "arr", "op": "gte", "value": "NaN"}]},
    "Infinite": {"match": "any", "conditions": [{"field": "health_score", "op": "lt", "value": "-Infinity"}]},
    "Bad date": {"match": "all", "conditions": [{"field": "customer_since", "op": "gt", "value": "2024-13-45"}]},
    "Not a date": {"conditions": [{"all": [{"field": "customer_since", "op": "lte", "value": 20240101}]}]},
}
EMEA = {"match": "all", "conditions": [{"field": "region", "op": "eq", "value": "EMEA"}]}


@pytest.fixture
def planted(org):
    """Two accounts with contracts (so retention has figures), a valid segment, and the hostile segments
    written with ``bulk_create``, which runs no validation at all."""
    product = ProductFactory(organization=org)
    for i, region in enumerate(["EMEA", "NA"]):
        account = AccountFactory(organization=org, region=region, customer_since=dt.date(2023, 1, 1))
        contract = Contract.all_orgs.create(
            organization=org, account=account, number=f"C-{i}", start_date=dt.date(2024, 1, 1),
            end_date=dt.date(2026, 12, 31),
        )  # fmt: skip
        ContractLine.all_orgs.create(
            organization=org, contract=contract, product=product, quantity=Decimal(1), annual_unit_price=Decimal("1000")
        )
    Segment.objects.for_org(org).delete()
    Segment.all_orgs.create(organization=org, name="EMEA", position=0, rules=EMEA)
    Segment.all_orgs.bulk_create(
        Segment(organization=org, name=name, position=i + 1, rules=rules)
        for i, (name, rules) in enumerate(HOSTILE.items())
    )
    return org


def test_the_api_refuses_each_hostile_rule_at_save(api, org):
    client = api(org, "admin")
    for name, rules in HOSTILE.items():
        response = client.post("/api/v1/segments/", {"name": name, "rules": rules}, format="json")
        assert response.status_code == 400, (name, response.content)
        assert response["Content-Type"].startswith("application/json")
        problem = response.json()["errors"]["rules"][0]
        assert problem.startswith("rules.conditions.0") and ".value: " in problem, problem
        assert not Segment.objects.for_org(org).filter(name=name).exists()
        preview = client.post("/api/v1/segments/preview/", {"rules": rules}, format="json")
        assert preview.status_code == 400, (name, preview.content)
    fine = Segment.objects.for_org(org).get(name="High touch")
    patched = client.patch(f"/api/v1/segments/{fine.pk}/", {"rules": HOSTILE["Huge"]}, format="json")
    assert patched.status_code == 400
    assert Segment.objects.for_org(org).get(pk=fine.pk).rules["conditions"][0]["value"] == "500000"


def test_pages_still_answer_with_a_stored_hostile_rule(client, planted, alice, bob):
    org = planted
    for user in (alice, bob):  # an admin and a CSM
        client.force_login(user)
        portfolio = client.get(reverse("portfolio", args=[org.slug]))
        assert portfolio.status_code == 200
        page = portfolio.content.decode()
        assert page.count("invalid rules") == len(HOSTILE)
        assert "is out of range" in page and "is not a valid date" in page  # the reason, shown
        assert client.get(reverse("renewals", args=[org.slug])).status_code == 200
        hostile = Segment.objects.for_org(org).get(name="Huge")
        book = client.get(reverse("my-book", args=[org.slug]), {"segment": hostile.pk, "scope": "all"})
        assert book.status_code == 200


def test_api_figures_skip_only_the_hostile_segments(api, planted):
    org = planted
    client = api(org, "viewer")
    metrics = client.get("/api/v1/metrics/portfolio/")
    assert metrics.status_code == 200
    by_name = {row["name"]: row for row in metrics.json()["by_segment"]}
    assert by_name["EMEA"]["valid"] is True and by_name["EMEA"]["accounts"] == 1
    for name in HOSTILE:
        assert by_name[name]["valid"] is False and by_name[name]["accounts"] == 0

    grouped = client.get(
        "/api/v1/metrics/retention/", {"start": "2024-06-01", "end": "2025-06-01", "group_by": "segment"}
    )
    assert grouped.status_code == 200, grouped.content
    keys = {group["key"] for group in grouped.json()["groups"]}
    assert "EMEA" in keys and not keys & set(HOSTILE)
    direct = retention(org, dt.date(2024, 6, 1), dt.date(2025, 6, 1), group_by="segment")
    assert {g["key"] for g in direct["groups"]} == {"EMEA", None}

    for name in HOSTILE:
        segment = Segment.objects.for_org(org).get(name=name)
        size = client.get(f"/api/v1/segments/{segment.pk}/size/")
        assert size.status_code == 200
        assert size.json()["accounts"] == 0 and size.json()["problems"], size.json()
        scored = client.get("/api/v1/health-scores/", {"segment": segment.pk})
        assert scored.status_code == 200 and scored.json()["results"] == []
        listed = client.get("/api/v1/accounts/", {"segment": segment.pk})
        assert listed.status_code == 200 and listed.json()["results"] == []
    segments = {row["name"]: row for row in client.get("/api/v1/segments/").json()["results"]}
    assert segments["EMEA"]["problems"] == []
    assert segments["Huge"]["problems"] == [
        "rules.conditions.0.value: '1e999999' is out of range (the absolute value must be below 1000000000000)"
    ]
    assert segments["Not a date"]["problems"] == [
        "rules.conditions.0.all.0.value: 20240101 is not a date (expected YYYY-MM-DD)"
    ]


def test_a_scorecard_bound_to_a_hostile_segment_binds_nobody_and_recompute_runs(planted, alice):
    org = planted
    definition = {
        "components": [
            {"key": "pulse", "signal": "csm_pulse", "weight": 1,
             "function": {"type": "categorical", "points": {"green": 100, "yellow": 50, "red": 0}}}
        ]
    }  # fmt: skip
    broken = Scorecard.all_orgs.create(
        organization=org, name="Broken", segment=Segment.objects.for_org(org).get(name="Huge"), position=1
    )
    emea = Scorecard.all_orgs.create(
        organization=org, name="EMEA", segment=Segment.objects.for_org(org).get(name="EMEA"), position=2
    )
    save_scorecard_version(broken, definition, user=alice)
    save_scorecard_version(emea, definition, user=alice)
    recompute_health(org)
    bound = dict(HealthScore.objects.for_org(org).values_list("account__region", "scorecard_id"))
    default = Scorecard.objects.for_org(org).get(is_default=True)
    assert bound == {"EMEA": emea.pk, "NA": default.pk}
