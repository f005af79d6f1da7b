"""Golden tests of lifetime value, CAC payback and product vs account wallet retention
(``value.analytics_ltv``), on hand-built data with every figure worked out in the comments.

The book, as of 2026-06-30 (segments: Enterprise = industry software, position 0; SMB = industry retail,
position 1; Strategic = region emea, position 2). ARRs are multiples of 365 so pro-rating is exact:

=======  ======================================  ==========  ===========================================
account  contracts (non-cancelled)               ARR today   lifetime revenue to 2026-06-30
=======  ======================================  ==========  ===========================================
E1       2024-07-01..2025-06-30 at 36,500;        73,000      36,500 × 365/365 + 73,000 × 365/365
         2025-07-01..2026-12-31 at 73,000;                    = 109,500.00 (the cancelled one never counts)
         a *cancelled* 1,000,000 one
E2 emea  2025-01-01..2026-12-31 at 36,500         36,500      546 days (365 + 181): 36,500 × 546/365 = 54,600
E3       2025-01-01..2026-12-31 at 18,250         18,250      18,250 × 546/365 = 27,300
E4       2025-01-01..2026-12-31 at 3,650          3,650       3,650 × 546/365 = 5,460
E5       2025-01-01..2025-12-31 at 36,500         0 (gone)    not live: no LTV row
S1       2025-01-01..2026-12-31 at 7,300          7,300       10,920
S2       2025-01-01..2026-12-31 at 3,650          3,650       5,460
N1 emea  2026-01-01..2026-12-31 at 36,500         36,500      181 days: 18,100
=======  ======================================  ==========  ===========================================

Observed churn over [2025-06-30, 2026-06-30] (``renewals.analytics.retention``):
* organization: cohort = E1..E5, S1, S2 = 7 (N1 starts later); retained 6 (E5 gone): logo retention
  6/7 = 0.8571 → churn 0.1429 → lifetime 1/0.1429 = 6.9979 → **7.00** years;
* Enterprise: cohort 5 (E1..E5), retained 4 → 0.8 → churn 0.2000 → **5.00** years (its own: cohort ≥ 5);
* SMB: cohort 2 < 5 → the organization's 7.00; Strategic: cohort 1 (E2) → the organization's 7.00.

Homes (first segment by position): E1..E4 Enterprise (E2 is also Strategic), S1, S2 SMB, N1 Strategic.
LTV = ARR × 100 % × lifetime: E1 365,000; E2 182,500; E3 91,250; E4 18,250; S1 7,300 × 7 = 51,100;
S2 25,550; N1 255,500.

Costs: E1's own row 100,000 + 20,000 = 120,000; Enterprise 40,000 + 10,000 = 50,000; SMB 5,000 + 1,000 =
6,000; Strategic 99,999 + 1 = 100,000. E2 is in Enterprise and Strategic, both with rows: the first by
position, Enterprise (50,000). N1: Strategic's 100,000.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import Segment
from value.analytics_ltv import lifetime_value, product_retention
from value.models import AcquisitionCost

from .factories import AccountFactory, ProductFactory
from .renewal_factories import contract_with_lines

pytestmark = pytest.mark.django_db
AS_OF = dt.date(2026, 6, 30)
D = Decimal


def rule(field: str, value: str) -> dict:
    return {"match": "all", "conditions": [{"field": field, "op": "eq", "value": value}]}


def build_book(org):
    Segment.all_orgs.filter(organization=org).delete()  # the default touch tiers read stored ARR
    enterprise = Segment.all_orgs.create(organization=org, name="Enterprise", rules=rule("industry", "software"))
    smb = Segment.all_orgs.create(organization=org, name="SMB", position=1, rules=rule("industry", "retail"))
    strategic = Segment.all_orgs.create(organization=org, name="Strategic", position=2, rules=rule("region", "emea"))
    product = ProductFactory(organization=org)

    def account(name, industry="", region="", since=None):
        return AccountFactory(organization=org, name=name, external_id=name, industry=industry, region=region,
                              customer_since=since)  # fmt: skip

    def contract(acc, start, end, arr, **kwargs):
        return contract_with_lines(org, account=acc, start=start, end=end, lines=[(product, "1", arr, "0")], **kwargs)

    y25, y26 = dt.date(2025, 1, 1), dt.date(2026, 12, 31)
    accounts = {
        "E1": account("E1", "software", since=dt.date(2024, 7, 1)),
        "E2": account("E2", "software", "emea"),
        "E3": account("E3", "software"),
        "E4": account("E4", "software"),
        "E5": account("E5", "software"),
        "S1": account("S1", "retail"),
        "S2": account("S2", "retail"),
        "N1": account("N1", region="emea"),
    }
    contract(accounts["E1"], dt.date(2024, 7, 1), dt.date(2025, 6, 30), "36500")
    contract(accounts["E1"], dt.date(2025, 7, 1), y26, "73000")
    contract(accounts["E1"], y25, y26, "1000000", status="cancelled")
    contract(accounts["E2"], y25, y26, "36500")
    contract(accounts["E3"], y25, y26, "18250")
    contract(accounts["E4"], y25, y26, "3650")
    contract(accounts["E5"], y25, dt.date(2025, 12, 31), "36500")
    contract(accounts["S1"], y25, y26, "7300")
    contract(accounts["S2"], y25, y26, "3650")
    contract(accounts["N1"], dt.date(2026, 1, 1), y26, "36500")
    cost = AcquisitionCost.all_orgs.create
    cost(organization=org, account=accounts["E1"], acquisition_cost=D("100000"), onboarding_cost=D("20000"))
    cost(organization=org, segment=enterprise, acquisition_cost=D("40000"), onboarding_cost=D("10000"))
    cost(organization=org, segment=smb, acquisition_cost=D("5000"), onboarding_cost=D("1000"))
    cost(organization=org, segment=strategic, acquisition_cost=D("99999"), onboarding_cost=D("1"))
    return accounts, {"Enterprise": enterprise, "SMB": smb, "Strategic": strategic}


def by_name(rows, key="name"):
    return {row[key]: row for row in rows}


def test_account_figures(org):
    accounts, segments = build_book(org)
    result = lifetime_value(org, AS_OF)
    rows = by_name(result.account_rows())
    assert set(rows) == {"E1", "E2", "E3", "E4", "S1", "S2", "N1"}  # E5 is gone: no LTV
    # Ordered by LTV, highest first: E1 365,000 > N1 255,500 > E2 182,500 > E3 > S1 > S2 > E4.
    assert [r["name"] for r in result.account_rows()] == ["E1", "N1", "E2", "E3", "S1", "S2", "E4"]

    e1 = rows["E1"]
    assert e1["arr"] == D("73000.00") and e1["mrr"] == D("6083.33")  # 73,000 / 12 = 6,083.333
    assert e1["lifetime_revenue"] == D("109500.00")
    assert e1["customer_since"] == dt.date(2024, 7, 1) and e1["months_as_customer"] == 23
    assert e1["home_segment"] == "Enterprise" and e1["annual_logo_churn"] == D("0.2000")
    assert e1["expected_lifetime_years"] == D("5.00")
    assert e1["ltv"] == D("365000.00")
    assert (e1["acquisition_cost"], e1["onboarding_cost"], e1["cac"]) == (D("100000.00"), D("20000.00"), D("120000.00"))
    assert e1["cost_source"] == "account" and e1["cost_segment_id"] is None
    assert e1["ltv_net_of_cac"] == D("245000.00")
    assert e1["ltv_to_cac"] == D("3.0417")  # 365,000 / 120,000 = 3.04166…
    assert e1["payback_months"] == D("19.7")  # 120,000 / 6,083.33 = 120,000 × 12 / 73,000 = 19.726
    # 109,500 earned < 120,000: not recovered; (120,000 − 109,500) × 12 / 73,000 = 1.726 months to go.
    assert e1["cac_recovered"] is False and e1["months_to_recover"] == D("1.7")

    e2 = rows["E2"]
    # No customer_since: the first contract's start; 2025-01-01 → 2026-06-30 = 17 whole months.
    assert e2["customer_since"] == dt.date(2025, 1, 1) and e2["months_as_customer"] == 17
    assert e2["lifetime_revenue"] == D("54600.00") and e2["ltv"] == D("182500.00")
    # In Enterprise (position 0) and Strategic (position 2), both with rows: Enterprise's 50,000.
    assert e2["cost_source"] == "segment" and e2["cost_segment_id"] == segments["Enterprise"].pk
    assert e2["cac"] == D("50000.00") and e2["ltv_net_of_cac"] == D("132500.00")
    assert e2["ltv_to_cac"] == D("3.6500") and e2["payback_months"] == D("16.4")  # 600,000 / 36,500 = 16.44
    assert e2["cac_recovered"] is True and e2["months_to_recover"] == D("0.0")  # 54,600 ≥ 50,000

    e4 = rows["E4"]
    assert e4["ltv"] == D("18250.00") and e4["ltv_net_of_cac"] == D("-31750.00")  # worth less than it cost
    assert e4["ltv_to_cac"] == D("0.3650") and e4["payback_months"] == D("164.4")  # 600,000 / 3,650 = 164.38
    assert e4["months_to_recover"] == D("146.4")  # (50,000 − 5,460) × 12 / 3,650 = 146.43

    s2 = rows["S2"]
    # SMB's cohort (2) is too small: the organization's churn 0.1429 and lifetime 7.00.
    assert s2["annual_logo_churn"] == D("0.1429") and s2["expected_lifetime_years"] == D("7.00")
    assert s2["ltv"] == D("25550.00") and s2["cac"] == D("6000.00")
    assert s2["ltv_to_cac"] == D("4.2583") and s2["payback_months"] == D("19.7")  # 72,000 / 3,650 = 19.73
    assert s2["cac_recovered"] is False and s2["months_to_recover"] == D("1.8")  # 540 × 12 / 3,650 = 1.78

    n1 = rows["N1"]
    assert n1["home_segment"] == "Strategic" and n1["lifetime_revenue"] == D("18100.00")  # 181 days
    assert n1["ltv"] == D("255500.00") and n1["cac"] == D("100000.00") and n1["ltv_to_cac"] == D("2.5550")
    assert n1["payback_months"] == D("32.9") and n1["months_to_recover"] == D("26.9")  # 81,900 × 12 / 36,500


def test_segment_and_total_rows(org):
    _accounts, segments = build_book(org)
    result = lifetime_value(org, AS_OF)
    rows = by_name(result.segment_rows())
    assert list(rows) == ["Enterprise", "SMB", "Strategic"]  # every live account matches one: no null row

    ent = rows["Enterprise"]  # E1..E4
    assert (ent["accounts"], ent["accounts_with_cost"], ent["accounts_recovered"]) == (4, 4, 1)  # E2 only
    assert ent["arr"] == D("131400.00")  # 73,000 + 36,500 + 18,250 + 3,650
    assert ent["lifetime_revenue"] == D("196860.00")  # 109,500 + 54,600 + 27,300 + 5,460
    assert (ent["annual_logo_churn"], ent["cohort_accounts"], ent["lifetime_source"]) == (D("0.2000"), 5, "segment")
    assert ent["expected_lifetime_years"] == D("5.00")
    assert ent["ltv"] == D("657000.00") and ent["ltv_per_account"] == D("164250.00")
    assert ent["cac"] == D("270000.00") and ent["cac_per_account"] == D("67500.00")  # 120,000 + 3 × 50,000
    assert ent["ltv_net_of_cac"] == D("387000.00")
    assert ent["ltv_to_cac"] == D("2.4333")  # 657,000 / 270,000
    assert ent["payback_months"] == D("24.7")  # 270,000 × 12 / 131,400 = 24.66 (the seeds' ~24 months)

    smb = rows["SMB"]
    assert smb["lifetime_source"] == "organization" and smb["expected_lifetime_years"] == D("7.00")
    assert smb["ltv"] == D("76650.00") and smb["cac"] == D("12000.00")
    assert smb["ltv_to_cac"] == D("6.3875") and smb["payback_months"] == D("13.2")  # 144,000 / 10,950 = 13.15

    strategic = rows["Strategic"]  # E2 and N1: segments overlap, E2 counts in Enterprise too
    assert strategic["ltv"] == D("438000.00") and strategic["cac"] == D("150000.00")
    assert strategic["ltv_to_cac"] == D("2.9200") and strategic["payback_months"] == D("24.7")

    total = result.total()
    assert total["accounts"] == 7 and total["arr"] == D("178850.00") and total["lifetime_revenue"] == D("231340.00")
    assert total["annual_logo_churn"] == D("0.1429") and total["expected_lifetime_years"] == D("7.00")
    assert total["ltv"] == D("989150.00") and total["cac"] == D("382000.00")  # 270,000 + 12,000 + 100,000
    assert total["ltv_net_of_cac"] == D("607150.00")
    assert total["ltv_to_cac"] == D("2.5894")  # 989,150 / 382,000 = 2.58940
    assert total["payback_months"] == D("25.6")  # 4,584,000 / 178,850 = 25.63

    # The drill-down: a segment's accounts, whose figures add up to its row.
    members = result.account_rows(segments["Strategic"].pk)
    assert [r["name"] for r in members] == ["N1", "E2"]
    assert sum(r["ltv"] for r in members) == strategic["ltv"]
    assert result.total(segments["Strategic"].pk) == strategic


def test_gross_margin_scales_ltv_only(org):
    build_book(org)
    result = lifetime_value(org, AS_OF, gross_margin=D("0.8"))
    e1 = by_name(result.account_rows())["E1"]
    assert e1["ltv"] == D("292000.00")  # 73,000 × 0.8 × 5
    assert e1["ltv_to_cac"] == D("2.4333")  # 292,000 / 120,000
    assert e1["payback_months"] == D("19.7")  # payback is on revenue (seed 004), margin left out
    with pytest.raises(ValueError):
        lifetime_value(org, AS_OF, gross_margin=D("0"))


def test_no_costs_and_no_churn(org):
    """Without cost rows every CAC figure is unknown (not zero); without any churn the lifetime is the cap."""
    Segment.all_orgs.filter(organization=org).delete()
    acc = AccountFactory(organization=org)
    contract_with_lines(org, account=acc, start=dt.date(2025, 1, 1), end=dt.date(2026, 12, 31),
                        lines=[(None, "1", "1200", "0")])  # fmt: skip
    result = lifetime_value(org, AS_OF)
    row = result.account_rows()[0]
    assert row["expected_lifetime_years"] == D("10") and row["annual_logo_churn"] == D("0.0000")
    assert row["ltv"] == D("12000.00")  # 1,200 × 10 (capped: no churn observed)
    assert row["cac"] is None and row["ltv_to_cac"] is None and row["payback_months"] is None
    assert row["cac_recovered"] is None
    total = result.total()
    assert total["cac"] is None and total["ltv_to_cac"] is None and total["accounts_with_cost"] == 0


def test_empty_book(org):
    result = lifetime_value(org, AS_OF)
    assert result.account_rows() == []
    total = result.total()
    assert total["accounts"] == 0 and total["ltv"] is None and total["expected_lifetime_years"] is None


def test_another_organization_never_moves_the_figures(org, other_org):
    build_book(org)
    before = lifetime_value(org, AS_OF).total()
    build_book(other_org)
    assert lifetime_value(org, AS_OF).total() == before


def test_product_retention_shows_a_product_lost_inside_a_growing_account(org):
    """One account, one year [2025-06-30, 2026-06-30]: on 2025-06-30 it holds P at 10,000 and Q at 10,000;
    on 2026-06-30 P at 25,000 and no Q. Account wallet: 20,000 → 25,000, NRR 1.25, GRR 1.0 (no logo
    lost). Products: P 10,000 → 25,000 (NRR 2.5); Q 10,000 → 0 (GRR 0, NRR 0) — masked by the account."""
    p = ProductFactory(organization=org, sku="P", name="Platform")
    q = ProductFactory(organization=org, sku="Q", name="Quality add-on")
    acc = AccountFactory(organization=org)
    contract_with_lines(org, account=acc, start=dt.date(2025, 1, 1), end=dt.date(2025, 12, 31),
                        lines=[(p, "1", "10000", "0"), (q, "1", "10000", "0")])  # fmt: skip
    contract_with_lines(org, account=acc, start=dt.date(2026, 1, 1), end=dt.date(2026, 12, 31),
                        lines=[(p, "1", "25000", "0")])  # fmt: skip
    result = product_retention(org, end=AS_OF, periods=1, period="year")
    (period,) = result["periods"]
    assert (period["start"], period["end"]) == (dt.date(2025, 6, 30), AS_OF)
    assert period["account"]["nrr"] == D("1.2500") and period["account"]["grr"] == D("1.0000")
    products = by_name(period["products"], "sku")
    assert products["P"]["nrr"] == D("2.5000") and products["P"]["masked"] is False
    assert products["Q"]["name"] == "Quality add-on"
    assert products["Q"]["grr"] == D("0.0000") and products["Q"]["churn"] == D("10000.00")
    assert products["Q"]["masked"] is True

    # Quarters: four periods, oldest first, each ending where the next starts.
    quarters = product_retention(org, end=AS_OF, periods=4, period="quarter")["periods"]
    assert [q["end"] for q in quarters] == [dt.date(2025, 9, 30), dt.date(2025, 12, 30), dt.date(2026, 3, 30), AS_OF]
    assert all(a["end"] == b["start"] for a, b in zip(quarters, quarters[1:], strict=False))


def test_a_book_too_young_to_observe_churn_has_no_ltv(org):
    """Every account started after as_of − 1 year: no cohort, so no lifetime and no LTV (never a made-up
    one); the CAC and payback still show. One account at 12,000 ARR since 2026-01-01, cost 6,000:
    payback 6,000 × 12 / 12,000 = 6.0 months; 181 days earned 12,000 × 181 / 365 = 5,950.68 ≥ 6,000? No."""
    Segment.all_orgs.filter(organization=org).delete()
    acc = AccountFactory(organization=org)
    contract_with_lines(org, account=acc, start=dt.date(2026, 1, 1), end=dt.date(2026, 12, 31),
                        lines=[(None, "1", "12000", "0")])  # fmt: skip
    AcquisitionCost.all_orgs.create(organization=org, account=acc, acquisition_cost=D("6000"))
    result = lifetime_value(org, AS_OF)
    (row,) = result.account_rows()
    assert row["expected_lifetime_years"] is None and row["ltv"] is None and row["ltv_to_cac"] is None
    assert row["lifetime_revenue"] == D("5950.68") and row["payback_months"] == D("6.0")
    assert row["cac_recovered"] is False and row["months_to_recover"] == D("0.0")  # 49.32 × 12 / 12,000 = 0.05
    total = result.total()
    assert total["ltv"] is None and total["ltv_net_of_cac"] is None and total["ltv_to_cac"] is None
    assert total["cac"] == D("6000.00") and total["payback_months"] == D("6.0")
