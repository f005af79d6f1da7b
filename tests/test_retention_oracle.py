"""renewals.analytics (retention, cohorts, fiscal quarters) against an independent reference.

The reference never reads the database: each book is generated here as plain Python records (the
lines the test inserts, with their contract's dates and status), and spec §4 is applied to those
records with loops and ``Decimal``. Books include what the production code must ignore or handle:
zero-ARR lines (free pilots) before t0, cancelled contracts, accounts without ``customer_since``,
overlapping segments, parents. Fiscal quarters are checked for every start month against a
calendar computation written here.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import pytest

from accounts.models import Contract, ContractLine, Organization, Segment
from renewals.analytics import arr_at, arr_bridge, churn_reasons, cohort_table, fiscal_quarter, forecast, retention

from .factories import AccountFactory, ProductFactory

D = dt.date.fromisoformat
MONEY = ("start_arr", "new", "reactivation", "expansion", "contraction", "churn", "end_arr")


@dataclass(frozen=True)
class Line:
    account: int
    product: str
    start: dt.date
    end: dt.date
    arr: Decimal
    cancelled: bool


@dataclass
class Book:
    lines: list[Line]
    parent: dict[int, int | None]
    since: dict[int, dt.date | None]
    touch: dict[int, str]
    region: dict[int, str]


def add_contract(book: Book, account, number: str, start: str, end: str, *lines, status="active") -> None:
    c = Contract.all_orgs.create(organization=account.organization, account=account, number=number,
                                 start_date=D(start), end_date=D(end), status=status)  # fmt: skip
    for product, quantity, price in lines:
        line = ContractLine.all_orgs.create(organization=account.organization, contract=c, product=product,
                                            quantity=Decimal(quantity), annual_unit_price=Decimal(price))  # fmt: skip
        # the reference's own ARR: quantity × price, to the cent
        arr = (Decimal(quantity) * Decimal(price)).quantize(Decimal("0.01"), ROUND_HALF_UP)
        assert line.arr == arr
        book.lines.append(Line(account.pk, product.sku, D(start), D(end), arr, status == "cancelled"))


def new_book() -> Book:
    return Book(lines=[], parent={}, since={}, touch={}, region={})


def add_account(book: Book, org, *, parent=None, since=None, touch="high", region="EMEA", name=None):
    account = AccountFactory(organization=org, parent=parent, customer_since=since, touch_model=touch, region=region,
                             **({"name": name} if name else {}))  # fmt: skip
    book.parent[account.pk] = parent.pk if parent else None
    book.since[account.pk] = since
    book.touch[account.pk] = touch
    book.region[account.pk] = region
    return account


# --- The reference ----------------------------------------------------------------------------------------


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.0001"), ROUND_HALF_UP)


def unit_of(book: Book, account: int, level: str) -> int:
    while level == "parent" and book.parent[account] is not None:
        account = book.parent[account]
    return account


def arr_on(book: Book, day: dt.date, level: str) -> dict[int, Decimal]:
    out: dict[int, Decimal] = {}
    for line in book.lines:
        if not line.cancelled and line.start <= day <= line.end:
            unit = unit_of(book, line.account, level)
            out[unit] = out.get(unit, Decimal(0)) + line.arr
    return out


def had_arr_before(book: Book, t0: dt.date, level: str) -> set[int]:
    """Units that had ARR > 0 on some day before t0: a paid line on a live contract that started before t0."""
    return {unit_of(book, ln.account, level) for ln in book.lines if not ln.cancelled and ln.start < t0 and ln.arr > 0}


def figures(a0: dict[int, Decimal], a1: dict[int, Decimal], before: set[int], units) -> dict:
    out = dict.fromkeys(MONEY, Decimal(0)) | {"accounts_start": 0, "accounts_retained": 0}
    for unit in units:
        s, e = a0.get(unit, Decimal(0)), a1.get(unit, Decimal(0))
        out["end_arr"] += e
        if s > 0:
            out["start_arr"] += s
            out["accounts_start"] += 1
            if e == 0:
                out["churn"] += s
            else:
                out["accounts_retained"] += 1
                if e < s:
                    out["contraction"] += s - e
                else:
                    out["expansion"] += e - s
        elif e > 0:
            out["new"] += e
            if unit in before:
                out["reactivation"] += e
    start, lost = out["start_arr"], out["churn"] + out["contraction"]
    out["grr"] = ratio(start - lost, start)
    out["nrr"] = ratio(start - lost + out["expansion"], start)
    out["logo_retention"] = ratio(out["accounts_retained"], out["accounts_start"])
    return out


def ref_retention(book: Book, t0: dt.date, t1: dt.date, level: str, groups=None) -> dict:
    """Top-level figures and, with ``groups`` (key → member units, in order), one row per group."""
    a0, a1 = arr_on(book, t0, level), arr_on(book, t1, level)
    before = had_arr_before(book, t0, level)
    units = set(a0) | set(a1)
    result = figures(a0, a1, before, units)
    rows = []
    for key, members in groups or []:
        row = figures(a0, a1, before, units & members)
        if row["start_arr"] or row["end_arr"]:
            rows.append({"key": key, **row})
    result["groups"] = rows
    return result


def quarter_key(day: dt.date | None) -> str | None:
    return None if day is None else f"{day.year}-Q{(day.month + 2) // 3}"


def cohort_of(book: Book, account: int) -> str | None:
    """customer_since, or else the first start of the account's non-cancelled contracts."""
    starts = [ln.start for ln in book.lines if ln.account == account and not ln.cancelled]
    return quarter_key(book.since[account] or (min(starts) if starts else None))


