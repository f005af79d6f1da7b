"""Retention analytics beyond the golden retention response: a property test over random books against
a naive per-account oracle, and hand-computed ARR bridge, cohorts, renewal rate, churn reasons,
forecast and forecast accuracy (through the API, exact strings)."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

import pytest

from accounts.models import Account, Contract, ContractLine, Segment
from accounts.services import arr_at as service_arr_at
from renewals.analytics import GROUP_BY_CHOICES, ratio, retention
from renewals.models import ChurnReason, Renewal, RenewalTarget

from .factories import AccountFactory, MembershipFactory, ProductFactory

pytestmark = pytest.mark.django_db

D = dt.date.fromisoformat
MONEY = ("start_arr", "new", "reactivation", "expansion", "contraction", "churn", "end_arr")


def contract(account, number, start, end, *lines, status="active") -> Contract:
    c = Contract.all_orgs.create(organization=account.organization, account=account, number=number,
                                 start_date=D(start), end_date=D(end), status=status)  # fmt: skip
    for product, quantity, price in lines:
        ContractLine.all_orgs.create(organization=account.organization, contract=c, product=product,
                                     quantity=Decimal(str(quantity)), annual_unit_price=Decimal(price))  # fmt: skip
    return c


# --- Property test: random books against a naive oracle -------------------------------------------------


def random_book(org, seed: int) -> None:
    rng = random.Random(seed)
    owners = [MembershipFactory(organization=org, role="csm").user for _ in range(3)]
    products = [ProductFactory(organization=org, sku=f"P{i}") for i in range(4)]
    accounts: list[Account] = []
    for _ in range(40):
        parent = rng.choice(accounts) if accounts and rng.random() < 0.25 else None
        accounts.append(AccountFactory(
            organization=org, parent=parent, touch_model=rng.choice(["high", "low", "tech"]),
            industry=rng.choice(["Software", "Retail", ""]), region=rng.choice(["EMEA", "NA", "APAC"]),
            owner=rng.choice([*owners, None]),
            customer_since=rng.choice([None, dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange(1000))]),
        ))  # fmt: skip
    number = 0
    for account in accounts:
        start = dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange(700))
        while start < dt.date(2026, 6, 1) and rng.random() < 0.85:
            end = start + dt.timedelta(days=rng.choice([29, 180, 364, 365, 730]))
            number += 1
            lines = [(product, rng.randint(1, 40), f"{rng.randint(1, 300000) / 100:.2f}")
                     for product in rng.sample(products, rng.randint(1, 3))]  # fmt: skip
            status = "cancelled" if rng.random() < 0.08 else "active"
            contract(account, f"R-{number}", start.isoformat(), end.isoformat(), *lines, status=status)
            start = end + dt.timedelta(days=rng.choice([1, 1, 1, 30, 200]))
    Segment.objects.for_org(org).delete()
    Segment.all_orgs.create(organization=org, name="Big", position=0,
                            rules={"match": "all", "conditions": [{"field": "touch_model", "op": "in",
                                                                   "value": ["high", "low"]}]})  # fmt: skip
    emea = {"match": "all", "conditions": [{"field": "region", "op": "eq", "value": "EMEA"}]}
    Segment.all_orgs.create(organization=org, name="EMEA", position=1, rules=emea)


def oracle(org, t0: dt.date, t1: dt.date, level: str) -> dict[str, Any]:
    """Spec §4 literally, account by account, with the accounts service's ARR and Python loops."""
    accounts = {a.pk: a for a in Account.objects.for_org(org)}

    def root(pk: int) -> int:
        while accounts[pk].parent_id is not None:
            pk = accounts[pk].parent_id
        return pk

    unit = (lambda pk: root(pk)) if level == "parent" else (lambda pk: pk)
    a0: dict[int, Decimal] = {}
    a1: dict[int, Decimal] = {}
    for pk, value in service_arr_at(org, t0).items():
        a0[unit(pk)] = a0.get(unit(pk), Decimal(0)) + value
    for pk, value in service_arr_at(org, t1).items():
        a1[unit(pk)] = a1.get(unit(pk), Decimal(0)) + value
    before = {
        unit(line.contract.account_id)
        for line in ContractLine.objects.for_org(org).select_related("contract")
        if line.contract.status != "cancelled" and line.contract.start_date < t0 and line.arr > 0
    }
    out = dict.fromkeys(MONEY, Decimal(0)) | {"accounts_start": 0, "accounts_retained": 0}
    for pk in set(a0) | set(a1):
        s, e = a0.get(pk, Decimal(0)), a1.get(pk, Decimal(0))
        out["end_arr"] += e
        if s > 0:
            out["start_arr"] += s
            out["accounts_start"] += 1
            if e == 0:
                out["churn"] += s
            else:
                out["accounts_retained"] += 1
                out["contraction"] += max(s - e, Decimal(0))
                out["expansion"] += max(e - s, Decimal(0))
        elif e > 0:
            out["new"] += e
            if pk in before:
                out["reactivation"] += e
    return out


