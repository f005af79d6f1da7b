"""Golden tests of the "know the details" figures (issue 15, item 5) on hand-built books, each figure worked
out in the comments; the churn reason's driver (its defaults, the data migration, the API); the period
presets; the API (index, figure, drill-down: roles, validation, two organizations) and the page."""

from __future__ import annotations

import datetime as dt
import importlib
from decimal import Decimal

import pytest
import time_machine
from django.apps import apps as django_apps

from accounts.models import Contract, ContractLine, Segment
from renewals.analytics import arr_at, retention
from renewals.models import ChurnReason, Renewal, RenewalLineChange
from value import analytics_details as details
from value.details import resolve_period

from .factories import AccountFactory, MembershipFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

D = dt.date.fromisoformat
START, END = D("2025-01-01"), D("2025-12-31")
_numbers = iter(range(1, 1_000_000))


def contract(account, start, end, *lines, status="active") -> Contract:
    """A contract with lines ``(product, quantity, unit price[, discount])``."""
    c = Contract.all_orgs.create(organization=account.organization, account=account, number=f"C-{next(_numbers)}",
                                 start_date=D(start), end_date=D(end), status=status)  # fmt: skip
    for product, quantity, price, *discount in lines:
        ContractLine.all_orgs.create(organization=account.organization, contract=c, product=product,
                                     quantity=Decimal(str(quantity)), annual_unit_price=Decimal(str(price)),
                                     discount=Decimal(str(discount[0])) if discount else Decimal("0"))  # fmt: skip
    return c


def closed(account, closed_on, current, new, *, outcome=None, reason=None, old=None, successor=None) -> Renewal:
    """A renewal closed on ``closed_on`` (due the same day) with prior and new ARR."""
    old = old or contract(account, "2020-01-01", "2020-12-31")
    if outcome is None:
        outcome = "expanded" if new > current else "renewed" if new == current else "contracted" if new else "churned"
    return Renewal.all_orgs.create(
        organization=account.organization, account=account, contract=old, due_date=D(closed_on),
        closed_on=D(closed_on), current_arr=Decimal(current), new_arr=Decimal(new), outcome=outcome,
        churn_reason=ChurnReason.objects.for_org(account.organization).get(code=reason) if reason else None,
        successor_contract=successor,
    )  # fmt: skip


def row(result, key):
    return next(r for r in result["rows"] if r["key"] == key)


def headline(result):
    return {m["key"]: m["value"] for m in result["headline"]}


# --- 1. Share of customers that increased their contract size ------------------------------------------


def test_contract_growth(org, other_org):
    a, b, c, d, e, f, g = (AccountFactory(organization=org, name=n) for n in "ABCDEFG")
    closed(a, "2025-03-31", 10000, 12000)  # increased
    closed(b, "2025-04-30", 20000, 20000)  # unchanged
    closed(c, "2025-05-31", 8000, 6000)  # decreased
    closed(d, "2025-06-30", 5000, 0)  # churned
    closed(e, "2025-02-01", 1000, 1500)  # E: 1,000 + 3,000 = 4,000 → 1,500 + 2,000 = 3,500: decreased
    closed(e, "2025-09-01", 3000, 2000)
    closed(f, "2024-12-31", 1000, 5000)  # closed before the period: not counted
    Renewal.all_orgs.create(organization=org, account=g, contract=contract(g, "2025-01-01", "2025-12-31"),
                            due_date=END, current_arr=Decimal(900))  # open: not counted  # fmt: skip
    closed(AccountFactory(organization=other_org), "2025-03-01", 1, 99)  # another organization's
    # Over the period: X 1,000 → 1,500 (an add-on mid-term), Y 1,000 → 1,000, Z 1,000 → 0.
    p = ProductFactory(organization=org)
    x, y, z = (AccountFactory(organization=org, name=n) for n in "XYZ")
    contract(x, "2024-06-01", "2026-05-31", (p, 10, 100))
    contract(x, "2025-06-01", "2026-05-31", (p, 5, 100))
    contract(y, "2024-01-01", "2025-12-31", (p, 10, 100))
    contract(z, "2024-01-01", "2025-06-30", (p, 10, 100))

    result = details.contract_growth(org, START, END)
    # 5 customers renewed (A, B, C, D, E): 1 increased = 0.2; decreased C and E = 0.4; B 0.2; D 0.2.
    assert headline(result) == {"share_increased": Decimal("0.2000"), "customers_renewed": 5,
                                "share_expanded": Decimal("0.3333"), "customers_at_start": 3}  # fmt: skip
    assert [(r["key"], r["values"]["customers"], r["values"]["share"]) for r in result["rows"]] == [
        ("increased", 1, Decimal("0.2000")), ("unchanged", 1, Decimal("0.2000")),
        ("decreased", 2, Decimal("0.4000")), ("churned", 1, Decimal("0.2000")),
    ]  # fmt: skip
    assert (row(result, "decreased")["values"]["prior_arr"], row(result, "decreased")["values"]["new_arr"]) == (
        Decimal("12000.00"), Decimal("9500.00"))  # C 8,000 + E 4,000 → 6,000 + 3,500  # fmt: skip
    # Drill-downs: largest prior ARR first (E 4,000 after C 8,000); increased by its gain.
    assert result["drill"]["increased"] == [a.pk]
    assert result["drill"]["decreased"] == [c.pk, e.pk]
    assert result["drill"]["churned"] == [d.pk]
    assert result["drill"]["expanded"] == [x.pk]