def comparable(result: dict) -> dict:
    keys = (*MONEY, "grr", "nrr", "logo_retention", "accounts_start", "accounts_retained")
    out = {k: result[k] for k in keys}
    out["groups"] = [{k: row[k] for k in ("key", *keys)} for row in result["groups"]]
    return out


# --- Books ---------------------------------------------------------------------------------------------------


def random_book(org, seed: int) -> Book:
    """Random accounts (some children, some without customer_since), contracts (some cancelled), lines
    (some free: zero ARR)."""
    rng = random.Random(seed)
    book = new_book()
    products = [ProductFactory(organization=org, sku=f"S{seed}-{i}") for i in range(3)]
    accounts = []
    for _ in range(30):
        parent = rng.choice(accounts) if accounts and rng.random() < 0.2 else None
        since = rng.choice([None, None, dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange(900))])
        accounts.append(add_account(book, org, parent=parent, since=since, touch=rng.choice(["high", "low", "tech"]),
                                    region=rng.choice(["EMEA", "NA", "APAC"])))  # fmt: skip
    number = 0
    for account in accounts:
        start = dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange(600))
        while start < dt.date(2026, 1, 1) and rng.random() < 0.85:
            end = start + dt.timedelta(days=rng.choice([30, 180, 364, 365]))
            number += 1
            lines = [
                (product, rng.choice(["0", "1", "3", "12"]), rng.choice(["0", "99.99", "1000", "2500.50"]))
                for product in rng.sample(products, rng.randint(1, 2))
            ]
            status = "cancelled" if rng.random() < 0.1 else "active"
            add_contract(book, account, f"R{seed}-{number}", start.isoformat(), end.isoformat(), *lines, status=status)
            start = end + dt.timedelta(days=rng.choice([1, 1, 45, 300]))
    return book


SEGMENTS = [
    ("Scaled", {"match": "all", "conditions": [{"field": "touch_model", "op": "in", "value": ["low", "tech"]}]}),
    ("EMEA", {"match": "all", "conditions": [{"field": "region", "op": "eq", "value": "EMEA"}]}),
    ("Nobody", {"match": "all", "conditions": [{"field": "region", "op": "eq", "value": "Mars"}]}),
]


def make_segments(org) -> None:
    Segment.objects.for_org(org).delete()
    for position, (name, rules) in enumerate(SEGMENTS):
        Segment.all_orgs.create(organization=org, name=name, position=position, rules=rules)


def segment_groups(book: Book, level: str) -> list[tuple[str | None, set[int]]]:
    """Each segment's members among the units (by the unit's own current attributes), then the rest."""
    units = {unit_of(book, a, level) for a in book.parent}
    tests = {
        "Scaled": lambda u: book.touch[u] in ("low", "tech"),
        "EMEA": lambda u: book.region[u] == "EMEA",
        "Nobody": lambda u: False,
    }
    groups = [(name, {u for u in units if tests[name](u)}) for name, _ in SEGMENTS]
    matched = set().union(*(members for _, members in groups))
    return [*groups, (None, units - matched)]


# --- Retention ---------------------------------------------------------------------------------------------

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("level", ["account", "parent"])
@pytest.mark.parametrize("seed", [11, 12])
def test_retention_by_segment_matches_the_reference(org, seed, level):
    book = random_book(org, seed)
    make_segments(org)
    rng = random.Random(seed)
    for _ in range(3):
        t0 = dt.date(2023, 6, 1) + dt.timedelta(days=rng.randrange(700))
        t1 = t0 + dt.timedelta(days=rng.randrange(1, 500))
        expected = ref_retention(book, t0, t1, level, segment_groups(book, level))
        assert expected["start_arr"] and expected["groups"], "the book must not be trivial"
        assert comparable(retention(org, t0, t1, group_by="segment", level=level)) == comparable(expected), (t0, t1)


