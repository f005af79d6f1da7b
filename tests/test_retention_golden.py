"""Golden test of ``GET /api/v1/metrics/retention/`` (spec §4, §8): a hand-built book of accounts and
contracts, every figure of every response computed by hand below, asserted exactly (strings).

Period: t0 = 2025-01-01, t1 = 2025-12-31. Products CORE (1,000/unit), ADDON (400/unit), SUP (5,000/unit).

    account     attributes (touch, industry, region, owner, customer_since)   contracts (non-cancelled unless said)
    A  Newco    low,  Software, EMEA, bob,   2025-06-01   2025-06-01..2026-05-31 CORE 10 = 10,000  (new logo)
                                                           CANCELLED 2024-01-01..2024-12-31 CORE 50 (else: reactivation)
                                                           CANCELLED 2025-01-01..2025-12-31 CORE 50 (else: in cohort)
    B  Expando  high, Software, NA,   alice, 2024-07-01   2024-07-01..2025-06-30 CORE 20 = 20,000
                                                           2025-07-01..2026-06-30 CORE 25 + ADDON 5 = 25,000 + 2,000
    C  Shrinkco high, Finance,  EMEA, bob,   2024-03-01   2024-03-01..2025-02-28 CORE 30 + SUP 1 = 30,000 + 5,000
                                                           2025-03-01..2026-02-28 CORE 25 + SUP 1 at 20 % discount
                                                           = 25,000 + 4,000   (quantity AND discount contraction)
    D  Goneco   low,  Retail,   NA,   bob,   2024-05-01   2024-05-01..2025-04-30 CORE 12 = 12,000 (churned)
                                                           2026-01-01..2026-12-31 CORE 5 (starts the day AFTER t1)
    E  Backagain tech, Retail,  APAC, —,     (unset)      2023-01-01..2023-12-31 CORE 8 = 8,000
                                                           2025-03-01..2026-02-28 CORE 9 = 9,000 (reactivation)
    F  Dropper  low,  Software, EMEA, alice, 2024-10-01   2024-10-01..2025-09-30 CORE 10 + ADDON 10 = 10,000 + 4,000
                                                           2025-10-01..2026-09-30 CORE 11 = 11,000 (drops ADDON)
    P  Holdco   high, Finance,  NA,   alice, 2024-01-01   2024-01-01..2026-12-31 CORE 5 = 5,000 (parent)
    G1 (child of P)  low, Finance, EMEA, bob, 2024-01-01  2024-01-01..2025-01-01 CORE 6 = 6,000 (ends ON t0)
    G2 (child of P)  tech, Finance, APAC, bob, (unset)    2024-01-01..2024-12-31 ADDON 7.5 = 3,000 (ends day BEFORE t0)
                                                           2025-01-01..2025-12-31 ADDON 10 = 4,000 (from t0 to t1)
    G3 (child of G1) low, (empty), EMEA, bob, 2025-12-31  2025-12-31..2026-12-30 CORE 7 = 7,000 (starts ON t1)
    H  Lapsed   low,  Retail,   NA,   bob,   2024-01-01   2024-01-01..2024-12-31 CORE 3 = 3,000 (over before t0)

ARR(t0), ARR(t1) per account (thousands) and each account's contribution:

    unit  a0  a1   start new react exp contr churn end  inC kept
    A      0  10     0   10   0     0   0    0    10   0   0    cancelled contracts ignored
    B     20  27    20    0   0     7   0    0    27   1   1
    C     35  29    35    0   0     0   6    0    29   1   1
    D     12   0    12    0   0     0   0   12     0   1   0    2026 contract starts after t1
    E      0   9     0    9   9     0   0    0     9   0   0    had ARR in 2023 → reactivation
    F     14  11    14    0   0     0   3    0    11   1   1
    P      5   5     5    0   0     0   0    0     5   1   1
    G1     6   0     6    0   0     0   0    6     0   1   0    contract ending on t0 counts at t0
    G2     4   4     4    0   0     0   0    0     4   1   1    contract starting on t0 / ending on t1 counts at both
    G3     0   7     0    7   0     0   0    0     7   0   0    contract starting on t1 counts at t1; no earlier ARR
    H      0   0     —    nothing (no ARR at t0 or t1; in no group)

Top level, level=account: start 96 (20+35+12+14+5+6+4), new 26 (10+9+7), reactivation 9, expansion 7,
contraction 9 (6+3), churn 18 (12+6), end 102; 96+26+7−9−18 = 102. GRR = 69/96 = 0.71875 → 0.7188;
NRR = 76/96 = 0.79166… → 0.7917; logo = 5/7 (B C F P G2 of B C D F P G1 G2) = 0.71428… → 0.7143.

level=parent rolls G1, G2, G3 into P ("Proot": a0 = 5+6+4 = 15, a1 = 5+0+4+7 = 16 → expansion 1):
start 96, new 19 (A 10 + E 9), reactivation 9, expansion 8 (B 7 + Proot 1), contraction 9, churn 12 (D),
end 102; 96+19+8−9−12 = 102. GRR = 75/96 = 0.78125 → 0.7813 (ROUND_HALF_UP; half-even would say
0.7812); NRR = 83/96 = 0.86458… → 0.8646; logo = 4/5 (B C F Proot of B C D F Proot) = 0.8.

Groups are worked out next to each expected table below.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from accounts.models import Contract, ContractLine, Product, Segment

from .factories import AccountFactory, MembershipFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

T0, T1 = "2025-01-01", "2025-12-31"


def k(thousands: float) -> str:
    """A hand-computed amount in thousands as the API renders it: 96 → "96000.00"."""
    return f"{Decimal(str(thousands)) * 1000:.2f}"


def fig(start, new, react, exp, contr, churn, end, grr, nrr, logo, n_start, n_kept, **key: Any) -> dict[str, Any]:
    figures = {
        "start_arr": k(start), "new": k(new), "reactivation": k(react), "expansion": k(exp),
        "contraction": k(contr), "churn": k(churn), "end_arr": k(end), "grr": grr, "nrr": nrr,
        "logo_retention": logo, "accounts_start": n_start, "accounts_retained": n_kept,
    }  # fmt: skip
    return {**key, **figures}


def group(key: str | None, *args: Any) -> dict[str, Any]:
    return fig(*args, key=key)


def contract(account, number, start, end, *lines, status="active") -> Contract:
    c = Contract.all_orgs.create(
        organization=account.organization, account=account, number=number,
        start_date=dt.date.fromisoformat(start), end_date=dt.date.fromisoformat(end), status=status,
    )  # fmt: skip
    for product, quantity, price, discount in lines:
        ContractLine.all_orgs.create(organization=account.organization, contract=c, product=product,
                                     quantity=Decimal(str(quantity)), annual_unit_price=Decimal(price),
                                     discount=Decimal(discount))  # fmt: skip
    return c


@pytest.fixture
def book(org, other_org):
    alice = MembershipFactory(organization=org, role="admin", user=UserFactory(username="alice@acme.test")).user
    bob = MembershipFactory(organization=org, role="csm", user=UserFactory(username="bob@acme.test")).user
    core = ProductFactory(organization=org, sku="CORE", name="Core", product_line="Platform")
    addon = ProductFactory(organization=org, sku="ADDON", name="Add-on", product_line="Add-ons")
    sup = ProductFactory(organization=org, sku="SUP", name="Premium support", product_line="Services")

    def acct(name, touch, industry, region, owner, since, parent=None):
        return AccountFactory(organization=org, name=name, touch_model=touch, industry=industry, region=region,
                              owner=owner, parent=parent,
                              customer_since=dt.date.fromisoformat(since) if since else None)  # fmt: skip

    a = acct("Newco", "low", "Software", "EMEA", bob, "2025-06-01")
    contract(a, "A-1", "2025-06-01", "2026-05-31", (core, 10, "1000", "0"))
    contract(a, "A-X1", "2024-01-01", "2024-12-31", (core, 50, "1000", "0"), status="cancelled")
    contract(a, "A-X2", "2025-01-01", "2025-12-31", (core, 50, "1000", "0"), status="cancelled")
    b = acct("Expando", "high", "Software", "NA", alice, "2024-07-01")
    contract(b, "B-1", "2024-07-01", "2025-06-30", (core, 20, "1000", "0"))
    contract(b, "B-2", "2025-07-01", "2026-06-30", (core, 25, "1000", "0"), (addon, 5, "400", "0"))
    c = acct("Shrinkco", "high", "Finance", "EMEA", bob, "2024-03-01")
    contract(c, "C-1", "2024-03-01", "2025-02-28", (core, 30, "1000", "0"), (sup, 1, "5000", "0"))
    contract(c, "C-2", "2025-03-01", "2026-02-28", (core, 25, "1000", "0"), (sup, 1, "5000", "0.2"))
    d = acct("Goneco", "low", "Retail", "NA", bob, "2024-05-01")
    contract(d, "D-1", "2024-05-01", "2025-04-30", (core, 12, "1000", "0"))
    contract(d, "D-2", "2026-01-01", "2026-12-31", (core, 5, "1000", "0"))
    e = acct("Backagain", "tech", "Retail", "APAC", None, None)
    contract(e, "E-1", "2023-01-01", "2023-12-31", (core, 8, "1000", "0"))
    contract(e, "E-2", "2025-03-01", "2026-02-28", (core, 9, "1000", "0"))
    f = acct("Dropper", "low", "Software", "EMEA", alice, "2024-10-01")
    contract(f, "F-1", "2024-10-01", "2025-09-30", (core, 10, "1000", "0"), (addon, 10, "400", "0"))
    contract(f, "F-2", "2025-10-01", "2026-09-30", (core, 11, "1000", "0"))
    p = acct("Holdco", "high", "Finance", "NA", alice, "2024-01-01")
    contract(p, "P-1", "2024-01-01", "2026-12-31", (core, 5, "1000", "0"))
    g1 = acct("Holdco Sub 1", "low", "Finance", "EMEA", bob, "2024-01-01", parent=p)
    contract(g1, "G1-1", "2024-01-01", "2025-01-01", (core, 6, "1000", "0"))
    g2 = acct("Holdco Sub 2", "tech", "Finance", "APAC", bob, None, parent=p)
    contract(g2, "G2-0", "2024-01-01", "2024-12-31", (addon, "7.5", "400", "0"))
    contract(g2, "G2-1", "2025-01-01", "2025-12-31", (addon, 10, "400", "0"))
    g3 = acct("Holdco Sub 1a", "low", "", "EMEA", bob, "2025-12-31", parent=g1)
    contract(g3, "G3-1", "2025-12-31", "2026-12-30", (core, 7, "1000", "0"))
    h = acct("Lapsed", "low", "Retail", "NA", bob, "2024-01-01")
    contract(h, "H-1", "2024-01-01", "2024-12-31", (core, 3, "1000", "0"))

    # Segments of this test (the defaults are ARR-based, i.e. depend on today's date): overlapping.
    Segment.objects.for_org(org).delete()
    Segment.all_orgs.create(
        organization=org,
        name="Strategic",
        position=0,
        rules={"match": "all", "conditions": [{"field": "touch_model", "op": "eq", "value": "high"}]},
    )
    emea = {"match": "all", "conditions": [{"field": "region", "op": "eq", "value": "EMEA"}]}
    Segment.all_orgs.create(organization=org, name="EMEA", position=1, rules=emea)

    # Another organization with the same SKU and a big account: never counted.
    other_core = ProductFactory(organization=other_org, sku="CORE", name="Core")
    other = AccountFactory(organization=other_org, name="Globex customer", touch_model="high", region="EMEA")
    contract(other, "X-1", "2024-06-01", "2026-05-31", (other_core, 100, "1000", "0"))
    return org


def get(api, org, **params) -> dict[str, Any]:
    response = api(org, "viewer").get("/api/v1/metrics/retention/", {"start": T0, "end": T1, **params})
    assert response.status_code == 200, response.content
    return response.json()


ACCOUNT_TOP = fig(96, 26, 9, 7, 9, 18, 102, 0.7188, 0.7917, 0.7143, 7, 5)
PARENT_TOP = fig(96, 19, 9, 8, 9, 12, 102, 0.7813, 0.8646, 0.8, 5, 4)

# touch_model, level=account (current attribute of each account):
#   high = B C P:        start 20+35+5=60, exp 7, contr 6, end 27+29+5=61; GRR 54/60=0.9; NRR 61/60=1.01666→1.0167; 3/3
#   low  = A D F G1 G3:  start 12+14+6=32, new 10+7=17, contr 3, churn 12+6=18, end 10+11+7=28;
#                        GRR=NRR=(32−18−3)/32=0.34375→0.3438; logo F of D F G1 = 1/3 → 0.3333
#   tech = E G2:         start 4, new 9, react 9, end 13; GRR=NRR=4/4=1; logo 1/1
# level=parent (Proot takes P's attributes: high, Finance, NA, alice, 2024-Q1):
#   high = B C Proot:    start 20+35+15=70, exp 7+1=8, contr 6, end 27+29+16=72; GRR 64/70=0.91428→0.9143;
#                        NRR 72/70=1.02857→1.0286; 3/3
#   low  = A D F:        start 26, new 10, contr 3, churn 12, end 21; GRR=NRR=11/26=0.42307→0.4231; 1/2=0.5
#   tech = E:            new 9, react 9, end 9; empty cohort → null ratios
EXPECTED = {
    ("touch_model", "account"): [
        group("high", 60, 0, 0, 7, 6, 0, 61, 0.9, 1.0167, 1.0, 3, 3),
        group("low", 32, 17, 0, 0, 3, 18, 28, 0.3438, 0.3438, 0.3333, 3, 1),
        group("tech", 4, 9, 9, 0, 0, 0, 13, 1.0, 1.0, 1.0, 1, 1),
    ],
    ("touch_model", "parent"): [
        group("high", 70, 0, 0, 8, 6, 0, 72, 0.9143, 1.0286, 1.0, 3, 3),
        group("low", 26, 10, 0, 0, 3, 12, 21, 0.4231, 0.4231, 0.5, 2, 1),
        group("tech", 0, 9, 9, 0, 0, 0, 9, None, None, None, 0, 0),
    ],
    # industry, account: Finance = C P G1 G2: start 35+5+6+4=50, contr 6, churn 6, end 29+5+4=38;
    #   GRR=NRR=38/50=0.76; logo C P G2 of C P G1 G2 = 0.75
    # Retail = D E: start 12, new 9, react 9, churn 12, end 9; GRR=NRR=0/12=0; logo 0/1
    # Software = A B F: start 20+14=34, new 10, exp 7, contr 3, end 10+27+11=48; GRR 31/34=0.91176→0.9118;
    #   NRR 38/34=1.11764→1.1176; 2/2.  None (G3's empty industry): new 7, end 7.
    # parent: Finance = C Proot: start 35+15=50, exp 1, contr 6, end 29+16=45; GRR 44/50=0.88; NRR 45/50=0.9; 2/2
    ("industry", "account"): [
        group("Finance", 50, 0, 0, 0, 6, 6, 38, 0.76, 0.76, 0.75, 4, 3),
        group("Retail", 12, 9, 9, 0, 0, 12, 9, 0.0, 0.0, 0.0, 1, 0),
        group("Software", 34, 10, 0, 7, 3, 0, 48, 0.9118, 1.1176, 1.0, 2, 2),
        group(None, 0, 7, 0, 0, 0, 0, 7, None, None, None, 0, 0),
    ],
    ("industry", "parent"): [
        group("Finance", 50, 0, 0, 1, 6, 0, 45, 0.88, 0.9, 1.0, 2, 2),
        group("Retail", 12, 9, 9, 0, 0, 12, 9, 0.0, 0.0, 0.0, 1, 0),
        group("Software", 34, 10, 0, 7, 3, 0, 48, 0.9118, 1.1176, 1.0, 2, 2),
    ],
    # region, account: APAC = E G2 (as tech above). EMEA = A C F G1 G3: start 35+14+6=55, new 10+7=17,
    #   contr 6+3=9, churn 6, end 10+29+11+7=57; GRR=NRR=40/55=0.72727→0.7273; logo C F of C F G1 = 0.6667
    # NA = B D P: start 20+12+5=37, exp 7, churn 12, end 27+5=32; GRR 25/37=0.67567→0.6757;
    #   NRR 32/37=0.86486→0.8649; logo B P of B D P = 0.6667
    # parent: APAC = E (new 9). EMEA = A C F: start 49, new 10, contr 9, end 50; GRR=NRR=40/49=0.81632→0.8163; 2/2
    #   NA = B D Proot: start 20+12+15=47, exp 8, churn 12, end 27+16=43; GRR 35/47=0.74468→0.7447;
    #   NRR 43/47=0.91489→0.9149; 2/3
    ("region", "account"): [
        group("APAC", 4, 9, 9, 0, 0, 0, 13, 1.0, 1.0, 1.0, 1, 1),
        group("EMEA", 55, 17, 0, 0, 9, 6, 57, 0.7273, 0.7273, 0.6667, 3, 2),
        group("NA", 37, 0, 0, 7, 0, 12, 32, 0.6757, 0.8649, 0.6667, 3, 2),
    ],
    ("region", "parent"): [
        group("APAC", 0, 9, 9, 0, 0, 0, 9, None, None, None, 0, 0),
        group("EMEA", 49, 10, 0, 0, 9, 0, 50, 0.8163, 0.8163, 1.0, 2, 2),
        group("NA", 47, 0, 0, 8, 0, 12, 43, 0.7447, 0.9149, 0.6667, 3, 2),
    ],
    # owner (e-mail), account: alice = B F P: start 39, exp 7, contr 3, end 43; GRR 36/39=0.92307→0.9231;
    #   NRR 43/39=1.10256→1.1026; 3/3.  bob = A C D G1 G2 G3: start 35+12+6+4=57, new 17, contr 6,
    #   churn 18, end 10+29+4+7=50; GRR=NRR=33/57=0.57894→0.5789; logo C G2 of C D G1 G2 = 0.5. None = E.
    # parent: alice = B F Proot: start 49, exp 8, contr 3, end 54; GRR 46/49=0.93877→0.9388;
    #   NRR 54/49=1.10204→1.1020; 3/3.  bob = A C D: start 47, new 10, contr 6, churn 12, end 39;
    #   GRR=NRR=29/47=0.61702→0.6170; 1/2.
    ("owner", "account"): [
        group("alice@acme.test", 39, 0, 0, 7, 3, 0, 43, 0.9231, 1.1026, 1.0, 3, 3),
        group("bob@acme.test", 57, 17, 0, 0, 6, 18, 50, 0.5789, 0.5789, 0.5, 4, 2),
        group(None, 0, 9, 9, 0, 0, 0, 9, None, None, None, 0, 0),
    ],
    ("owner", "parent"): [
        group("alice@acme.test", 49, 0, 0, 8, 3, 0, 54, 0.9388, 1.102, 1.0, 3, 3),
        group("bob@acme.test", 47, 10, 0, 0, 6, 12, 39, 0.617, 0.617, 0.5, 2, 1),
        group(None, 0, 9, 9, 0, 0, 0, 9, None, None, None, 0, 0),
    ],
    # cohort (calendar quarter of customer_since, else of the first non-cancelled contract's start):
    #   E → 2023-Q1 (2023-01-01), G2 → 2024-Q1 (2024-01-01); 2024-Q1 = C P G1 G2 (= Finance above);
    #   2024-Q2 = D: start 12, churn 12, 0/1; 2024-Q3 = B: start 20, exp 7, end 27, NRR 1.35;
    #   2024-Q4 = F: start 14, contr 3, end 11, GRR=NRR=11/14=0.78571→0.7857; 2025-Q2 = A; 2025-Q4 = G3.
    # parent: 2024-Q1 = C Proot (= parent Finance); G3 is inside Proot.
    ("cohort", "account"): [
        group("2023-Q1", 0, 9, 9, 0, 0, 0, 9, None, None, None, 0, 0),
        group("2024-Q1", 50, 0, 0, 0, 6, 6, 38, 0.76, 0.76, 0.75, 4, 3),
        group("2024-Q2", 12, 0, 0, 0, 0, 12, 0, 0.0, 0.0, 0.0, 1, 0),
        group("2024-Q3", 20, 0, 0, 7, 0, 0, 27, 1.0, 1.35, 1.0, 1, 1),
        group("2024-Q4", 14, 0, 0, 0, 3, 0, 11, 0.7857, 0.7857, 1.0, 1, 1),
        group("2025-Q2", 0, 10, 0, 0, 0, 0, 10, None, None, None, 0, 0),
        group("2025-Q4", 0, 7, 0, 0, 0, 0, 7, None, None, None, 0, 0),
    ],
    ("cohort", "parent"): [
        group("2023-Q1", 0, 9, 9, 0, 0, 0, 9, None, None, None, 0, 0),
        group("2024-Q1", 50, 0, 0, 1, 6, 0, 45, 0.88, 0.9, 1.0, 2, 2),
        group("2024-Q2", 12, 0, 0, 0, 0, 12, 0, 0.0, 0.0, 0.0, 1, 0),
        group("2024-Q3", 20, 0, 0, 7, 0, 0, 27, 1.0, 1.35, 1.0, 1, 1),
        group("2024-Q4", 14, 0, 0, 0, 3, 0, 11, 0.7857, 0.7857, 1.0, 1, 1),
        group("2025-Q2", 0, 10, 0, 0, 0, 0, 10, None, None, None, 0, 0),
    ],
    # product, over (account, product) pairs, keyed by SKU:
    #   ADDON: B 0→2 (new; B never had ADDON), F 4→0 (churn: F keeps its logo), G2 4→4:
    #          start 8, new 2, churn 4, end 6; GRR=NRR=4/8=0.5; 1 of 2 pairs kept
    #   CORE:  A 0→10 new, B 20→25 exp 5, C 30→25 contr 5, D 12→0 churn, E 0→9 new+react, F 10→11 exp 1,
    #          P 5→5, G1 6→0 churn, G3 0→7 new: start 20+30+12+10+5+6=83, new 26, react 9, exp 6, contr 5,
    #          churn 18, end 92; GRR 60/83=0.72289→0.7229; NRR 66/83=0.79518→0.7952; B C F P of 6 = 0.6667
    #   SUP:   C 5→4 (20 % discount): start 5, contr 1, end 4; 0.8; 1/1
    #   (groups' churn 22 ≠ top-level churn 18: F drops ADDON but keeps its logo.)
    # parent: CORE pairs with Proot-CORE = P+G1+G3: 11→12 exp 1: start 20+30+12+10+11=83, new 19, react 9,
    #   exp 5+1+1=7, contr 5, churn 12, end 92; GRR 66/83→0.7952; NRR 73/83=0.87951→0.8795; 4/5
    ("product", "account"): [
        group("ADDON", 8, 2, 0, 0, 0, 4, 6, 0.5, 0.5, 0.5, 2, 1),
        group("CORE", 83, 26, 9, 6, 5, 18, 92, 0.7229, 0.7952, 0.6667, 6, 4),
        group("SUP", 5, 0, 0, 0, 1, 0, 4, 0.8, 0.8, 1.0, 1, 1),
    ],
    ("product", "parent"): [
        group("ADDON", 8, 2, 0, 0, 0, 4, 6, 0.5, 0.5, 0.5, 2, 1),
        group("CORE", 83, 19, 9, 7, 5, 12, 92, 0.7952, 0.8795, 0.8, 5, 4),
        group("SUP", 5, 0, 0, 0, 1, 0, 4, 0.8, 0.8, 1.0, 1, 1),
    ],
    # segment (overlapping: C is Strategic AND EMEA), by position; units in no segment → None last.
    #   account: Strategic = B C P (= high); EMEA = A C F G1 G3 (= region EMEA);
    #            None = D E G2: start 12+4=16, new 9, react 9, churn 12, end 13; GRR=NRR=4/16=0.25; 1/2
    #   parent:  Strategic = B C Proot (= parent high); EMEA = A C F (= parent EMEA);
    #            None = D E: start 12, new 9, react 9, churn 12, end 9; 0; 0/1
    ("segment", "account"): [
        group("Strategic", 60, 0, 0, 7, 6, 0, 61, 0.9, 1.0167, 1.0, 3, 3),
        group("EMEA", 55, 17, 0, 0, 9, 6, 57, 0.7273, 0.7273, 0.6667, 3, 2),
        group(None, 16, 9, 9, 0, 0, 12, 13, 0.25, 0.25, 0.5, 2, 1),
    ],
    ("segment", "parent"): [
        group("Strategic", 70, 0, 0, 8, 6, 0, 72, 0.9143, 1.0286, 1.0, 3, 3),
        group("EMEA", 49, 10, 0, 0, 9, 0, 50, 0.8163, 0.8163, 1.0, 2, 2),
        group(None, 12, 9, 9, 0, 0, 12, 9, 0.0, 0.0, 0.0, 1, 0),
    ],
}


@pytest.mark.parametrize("level", ["account", "parent"])
def test_top_level_without_groups(api, book, level):
    body = get(api, book, level=level)
    expected = ACCOUNT_TOP if level == "account" else PARENT_TOP
    assert body == {**expected, "groups": []}


def test_default_level_is_account(api, book):
    assert get(api, book) == {**ACCOUNT_TOP, "groups": []}


@pytest.mark.parametrize(("group_by", "level"), sorted(EXPECTED))
def test_grouped_response_exactly(api, book, group_by, level):
    body = get(api, book, group_by=group_by, level=level)
    top = ACCOUNT_TOP if level == "account" else PARENT_TOP
    # The top level never depends on group_by; every group is asserted figure by figure.
    assert body == {**top, "groups": EXPECTED[(group_by, level)]}
    # Money is rendered as strings with two decimals, ratios as numbers.
    assert isinstance(body["start_arr"], str) and isinstance(body["grr"], float)
    for row in body["groups"]:
        start, end = Decimal(row["start_arr"]), Decimal(row["end_arr"])
        moves = Decimal(row["new"]) + Decimal(row["expansion"]) - Decimal(row["contraction"]) - Decimal(row["churn"])
        assert start + moves == end


@pytest.mark.parametrize("level", ["account", "parent"])
def test_product_line_groups_pairs_of_unit_and_line(api, book, level):
    # Premium support joins the add-ons' line, so one line now holds two products (held by different units).
    Product.objects.for_org(book).filter(sku="SUP").update(product_line="Add-ons")
    body = get(api, book, group_by="product_line", level=level)
    top = ACCOUNT_TOP if level == "account" else PARENT_TOP
    core = EXPECTED[("product", level)][1]
    #   Add-ons = ADDON pairs (B new 2, F churn 4, G2 (or Proot) 4→4) + SUP pair (C 5→4 contracted):
    #   start 8+5=13, new 2, react 0, exp 0, contr 1, churn 4, end 6+4=10; GRR = NRR = 8/13 = 0.61538→0.6154;
    #   pairs kept 1+1 of 2+1 = 0.6667.  Platform = CORE, figure for figure.
    assert body == {
        **top,
        "groups": [
            group("Add-ons", 13, 2, 0, 0, 1, 4, 10, 0.6154, 0.6154, 0.6667, 3, 2),
            {**core, "key": "Platform"},
        ],
    }


def test_partitioning_groups_sum_to_top_level(api, book):
    for group_by in ("touch_model", "industry", "region", "owner", "cohort"):
        for level in ("account", "parent"):
            body = get(api, book, group_by=group_by, level=level)
            for name in ("start_arr", "new", "reactivation", "expansion", "contraction", "churn", "end_arr"):
                assert sum(Decimal(row[name]) for row in body["groups"]) == Decimal(body[name]), (group_by, name)
            for name in ("accounts_start", "accounts_retained"):
                assert sum(row[name] for row in body["groups"]) == body[name]


def test_other_organization_sees_only_its_own(api, book, other_org):
    response = api(other_org, "viewer").get("/api/v1/metrics/retention/", {"start": T0, "end": T1,
                                                                          "group_by": "product"})  # fmt: skip
    body = response.json()
    assert response.status_code == 200
    # Globex's one account: 100 × 1,000 from 2024-06-01 to 2026-05-31 — retained flat.
    assert body == {**fig(100, 0, 0, 0, 0, 0, 100, 1.0, 1.0, 1.0, 1, 1),
                    "groups": [group("CORE", 100, 0, 0, 0, 0, 0, 100, 1.0, 1.0, 1.0, 1, 1)]}  # fmt: skip


def test_empty_cohort_gives_null_ratios(api, org):
    body = get(api, org)
    assert body == {**fig(0, 0, 0, 0, 0, 0, 0, None, None, None, 0, 0), "groups": []}


@pytest.mark.parametrize("role", ["admin", "leader", "csm", "viewer"])
def test_every_role_may_read(api, book, role):
    response = api(book, role).get("/api/v1/metrics/retention/", {"start": T0, "end": T1})
    assert response.status_code == 200
    assert response.json()["start_arr"] == "96000.00"


def test_anonymous_is_refused(client, book):
    response = client.get("/api/v1/metrics/retention/", {"start": T0, "end": T1})
    assert response.status_code == 401 and "start_arr" not in response.json()


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({}, {"start", "end"}),
        ({"start": "2025-13-01", "end": T1}, {"start"}),
        ({"start": T0, "end": "yesterday"}, {"end"}),
        ({"start": T1, "end": T0}, {"end"}),
        ({"start": T0, "end": T1, "group_by": "colour"}, {"group_by"}),
        ({"start": T0, "end": T1, "level": "team"}, {"level"}),
    ],
)
def test_bad_input_is_a_400_per_field(api, org, params, errors):
    response = api(org, "viewer").get("/api/v1/metrics/retention/", params)
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "Invalid input."
    assert set(body["errors"]) == errors


def test_arr_at_agrees_with_the_accounts_service(book):
    from accounts.models import Account
    from accounts.services import arr_at as service_arr_at
    from renewals.analytics import arr_at

    for day in (dt.date(2024, 12, 31), dt.date(2025, 1, 1), dt.date(2025, 12, 31), dt.date(2026, 1, 1)):
        assert arr_at(book, day).to_dict() == service_arr_at(book, day)
    # level=parent: the top-level account carries its descendants' ARR.
    holdco = Account.objects.for_org(book).get(name="Holdco")
    assert arr_at(book, dt.date(2025, 12, 31), level="parent")[holdco.pk] == Decimal("16000.00")
    assert arr_at(book, dt.date(2025, 1, 1), level="parent")[holdco.pk] == Decimal("15000.00")