# --- 2. Churn rate by industry, segment, region --------------------------------------------------------


def test_churn_by_group(org, other_org):
    p = ProductFactory(organization=org)
    book = {}
    for name, industry, region, touch, arr, kept in [
        ("S1", "Software", "EMEA", "high", 10000, True),
        ("S2", "Software", "EMEA", "low", 5000, False),
        ("S3", "Software", "NA", "low", 5000, False),
        ("R1", "Retail", "NA", "high", 30000, True),
        ("R2", "Retail", "EMEA", "tech", 10000, False),
        ("N1", "", "APAC", "low", 1000, True),
    ]:
        account = book[name] = AccountFactory(organization=org, name=name, industry=industry, region=region,
                                              touch_model=touch)  # fmt: skip
        contract(account, "2024-07-01", "2026-06-30" if kept else "2025-06-30", (p, 1, arr))
    other = AccountFactory(organization=other_org, industry="Software")
    contract(other, "2024-07-01", "2025-06-30", (ProductFactory(organization=other_org), 1, 99999))
    Segment.objects.for_org(org).delete()
    Segment.all_orgs.create(organization=org, name="Big", position=0,
                            rules={"match": "all", "conditions": [{"field": "touch_model", "op": "in",
                                                                   "value": ["high"]}]})  # fmt: skip

    result = details.churn_by_group(org, START, END)
    values = {r["key"]: r["values"] for r in result["rows"]}
    # Software: S1, S2, S3 → 2 churned of 3 = 0.6667; ARR 20,000 of which 10,000 churned = 0.5.
    assert (values["industry:Software"]["logo_churn"], values["industry:Software"]["arr_churn"]) == (
        Decimal("0.6667"), Decimal("0.5000"))  # fmt: skip
    # Retail: R1, R2 → 1 of 2 = 0.5; 10,000 of 40,000 = 0.25. No industry (N1): 0 of 1.
    assert (values["industry:Retail"]["logo_churn"], values["industry:Retail"]["arr_churn"]) == (
        Decimal("0.5000"), Decimal("0.2500"))  # fmt: skip
    assert values["industry:(none)"]["churned"] == 0
    # EMEA: S1, S2, R2 → 2 of 3; ARR 25,000, churned 15,000 = 0.6. NA: S3, R1 → 1 of 2; 5,000 of 35,000 = 0.1429.
    assert (values["region:EMEA"]["logo_churn"], values["region:EMEA"]["arr_churn"]) == (
        Decimal("0.6667"), Decimal("0.6000"))  # fmt: skip
    assert values["region:NA"]["arr_churn"] == Decimal("0.1429")
    # Segment Big (high touch: S1, R1) lost none; no segment (S2, S3, R2, N1): 3 of 4 = 0.75.
    assert (values["segment:Big"]["churned"], values["segment:(none)"]["logo_churn"]) == (0, Decimal("0.7500"))
    assert values["touch_model:tech"]["logo_churn"] == Decimal("1.0000")
    h = headline(result)
    # All: 3 of 6 = 0.5; ARR 20,000 of 61,000 = 0.32787 → 0.3279. Highest: Software (logo and ARR), EMEA.
    assert (h["logo_churn"], h["arr_churn"]) == (Decimal("0.5000"), Decimal("0.3279"))
    assert (h["highest_logo_industry"], h["highest_arr_industry"]) == (Decimal("0.6667"), Decimal("0.5000"))
    labels = {m["key"]: m["label"] for m in result["headline"]}
    assert labels["highest_logo_industry"].endswith(": Software")
    assert labels["highest_arr_region"].endswith(": EMEA")
    assert result["drill"]["industry:Software"] == [book["S2"].pk, book["S3"].pk]  # equal ARR: by id
    assert result["drill"]["churned"] == [book["R2"].pk, book["S2"].pk, book["S3"].pk]
    # The same churn as the retention report's (the definition is reused, not rewritten).
    groups = {g["key"]: g for g in retention(org, START, END, group_by="industry")["groups"]}
    assert groups["Software"]["churn"] == values["industry:Software"]["churned_arr"]
    # The one-query ARR of both days is arr_at's, to the cent.
    a0, a1 = details._two_days(org, START, END)
    assert {k: Decimal(int(v)) / 100 for k, v in a0.items()} == dict(arr_at(org, START))
    assert {k: Decimal(int(v)) / 100 for k, v in a1.items()} == dict(arr_at(org, END))