@pytest.mark.parametrize("seed", [21, 22])
def test_retention_by_cohort_matches_the_reference(org, seed):
    book = random_book(org, seed)
    assert None in book.since.values()  # accounts without customer_since fall back to their first contract
    rng = random.Random(seed)
    for _ in range(3):
        t0 = dt.date(2023, 6, 1) + dt.timedelta(days=rng.randrange(700))
        t1 = t0 + dt.timedelta(days=rng.randrange(1, 500))
        keys: dict[str | None, set[int]] = {}
        for account in book.parent:
            keys.setdefault(cohort_of(book, account), set()).add(account)
        ordered = sorted(k for k in keys if k is not None) + ([None] if None in keys else [])
        expected = ref_retention(book, t0, t1, "account", [(k, keys[k]) for k in ordered])
        got = retention(org, t0, t1, group_by="cohort")
        assert comparable(got) == comparable(expected), (t0, t1)


def test_cohort_falls_back_to_the_first_live_contract_start(org):
    book = new_book()
    product = ProductFactory(organization=org, sku="CORE")
    dated = add_account(book, org, since=D("2024-02-10"), name="dated")
    undated = add_account(book, org, since=None, name="undated")
    # undated's first contract was cancelled (2023-Q4) and its first live one starts in 2024-Q2
    add_contract(book, undated, "U-0", "2023-11-01", "2024-10-31", (product, "1", "5000"), status="cancelled")
    add_contract(book, undated, "U-1", "2024-05-20", "2025-05-19", (product, "2", "1000"))
    add_contract(book, dated, "D-1", "2024-03-01", "2025-02-28", (product, "1", "3000"))
    result = retention(org, D("2024-06-01"), D("2024-12-31"), group_by="cohort")
    assert [(g["key"], g["start_arr"]) for g in result["groups"]] == [
        ("2024-Q1", Decimal("3000.00")),
        ("2024-Q2", Decimal("2000.00")),
    ]
    assert cohort_of(book, undated.pk) == "2024-Q2"
    table = cohort_table(org, periods=1, today=D("2024-12-31"))
    assert [(c["cohort"], c["accounts"], c["start_arr"]) for c in table["cohorts"]] == [
        ("2024-Q1", 1, Decimal("3000.00")),
        ("2024-Q2", 1, Decimal("2000.00")),
    ]


def test_reactivation_ignores_zero_arr_lines(org):
    # A free pilot (zero ARR) before t0 is not "had ARR before": its first paid contract is new, not
    # a reactivation. A cancelled paid contract before t0 does not count either.
    book = new_book()
    product = ProductFactory(organization=org, sku="CORE")
    pilot = add_account(book, org, name="pilot")
    add_contract(book, pilot, "P-0", "2024-01-01", "2024-03-31", (product, "5", "0"))
    add_contract(book, pilot, "P-1", "2024-09-01", "2025-08-31", (product, "5", "1000"))
    cancelled = add_account(book, org, name="cancelled")
    add_contract(book, cancelled, "C-0", "2024-01-01", "2024-03-31", (product, "1", "800"), status="cancelled")
    add_contract(book, cancelled, "C-1", "2024-09-01", "2025-08-31", (product, "1", "800"))
    back = add_account(book, org, name="back")
    add_contract(book, back, "B-0", "2024-01-01", "2024-03-31", (product, "0", "1000"), (product, "1", "300"))
    add_contract(book, back, "B-1", "2024-09-01", "2025-08-31", (product, "2", "300"))
    t0, t1 = D("2024-06-01"), D("2024-12-31")
    result = retention(org, t0, t1)
    assert result["new"] == Decimal("5000.00") + Decimal("800.00") + Decimal("600.00")
    assert result["reactivation"] == Decimal("600.00")  # only "back" had a paid line before t0
    assert comparable(result) == comparable(ref_retention(book, t0, t1, "account"))
    by_product = retention(org, t0, t1, group_by="product")["groups"]
    assert [(g["key"], g["new"], g["reactivation"]) for g in by_product] == [
        ("CORE", Decimal("6400.00"), Decimal("600.00"))
    ]
    assert retention(org, t0, t1, level="parent")["reactivation"] == Decimal("600.00")