def product_oracle(org, t0: dt.date, t1: dt.date, level: str) -> dict[str, dict[str, Decimal]]:
    """Per product SKU, spec §4 over (unit, product) pairs, from the lines with Python loops."""
    accounts = {a.pk: a for a in Account.objects.for_org(org)}

    def unit(pk: int) -> int:
        while level == "parent" and accounts[pk].parent_id is not None:
            pk = accounts[pk].parent_id
        return pk

    a0: dict[tuple, Decimal] = {}
    a1: dict[tuple, Decimal] = {}
    before: set[tuple] = set()
    for line in ContractLine.objects.for_org(org).select_related("contract", "product"):
        c = line.contract
        if c.status == "cancelled":
            continue
        key = (unit(c.account_id), line.product.sku)
        if c.start_date <= t0 <= c.end_date:
            a0[key] = a0.get(key, Decimal(0)) + line.arr
        if c.start_date <= t1 <= c.end_date:
            a1[key] = a1.get(key, Decimal(0)) + line.arr
        if c.start_date < t0 and line.arr > 0:
            before.add(key)
    out: dict[str, dict[str, Decimal]] = {}
    for key in set(a0) | set(a1):
        s, e = a0.get(key, Decimal(0)), a1.get(key, Decimal(0))
        row = out.setdefault(key[1], dict.fromkeys(MONEY, Decimal(0)))
        row["end_arr"] += e
        if s > 0:
            row["start_arr"] += s
            row["churn"] += s if e == 0 else 0
            row["contraction"] += max(s - e, Decimal(0)) if e > 0 else 0
            row["expansion"] += max(e - s, Decimal(0))
        elif e > 0:
            row["new"] += e
            row["reactivation"] += e if key in before else 0
    return {sku: row for sku, row in out.items() if row["start_arr"] or row["end_arr"]}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("level", ["account", "parent"])
def test_random_books_match_the_oracle_and_every_group_balances(org, seed, level):
    random_book(org, seed)
    rng = random.Random(seed * 7)
    t0 = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(365))
    t1 = t0 + dt.timedelta(days=rng.randrange(30, 600))
    expected = oracle(org, t0, t1, level)
    assert expected["start_arr"] > 0 and expected["churn"] + expected["contraction"] > 0  # a non-trivial book
    for group_by in (None, *GROUP_BY_CHOICES):
        result = retention(org, t0, t1, group_by=group_by, level=level)
        for name in (*MONEY, "accounts_start", "accounts_retained"):
            assert result[name] == expected[name], (group_by, name)
        for row in [result, *result["groups"]]:
            assert (
                row["start_arr"] + row["new"] + row["expansion"] - row["contraction"] - row["churn"] == row["end_arr"]
            )
            assert row["reactivation"] <= row["new"]
        if group_by in ("touch_model", "industry", "region", "owner", "cohort"):  # these partition the units
            for name in (*MONEY, "accounts_start", "accounts_retained"):
                assert sum(row[name] for row in result["groups"]) == result[name], (group_by, name)
        if group_by == "product":  # pairs partition each unit's ARR: start and end add up, moves need not
            for name in ("start_arr", "end_arr"):
                assert sum(row[name] for row in result["groups"]) == result[name]
            by_sku = {row["key"]: {name: row[name] for name in MONEY} for row in result["groups"]}
            assert by_sku == product_oracle(org, t0, t1, level)


# --- ARR bridge ------------------------------------------------------------------------------------


@pytest.fixture
def bridge_book(org):
    core = ProductFactory(organization=org, sku="CORE")
    addon = ProductFactory(organization=org, sku="ADDON")
    x, y, z, w = (AccountFactory(organization=org, name=n) for n in "XYZW")
    contract(x, "X-1", "2025-01-01", "2025-01-31", (core, 12, "1000"))  # ends Jan 31, no successor
    contract(y, "Y-1", "2025-01-15", "2026-01-14", (core, 10, "1000"))  # new mid-January
    contract(y, "Y-2", "2025-02-10", "2026-01-14", (addon, 5, "400"))  # add-on in February
    contract(z, "Z-1", "2024-06-01", "2025-02-28", (core, 8, "1000"))
    contract(z, "Z-2", "2025-03-01", "2026-02-28", (core, 6, "1000"))  # renews smaller on Mar 1
    contract(w, "W-1", "2024-01-01", "2024-06-30", (core, 5, "1000"))
    contract(w, "W-2", "2025-03-15", "2026-03-14", (core, 5, "1000"))  # comes back in March
    return org