# --- 3. Retention and growth by product ------------------------------------------------------------------


def test_product_retention(org):
    core = ProductFactory(organization=org, sku="P1", name="Core")
    addon = ProductFactory(organization=org, sku="P2", name="Addon")
    a, b, c, d = (AccountFactory(organization=org, name=n) for n in "ABCD")

    def bridge(renewal, *changes):
        for product, old, new in changes:
            RenewalLineChange.all_orgs.create(organization=org, renewal=renewal, product=product, kind="unchanged",
                                              old_arr=Decimal(old), new_arr=Decimal(new),
                                              delta=Decimal(new) - Decimal(old))  # fmt: skip

    bridge(closed(a, "2025-03-01", 1000, 1500), (core, 1000, 1200), (addon, 0, 300))  # +200 expansion, 300 cross-sell
    bridge(closed(b, "2025-05-01", 2500, 1500), (core, 2000, 1500), (addon, 500, 0))  # −500 contraction, 500 churn
    bridge(closed(c, "2025-06-01", 1000, 0), (core, 1000, 0))  # churned: 1,000 churn
    bridge(closed(d, "2024-11-01", 5000, 9000), (core, 5000, 9000))  # before the period

    result = details.product_retention(org, START, END)
    p1, p2 = row(result, "product:P1")["values"], row(result, "product:P2")["values"]
    # Core: prior 4,000; churn 1,000; contraction 500; expansion 200; new 2,700.
    # GRR = 2,500 / 4,000 = 0.625; NRR = 2,700 / 4,000 = 0.675; growth = (2,700 − 4,000) / 4,000 = −0.325.
    assert (p1["prior_arr"], p1["new_arr"], p1["grr"], p1["nrr"], p1["growth"], p1["customers"]) == (
        Decimal("4000.00"),
        Decimal("2700.00"),
        Decimal("0.6250"),
        Decimal("0.6750"),
        Decimal("-0.3250"),
        3,
    )
    # Addon: prior 500 all churned: GRR = NRR = 0; cross-sell 300; growth = (300 − 500) / 500 = −0.4.
    assert (p2["grr"], p2["nrr"], p2["cross_sell"], p2["growth"]) == (
        Decimal("0.0000"), Decimal("0.0000"), Decimal("300.00"), Decimal("-0.4000"))  # fmt: skip
    # All: prior 4,500; kept 4,500 − 1,500 − 500 = 2,500 → 0.5556; + 200 → 0.6; growth (3,000 − 4,500) / 4,500.
    assert headline(result) == {"grr": Decimal("0.5556"), "nrr": Decimal("0.6000"), "growth": Decimal("-0.3333"),
                                "customers": 3}  # fmt: skip
    assert result["drill"]["product:P1:lost"] == [b.pk, c.pk]  # B's prior Core 2,000 before C's 1,000
    assert result["drill"]["product:P2:lost"] == [b.pk]
    assert set(result["drill"]["product:P2"]) == {a.pk, b.pk}


# --- 4. Discount change at first renewal ---------------------------------------------------------------