def test_segment_groups_come_in_position_order_with_the_unmatched_last(org):
    book = new_book()
    product = ProductFactory(organization=org, sku="CORE")
    make_segments(org)
    rows = [("low", "EMEA", "1000"), ("high", "EMEA", "2000"), ("tech", "NA", "4000"), ("high", "NA", "8000")]
    for i, (touch, region, price) in enumerate(rows):
        account = add_account(book, org, touch=touch, region=region)
        add_contract(book, account, f"S-{i}", "2024-01-01", "2024-12-31", (product, "1", price))
    result = retention(org, D("2024-02-01"), D("2025-02-01"), group_by="segment")
    # Scaled = low + tech (1000 + 4000); EMEA = low + high/EMEA (1000 + 2000); nobody matches "Nobody";
    # high/NA matches none (8000). Everything churns by 2025-02-01.
    assert [(g["key"], g["start_arr"], g["churn"], g["accounts_start"]) for g in result["groups"]] == [
        ("Scaled", Decimal("5000.00"), Decimal("5000.00"), 2),
        ("EMEA", Decimal("3000.00"), Decimal("3000.00"), 2),
        (None, Decimal("8000.00"), Decimal("8000.00"), 1),
    ]


# --- Fiscal quarters --------------------------------------------------------------------------------------