def month(name, start, end, s, new, react, exp, contr, churn, e, grr, nrr, logo, n0, n1):
    return {"month": name, "start": start, "end": end, **figures(s, new, react, exp, contr, churn, e, grr, nrr, logo,
                                                                  n0, n1)}  # fmt: skip


def figures(s, new, react, exp, contr, churn, e, grr, nrr, logo, n0, n1) -> dict[str, Any]:
    money = [f"{Decimal(v) * 1000:.2f}" for v in (s, new, react, exp, contr, churn, e)]
    return {**dict(zip(MONEY, money, strict=True)), "grr": grr, "nrr": nrr, "logo_retention": logo,
            "accounts_start": n0, "accounts_retained": n1}  # fmt: skip


def test_arr_bridge_by_hand(api, bridge_book):
    # Rows run from each month's first day to the next month's first day (the last to `end`):
    # Jan [01-01, 02-01]: ARR(Jan 1) X 12 + Z 8 = 20; ARR(Feb 1) Y 10 + Z 8 = 18 (X ended Jan 31):
    #   new 10 (Y), churn 12 (X); GRR = NRR = 8/20 = 0.4; logo Z of X Z = 0.5
    # Feb [02-01, 03-01]: 18 → Y 12 + Z 6 = 18: expansion 2 (Y add-on), contraction 2 (Z);
    #   GRR 16/18 = 0.8888… → 0.8889; NRR 18/18 = 1; logo 2/2
    # Mar [03-01, 03-31]: 18 → Y 12 + Z 6 + W 5 = 23: new 5, reactivation 5 (W had ARR in 2024); 1, 1, 1
    # Total [01-01, 03-31]: 20 → 23: new Y 12 + W 5 = 17 (Y's add-on is part of new here, not expansion),
    #   reactivation 5, contraction 2, churn 12; GRR = NRR = 6/20 = 0.3; logo 1/2
    response = api(bridge_book, "viewer").get("/api/v1/metrics/arr-bridge/", {"start": "2025-01-01",
                                                                               "end": "2025-03-31"})  # fmt: skip
    assert response.status_code == 200, response.content
    body = response.json()
    assert body == {
        "start": "2025-01-01", "end": "2025-03-31", "level": "account",
        "months": [
            month("2025-01", "2025-01-01", "2025-02-01", 20, 10, 0, 0, 0, 12, 18, 0.4, 0.4, 0.5, 2, 1),
            month("2025-02", "2025-02-01", "2025-03-01", 18, 0, 0, 2, 2, 0, 18, 0.8889, 1.0, 1.0, 2, 2),
            month("2025-03", "2025-03-01", "2025-03-31", 18, 5, 5, 0, 0, 0, 23, 1.0, 1.0, 1.0, 2, 2),
        ],
        "total": figures(20, 17, 5, 0, 2, 12, 23, 0.3, 0.3, 0.5, 2, 1),
    }  # fmt: skip
    months = body["months"]
    for before, after in zip(months, months[1:], strict=False):
        assert before["end_arr"] == after["start_arr"]  # rows chain
    assert months[0]["start_arr"] == body["total"]["start_arr"] and months[-1]["end_arr"] == body["total"]["end_arr"]


def test_arr_bridge_rejects_bad_periods(api, org):
    client = api(org, "viewer")
    response = client.get("/api/v1/metrics/arr-bridge/", {"start": "2025-03-01", "end": "2025-01-01"})
    assert response.status_code == 400 and set(response.json()["errors"]) == {"end"}
    response = client.get("/api/v1/metrics/arr-bridge/", {"start": "2000-01-01", "end": "2025-01-01"})
    assert response.status_code == 400 and set(response.json()["errors"]) == {"end"}


# --- Cohorts ---------------------------------------------------------------------------------------