def test_first_renewal_discount(org):
    p1, p2, p3 = (ProductFactory(organization=org, sku=s) for s in ("P1", "P2", "P3"))
    a, b, c, d = (AccountFactory(organization=org, name=n) for n in "ABCD")

    def renew(account, closed_on, old_lines, new_lines):
        old = contract(account, "2024-01-01", "2024-12-31", *old_lines)
        new = contract(account, "2025-01-01", "2025-12-31", *new_lines)
        return closed(account, closed_on, 1, 1, outcome="renewed", old=old, successor=new)

    # A: Core at 20 % → 10 % (gross 1,000); P2 dropped and P3 added are not compared: change −0.10.
    renew(a, "2025-02-01", [(p1, 10, 100, "0.20"), (p2, 1, 1000, "0.10")], [(p1, 10, 100, "0.10"), (p3, 1, 50)])
    # B: (2,000 × 10 % + 2,000 × 0 %) / 4,000 = 5 % → (200 + 100) / 4,000 = 7.5 %: change +0.025.
    renew(b, "2025-06-01", [(p1, 20, 100, "0.10"), (p2, 2, 1000, "0")], [(p1, 20, 100, "0.10"), (p2, 2, 1000, "0.05")])
    # C: 15 % → 15 % (gross 3,000): unchanged.
    renew(c, "2025-04-01", [(p1, 30, 100, "0.15")], [(p1, 30, 100, "0.15")])
    # D's first renewal closed before the period: its second one, in the period, is not a first renewal.
    renew(d, "2024-06-01", [(p1, 1, 100, "0.5")], [(p1, 1, 100, "0.5")])
    renew(d, "2025-06-01", [(p1, 1, 100, "0.5")], [(p1, 1, 100, "0")])

    result = details.first_renewal_discount(org, START, END)
    # Unweighted: (−0.10 + 0.025 + 0) / 3 = −0.025. Weighted by original list value (1,000; 4,000; 3,000):
    # (−100 + 100 + 0) / 8,000 = 0.
    assert headline(result) == {"average_change": Decimal("-0.0250"), "weighted_change": Decimal("0.0000"),
                                "customers": 3, "share_reduced": Decimal("0.3333")}  # fmt: skip
    reduced = row(result, "reduced")["values"]
    assert (reduced["discount_before"], reduced["discount_after"], reduced["change"]) == (
        Decimal("0.2000"), Decimal("0.1000"), Decimal("-0.1000"))  # fmt: skip
    assert (result["drill"]["reduced"], result["drill"]["increased"], result["drill"]["unchanged"]) == (
        [a.pk], [b.pk], [c.pk])  # fmt: skip


# --- 5. Contract size vs original, customers of more than three years ------------------------------------


def test_long_term_size(org):
    p = ProductFactory(organization=org)
    a, b, c, d, e = (AccountFactory(organization=org, name=n) for n in "ABCDE")
    contract(a, "2021-01-01", "2021-12-31", (p, 1, 6000))  # A's original: two contracts that day, 10,000
    contract(a, "2021-01-01", "2021-12-31", (p, 1, 4000))
    contract(a, "2025-01-01", "2025-12-31", (p, 1, 15000))  # now 15,000: grew (×1.5)
    contract(b, "2022-12-31", "2026-12-30", (p, 1, 20000))  # exactly three years on 2025-12-31: not more
    contract(c, "2019-01-01", "2019-12-31", (p, 1, 99999), status="cancelled")  # cancelled: not the start
    contract(c, "2020-06-01", "2021-05-31", (p, 1, 5000))  # original 5,000
    contract(c, "2025-06-01", "2026-05-31", (p, 1, 4000))  # now 4,000: shrank (×0.8)
    contract(d, "2021-03-01", "2024-02-28", (p, 1, 8000))  # no ARR now: not a customer any more
    contract(e, "2022-01-01", "2026-12-31", (p, 1, 3000))  # 3,000 → 3,000 (×1)

    result = details.long_term_size(org, START, END)
    # A, C, E: original (10,000 + 5,000 + 3,000) / 3 = 6,000; now (15,000 + 4,000 + 3,000) / 3 = 7,333.33;
    # ratio 733,333 / 600,000 cents = 1.2222; median of ×1.5, ×0.8, ×1 = 1.
    assert headline(result) == {"customers": 3, "average_original": Decimal("6000.00"),
                                "average_now": Decimal("7333.33"), "ratio": Decimal("1.2222"),
                                "median_multiple": Decimal("1.0000")}  # fmt: skip
    assert [(r["key"], r["values"]["customers"]) for r in result["rows"]] == [("grew", 1), ("same", 1), ("shrank", 1)]
    assert (result["drill"]["grew"], result["drill"]["shrank"], result["drill"]["all"]) == (
        [a.pk], [c.pk], [a.pk, c.pk, e.pk])  # fmt: skip