def ref_fiscal_quarter(start_month: int, day: dt.date) -> tuple[dt.date, dt.date, str]:
    """The fiscal year starting in ``start_month`` that contains ``day`` is named by the calendar year
    in which it ends; quarters are its 3-month blocks."""
    fy_start_year = day.year if day.month >= start_month else day.year - 1
    fy_start = dt.date(fy_start_year, start_month, 1)
    fy_end = dt.date(fy_start_year + (1 if start_month > 1 else 0), (start_month - 2) % 12 + 1, 1)
    months_in = (day.year - fy_start.year) * 12 + day.month - fy_start.month
    quarter = months_in // 3
    first_month = fy_start.month - 1 + 3 * quarter
    first = dt.date(fy_start.year + first_month // 12, first_month % 12 + 1, 1)
    after = first_month + 3
    last = dt.date(fy_start.year + after // 12, after % 12 + 1, 1) - dt.timedelta(days=1)
    return first, last, f"FY{fy_end.year}-Q{quarter + 1}"


DAYS = [D(s) for s in ("2026-01-01", "2026-01-31", "2026-02-01", "2026-03-31", "2026-04-01", "2026-06-30",
                       "2026-07-15", "2026-09-30", "2026-10-01", "2026-11-23", "2026-12-31", "2027-02-28")]  # fmt: skip


@pytest.mark.parametrize("start_month", range(1, 13))
def test_fiscal_quarters_match_the_calendar_for_every_start_month(start_month):
    org = Organization(fiscal_year_start_month=start_month)
    for day in DAYS:
        assert fiscal_quarter(org, day) == ref_fiscal_quarter(start_month, day), day


def test_calendar_year_fiscal_labels_are_the_calendar_year():
    org = Organization(fiscal_year_start_month=1)
    assert [fiscal_quarter(org, D(d))[2] for d in ("2026-01-01", "2026-05-05", "2026-12-31", "2027-01-01")] == [
        "FY2026-Q1", "FY2026-Q2", "FY2026-Q4", "FY2027-Q1",
    ]  # fmt: skip
    assert ref_fiscal_quarter(1, D("2026-12-31"))[2] == "FY2026-Q4"
    assert ref_fiscal_quarter(2, D("2026-12-31"))[2] == "FY2027-Q4"  # a year from Feb 2026 ends Jan 2027


@pytest.mark.parametrize(("start_month", "labels"), [(1, ["FY2026-Q4", "FY2027-Q1"]), (4, ["FY2027-Q3", "FY2027-Q4"]),
                                                     (10, ["FY2027-Q1", "FY2027-Q2"])])  # fmt: skip
def test_forecast_names_the_current_and_next_fiscal_quarter(org, start_month, labels):
    org.fiscal_year_start_month = start_month
    org.save()
    body = forecast(org, today=D("2026-11-23"))
    assert [q["quarter"] for q in body["quarters"]] == labels
    expected = [ref_fiscal_quarter(start_month, D("2026-11-23"))]
    expected.append(ref_fiscal_quarter(start_month, expected[0][1] + dt.timedelta(days=1)))
    assert [(q["start"], q["end"], q["quarter"]) for q in body["quarters"]] == expected


# --- ARR at a date, the bridge and cohorts at the parent level, small amounts ---------------------------


def test_arr_at_counts_a_single_cent_and_rolls_children_into_parents(org):
    book = new_book()
    product = ProductFactory(organization=org, sku="CORE")
    parent = add_account(book, org, name="parent")
    child = add_account(book, org, parent=parent, name="child")
    tiny = add_account(book, org, name="tiny")
    add_contract(book, parent, "P-1", "2025-01-01", "2025-12-31", (product, "1", "100"))
    add_contract(book, child, "C-1", "2025-01-01", "2025-12-31", (product, "2", "50.25"))
    add_contract(book, tiny, "T-1", "2025-01-01", "2025-12-31", (product, "1", "0.01"))
    day = D("2025-06-30")
    by_account = arr_at(org, day)
    assert by_account.name == "arr"
    assert by_account.to_dict() == {parent.pk: Decimal("100.00"), child.pk: Decimal("100.50"),
                                    tiny.pk: Decimal("0.01")}  # fmt: skip
    assert by_account.to_dict() == arr_on(book, day, "account")
    assert arr_at(org, day, level="parent").to_dict() == {parent.pk: Decimal("200.50"), tiny.pk: Decimal("0.01")}
    assert arr_at(org, day, level="parent").to_dict() == arr_on(book, day, "parent")
    table = cohort_table(org, periods=1, today=D("2025-12-31"))
    assert [(c["cohort"], c["accounts"], c["periods"][0]["accounts"]) for c in table["cohorts"]] == [("2025-Q1", 3, 3)]


@pytest.mark.parametrize("level", ["account", "parent"])
def test_arr_bridge_and_cohorts_at_both_levels_match_the_reference(org, level):
    book = random_book(org, 31)
    start, end = D("2024-02-10"), D("2024-07-20")
    bridge = arr_bridge(org, start, end, level=level)
    expected = ref_retention(book, start, end, level)
    assert {k: bridge["total"][k] for k in MONEY} == {k: expected[k] for k in MONEY}
    points = [start, D("2024-03-01"), D("2024-04-01"), D("2024-05-01"), D("2024-06-01"), D("2024-07-01"), end]
    assert [(m["start"], m["end"]) for m in bridge["months"]] == list(zip(points, points[1:], strict=False))
    for row in bridge["months"]:
        reference = ref_retention(book, row["start"], row["end"], level)
        assert {k: row[k] for k in MONEY} == {k: reference[k] for k in MONEY}, row["month"]
    # cohorts: base = the units with ARR on the cohort quarter's last day
    table = cohort_table(org, periods=2, today=D("2025-12-31"), level=level)
    units = {unit_of(book, a, level) for a in book.parent}
    expected_rows = {}
    for key in {first_cohort(book, u, level) for u in units} - {None}:
        year, quarter = int(key[:4]), int(key[-1])
        last_day = dt.date(year + (quarter == 4), (3 * quarter) % 12 + 1, 1) - dt.timedelta(days=1)
        base = arr_on(book, last_day, level)
        members = {u for u in units if base.get(u, 0) > 0 and first_cohort(book, u, level) == key}
        if members:
            expected_rows[key] = (len(members), sum(base[u] for u in members))
    assert {row["cohort"]: (row["accounts"], row["start_arr"]) for row in table["cohorts"]} == expected_rows
    assert [row["cohort"] for row in table["cohorts"]] == sorted(expected_rows)


def first_cohort(book: Book, unit: int, level: str) -> str | None:
    """A unit's cohort: its own customer_since, else the first start of its (family's) live contracts."""
    if book.since[unit]:
        return quarter_key(book.since[unit])
    starts = [ln.start for ln in book.lines if unit_of(book, ln.account, level) == unit and not ln.cancelled]
    return quarter_key(min(starts)) if starts else None


def test_a_bridge_of_one_day_is_one_empty_month(org):
    book = new_book()
    product = ProductFactory(organization=org, sku="CORE")
    account = add_account(book, org)
    add_contract(book, account, "A-1", "2025-01-01", "2025-12-31", (product, "3", "100"))
    bridge = arr_bridge(org, D("2025-05-05"), D("2025-05-05"))
    assert [(m["month"], m["start_arr"], m["end_arr"], m["new"]) for m in bridge["months"]] == [
        ("2025-05", Decimal("300.00"), Decimal("300.00"), Decimal("0.00"))
    ]
    assert bridge["total"]["nrr"] == Decimal("1.0000")


def test_churn_reasons_group_by_segment_unless_told_otherwise(org):
    assert churn_reasons(org, D("2025-01-01"), D("2025-12-31"))["by"] == "segment"