def test_cohort_table_by_hand(api, org):
    core = ProductFactory(organization=org, sku="CORE")

    def acct(name, since):
        return AccountFactory(organization=org, name=name, customer_since=D(since))

    k1, k2, k3 = acct("K1", "2025-01-15"), acct("K2", "2025-02-01"), acct("K3", "2025-03-01")
    k4, k5 = acct("K4", "2025-07-10"), acct("K5", "2025-11-01")
    contract(k1, "K1-1", "2025-01-15", "2026-01-14", (core, 10, "1000"))
    contract(k1, "K1-2", "2025-05-01", "2026-01-14", (core, 2, "1000"))  # expansion in Q2
    contract(k2, "K2-1", "2025-02-01", "2025-07-31", (core, 5, "1000"))  # gone before Q3 ends
    contract(k3, "K3-1", "2025-04-01", "2026-03-31", (core, 9, "1000"))  # no ARR at its cohort's end
    contract(k4, "K4-1", "2025-07-10", "2026-07-09", (core, 4, "1000"))
    contract(k5, "K5-1", "2025-11-01", "2026-10-31", (core, 3, "1000"))
    # 2025-Q1: base on 03-31 = K1 10 + K2 5 = 15 (K3 has no ARR then: not in the base), 2 accounts.
    #   k0 03-31: 15 → 1.0, 2/2; k1 06-30: K1 12 + K2 5 = 17 → 17/15 = 1.1333, 2/2;
    #   k2 09-30: K1 12 → 0.8, 1/2; k3 12-31: K1 12 → 0.8, 1/2; k4 (2026-03-31) is after today.
    # 2025-Q3: K4 4 on 09-30 → k0 1.0; k1 12-31 4 → 1.0.  2025-Q4: K5 3 on 12-31 → k0 only.
    response = api(org, "viewer").get("/api/v1/metrics/cohorts/", {"periods": 4, "today": "2025-12-31"})
    assert response.status_code == 200, response.content

    def period(k, day, arr, arr_pct, n, logo):
        return {"period": k, "date": day, "arr": arr, "arr_pct": arr_pct, "accounts": n, "logo_pct": logo}

    assert response.json() == {
        "period": "quarter", "periods": 4, "level": "account",
        "cohorts": [
            {"cohort": "2025-Q1", "accounts": 2, "start_arr": "15000.00", "periods": [
                period(0, "2025-03-31", "15000.00", 1.0, 2, 1.0),
                period(1, "2025-06-30", "17000.00", 1.1333, 2, 1.0),
                period(2, "2025-09-30", "12000.00", 0.8, 1, 0.5),
                period(3, "2025-12-31", "12000.00", 0.8, 1, 0.5),
            ]},
            {"cohort": "2025-Q3", "accounts": 1, "start_arr": "4000.00", "periods": [
                period(0, "2025-09-30", "4000.00", 1.0, 1, 1.0),
                period(1, "2025-12-31", "4000.00", 1.0, 1, 1.0),
            ]},
            {"cohort": "2025-Q4", "accounts": 1, "start_arr": "3000.00", "periods": [
                period(0, "2025-12-31", "3000.00", 1.0, 1, 1.0),
            ]},
        ],
    }  # fmt: skip


def test_cohort_table_by_month(api, org):
    core = ProductFactory(organization=org, sku="CORE")
    k1 = AccountFactory(organization=org, name="K1", customer_since=D("2025-01-15"))
    k2 = AccountFactory(organization=org, name="K2", customer_since=D("2025-02-01"))
    contract(k1, "K1-1", "2025-01-15", "2026-01-14", (core, 10, "1000"))
    contract(k1, "K1-2", "2025-05-01", "2026-01-14", (core, 2, "1000"))
    contract(k2, "K2-1", "2025-02-01", "2025-07-31", (core, 5, "1000"))
    # 2025-Q1, base on 03-31: 15 (2 accounts). Month ends after it: 04-30 15 (1.0); 05-31 K1 12 + K2 5 = 17
    # (1.1333); 06-30 17; 07-31 17 (K2's contract ends that day, inclusive); 08-31 K1 12 → 0.8, 1/2.
    response = api(org, "viewer").get("/api/v1/metrics/cohorts/", {"periods": 6, "step": "month",
                                                                    "today": "2025-08-31"})  # fmt: skip
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["period"], len(body["cohorts"])) == ("month", 1)
    assert [(p["period"], p["date"], p["arr"], p["arr_pct"], p["logo_pct"]) for p in body["cohorts"][0]["periods"]] == [
        (0, "2025-03-31", "15000.00", 1.0, 1.0),
        (1, "2025-04-30", "15000.00", 1.0, 1.0),
        (2, "2025-05-31", "17000.00", 1.1333, 1.0),
        (3, "2025-06-30", "17000.00", 1.1333, 1.0),
        (4, "2025-07-31", "17000.00", 1.1333, 1.0),
        (5, "2025-08-31", "12000.00", 0.8, 0.5),
    ]


# --- Renewal rate and churn reasons ------------------------------------------------------------------