# --- 6. Churn drivers ------------------------------------------------------------------------------------


def test_churn_drivers(org, api):
    a, b, c, d, e, f, g = (AccountFactory(organization=org, name=n) for n in "ABCDEFG")
    closed(a, "2025-02-01", 10000, 0, reason="poor_adoption")  # adoption
    closed(b, "2025-03-01", 5000, 0, reason="acquired_merged")  # external
    closed(c, "2025-04-01", 3000, 0, reason="product_fit")  # product gap
    closed(d, "2025-05-01", 2000, 0, reason="lost_champion")  # adoption (docs: a lost champion is adoption)
    closed(e, "2025-06-01", 8000, 6000, reason="price")  # commercial, contracted: 2,000 lost, no churned customer
    closed(f, "2025-07-01", 1000, 0)  # no reason: unclassified
    closed(g, "2024-07-01", 7000, 0, reason="poor_adoption")  # before the period

    result = details.churn_drivers(org, START, END)
    values = {r["key"]: r["values"] for r in result["rows"]}
    # Churned customers: A, B, C, D, F = 5 → adoption 2/5, product gap 1/5, external 1/5.
    assert headline(result) == {
        "adoption": Decimal("0.4000"),
        "product_gap": Decimal("0.2000"),
        "external": Decimal("0.2000"),
        "churned": 5,
        "lost_arr": Decimal("23000.00"),
    }
    # Lost ARR 10,000 + 5,000 + 3,000 + 2,000 + 2,000 + 1,000 = 23,000: adoption 12,000 = 0.5217; commercial 0.0870.
    assert values["adoption"]["share_lost_arr"] == Decimal("0.5217")
    commercial = values["commercial"]
    assert (commercial["churned"], commercial["losses"], commercial["share_lost_arr"]) == (0, 1, Decimal("0.0870"))
    assert values["unclassified"]["churned"] == 1
    assert result["drill"]["adoption"] == [a.pk, d.pk]
    # Re-classifying a reason (admins, through the API) moves its losses: price becomes a product gap.
    price = ChurnReason.objects.for_org(org).get(code="price")
    assert api(org, "admin").patch(f"/api/v1/churn-reasons/{price.pk}/", {"driver": "product_gap"},
                                   format="json").status_code == 200  # fmt: skip
    assert api(org, "admin").patch(f"/api/v1/churn-reasons/{price.pk}/", {"driver": "luck"},
                                   format="json").status_code == 400  # fmt: skip
    moved = {r["key"]: r["values"] for r in details.churn_drivers(org, START, END)["rows"]}
    assert (moved["product_gap"]["losses"], moved["commercial"]["losses"]) == (2, 0)


def test_default_reasons_carry_their_driver_and_the_migration_classifies_old_rows(org):
    drivers = dict(ChurnReason.objects.for_org(org).values_list("code", "driver"))
    assert drivers == {
        "poor_adoption": "adoption",
        "product_fit": "product_gap",
        "lost_champion": "adoption",
        "support_quality": "service",
        "price": "commercial",
        "competitor": "commercial",
        "budget_cut": "external",
        "acquired_merged": "external",
        "out_of_business": "external",
    }
    ChurnReason.objects.for_org(org).update(driver="")
    ChurnReason.all_orgs.create(organization=org, code="reorg", label="Re-org", avoidable=False)
    ChurnReason.all_orgs.create(organization=org, code="other", label="Other", avoidable=True)
    migration = importlib.import_module("renewals.migrations.0004_churn_reason_driver")
    migration.classify(django_apps, None)
    after = dict(ChurnReason.objects.for_org(org).values_list("code", "driver"))
    assert {k: after[k] for k in ("price", "lost_champion", "reorg", "other")} == {
        "price": "commercial", "lost_champion": "adoption", "reorg": "external", "other": ""}  # fmt: skip


