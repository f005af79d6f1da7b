"""Retention analytics (spec §4): ARR at a date, retention over a period, the monthly ARR bridge,
customer-since cohorts, renewal rate, churn reasons, the renewal forecast and its accuracy.

How it computes: a few set-based queries over the organization's scoped querysets (contract lines
aggregated in SQL per account × product, account attributes, segment membership), then vectorised
pandas. There is no per-account ORM loop. Money is carried as **integer cents** from the database to
the result (no float ever touches an amount) and returned as ``Decimal`` with two places; ratios are
``Decimal`` rounded half-up to four places (``None`` when the denominator is empty).

Definitions (exact, see ``docs/metrics.md``):

* ARR of an account on ``d`` = Σ ARR of its contract lines whose contract is not cancelled and
  ``start_date ≤ d ≤ end_date`` (both ends inclusive) — the same rule as
  :func:`accounts.services.arr_at`.
* ``level="parent"``: every account is rolled up to its top-level ancestor (multi-level ``parent``
  chain), whose ARR is its own plus all its descendants'.
* Retention over ``[t0, t1]``: cohort C = units with ARR(t0) > 0; start, churn, contraction,
  expansion, new, end as in spec §4. ``reactivation`` is the part of ``new`` from units that had
  ARR > 0 on some day before t0, i.e. that hold a line with ARR > 0 on a non-cancelled contract
  starting before t0.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.db.models import BigIntegerField, DecimalField, ExpressionWrapper, F, Min, Q, Sum, Value
from django.db.models.functions import Cast, Coalesce

from accounts.choices import ContractStatus
from accounts.models import Account, Contract, ContractLine, Organization, Product

from .models import ChurnReason, ForecastCategory, Renewal, RenewalOutcome, RenewalTarget

__all__ = [
    "GROUP_BY_CHOICES",
    "LEVEL_CHOICES",
    "arr_at",
    "arr_bridge",
    "churn_reasons",
    "cohort_table",
    "forecast",
    "forecast_accuracy",
    "renewal_rate",
    "retention",
]

GROUP_BY_CHOICES = ("segment", "touch_model", "industry", "region", "owner", "product", "product_line", "cohort")
LEVEL_CHOICES = ("account", "parent")
CHURN_GROUP_CHOICES = ("segment", "touch_model", "industry", "region", "owner", "reason")

RATIO = Decimal("0.0001")
CENT = Decimal("0.01")
MONEY_FIELDS = ("start_arr", "new", "reactivation", "expansion", "contraction", "churn", "end_arr")


# --- Small exact helpers ----------------------------------------------------------------------------


def _cents(value: Decimal | None) -> int:
    """A money amount from the database (two decimal places) as exact integer cents."""
    if value is None:
        return 0
    return int((Decimal(value) * 100).to_integral_value(rounding=ROUND_HALF_UP))


def money(cents: int | np.integer) -> Decimal:
    """Integer cents → ``Decimal`` with two places (exact)."""
    return (Decimal(int(cents)) / 100).quantize(CENT)


def ratio(numerator: int | np.integer, denominator: int | np.integer) -> Decimal | None:
    """``numerator / denominator`` rounded half-up to four places; ``None`` when the denominator is 0. A tiny
    negative ratio that rounds to zero is ``0.0000``, not ``-0.0000`` (it would print as a negative zero)."""
    if not denominator:
        return None
    rounded = (Decimal(int(numerator)) / Decimal(int(denominator))).quantize(RATIO, rounding=ROUND_HALF_UP)
    return rounded if rounded else abs(rounded)


def _org_id(org: Organization | int) -> int:
    return org if isinstance(org, int) else org.pk


def _organization(org: Organization | int) -> Organization:
    return org if isinstance(org, Organization) else Organization.objects.get(pk=org)


def _live_lines(org: Organization | int):
    return ContractLine.objects.for_org(_org_id(org)).exclude(contract__status=ContractStatus.CANCELLED)


# --- Hierarchy and attributes --------------------------------------------------------------------------


ATTRIBUTE_COLUMNS = {
    "touch_model": "touch_model",
    "industry": "industry",
    "region": "region",
    "owner": "owner__email",
    "customer_since": "customer_since",
}


def _accounts_frame(org: Organization | int, attributes: Iterable[str] = ()) -> pd.DataFrame:
    """Every account of the organization: its parent, plus the asked-for attributes (one query).

    Only what a grouping needs is loaded (the owner's e-mail is a join, read only for ``owner``)."""
    names = [name for name in ATTRIBUTE_COLUMNS if name in set(attributes)]
    paths = [ATTRIBUTE_COLUMNS[name] for name in names]
    rows = list(Account.objects.for_org(_org_id(org)).order_by().values_list("id", "parent_id", *paths))
    frame = pd.DataFrame(rows, columns=["account", "parent", *names])
    frame["parent"] = frame["parent"].astype("Int64")
    return frame.set_index("account")


def _roots(accounts: pd.DataFrame) -> pd.Series:
    """Each account's top-level ancestor (itself when it has no parent), following multi-level chains.

    Vectorised over all accounts: each step moves every account's ``root`` one level up
    (``root ← parent(root)``) until nothing moves, at most 64 levels. A parent that is not an account
    of this organization is not followed; a cycle (which the API refuses) ends after 64 steps on
    one of its accounts."""
    parent = accounts["parent"]
    root = pd.Series(accounts.index.to_numpy(), index=accounts.index)
    for _ in range(64):
        up = parent.reindex(root.to_numpy()).to_numpy()
        has_parent = ~pd.isna(up)
        if not has_parent.any():
            break
        candidate = root.to_numpy().copy()
        candidate[has_parent] = up[has_parent].astype(np.int64)
        # A parent that is not an account of this organization is not followed.
        known = np.isin(candidate, accounts.index.to_numpy())
        candidate = np.where(known, candidate, root.to_numpy())
        if (candidate == root.to_numpy()).all():
            break
        root = pd.Series(candidate, index=accounts.index)
    return root


def _unit_map(accounts: pd.DataFrame, level: str) -> pd.Series:
    """account id → the unit retention works on (itself, or its top-level ancestor for ``parent``)."""
    if level == "parent":
        return _roots(accounts)
    return pd.Series(accounts.index.to_numpy(), index=accounts.index)


# --- ARR at a date ----------------------------------------------------------------------------------


def arr_at(org: Organization | int, on: date, *, level: str = "account") -> pd.Series:
    """ARR per account on ``on`` as a ``Series`` of ``Decimal`` indexed by account id (accounts with no
    ARR are absent). Agrees with :func:`accounts.services.arr_at`; ``level="parent"`` sums every
    account into its top-level ancestor. One aggregate query (two for ``parent``)."""
    rows = (
        _live_lines(org)
        .filter(contract__start_date__lte=on, contract__end_date__gte=on)
        .order_by()
        .values("contract__account_id")
        .annotate(total=Sum("arr"))
        .values_list("contract__account_id", "total")
    )
    cents = pd.Series({account: _cents(total) for account, total in rows}, dtype="int64")
    if level == "parent" and len(cents):
        units = _unit_map(_accounts_frame(org), level)
        cents = cents.groupby(units.reindex(cents.index).to_numpy()).sum()
    cents = cents[cents > 0]
    return cents.map(money).rename("arr")


# --- Retention --------------------------------------------------------------------------------------


def _money_sum(condition: Q | None = None) -> Any:
    """Σ line ARR over the rows meeting ``condition``: integer cents summed by Postgres (exact: ARR has
    two decimal places, and integer sums are much cheaper than numeric ones), or the decimal sum
    elsewhere (converted to cents in Python)."""
    if connection.vendor == "postgresql":
        cents = Cast(ExpressionWrapper(F("arr") * Value(100), output_field=DecimalField()), BigIntegerField())
        return Coalesce(Cast(Sum(cents, filter=condition), BigIntegerField()), Value(0))
    return Sum("arr", filter=condition)


def _int_rows(query: Any, width: int) -> np.ndarray:
    """The rows of a scoped ``values_list`` queryset whose columns are all integers, as an int64 array.

    On Postgres the queryset's own SQL is run on a plain cursor: 100k rows skip Django's per-row
    converters (same SQL, same organization filter, only the row decoding differs)."""
    return np.array(_plain_rows(query), dtype=np.int64).reshape(-1, width)


def _plain_rows(query: Any) -> list[tuple]:
    """A scoped ``values_list`` queryset's rows; money columns (from :func:`_money_sum`) as cents."""
    if connection.vendor == "postgresql":
        sql, params = query.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    return [tuple(0 if v is None else _as_cents(v) if isinstance(v, Decimal) else v for v in row) for row in query]


def _as_cents(value: Any) -> int:
    return 0 if value is None else value if isinstance(value, int) else _cents(value)


@contextmanager
def _aggregate_memory():
    """On Postgres, give the big GROUP BY enough memory to hash in RAM instead of spilling to disk
    (``SET LOCAL``: this transaction only)."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '64MB'")
        yield


def _pair_frame(org: Organization | int, t0: date, t1: date) -> pd.DataFrame:
    """One row per (account, product id) with ARR on t0 and on t1 in cents: the lines of the contracts
    live on t0 or on t1, aggregated in one query."""
    at_t0 = Q(contract__start_date__lte=t0, contract__end_date__gte=t0)
    at_t1 = Q(contract__start_date__lte=t1, contract__end_date__gte=t1)
    query = (
        _live_lines(org)
        .filter(at_t0 | at_t1)
        .order_by()
        .values("contract__account_id", "product_id")
        .annotate(a0=_money_sum(at_t0), a1=_money_sum(at_t1))
        .values_list("contract__account_id", "product_id", "a0", "a1")
    )
    with _aggregate_memory():
        rows = _int_rows(query, 4)
    return pd.DataFrame(rows, columns=["account", "product", "a0", "a1"])


def _pairs_with_arr_before(org: Organization | int, t0: date) -> pd.MultiIndex:
    """(account, product) pairs that had ARR > 0 on some day before ``t0``: a line with ARR > 0 on a
    non-cancelled contract starting before ``t0`` (that contract covers its own first day)."""
    columns = _int_rows(
        _live_lines(org)
        .filter(contract__start_date__lt=t0, arr__gt=0)
        .order_by()
        .values_list("contract__account_id", "product_id")
        .distinct(),
        2,
    )
    return pd.MultiIndex.from_arrays([columns[:, 0], columns[:, 1]], names=["account", "product"])


def _components(frame: pd.DataFrame) -> pd.DataFrame:
    """Per unit (row): its contribution to every retention figure (cents and counts). Vectorised."""
    a0, a1, before = frame["a0"].to_numpy(), frame["a1"].to_numpy(), frame["before"].to_numpy()
    in_cohort = a0 > 0
    kept = in_cohort & (a1 > 0)
    is_new = ~in_cohort & (a1 > 0)
    zero = np.zeros_like(a0)
    return pd.DataFrame(
        {
            "start_arr": np.where(in_cohort, a0, zero),
            "new": np.where(is_new, a1, zero),
            "reactivation": np.where(is_new & before, a1, zero),
            "expansion": np.where(in_cohort & (a1 > a0), a1 - a0, zero),
            "contraction": np.where(kept & (a1 < a0), a0 - a1, zero),
            "churn": np.where(in_cohort & (a1 == 0), a0, zero),
            "end_arr": a1,
            "accounts_start": in_cohort.astype(np.int64),
            "accounts_retained": kept.astype(np.int64),
        },
        index=frame.index,
    )


def _totals(a0: np.ndarray, a1: np.ndarray, before: np.ndarray) -> dict[str, int]:
    """:func:`_components` summed over the units, straight from the arrays (no frame per period)."""
    in_cohort = a0 > 0
    kept = in_cohort & (a1 > 0)
    is_new = ~in_cohort & (a1 > 0)
    return {
        "start_arr": int(a0[in_cohort].sum()),
        "new": int(a1[is_new].sum()),
        "reactivation": int(a1[is_new & before].sum()),
        "expansion": int((a1 - a0)[in_cohort & (a1 > a0)].sum()),
        "contraction": int((a0 - a1)[kept & (a1 < a0)].sum()),
        "churn": int(a0[in_cohort & (a1 == 0)].sum()),
        "end_arr": int(a1.sum()),
        "accounts_start": int(in_cohort.sum()),
        "accounts_retained": int(kept.sum()),
    }


def _finish(totals: dict[str, Any]) -> dict[str, Any]:
    """Cents and counts → the public figures: ``Decimal`` money, ratios, counts."""
    start, churn, contraction, expansion = (int(totals[k]) for k in ("start_arr", "churn", "contraction", "expansion"))
    out: dict[str, Any] = {name: money(totals[name]) for name in MONEY_FIELDS}
    out["grr"] = ratio(start - churn - contraction, start)
    out["nrr"] = ratio(start - churn - contraction + expansion, start)
    out["logo_retention"] = ratio(totals["accounts_retained"], totals["accounts_start"])
    out["accounts_start"] = int(totals["accounts_start"])
    out["accounts_retained"] = int(totals["accounts_retained"])
    return out


def _segment_membership(org: Organization | int, account_ids: Iterable[int]) -> pd.DataFrame:
    """(account, segment name, position) for every segment each account matches now. One query per
    segment (segments are few); each is the segment's compiled SQL condition."""
    from accounts.models import Segment
    from accounts.segments import SegmentRuleError, compile_rules

    wanted = set(account_ids)
    rows: list[tuple[int, str, int]] = []
    for position, segment in enumerate(Segment.objects.for_org(_org_id(org)).order_by("position", "name")):
        try:
            condition = compile_rules(segment.rules)
        except SegmentRuleError:
            continue  # an invalid rule set matches nobody rather than breaking the report
        members = Account.objects.for_org(_org_id(org)).filter(condition).values_list("id", flat=True)
        rows.extend((account, segment.name, position) for account in members if account in wanted)
    return pd.DataFrame(rows, columns=["unit", "key", "order"]).astype({"unit": "int64"})


def _quarter_key(day: date | None) -> str | None:
    if day is None or pd.isna(day):
        return None
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def _first_contract_start(org: Organization | int) -> pd.Series:
    rows = (
        Contract.objects.for_org(_org_id(org))
        .exclude(status=ContractStatus.CANCELLED)
        .order_by()
        .values("account_id")
        .annotate(first=Min("start_date"))
        .values_list("account_id", "first")
    )
    return pd.Series(dict(rows), dtype="object")


def _attribute_keys(org: Organization | int, accounts: pd.DataFrame, units: pd.Index, group_by: str) -> pd.DataFrame:
    """(unit, key, order) for the attribute groupings: the unit's *current* attribute."""
    attrs = accounts.reindex(units)
    if group_by == "cohort":
        since = attrs["customer_since"].copy()
        missing = since.isna()
        if missing.any():
            first = _first_contract_start(org)
            since[missing] = first.reindex(since.index[missing]).to_numpy()
        keys = since.map(_quarter_key)
    else:
        keys = attrs[group_by].map(lambda v: None if v is None or v == "" or pd.isna(v) else str(v))
    frame = pd.DataFrame({"unit": units.to_numpy(), "key": keys.to_numpy()})
    frame["order"] = 0
    return frame


def _group_rows(components: pd.DataFrame, membership: pd.DataFrame) -> list[dict[str, Any]]:
    """Sum unit components per group key; groups with no ARR at either end are left out."""
    joined = membership.merge(components, left_on="unit", right_index=True, how="inner")
    if joined.empty:
        return []
    joined["key"] = joined["key"].astype(object).where(joined["key"].notna(), None)
    # Missing keys group under a sentinel (pandas drops NaN keys) and come back as None, sorted last.
    joined["_k"] = joined["key"].map(lambda k: "\uffff" if k is None else k)
    sums = joined.groupby(["order", "_k"], sort=True)[list(components.columns)].sum()
    groups = []
    for (_order, key), row in sums.iterrows():
        if row["start_arr"] == 0 and row["end_arr"] == 0:
            continue
        groups.append({"key": None if key == "\uffff" else key, **_finish(row.to_dict())})
    return groups


@dataclass(frozen=True)
class _Retention:
    pairs: pd.DataFrame
    units: pd.DataFrame


def _retention_frames(
    org: Organization | int, t0: date, t1: date, level: str, accounts: pd.DataFrame | None
) -> _Retention:
    """Units (accounts, or top-level accounts) and (unit, product) pairs with a0, a1 and ``before``.

    ``before`` (had ARR on a day before t0) comes from every earlier (account, product) pair, mapped to
    units: a unit's earlier ARR may be on a product it no longer holds, or on a child's contract."""
    pairs = _pair_frame(org, t0, t1)
    history = _pairs_with_arr_before(org, t0)
    history_accounts = history.get_level_values("account").to_numpy()
    history_products = history.get_level_values("product").to_numpy()
    if level == "parent":
        unit_of = _unit_map(accounts, level)
        pairs["unit"] = unit_of.reindex(pairs["account"].to_numpy()).to_numpy().astype(np.int64)
        pairs = pairs.groupby(["unit", "product"], as_index=False).agg(a0=("a0", "sum"), a1=("a1", "sum"))
        history_units = unit_of.reindex(history_accounts).to_numpy()
        known = ~pd.isna(history_units)
        history_units, history_products = history_units[known].astype(np.int64), history_products[known]
    else:
        pairs["unit"] = pairs["account"]
        history_units = history_accounts
    earlier_pairs = pd.MultiIndex.from_arrays([history_units, history_products])
    pairs["before"] = pd.MultiIndex.from_arrays([pairs["unit"].to_numpy(), pairs["product"].to_numpy()]).isin(
        earlier_pairs
    )
    units = pairs.groupby("unit").agg(a0=("a0", "sum"), a1=("a1", "sum"))
    units["before"] = units.index.isin(pd.Index(history_units))
    catalog = {
        pk: (sku, line or None)
        for pk, sku, line in Product.objects.for_org(_org_id(org)).values_list("id", "sku", "product_line")
    }
    lines = {pk: line for pk, (_sku, line) in catalog.items()}
    # A (unit, product line) had ARR before t0 when any product of that line did (the product itself may
    # be gone now): map the earlier pairs to lines too.
    pairs["line"] = pairs["product"].map(lines)
    earlier_lines = pd.MultiIndex.from_arrays([history_units, pd.Series(history_products).map(lines).to_numpy()])
    pairs["line_before"] = pd.MultiIndex.from_arrays([pairs["unit"].to_numpy(), pairs["line"].to_numpy()]).isin(
        earlier_lines
    )
    pairs["product"] = pairs["product"].map({pk: sku for pk, (sku, _line) in catalog.items()})
    return _Retention(pairs=pairs, units=units)


def retention(
    org: Organization | int, start: date, end: date, *, group_by: str | None = None, level: str = "account"
) -> dict[str, Any]:
    """Retention over ``[start, end]`` exactly as spec §4 defines it (see the module docstring).

    Returns ``start_arr``, ``new``, ``reactivation``, ``expansion``, ``contraction``, ``churn``,
    ``end_arr`` (``Decimal``), ``grr``, ``nrr``, ``logo_retention`` (``Decimal`` to 4 places or
    ``None`` for an empty cohort), ``accounts_start``, ``accounts_retained`` and ``groups``.

    The top level never depends on ``group_by``. Groups:

    * ``product`` — over (unit, product) pairs, keyed by SKU: dropping a product churns that pair
      while the logo stays; ``accounts_*`` count pairs (the accounts holding the product).
    * ``product_line`` — the same over (unit, product line) pairs, keyed by the product's line.
    * ``segment`` — every segment the unit matches *now* (segments may overlap, so an account can
      count in several groups and the groups need not add up to the top level), ordered by position;
      units matching no segment form a last group with key ``None``.
    * ``touch_model``, ``industry``, ``region``, ``owner`` (the owner's e-mail), ``cohort`` (calendar
      year-quarter ``"2024-Q3"`` of ``customer_since``, or of the first contract's start when unset) —
      the unit's current attribute (for ``level="parent"`` the top-level account's); these partition
      the units, so groups sum to the top level. An empty attribute is the group ``None``.
    """
    if group_by is not None and group_by not in GROUP_BY_CHOICES:
        raise ValueError(f"unknown group_by {group_by!r}")
    if level not in LEVEL_CHOICES:
        raise ValueError(f"unknown level {level!r}")
    if end < start:
        raise ValueError("end is before start")
    attribute = "customer_since" if group_by == "cohort" else group_by
    accounts = (
        _accounts_frame(org, [attribute] if attribute in ATTRIBUTE_COLUMNS else [])
        if level == "parent" or attribute in ATTRIBUTE_COLUMNS
        else None
    )
    frames = _retention_frames(org, start, end, level, accounts)
    unit_components = _components(frames.units)
    result = _finish(unit_components.sum().to_dict()) if len(unit_components) else _finish(_empty_totals())
    groups: list[dict[str, Any]] = []
    if group_by == "product":
        pair_components = _components(frames.pairs)
        membership = pd.DataFrame(
            {"unit": frames.pairs.index.to_numpy(), "key": frames.pairs["product"].to_numpy(), "order": 0}
        )
        groups = _group_rows(pair_components, membership)
    elif group_by == "product_line":
        # Product wallet retention by line: (unit, line) pairs, so dropping every product of a line churns
        # that line's ARR while the logo stays. Products without a line group under ``None``.
        by_line = (
            frames.pairs.assign(line=frames.pairs["line"].fillna("\uffff"))
            .groupby(["unit", "line"], sort=False)
            .agg(a0=("a0", "sum"), a1=("a1", "sum"), before=("line_before", "any"))
            .reset_index()
        )
        membership = pd.DataFrame(
            {"unit": by_line.index.to_numpy(), "key": by_line["line"].replace("\uffff", None).to_numpy(), "order": 0}
        )
        groups = _group_rows(_components(by_line), membership)
    elif group_by == "segment":
        membership = _segment_membership(org, frames.units.index)
        unmatched = frames.units.index.difference(pd.Index(membership["unit"].unique()))
        # Units matching no segment form the last group, ``None``, so that every unit is somewhere.
        rest = pd.DataFrame({"unit": unmatched.to_numpy(), "key": None, "order": 1_000_000})
        groups = _group_rows(unit_components, pd.concat([membership, rest], ignore_index=True))
    elif group_by is not None:
        groups = _group_rows(unit_components, _attribute_keys(org, accounts, frames.units.index, group_by))
    result["groups"] = groups
    return result


def _empty_totals() -> dict[str, int]:
    return dict.fromkeys((*MONEY_FIELDS, "accounts_start", "accounts_retained"), 0)


# --- Contract-level frame (bridge, cohorts) ------------------------------------------------------------


def _contract_frame(org: Organization | int, level: str = "account", accounts: pd.DataFrame | None = None):
    """One row per non-cancelled contract: unit, start, end, ARR in cents (Σ lines). One query."""
    rows = _plain_rows(
        _live_lines(org)
        .order_by()
        .values("contract_id", "contract__account_id", "contract__start_date", "contract__end_date")
        .annotate(total=_money_sum())
        .values_list("contract__account_id", "contract__start_date", "contract__end_date", "total")
    )
    accounts_, starts, ends, cents = zip(*rows, strict=True) if rows else ((), (), (), ())
    frame = pd.DataFrame(
        {
            "account": np.array(accounts_, dtype=np.int64),
            "start": _days(starts),
            "end": _days(ends),
            "arr": np.array(cents, dtype=np.int64),
        }
    )
    if level == "parent" and len(frame):
        accounts = accounts if accounts is not None else _accounts_frame(org)
        frame["unit"] = _unit_map(accounts, level).reindex(frame["account"].to_numpy()).to_numpy().astype(np.int64)
    else:
        frame["unit"] = frame["account"]
    return frame


def _days(days: Iterable[date]) -> pd.DatetimeIndex:
    """Dates → datetime64 (through ordinals: ~20× faster than converting date objects one by one)."""
    ordinals = np.fromiter((day.toordinal() for day in days), dtype=np.int64)
    return pd.to_datetime((ordinals - date(1970, 1, 1).toordinal()).astype("datetime64[D]"))


def _arr_on(contracts: pd.DataFrame, day: date, memo: dict[date, pd.Series] | None = None) -> pd.Series:
    """ARR in cents per unit on ``day`` from the contract frame (vectorised).

    ``memo`` (a dict owned by the caller, for one contract frame) keeps each day's result: the cohort
    table and the monthly bridge ask for the same calendar days many times (every cohort reads the
    same quarter ends), and each answer is a scan of every contract."""
    if memo is not None and day in memo:
        return memo[day]
    stamp = pd.Timestamp(day)
    live = contracts[(contracts["start"] <= stamp) & (contracts["end"] >= stamp)]
    result = live.groupby("unit")["arr"].sum()
    if memo is not None:
        memo[day] = result
    return result


def _fill_arr_memo(contracts: pd.DataFrame, days: Iterable[date], memo: dict[date, pd.Series]) -> None:
    """:func:`_arr_on` for many days in one pass (a contracts × days matrix, one groupby), into ``memo``.
    Each day's answer is exactly :func:`_arr_on`'s: the units with a live contract that day, their ARR."""
    todo = sorted({day for day in days if day not in memo})
    if not todo:
        return
    if contracts.empty:
        memo.update({day: _arr_on(contracts, day) for day in todo})
        return
    stamps = pd.to_datetime(todo).to_numpy()
    starts = contracts["start"].to_numpy()[:, None]
    ends = contracts["end"].to_numpy()[:, None]
    live = (starts <= stamps[None, :]) & (ends >= stamps[None, :])
    units = contracts["unit"].to_numpy()
    sums = pd.DataFrame(live * contracts["arr"].to_numpy()[:, None], columns=range(len(todo))).groupby(units).sum()
    present = pd.DataFrame(live, columns=range(len(todo))).groupby(units).any()
    for i, day in enumerate(todo):
        column = sums[i][present[i]].astype(np.int64)
        column.index.name = "unit"
        column.name = "arr"
        memo[day] = column


def _first_arr_day(contracts: pd.DataFrame) -> pd.Series:
    """Per unit, the first day on which it had ARR > 0 (the earliest start of a contract with ARR)."""
    return contracts[contracts["arr"] > 0].groupby("unit")["start"].min()


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def arr_bridge(org: Organization | int, start: date, end: date, *, level: str = "account") -> dict[str, Any]:
    """The ARR bridge per month: ``start → new → expansion → contraction → churn → end``.

    Each row is a retention period from the month's first day (``start`` for the first row) to the
    **next month's first day** (``end`` for the last row), so that rows chain exactly — a row's
    ``end_arr`` is the next row's ``start_arr`` — and a change between a month's last day and the
    next month's first day (a contract ending on the 31st without a successor) is counted in the
    month it ends rather than falling between two rows. The totals row is retention over the whole
    ``[start, end]`` (its churn is generally not the sum of the monthly churn: an account can
    contract in one month and expand in another)."""
    if end < start:
        raise ValueError("end is before start")
    contracts = _contract_frame(org, level)
    first_day = _first_arr_day(contracts)
    points = [start]
    cursor = _add_months(_month_start(start), 1)
    while cursor < end:
        points.append(cursor)
        cursor = _add_months(cursor, 1)
    points.append(end)
    months = []
    # A month's end is the next month's start: ARR on every boundary in one pass, as a units × days matrix
    # (0 where a unit holds nothing; such a unit adds nothing to any figure, so every unit can take part).
    memo: dict[date, pd.Series] = {}
    _fill_arr_memo(contracts, points, memo)
    matrix = pd.DataFrame({day: memo[day] for day in points}).fillna(0).astype(np.int64)
    held = {day: matrix[day].to_numpy() for day in points}
    first_days = first_day.reindex(matrix.index).to_numpy()

    def totals(t0: date, t1: date) -> dict[str, Any]:
        before = pd.notna(first_days) & (first_days < np.datetime64(t0))
        return _finish(_totals(held[t0], held[t1], before))

    for t0, t1 in zip(points, points[1:], strict=False):
        months.append({"month": f"{t0:%Y-%m}", "start": t0, "end": t1, **totals(t0, t1)})
    if len(points) == 1:  # start == end: one empty month
        months.append({"month": f"{start:%Y-%m}", "start": start, "end": end, **totals(start, end)})
    total = totals(start, end)
    return {"start": start, "end": end, "level": level, "months": months, "total": total}


COHORT_STEPS = {"quarter": 3, "month": 1}


def cohort_table(
    org: Organization | int,
    *,
    periods: int = 8,
    step: str = "quarter",
    today: date | None = None,
    level: str = "account",
) -> dict[str, Any]:
    """Customer-since cohorts (calendar quarters) × quarters (or months) since joining → retained ARR
    and logos.

    Cohort = units whose ``customer_since`` (or, when unset, first contract start) falls in the quarter.
    Its base is the units of the cohort with ARR > 0 on the cohort quarter's **last day**, and their
    ARR then. Column ``k`` (0 … ``periods``) is the ``k``-th quarter (``step="month"``: month) after:
    ``arr_pct`` = Σ their ARR on that period's last day / base ARR (NRR-style: expansion counts, new
    accounts never join a cohort), ``logo_pct`` = share of them still with ARR > 0. Periods ending after
    ``today`` are left out.
    """
    if step not in COHORT_STEPS:
        raise ValueError(f"unknown step {step!r}")
    from django.utils import timezone

    today = today or timezone.localdate()
    accounts = _accounts_frame(org, ["customer_since"])
    contracts = _contract_frame(org, level, accounts)
    unit_of = _unit_map(accounts, level)
    units = pd.Index(sorted(set(unit_of.to_numpy())))
    since = accounts["customer_since"].reindex(units)
    missing = since.isna()
    if missing.any():
        first = contracts.groupby("unit")["start"].min().map(lambda ts: ts.date())
        since[missing] = first.reindex(since.index[missing]).to_numpy()
    since = since.dropna()
    cohorts = []
    groups = list(since.groupby(since.map(_quarter_key)))

    def period_ends(members: pd.Series) -> list[date]:
        first_day = members.iloc[0]
        quarter_first = date(first_day.year, 3 * ((first_day.month - 1) // 3) + 1, 1)
        return [_add_months(quarter_first, 3 + COHORT_STEPS[step] * k) - timedelta(days=1) for k in range(periods + 1)]

    # Every cohort reads the same calendar period ends: ARR on each of them, computed once, in one pass,
    # as a units × days matrix (0 where a unit has no ARR that day).
    memo: dict[date, pd.Series] = {}
    days = sorted({day for _, members in groups for day in period_ends(members) if day <= today})
    _fill_arr_memo(contracts, days, memo)
    matrix = pd.DataFrame({day: memo[day] for day in days}).fillna(0).astype(np.int64) if days else pd.DataFrame()
    column = {day: i for i, day in enumerate(days)}
    for key, members in groups:
        quarter_ends = [day for day in period_ends(members) if day <= today]
        if not quarter_ends:
            continue
        held = matrix.reindex(members.index, fill_value=0).to_numpy()[:, [column[d] for d in quarter_ends]]
        held = held[held[:, 0] > 0]  # the base: members with ARR on the cohort quarter's last day
        if not len(held):
            continue
        base_arr = int(held[:, 0].sum())
        row = {"cohort": key, "accounts": len(held), "start_arr": money(base_arr), "periods": []}
        for k, quarter_end in enumerate(quarter_ends):
            arr, kept = int(held[:, k].sum()), int((held[:, k] > 0).sum())
            row["periods"].append(
                {
                    "period": k,
                    "date": quarter_end,
                    "arr": money(arr),
                    "arr_pct": ratio(arr, base_arr),
                    "accounts": kept,
                    "logo_pct": ratio(kept, len(held)),
                }
            )
        cohorts.append(row)
    return {"period": step, "periods": periods, "level": level, "cohorts": cohorts}


# --- Renewal-based views ----------------------------------------------------------------------------


WON_OUTCOMES = (RenewalOutcome.RENEWED, RenewalOutcome.EXPANDED, RenewalOutcome.CONTRACTED)


def _renewal_frame(org: Organization | int, start: date, end: date) -> pd.DataFrame:
    rows = (
        Renewal.objects.for_org(_org_id(org))
        .filter(due_date__gte=start, due_date__lte=end)
        .order_by()
        .values_list(
            "id",
            "account_id",
            "due_date",
            "current_arr",
            "forecast_arr",
            "forecast_category",
            "probability",
            "outcome",
            "new_arr",
            "csm_call",
            "csm_call_arr",
            "final_call",
            "final_call_arr",
            "churn_reason_id",
            "avoidable",
        )
    )
    columns = [
        "id", "account", "due_date", "current", "forecast", "category", "probability", "outcome", "new",
        "csm_call", "csm_call_arr", "final_call", "final_call_arr", "reason", "avoidable",
    ]  # fmt: skip
    records = []
    for row in rows:
        row = list(row)
        for index in (3, 4, 8):
            row[index] = _cents(row[index])
        for index in (10, 12):
            row[index] = None if row[index] is None else _cents(row[index])
        records.append(row)
    frame = pd.DataFrame(records, columns=columns)
    for name in ("current", "forecast", "new"):
        frame[name] = frame[name].astype("int64")
    frame["closed"] = frame["outcome"].fillna("") != ""
    return frame


def renewal_rate(org: Organization | int, start: date, end: date) -> dict[str, Any]:
    """Renewals due in ``[start, end]`` (by due date): count, ARR due, won / lost / open, and the dollar
    renewal rate = Σ min(new ARR, prior ARR) / Σ prior ARR over the **closed** renewals due in the period.

    Open renewals are not in the rate (their outcome is unknown); they are reported as ``open`` and
    ``open_arr``, and ``renewal_rate_if_open_lost`` shows the floor if none of them renewed. Won =
    outcome renewed, expanded or contracted; lost = churned. ``logo_renewal_rate`` = won / closed."""
    frame = _renewal_frame(org, start, end)
    closed = frame[frame["closed"]]
    won = closed[closed["outcome"].isin(WON_OUTCOMES)]
    lost = closed[closed["outcome"] == RenewalOutcome.CHURNED]
    open_ = frame[~frame["closed"]]
    kept = np.minimum(closed["new"].to_numpy(), closed["current"].to_numpy()).sum() if len(closed) else 0
    prior = int(closed["current"].sum())
    return {
        "start": start,
        "end": end,
        "renewals": len(frame),
        "arr_due": money(frame["current"].sum()),
        "won": len(won),
        "lost": len(lost),
        "open": len(open_),
        "open_arr": money(open_["current"].sum()),
        "closed_arr_due": money(prior),
        "renewed_arr": money(kept),
        "new_arr": money(closed["new"].sum()),
        "lost_arr": money(prior - kept),
        "renewal_rate": ratio(kept, prior),
        "renewal_rate_if_open_lost": ratio(kept, frame["current"].sum()),
        "logo_renewal_rate": ratio(len(won), len(closed)),
    }


def _unit_group_keys(org: Organization | int, account_ids: Iterable[int], by: str) -> pd.DataFrame:
    index = pd.Index(sorted(set(account_ids)), dtype="int64")
    if by == "segment":
        return _segment_membership(org, index)
    return _attribute_keys(org, _accounts_frame(org, [by]), index, by)


def churn_reasons(org: Organization | int, start: date, end: date, *, by: str = "segment") -> dict[str, Any]:
    """Losses of the renewals due in ``[start, end]``: lost ARR and count per churn reason, split
    avoidable / unavoidable, and the same per group (``by`` = segment, touch_model, industry, region,
    owner). A loss is a closed renewal with outcome churned (lost ARR = prior ARR) or contracted (lost
    ARR = prior − new). A loss without a reason is reported under reason ``None`` ("unspecified")."""
    if by not in CHURN_GROUP_CHOICES:
        raise ValueError(f"unknown by {by!r}")
    frame = _renewal_frame(org, start, end)
    losses = frame[frame["outcome"].isin([RenewalOutcome.CHURNED, RenewalOutcome.CONTRACTED])].copy()
    losses["lost"] = (losses["current"] - np.where(losses["outcome"] == RenewalOutcome.CHURNED, 0, losses["new"])).clip(
        lower=0
    )
    reasons = {r.pk: r for r in ChurnReason.objects.for_org(_org_id(org)).order_by("position", "label")}
    losses["reason_key"] = losses["reason"].map(lambda pk: -1 if pk is None or pd.isna(pk) else int(pk))
    # The avoidable flag copied at closing wins; otherwise the reason's current flag.
    losses["is_avoidable"] = [
        bool(a) if a is not None and not pd.isna(a) else (reasons[k].avoidable if k in reasons else None)
        for a, k in zip(losses["avoidable"], losses["reason_key"], strict=False)
    ]

    def by_reason(part: pd.DataFrame) -> list[dict[str, Any]]:
        # Plain Python over the losses (a few per reason): a grouped aggregate with a Python lambda cost more.
        sums: dict[int, list[int]] = {}
        for key, lost, outcome in zip(part["reason_key"], part["lost"], part["outcome"], strict=True):
            entry = sums.setdefault(int(key), [0, 0, 0])  # count, lost cents, churned
            entry[0] += 1
            entry[1] += int(lost)
            entry[2] += outcome == RenewalOutcome.CHURNED
        order = {pk: i for i, pk in enumerate(reasons)}
        out = []
        for key, (count, lost, churned) in sorted(sums.items(), key=lambda kv: order.get(kv[0], len(order))):
            reason = reasons.get(key)
            out.append(
                {
                    "reason": reason.code if reason else None,
                    "label": reason.label if reason else "Unspecified",
                    "avoidable": reason.avoidable if reason else None,
                    "count": count,
                    "churned": churned,
                    "contracted": count - churned,
                    "lost_arr": money(lost),
                }
            )
        return out

    def split(part: pd.DataFrame, flag: bool | None) -> dict[str, Any]:
        def matches(value: Any) -> bool:
            unknown = value is None or pd.isna(value)
            return unknown if flag is None else (not unknown and bool(value) == flag)

        chosen = part.loc[np.array([matches(v) for v in part["is_avoidable"]], dtype=bool)]
        return {"count": len(chosen), "lost_arr": money(chosen["lost"].sum())}

    result: dict[str, Any] = {
        "start": start,
        "end": end,
        "by": by,
        "count": len(losses),
        "lost_arr": money(losses["lost"].sum()),
        "avoidable": split(losses, True),
        "unavoidable": split(losses, False),
        "unclassified": split(losses, None),
        "reasons": by_reason(losses),
        "groups": [],
    }
    if by != "reason" and len(losses):
        membership = _unit_group_keys(org, losses["account"], by)
        joined = losses.merge(membership, left_on="account", right_on="unit")
        joined["_k"] = joined["key"].map(lambda k: "\uffff" if k is None or pd.isna(k) else k)
        for (_order, key), part in joined.groupby(["order", "_k"], sort=True):
            result["groups"].append(
                {
                    "key": None if key == "\uffff" else key,
                    "count": len(part),
                    "lost_arr": money(part["lost"].sum()),
                    "avoidable": split(part, True),
                    "unavoidable": split(part, False),
                    "reasons": by_reason(part),
                }
            )
    return result


def fiscal_quarter(org: Organization, day: date) -> tuple[date, date, str]:
    """The fiscal quarter containing ``day``: (first day, last day, label ``FY2027-Q1``). The fiscal year
    is named by the calendar year in which it ends (a year starting in February 2026 is FY2027)."""
    start_month = org.fiscal_year_start_month or 1
    offset = (day.month - start_month) % 12
    quarter_index = offset // 3
    months_back = offset - quarter_index * 3
    first = _add_months(day.replace(day=1), -months_back)
    last = _add_months(first, 3) - timedelta(days=1)
    fy_first = _add_months(day.replace(day=1), -offset)
    fiscal_year = fy_first.year + (1 if start_month != 1 else 0)
    return first, last, f"FY{fiscal_year}-Q{quarter_index + 1}"


def _quarter_forecast(
    frame: pd.DataFrame, target: RenewalTarget | None, first: date, last: date, label: str
) -> dict[str, Any]:
    """One quarter of :func:`forecast` from the renewals due in it (``frame``) and its target."""
    closed, open_ = frame[frame["closed"]], frame[~frame["closed"]]
    due = int(frame["current"].sum())
    kept_closed = int(np.minimum(closed["new"], closed["current"]).sum()) if len(closed) else 0
    prob = open_["probability"].to_numpy(dtype=np.int64)
    # Weighted in cents, rounded half-up once per renewal: forecast × probability / 100. Every figure of
    # the forecast (each category's expected ARR, the expected total) sums these same per-renewal cents,
    # so the categories add up to the expected ARR exactly.
    weighted = (open_["forecast"].to_numpy(dtype=np.int64) * prob * 2 + 100) // 200 if len(open_) else np.zeros(0)
    weighted_open = int(weighted.sum())
    gross_open = (
        ((np.minimum(open_["forecast"].to_numpy(), open_["current"].to_numpy()) * prob * 2 + 100) // 200).sum()
        if len(open_)
        else 0
    )
    categories = []
    for category in ForecastCategory.values:
        mask = (open_["category"] == category).to_numpy()
        part = open_[mask]
        categories.append(
            {
                "category": category,
                "count": len(part),
                "arr_due": money(part["current"].sum()),
                "forecast_arr": money(part["forecast"].sum()),
                "expected_arr": money(int(weighted[mask].sum()) if len(open_) else 0),
            }
        )
    expected = int(closed["new"].sum()) + weighted_open
    return {
        "quarter": label,
        "start": first,
        "end": last,
        "renewals": len(frame),
        "arr_due": money(due),
        "open": {"count": len(open_), "arr_due": money(open_["current"].sum()),
                 "forecast_arr": money(open_["forecast"].sum()), "weighted_arr": money(weighted_open)},
        "closed": {"count": len(closed), "arr_due": money(closed["current"].sum()),
                   "new_arr": money(closed["new"].sum()), "renewed_arr": money(kept_closed)},
        "by_category": categories,
        "expected_arr": money(expected),
        "expected_grr": ratio(kept_closed + int(gross_open), due),
        "expected_nrr": ratio(expected, due),
        "target_arr": None if target is None or target.target_arr is None else target.target_arr,
        "target_grr": None if target is None or target.target_grr is None else target.target_grr,
        "gap_to_target": None if target is None or target.target_arr is None
        else money(expected - _cents(target.target_arr)),
    }  # fmt: skip


def forecast(org: Organization | int, *, today: date | None = None) -> dict[str, Any]:
    """Renewal forecast for the current and the next fiscal quarter (``fiscal_year_start_month``).

    Per quarter, over the renewals due in it: ARR due; open vs closed; for open renewals the forecast
    per category (commit / likely / at_risk / churn / upside) with its ``expected_arr`` = Σ forecast ARR ×
    probability of the category's renewals, and the weighted ARR (the same over every open renewal);
    ``expected_arr`` = closed new ARR + weighted open ARR (= closed + Σ the categories' expected ARR);
    ``expected_nrr`` = expected / ARR due; ``expected_grr`` = (Σ closed min(new, prior) + Σ open min(forecast, prior) ×
    probability) / ARR due; the quarter's :class:`RenewalTarget` and the gap to it."""
    from django.utils import timezone

    organization = _organization(org)
    today = today or timezone.localdate()
    first, last, label = fiscal_quarter(organization, today)
    next_first, next_last, next_label = fiscal_quarter(organization, last + timedelta(days=1))
    # Two queries for both quarters: their renewals, their targets.
    frame = _renewal_frame(organization, first, next_last)
    due = frame["due_date"].to_numpy()
    targets = {
        t.quarter_start: t
        for t in RenewalTarget.objects.for_org(organization).filter(quarter_start__in=[first, next_first])
    }
    return {
        "today": today,
        "quarters": [
            _quarter_forecast(frame[(due >= a) & (due <= b)], targets.get(a), a, b, name)
            for a, b, name in ((first, last, label), (next_first, next_last, next_label))
        ],
    }


#: Which outcomes make a call right: commit / likely = the customer renews (any outcome but churn);
#: upside = it expands; at_risk = it churns or contracts; churn = it churns.
CALL_HITS: dict[str, set[str]] = {
    ForecastCategory.COMMIT: set(WON_OUTCOMES),
    ForecastCategory.LIKELY: set(WON_OUTCOMES),
    ForecastCategory.UPSIDE: {RenewalOutcome.EXPANDED},
    ForecastCategory.AT_RISK: {RenewalOutcome.CHURNED, RenewalOutcome.CONTRACTED},
    ForecastCategory.CHURN: {RenewalOutcome.CHURNED},
}


def _accuracy(rows: list[tuple[str, int, str, int]]) -> dict[str, Any]:
    """``rows`` = (call, called ARR in cents, outcome, new ARR in cents) of closed renewals carrying a call.
    Plain Python: a quarter holds few of them, and per-row pandas work cost more than it saved."""
    if not rows:
        return {"renewals": 0, "called_arr": money(0), "actual_arr": money(0), "error_arr": money(0),
                "error_pct": None, "hit_rate": None, "by_category": []}  # fmt: skip
    called_arr = sum(r[1] for r in rows)
    actual = sum(r[3] for r in rows)
    hits = sum(1 for call, _, outcome, _ in rows if outcome in CALL_HITS.get(call, set()))
    categories = []
    for category in ForecastCategory.values:
        part = [r for r in rows if r[0] == category]
        if not part:
            continue
        categories.append(
            {
                "category": category,
                "count": len(part),
                "hits": sum(1 for _, _, outcome, _ in part if outcome in CALL_HITS[category]),
                "called_arr": money(sum(r[1] for r in part)),
                "actual_arr": money(sum(r[3] for r in part)),
            }
        )
    return {
        "renewals": len(rows),
        "called_arr": money(called_arr),
        "actual_arr": money(actual),
        "error_arr": money(called_arr - actual),
        "error_pct": ratio(called_arr - actual, actual),
        "hit_rate": ratio(hits, len(rows)),
        "by_category": categories,
    }


def _calls(frame: pd.DataFrame, call: str, call_arr: str) -> list[tuple[str, int, str, int]]:
    """The closed renewals of ``frame`` that carry ``call`` with its ARR, as :func:`_accuracy` rows."""
    out = []
    for value, amount, outcome, new in zip(frame[call], frame[call_arr], frame["outcome"], frame["new"], strict=True):
        if value and amount is not None and not (isinstance(amount, float) and np.isnan(amount)):
            out.append((value, int(amount), outcome, int(new)))
    return out


def forecast_accuracy(org: Organization | int, *, quarters: int = 4, today: date | None = None) -> dict[str, Any]:
    """Forecast accuracy over the last ``quarters`` **completed** fiscal quarters: for the closed
    renewals due in each that carry a call, the CSM call (``csm_call``, ``csm_call_arr``) and the final
    call against the outcome (``new_arr``): ARR called vs actual, ``error_arr`` = called − actual,
    ``error_pct`` = (called − actual) / actual, and the category hit rate (see :data:`CALL_HITS`)."""
    from django.utils import timezone

    organization = _organization(org)
    today = today or timezone.localdate()
    current_first, _, _ = fiscal_quarter(organization, today)
    spans = []
    cursor_last = current_first - timedelta(days=1)
    for _ in range(quarters):
        first, last, label = fiscal_quarter(organization, cursor_last)
        spans.append((first, last, label))
        cursor_last = first - timedelta(days=1)
    spans.reverse()
    # One read of every renewal due over the whole span, split per quarter here.
    frame = _renewal_frame(organization, spans[0][0], spans[-1][1])
    frame = frame[frame["closed"]]
    due = frame["due_date"].to_numpy()
    rows = []
    for first, last, label in spans:
        part = frame[(due >= first) & (due <= last)]
        rows.append(
            {
                "quarter": label,
                "start": first,
                "end": last,
                "csm_call": _accuracy(_calls(part, "csm_call", "csm_call_arr")),
                "final_call": _accuracy(_calls(part, "final_call", "final_call_arr")),
            }
        )
    return {"today": today, "quarters": rows}