def renewal(account, due, current, *, outcome="", new=None, reason=None, avoidable=None, **fields) -> Renewal:
    number = f"RN-{account.pk}-{due}-{Contract.all_orgs.count()}"
    c = Contract.all_orgs.create(organization=account.organization, account=account, number=number,
                                 start_date=D(due) - dt.timedelta(days=364), end_date=D(due))  # fmt: skip
    reason_obj = ChurnReason.objects.for_org(account.organization).get(code=reason) if reason else None
    return Renewal.all_orgs.create(
        organization=account.organization, account=account, contract=c, due_date=D(due),
        current_arr=Decimal(current), outcome=outcome, new_arr=None if new is None else Decimal(new),
        churn_reason=reason_obj, avoidable=avoidable, **fields,
    )  # fmt: skip


@pytest.fixture
def renewal_book(org, other_org):
    a = {name: AccountFactory(organization=org, name=name, touch_model=touch)
         for name, touch in [("a1", "high"), ("a2", "high"), ("a3", "low"), ("a4", "low"), ("a5", "low"),
                             ("a6", "high"), ("a7", "high"), ("a8", "tech")]}  # fmt: skip
    renewal(a["a1"], "2025-03-31", "10000", outcome="renewed", new="10000", stage="won")
    renewal(a["a2"], "2025-04-30", "20000", outcome="expanded", new="25000", stage="won")
    renewal(a["a3"], "2025-05-31", "8000", outcome="contracted", new="6000", reason="price", avoidable=True)
    renewal(a["a4"], "2025-06-30", "5000", outcome="churned", new="0", reason="acquired_merged", avoidable=False)
    renewal(a["a5"], "2025-06-15", "7000")  # open
    renewal(a["a6"], "2025-07-01", "99000", outcome="renewed", new="99000")  # due after the period
    renewal(a["a7"], "2025-02-15", "3000", outcome="churned", reason="poor_adoption", avoidable=True)
    renewal(a["a8"], "2025-01-01", "1000", outcome="churned", new="0")  # a loss without a reason
    # Another organization's loss in the same period: never counted.
    renewal(AccountFactory(organization=other_org), "2025-03-01", "50000", outcome="churned", new="0")
    return org


def test_renewal_rate_by_hand(api, renewal_book):
    # Due 2025-01-01..2025-06-30: a1 a2 a3 a4 a5(open) a7 a8 → 7 renewals, ARR due 10+20+8+5+7+3+1 = 54.
    # Won a1 a2 a3 (renewed/expanded/contracted) = 3; lost a4 a7 a8 = 3; open a5 (7).
    # Closed prior ARR 47; Σ min(new, prior) = 10 + 20 + 6 + 0 + 0 + 0 = 36; new ARR 10+25+6 = 41; lost 47−36 = 11.
    # Rate 36/47 = 0.76595… → 0.7660; if the open one were lost 36/54 = 0.6667; logos 3/6 = 0.5.
    response = api(renewal_book, "viewer").get("/api/v1/metrics/renewal-rate/", {"start": "2025-01-01",
                                                                                  "end": "2025-06-30"})  # fmt: skip
    assert response.status_code == 200, response.content
    assert response.json() == {
        "start": "2025-01-01", "end": "2025-06-30", "renewals": 7, "arr_due": "54000.00", "won": 3, "lost": 3,
        "open": 1, "open_arr": "7000.00", "closed_arr_due": "47000.00", "renewed_arr": "36000.00",
        "new_arr": "41000.00", "lost_arr": "11000.00", "renewal_rate": 0.766, "renewal_rate_if_open_lost": 0.6667,
        "logo_renewal_rate": 0.5,
    }  # fmt: skip