# --- 7. Pareto of revenue ----------------------------------------------------------------------------------


def test_revenue_pareto(org):
    p = ProductFactory(organization=org)
    accounts = []
    for arr in (3000, 50000, 2000, 30000, 10000, 5000):
        account = AccountFactory(organization=org)
        contract(account, "2025-01-01", "2025-12-31", (p, 1, arr))
        accounts.append(account)
    contract(AccountFactory(organization=org), "2024-01-01", "2024-12-31", (p, 1, 999999))  # ended: no ARR
    result = details.revenue_pareto(org, START, END)
    # 100,000 in all; largest first 50,000, 80,000 (≥ 80 %): two accounts of six = 0.3333.
    assert headline(result) == {"accounts_80": 2, "share_80": Decimal("0.3333"), "accounts": 6,
                                "arr": Decimal("100000.00")}  # fmt: skip
    assert result["drill"]["top80"] == [accounts[1].pk, accounts[3].pk]
    # Largest 10 % = ⌈0.6⌉ = 1 account: 0.5; 50 % = 3 accounts: 90,000 = 0.9; 100 %: 1.
    curve = {r["key"]: (r["values"]["accounts"], r["values"]["share_of_arr"]) for r in result["rows"]}
    assert (curve["top10"], curve["top50"], curve["top100"]) == (
        (1, Decimal("0.5000")), (3, Decimal("0.9000")), (6, Decimal("1.0000")))  # fmt: skip


# --- 8. CSM coverage by ARR ----------------------------------------------------------------------------------


def test_csm_coverage(org):
    p = ProductFactory(organization=org)
    bob = MembershipFactory(organization=org, role="csm", user=UserFactory(first_name="Bob", last_name="B")).user
    carol = MembershipFactory(organization=org, role="csm", user=UserFactory(first_name="Carol", last_name="C")).user
    book = {}
    for name, owner, touch, arr in [("big", bob, "high", 600000), ("mid", bob, "high", 100000),
                                    ("b-low", bob, "low", 10000), ("c-low", carol, "low", 20000),
                                    ("orphan", None, "low", 5000), ("tech", None, "tech", 1000)]:  # fmt: skip
        book[name] = AccountFactory(organization=org, name=name, owner=owner, touch_model=touch)
        contract(book[name], "2025-01-01", "2025-12-31", (p, 1, arr))
    result = details.csm_coverage(org, START, END)
    values = {r["key"]: r["values"] for r in result["rows"]}
    # High touch: 2 accounts, one CSM: 2 per CSM, below the default target 5–15; ARR per CSM 700,000.
    assert (values["touch:high"]["accounts_per_csm"], values["touch:high"]["status"],
            values["touch:high"]["arr_per_csm"], values["touch:high"]["target"]) == (
        Decimal("2.0"), "below", Decimal("700000.00"), "5–15")  # fmt: skip
    # Low touch: 3 accounts, 2 owned by 2 CSMs: 1 per CSM, below 20–50; one without a CSM.
    low = values["touch:low"]
    assert (low["accounts"], low["accounts_per_csm"], low["unowned"]) == (3, Decimal("1.0"), 1)
    assert values["touch:tech"]["status"] is None  # tech touch: no CSM ratio
    # Bob's load: 2 of 15 high + 1 of 50 low = 0.1333 + 0.02 = 0.1533 (the Portfolio's capacity rule).
    assert values[f"csm:{bob.pk}"]["load"] == Decimal("0.1533")
    assert values[f"csm:{bob.pk}"]["arr"] == Decimal("710000.00")
    # Owned ARR 730,000 over 2 CSMs; 4 owned accounts / 2 = 2.
    h = headline(result)
    assert (h["csms"], h["arr_per_csm"], h["accounts_per_csm"], h["big_not_high"], h["high_small"], h["unowned"]) == (
        2, Decimal("365000.00"), Decimal("2.0000"), 0, 1, 1)  # fmt: skip
    assert (result["drill"]["high_small"], result["drill"]["unowned"]) == ([book["mid"].pk], [book["orphan"].pk])
    assert result["drill"][f"csm:{bob.pk}"] == [book["big"].pk, book["mid"].pk, book["b-low"].pk]


# --- Periods -----------------------------------------------------------------------------------------------