def test_churn_reasons_by_hand(api, renewal_book):
    # Losses due in the first half of 2025: a3 contracted (price, avoidable) 8−6 = 2; a4 churned
    # (acquired/merged, unavoidable) 5; a7 churned (poor adoption, avoidable) 3; a8 churned, no reason, 1.
    # Total 4 losses, 11; avoidable 2 / 5; unavoidable 1 / 5; unclassified 1 / 1.
    # Reasons in taxonomy order: poor_adoption, price, acquired_merged, then the unspecified ones.
    # By touch model: high = a7 (3); low = a3 + a4 (2 + 5 = 7); tech = a8 (1).
    response = api(renewal_book, "viewer").get(
        "/api/v1/metrics/churn-reasons/", {"start": "2025-01-01", "end": "2025-06-30", "by": "touch_model"}
    )
    assert response.status_code == 200, response.content

    def reason(code, label, avoidable, count, churned, contracted, lost):
        return {"reason": code, "label": label, "avoidable": avoidable, "count": count, "churned": churned,
                "contracted": contracted, "lost_arr": lost}  # fmt: skip

    poor = reason("poor_adoption", "Poor adoption", True, 1, 1, 0, "3000.00")
    price = reason("price", "Price", True, 1, 0, 1, "2000.00")
    acquired = reason("acquired_merged", "Acquired / merged", False, 1, 1, 0, "5000.00")
    unspecified = reason(None, "Unspecified", None, 1, 1, 0, "1000.00")

    def loss(count, lost):
        return {"count": count, "lost_arr": lost}

    assert response.json() == {
        "start": "2025-01-01", "end": "2025-06-30", "by": "touch_model", "count": 4, "lost_arr": "11000.00",
        "avoidable": loss(2, "5000.00"), "unavoidable": loss(1, "5000.00"), "unclassified": loss(1, "1000.00"),
        "reasons": [poor, price, acquired, unspecified],
        "groups": [
            {"key": "high", "count": 1, "lost_arr": "3000.00", "avoidable": loss(1, "3000.00"),
             "unavoidable": loss(0, "0.00"), "reasons": [poor]},
            {"key": "low", "count": 2, "lost_arr": "7000.00", "avoidable": loss(1, "2000.00"),
             "unavoidable": loss(1, "5000.00"), "reasons": [price, acquired]},
            {"key": "tech", "count": 1, "lost_arr": "1000.00", "avoidable": loss(0, "0.00"),
             "unavoidable": loss(0, "0.00"), "reasons": [unspecified]},
        ],
    }  # fmt: skip


# --- Forecast and accuracy ---------------------------------------------------------------------------


@pytest.fixture
def forecast_book(org):
    org.fiscal_year_start_month = 2  # fiscal years start in February: FY2027 = 2026-02-01 … 2027-01-31
    org.save()
    acct = AccountFactory(organization=org)
    # Current quarter on 2026-11-23: FY2027-Q4 = 2026-11-01 … 2027-01-31.
    renewal(acct, "2026-11-30", "10000", forecast_arr=Decimal("10000"), forecast_category="commit", probability=90)
    renewal(acct, "2026-12-31", "20000", forecast_arr=Decimal("24000"), forecast_category="upside", probability=50)
    renewal(acct, "2027-01-15", "8000", forecast_arr=Decimal("0"), forecast_category="churn", probability=10)
    renewal(acct, "2026-11-10", "5000", outcome="expanded", new="5500")
    renewal(acct, "2027-01-31", "6000", forecast_arr=Decimal("4000"), forecast_category="at_risk", probability=40)
    RenewalTarget.all_orgs.create(organization=org, quarter_start=D("2026-11-01"), target_arr=Decimal("30000"),
                                  target_grr=Decimal("0.9"))  # fmt: skip
    # Next quarter FY2028-Q1 = 2027-02-01 … 2027-04-30.
    renewal(acct, "2027-03-31", "12000", forecast_arr=Decimal("12000"), forecast_category="likely", probability=70)
    # Past quarter FY2027-Q3 = 2026-08-01 … 2026-10-31: closed renewals with calls.
    renewal(
        acct,
        "2026-09-30",
        "10000",
        outcome="renewed",
        new="10000",
        csm_call="commit",
        csm_call_arr=Decimal("10000"),
        final_call="commit",
        final_call_arr=Decimal("10000"),
    )
    renewal(
        acct,
        "2026-10-15",
        "8000",
        outcome="churned",
        new="0",
        csm_call="likely",
        csm_call_arr=Decimal("8000"),
        final_call="at_risk",
        final_call_arr=Decimal("4000"),
    )
    renewal(
        acct, "2026-08-20", "12000", outcome="expanded", new="15000", csm_call="upside", csm_call_arr=Decimal("14000")
    )
    renewal(acct, "2026-10-20", "5000", csm_call="commit", csm_call_arr=Decimal("5000"))  # still open: not scored
    return org  # fmt: skip