def test_periods(org):
    today = D("2026-05-20")
    assert resolve_period(org, today=today)[:2] == (D("2025-05-21"), today)  # the last 12 months
    assert resolve_period(org, preset="this_quarter", today=today)[:2] == (D("2026-04-01"), today)
    assert resolve_period(org, preset="last_quarter", today=today)[:2] == (D("2026-01-01"), D("2026-03-31"))
    assert resolve_period(org, preset="last_year", today=today)[:2] == (D("2025-01-01"), D("2025-12-31"))
    org.fiscal_year_start_month = 2
    assert resolve_period(org, preset="this_year", today=today)[:2] == (D("2026-02-01"), today)
    assert resolve_period(org, start=START, end=END, preset="this_year", today=today).preset == "custom"
    for kwargs in ({"start": START}, {"start": END, "end": START}, {"preset": "forever"},
                   {"start": D("2000-01-01"), "end": END}):  # fmt: skip
        with pytest.raises(ValueError):
            resolve_period(org, today=today, **kwargs)


# --- API ------------------------------------------------------------------------------------------------


@pytest.fixture
def two_books(org, other_org):
    """Acme: a 10,000 and a 2,000 customer, the smaller one churned; Globex: one big customer of its own."""
    p = ProductFactory(organization=org)
    big, small = AccountFactory(organization=org, name="Big"), AccountFactory(organization=org, name="Small")
    contract(big, "2025-01-01", "2026-12-31", (p, 1, 10000))
    contract(small, "2025-01-01", "2025-06-30", (p, 1, 2000))
    closed(small, "2025-06-30", 2000, 0, reason="poor_adoption")
    other = AccountFactory(organization=other_org, name="Globex customer")
    contract(other, "2025-01-01", "2026-12-31", (ProductFactory(organization=other_org), 1, 999999))
    closed(other, "2025-06-30", 500, 0, reason="price")
    return big, small, other


PERIOD = {"start": "2025-01-01", "end": "2025-12-31"}


@pytest.mark.parametrize("role", ["admin", "leader", "csm", "viewer"])
def test_every_role_reads_the_figures(org, api, two_books, role):
    client = api(org, role)
    index = client.get("/api/v1/metrics/details/")
    assert index.status_code == 200, index.content
    assert [f["key"] for f in index.json()["figures"]] == list(details.FIGURES)
    assert index.json()["period"]["preset"] == "last_12_months"
    for key in details.FIGURES:
        response = client.get(f"/api/v1/metrics/details/{key}/", PERIOD)
        assert response.status_code == 200, (key, response.content)
        assert response.json()["question"] == details.QUESTIONS[key]


def test_figure_and_drill_down_stay_in_their_organization(org, other_org, api, two_books, charlie):
    big, small, other = two_books
    body = api(org, "viewer").get("/api/v1/metrics/details/revenue-pareto/", PERIOD).json()
    # Acme alone: 10,000 on 2025-12-31 (Small ended in June); Globex's 999,999 never counts.
    assert {m["key"]: m["value"] for m in body["headline"]}["arr"] == "10000.00"
    assert {"key": "top80", "label": "The accounts making 80 % of ARR", "count": 1} in body["drill_keys"]
    drivers = api(org, "viewer").get("/api/v1/metrics/details/churn-drivers/", PERIOD).json()
    assert {m["key"]: m["value"] for m in drivers["headline"]}[
        "adoption"
    ] == "1.0000"  # Globex's price loss is not ours
    drill = api(org, "csm").get("/api/v1/metrics/details/churn-drivers/accounts/", {**PERIOD, "drill": "adoption"})
    assert drill.status_code == 200, drill.content
    assert [(a["id"], a["name"]) for a in drill.json()["accounts"]] == [(small.pk, "Small")]
    assert drill.json()["count"] == 1
    theirs = api(other_org, "admin", charlie).get("/api/v1/metrics/details/churn-drivers/accounts/",
                                                  {**PERIOD, "drill": "commercial"}).json()  # fmt: skip
    assert [a["id"] for a in theirs["accounts"]] == [other.pk]
    # A session naming the other organization is a 404, like any organization it is not a member of.
    assert api(org, "admin").get("/api/v1/metrics/details/", HTTP_X_ORGANIZATION="globex").status_code == 404


def test_drill_down_pages(org, api):
    p = ProductFactory(organization=org)
    accounts = [AccountFactory(organization=org) for _ in range(5)]
    for i, account in enumerate(accounts):
        contract(account, "2025-01-01", "2025-12-31", (p, 1, 1000 * (i + 1)))
    page = api(org).get("/api/v1/metrics/details/revenue-pareto/accounts/",
                        {**PERIOD, "drill": "top80", "limit": 2, "offset": 1}).json()  # fmt: skip
    # 15,000 in all: 5,000 + 4,000 + 3,000 = 12,000 ≥ 12,000 → the three largest, listed largest first.
    assert (page["count"], [a["id"] for a in page["accounts"]]) == (3, [accounts[3].pk, accounts[2].pk])


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/metrics/details/contract-growth/", {"start": "2025-01-01"}, "end"),
        ("/api/v1/metrics/details/contract-growth/", {"start": "2025-02-01", "end": "2025-01-01"}, "end"),
        ("/api/v1/metrics/details/contract-growth/", {"start": "not a date", "end": "2025-01-01"}, "start"),
        ("/api/v1/metrics/details/contract-growth/", {"period": "forever"}, "period"),
        ("/api/v1/metrics/details/contract-growth/", {"start": "2000-01-01", "end": "2025-01-01"}, "end"),
        ("/api/v1/metrics/details/contract-growth/accounts/", {}, "drill"),
        ("/api/v1/metrics/details/contract-growth/accounts/", {"drill": "nope"}, "drill"),
        ("/api/v1/metrics/details/contract-growth/accounts/", {"drill": "increased", "limit": 0}, "limit"),
        ("/api/v1/metrics/details/", {"end": "2025-01-01"}, "start"),
    ],
)
def test_bad_queries_are_400_naming_the_field(org, api, path, params, field):
    response = api(org, "viewer").get(path, params)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]


def test_unknown_figure_is_a_json_404_and_anonymous_is_401(org, api, client):
    response = api(org).get("/api/v1/metrics/details/ltv/")
    assert (response.status_code, response["Content-Type"]) == (404, "application/json")
    assert client.get("/api/v1/metrics/details/").status_code in (401, 403)


@time_machine.travel("2026-05-20 12:00:00Z", tick=False)
def test_default_period_is_the_last_12_months(org, api):
    body = api(org).get("/api/v1/metrics/details/revenue-pareto/").json()
    assert (body["period"]["start"], body["period"]["end"], body["period"]["label"]) == (
        "2025-05-21", "2026-05-20", "Last 12 months")  # fmt: skip
    quarter = api(org).get("/api/v1/metrics/details/revenue-pareto/", {"period": "last_quarter"}).json()["period"]
    assert (quarter["start"], quarter["end"]) == ("2026-01-01", "2026-03-31")


# --- Page ----------------------------------------------------------------------------------------------


@time_machine.travel("2025-12-31 12:00:00Z", tick=False)
def test_page_shows_every_question_and_drills_to_the_accounts(org, client, make_member, two_books, charlie):
    big, small, _other = two_books
    viewer = make_member(org, "viewer").user
    client.force_login(viewer)
    page = client.get("/o/acme/reports/details/?period=this_year")
    assert page.status_code == 200
    html = page.content.decode()
    for question in details.QUESTIONS.values():
        assert question.replace("'", "&#x27;") in html
    assert "Know the details" in html and 'href="/o/acme/reports/details/"' in html  # the nav link
    # Churned at renewal: Small only; its drill-down page lists it and links to its Account 360.
    assert 'href="/o/acme/reports/details/contract-growth/churned/?period=this_year"' in html
    drill = client.get("/o/acme/reports/details/contract-growth/churned/?period=this_year")
    assert drill.status_code == 200
    assert f'href="/o/acme/accounts/{small.pk}/"' in drill.content.decode()
    assert "Globex customer" not in html + drill.content.decode()
    assert client.get("/o/acme/reports/details/contract-growth/nope/").status_code == 404
    assert client.get("/o/acme/reports/details/ltv/churned/").status_code == 404
    # A bad period says so and falls back to the default.
    assert (
        "Showing the last 12 months"
        in client.get("/o/acme/reports/details/?start=2025-02-01&end=2025-01-01").content.decode()
    )
    client.force_login(charlie)  # not a member of acme
    assert client.get("/o/acme/reports/details/").status_code == 404