def test_forecast_by_hand(api, forecast_book):
    # FY2027-Q4: due 10 + 20 + 8 + 5 + 6 = 49. Open: 4, due 44, forecast 10 + 24 + 0 + 4 = 38,
    #   weighted 10×0.9 + 24×0.5 + 0×0.1 + 4×0.4 = 9 + 12 + 0 + 1.6 = 22.6. Closed: 1, due 5, new 5.5, kept 5.
    #   expected = 5.5 + 22.6 = 28.1; NRR 28.1/49 = 0.57346… → 0.5735;
    #   GRR (5 + min(10,10)×0.9 + min(24,20)×0.5 + 0 + min(4,6)×0.4) / 49 = (5 + 9 + 10 + 1.6)/49 = 25.6/49
    #   = 0.52244… → 0.5224. Target 30 → gap 28.1 − 30 = −1.9.
    # FY2028-Q1: one open likely 12 at 70 % → weighted 8.4; expected GRR = NRR = 8.4/12 = 0.7; no target.
    response = api(forecast_book, "viewer").get("/api/v1/metrics/renewal-forecast/", {"today": "2026-11-23"})
    assert response.status_code == 200, response.content

    # Per category, expected = Σ forecast × probability (commit 10×0.9 = 9, at risk 4×0.4 = 1.6, churn 0,
    # upside 24×0.5 = 12): the categories add up to the weighted 22.6, so the chart's bars equal the table.
    def cat(category, count, due, fc, expected="0.00"):
        return {"category": category, "count": count, "arr_due": due, "forecast_arr": fc, "expected_arr": expected}

    assert response.json() == {
        "today": "2026-11-23",
        "quarters": [
            {"quarter": "FY2027-Q4", "start": "2026-11-01", "end": "2027-01-31", "renewals": 5,
             "arr_due": "49000.00",
             "open": {"count": 4, "arr_due": "44000.00", "forecast_arr": "38000.00", "weighted_arr": "22600.00"},
             "closed": {"count": 1, "arr_due": "5000.00", "new_arr": "5500.00", "renewed_arr": "5000.00"},
             "by_category": [cat("commit", 1, "10000.00", "10000.00", "9000.00"), cat("likely", 0, "0.00", "0.00"),
                             cat("at_risk", 1, "6000.00", "4000.00", "1600.00"), cat("churn", 1, "8000.00", "0.00"),
                             cat("upside", 1, "20000.00", "24000.00", "12000.00")],
             "expected_arr": "28100.00", "expected_grr": 0.5224, "expected_nrr": 0.5735,
             "target_arr": "30000.00", "target_grr": 0.9, "gap_to_target": "-1900.00"},
            {"quarter": "FY2028-Q1", "start": "2027-02-01", "end": "2027-04-30", "renewals": 1,
             "arr_due": "12000.00",
             "open": {"count": 1, "arr_due": "12000.00", "forecast_arr": "12000.00", "weighted_arr": "8400.00"},
             "closed": {"count": 0, "arr_due": "0.00", "new_arr": "0.00", "renewed_arr": "0.00"},
             "by_category": [cat("commit", 0, "0.00", "0.00"), cat("likely", 1, "12000.00", "12000.00", "8400.00"),
                             cat("at_risk", 0, "0.00", "0.00"), cat("churn", 0, "0.00", "0.00"),
                             cat("upside", 0, "0.00", "0.00")],
             "expected_arr": "8400.00", "expected_grr": 0.7, "expected_nrr": 0.7,
             "target_arr": None, "target_grr": None, "gap_to_target": None},
        ],
    }  # fmt: skip


def test_forecast_accuracy_by_hand(api, forecast_book):
    # FY2027-Q3 (2026-08-01 … 2026-10-31), closed with a call: 09-30 commit 10 → renewed 10 (hit);
    #   10-15 likely 8 → churned 0 (miss); 08-20 upside 14 → expanded 15 (hit). The open 10-20 is not scored.
    #   CSM: called 32, actual 25, error 7, 7/25 = 0.28; hits 2/3 = 0.6667.
    #   Final call: commit 10 → 10 (hit), at_risk 4 → churned 0 (hit): called 14, actual 10, error 4, 0.4, 1.0.
    # FY2027-Q2 (2026-05-01 … 2026-07-31): nothing.
    response = api(forecast_book, "viewer").get(
        "/api/v1/metrics/renewal-forecast/accuracy/", {"today": "2026-11-23", "quarters": 2}
    )
    assert response.status_code == 200, response.content
    empty = {"renewals": 0, "called_arr": "0.00", "actual_arr": "0.00", "error_arr": "0.00", "error_pct": None,
             "hit_rate": None, "by_category": []}  # fmt: skip

    def cat(category, count, hits, called, actual):
        return {"category": category, "count": count, "hits": hits, "called_arr": called, "actual_arr": actual}

    assert response.json() == {
        "today": "2026-11-23",
        "quarters": [
            {"quarter": "FY2027-Q2", "start": "2026-05-01", "end": "2026-07-31", "csm_call": empty,
             "final_call": empty},
            {"quarter": "FY2027-Q3", "start": "2026-08-01", "end": "2026-10-31",
             "csm_call": {"renewals": 3, "called_arr": "32000.00", "actual_arr": "25000.00", "error_arr": "7000.00",
                          "error_pct": 0.28, "hit_rate": 0.6667,
                          "by_category": [cat("commit", 1, 1, "10000.00", "10000.00"),
                                          cat("likely", 1, 0, "8000.00", "0.00"),
                                          cat("upside", 1, 1, "14000.00", "15000.00")]},
             "final_call": {"renewals": 2, "called_arr": "14000.00", "actual_arr": "10000.00", "error_arr": "4000.00",
                            "error_pct": 0.4, "hit_rate": 1.0,
                            "by_category": [cat("commit", 1, 1, "10000.00", "10000.00"),
                                            cat("at_risk", 1, 1, "4000.00", "0.00")]}},
        ],
    }  # fmt: skip


@pytest.mark.parametrize(
    "path",
    ["arr-bridge/?start=2025-01-01&end=2025-12-31", "cohorts/", "churn-reasons/?start=2025-01-01&end=2025-12-31",
     "renewal-rate/?start=2025-01-01&end=2025-12-31", "renewal-forecast/", "renewal-forecast/accuracy/"],
)  # fmt: skip
@pytest.mark.parametrize("role", ["admin", "leader", "csm", "viewer"])
def test_every_metrics_endpoint_is_readable_by_every_role(api, org, path, role):
    assert api(org, role).get(f"/api/v1/metrics/{path}").status_code == 200


def test_bad_parameters_are_reported_per_field(api, org):
    client = api(org, "viewer")
    cases = [
        ("churn-reasons/", {"start": "2025-01-01", "end": "2025-12-31", "by": "colour"}, {"by"}),
        ("renewal-rate/", {"start": "x"}, {"start", "end"}),
        ("cohorts/", {"periods": "-1", "step": "week"}, {"periods", "step"}),
        ("renewal-forecast/", {"today": "2026-02-30"}, {"today"}),
    ]
    for path, params, fields in cases:
        response = client.get(f"/api/v1/metrics/{path}", params)
        assert response.status_code == 400, path
        assert set(response.json()["errors"]) == fields, path


def test_renewal_views_never_count_another_organization(api, renewal_book, other_org):
    body = api(other_org, "viewer").get("/api/v1/metrics/renewal-rate/", {"start": "2025-01-01",
                                                                          "end": "2025-06-30"}).json()  # fmt: skip
    assert (body["renewals"], body["lost"], body["arr_due"]) == (1, 1, "50000.00")
    reasons = api(other_org, "viewer").get("/api/v1/metrics/churn-reasons/", {"start": "2025-01-01",
                                                                              "end": "2025-06-30"}).json()  # fmt: skip
    assert (reasons["count"], reasons["lost_arr"]) == (1, "50000.00")


def test_sub_cent_amounts_add_up_exactly(org):
    # Three lines of 0.10 ARR each: a float sum would be 0.30000000000000004.
    product = ProductFactory(organization=org)
    for i in range(3):
        acct = AccountFactory(organization=org)
        contract(acct, f"C-{i}", "2025-01-01", "2025-12-31", (product, 1, "0.10"))
    result = retention(org, D("2025-01-01"), D("2025-12-31"))
    assert result["start_arr"] == Decimal("0.30") and result["grr"] == Decimal("1.0000")
    assert str(result["end_arr"]) == "0.30"


def test_query_count_does_not_grow_with_the_book(api, org):
    """Set-based: the number of SQL statements per request is the same for 3 and for 30 accounts."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    product = ProductFactory(organization=org)
    client = api(org, "viewer")
    client.get("/api/v1/metrics/retention/", {"start": "2025-01-01", "end": "2025-12-31"})  # key's first use
    counts = []
    for size in (3, 30):
        while Account.objects.for_org(org).count() < size:
            acct = AccountFactory(organization=org, parent=Account.objects.for_org(org).first())
            contract(acct, f"Q-{acct.pk}", "2024-06-01", "2025-05-31", (product, 2, "100"))
        per_url = []
        for params in ({"group_by": "segment", "level": "parent"}, {"group_by": "product"}, {"group_by": "owner"}):
            with CaptureQueriesContext(connection) as queries:
                response = client.get("/api/v1/metrics/retention/", {"start": "2025-01-01", "end": "2025-12-31",
                                                                      **params})  # fmt: skip
            assert response.status_code == 200
            per_url.append(len(queries))
        counts.append(per_url)
    assert counts[0] == counts[1]


def test_a_ratio_that_rounds_to_zero_is_never_a_negative_zero():
    # −1 cent over $30,000 is −0.0000003: four places round it to zero, and it must print as 0.0000 (the
    # "know the details" page once showed a product growth of "-0.0000").
    assert str(ratio(-1, 3_000_000)) == "0.0000"
    assert str(ratio(-1, 3)) == "-0.3333" and str(ratio(1, 3)) == "0.3333"
    assert ratio(5, 0) is None
