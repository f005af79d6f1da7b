"""Lifetime value, CAC payback and product vs account wallet retention (issue 15, item 4).

Definitions (exact, see ``docs/metrics.md``, "Lifetime value and payback"), all as of one day ``as_of``:

* **Live account**: ARR on ``as_of`` > 0 (``renewals.analytics.arr_at``). Only live accounts get an LTV: a
  churned account's story is told by the churn figures.
* **Lifetime revenue to date** of an account = Σ over its non-cancelled contracts with
  ``start_date ≤ as_of`` of ``contract ARR × days elapsed / 365``, where days elapsed =
  ``min(end_date, as_of) − start_date + 1`` (both ends inclusive, like ARR), rounded half-up to the cent
  per contract.
* **Observed annual logo churn** of a group = ``1 − logo_retention`` of ``renewals.analytics.retention`` over
  ``[as_of − 1 year, as_of]`` (the org's, or the segment's group). A segment whose cohort has fewer than
  :data:`MIN_COHORT` accounts uses the organization's rate (too few logos to measure).
* **Expected lifetime (years)** = ``1 / churn``, rounded half-up to 2 places and capped at
  :data:`MAX_LIFETIME_YEARS` (no churn observed → the cap); no cohort at all → unknown (``None``).
* An account's **home segment** is the first segment it matches in (position, name, id) order; its lifetime
  is its home segment's (the organization's when it matches none).
* **LTV** = ARR on ``as_of`` × gross margin × expected lifetime, rounded half-up to the cent.
* **CAC** = acquisition + onboarding cost: the account's own ``AcquisitionCost`` row, else the row of the
  first segment it matches, in the same order, that has one; none → unknown.
* **LTV net of CAC** = LTV − CAC; **LTV:CAC** = LTV / CAC (4 places); **payback months** = CAC / MRR with
  MRR = ARR / 12 (1 place); **recovered** when lifetime revenue to date ≥ CAC, else the **months still to
  recover** = (CAC − lifetime revenue) / MRR.
* Group rows (a segment, the total) are **sums of their accounts' rows**, and their ratios ratios of those
  sums over the accounts with a CAC. Segments may overlap, so segments need not add up to the total.

Money is integer cents end to end; the lifetime is carried in hundredths of a year and the gross margin in
basis points, so LTV is exact integer arithmetic (``int64``), vectorised in pandas. No per-account query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd
from dateutil.relativedelta import relativedelta
from django.db.models import Sum

from accounts.choices import ContractStatus
from accounts.models import Account, ContractLine, Organization, Product, Segment
from renewals import analytics as retention_analytics

from .models import AcquisitionCost

__all__ = [
    "DEFAULT_GROSS_MARGIN",
    "FIRST_DAY",
    "LAST_DAY",
    "MAX_LIFETIME_YEARS",
    "MIN_COHORT",
    "PERIOD_CHOICES",
    "LifetimeValue",
    "lifetime_value",
    "product_retention",
]

#: The cap on an expected lifetime: with no churn observed, 1 / churn is infinite. Ten years is the
#: seeds' upper reading of a SaaS customer's life ("7 years minimum, 10+ likely", digest §LTV).
MAX_LIFETIME_YEARS = Decimal("10")
#: A segment's own churn is used only when its cohort (accounts live a year before) has this many accounts.
MIN_COHORT = 5
#: Organizations set no gross margin (there is no organization setting for it): LTV is revenue LTV.
DEFAULT_GROSS_MARGIN = Decimal("1")
PERIOD_CHOICES = ("month", "quarter", "year")
#: Days the figures can be asked for: a year (or twelve periods) of history before them stays a valid date.
FIRST_DAY, LAST_DAY = date(1901, 1, 1), date(9998, 12, 31)
DAYS_PER_YEAR = 365
CENT = Decimal("0.01")
RATIO = Decimal("0.0001")
MONTHS = Decimal("0.1")


def _org_id(org: Organization | int) -> int:
    return org if isinstance(org, int) else org.pk


def _cents(value: Decimal | None) -> int:
    return 0 if value is None else int((Decimal(value) * 100).to_integral_value(rounding=ROUND_HALF_UP))


def _money(cents: Any) -> Decimal | None:
    if cents is None or pd.isna(cents):
        return None
    return (Decimal(int(cents)) / 100).quantize(CENT)


def _ratio(numerator: Any, denominator: Any, places: Decimal = RATIO) -> Decimal | None:
    if denominator is None or pd.isna(denominator) or not int(denominator) or numerator is None or pd.isna(numerator):
        return None
    return (Decimal(int(numerator)) / Decimal(int(denominator))).quantize(places, rounding=ROUND_HALF_UP)


def _div_half_up(numerator: np.ndarray, denominator: int) -> np.ndarray:
    """Non-negative integer division rounded half-up, vectorised (exact: no float)."""
    return (numerator * 2 + denominator) // (denominator * 2)


def _year_before(day: date) -> date:
    return day - relativedelta(years=1)


# --- Lifetime (from observed retention) -----------------------------------------------------------------


@dataclass(frozen=True)
class Lifetime:
    """The observed annual logo churn of a group and the expected lifetime derived from it."""

    churn: Decimal | None  # 1 − logo retention over the trailing year, 4 places
    cohort: int  # accounts live at the window's start
    years: Decimal | None  # expected lifetime, 2 places, capped
    source: str  # "segment" (its own cohort), "organization" (the org's), "none"


def _lifetime(logo_retention: Decimal | None, cohort: int, source: str) -> Lifetime:
    if logo_retention is None or not cohort:
        return Lifetime(None, cohort, None, "none")
    churn = (Decimal(1) - logo_retention).quantize(RATIO)
    if churn <= 0:
        return Lifetime(churn, cohort, MAX_LIFETIME_YEARS, source)
    years = min(MAX_LIFETIME_YEARS, (Decimal(1) / churn).quantize(CENT, rounding=ROUND_HALF_UP))
    return Lifetime(churn, cohort, years, source)


def _lifetimes(org: Organization | int, as_of: date) -> tuple[Lifetime, dict[str, Lifetime]]:
    """The organization's lifetime and each segment's (by name), from retention over the trailing year
    (``renewals.analytics.retention``, grouped by segment: one call)."""
    figures = retention_analytics.retention(org, _year_before(as_of), as_of, group_by="segment")
    overall = _lifetime(figures["logo_retention"], figures["accounts_start"], "organization")
    segments: dict[str, Lifetime] = {}
    for group in figures["groups"]:
        if group["key"] is None:
            continue
        if group["accounts_start"] >= MIN_COHORT:
            segments[group["key"]] = _lifetime(group["logo_retention"], group["accounts_start"], "segment")
        else:
            segments[group["key"]] = Lifetime(overall.churn, overall.cohort, overall.years, overall.source)
    return overall, segments


# --- Frames ---------------------------------------------------------------------------------------------


def _contract_frame(org: Organization | int, as_of: date) -> pd.DataFrame:
    """One row per non-cancelled contract started on or before ``as_of``: account, start, end, ARR cents."""
    rows = (
        ContractLine.objects.for_org(_org_id(org))
        .exclude(contract__status=ContractStatus.CANCELLED)
        .filter(contract__start_date__lte=as_of)
        .order_by()
        .values("contract_id")
        .annotate(total=Sum("arr"))
        .values_list("contract_id", "contract__account_id", "contract__start_date", "contract__end_date", "total")
    )
    frame = pd.DataFrame(
        [(c, a, s, e, _cents(t)) for c, a, s, e, t in rows], columns=["contract", "account", "start", "end", "arr"]
    )
    return frame.astype({"contract": "int64", "account": "int64", "arr": "int64"})


def _lifetime_revenue(contracts: pd.DataFrame, as_of: date) -> pd.Series:
    """Cents of revenue earned to date per account: each contract's ARR × elapsed days / 365, half-up."""
    if contracts.empty:
        return pd.Series(dtype="int64")
    # Day arithmetic on datetime64[D] arrays: vectorised, no Python loop over the contracts.
    start = contracts["start"].to_numpy().astype("datetime64[D]")
    until = np.minimum(contracts["end"].to_numpy().astype("datetime64[D]"), np.datetime64(as_of, "D"))
    days = np.maximum((until - start).astype(np.int64) + 1, 0)
    earned = _div_half_up(contracts["arr"].to_numpy(dtype=np.int64) * days, DAYS_PER_YEAR)
    return pd.Series(earned, index=contracts["account"].to_numpy()).groupby(level=0).sum()


def _segments(org: Organization | int) -> pd.DataFrame:
    """The organization's segments in (position, name, id) order: id, name, rank."""
    rows = list(Segment.objects.for_org(_org_id(org)).order_by("position", "name", "id").values_list("id", "name"))
    frame = pd.DataFrame(rows, columns=["segment", "name"])
    frame["rank"] = np.arange(len(frame))
    return frame


def _membership(org: Organization | int, account_ids: Iterable[int], segments: pd.DataFrame) -> pd.DataFrame:
    """(account, segment id, rank) for every segment each account matches now: the same membership rule as
    ``retention(group_by="segment")`` (each segment's compiled rules), so lifetimes and members agree."""
    members = retention_analytics._segment_membership(org, account_ids)  # noqa: SLF001 - one rule, not two
    if members.empty or segments.empty:
        return pd.DataFrame({"account": [], "segment": [], "rank": []}, dtype="int64")
    joined = members.merge(segments, left_on="key", right_on="name", how="inner")
    return pd.DataFrame(
        {"account": joined["unit"].astype("int64"), "segment": joined["segment"], "rank": joined["rank"]}
    ).sort_values(["account", "rank"], kind="stable")


def _costs(org: Organization | int) -> tuple[dict[int, tuple[int, int, int]], dict[int, tuple[int, int, int]]]:
    """The cost rows as (acquisition, onboarding, row id) cents by account id and by segment id."""
    by_account: dict[int, tuple[int, int, int]] = {}
    by_segment: dict[int, tuple[int, int, int]] = {}
    rows = AcquisitionCost.objects.for_org(_org_id(org)).values_list(
        "id", "account_id", "segment_id", "acquisition_cost", "onboarding_cost"
    )
    for pk, account, segment, acquisition, onboarding in rows:
        value = (_cents(acquisition), _cents(onboarding), pk)
        if account is not None:
            by_account[account] = value
        else:
            by_segment[segment] = value
    return by_account, by_segment


# --- The result -----------------------------------------------------------------------------------------


@dataclass
class LifetimeValue:
    """Everything the API and the page show: the account frame (one row per live account, cents) and the
    lifetimes it was computed with."""

    as_of: date
    gross_margin: Decimal
    organization: Lifetime
    segment_lifetimes: dict[str, Lifetime]
    segments: pd.DataFrame  # segment, name, rank
    membership: pd.DataFrame  # account, segment, rank
    accounts: pd.DataFrame  # index account id; see _account_frame

    def account_rows(self, segment_id: int | None = None) -> list[dict[str, Any]]:
        """The account rows (all live accounts, or a segment's members), ordered by LTV descending, then id."""
        frame = self.accounts
        if segment_id is not None:
            frame = frame.loc[
                frame.index.isin(self.membership.loc[self.membership["segment"] == segment_id, "account"])
            ]
        frame = frame.sort_values(["ltv", "account_id"], ascending=[False, True], na_position="last")
        return [_account_row(row) for row in frame.to_dict("records")]

    def segment_rows(self) -> list[dict[str, Any]]:
        """One row per segment (in position order, segments without a live account included), then the
        live accounts matching no segment (``segment_id`` ``None``) when there are any."""
        rows = []
        for segment in self.segments.itertuples():
            members = self.membership.loc[self.membership["segment"] == segment.segment, "account"]
            frame = self.accounts.loc[self.accounts.index.isin(members)]
            lifetime = self.segment_lifetimes.get(segment.name, self.organization)
            rows.append(_group_row(frame, segment.segment, segment.name, lifetime))
        unmatched = self.accounts.loc[~self.accounts.index.isin(self.membership["account"])]
        if len(unmatched):
            rows.append(_group_row(unmatched, None, None, self.organization))
        return rows

    def total(self, segment_id: int | None = None) -> dict[str, Any]:
        """The organization's row (or one segment's, for a drill-down)."""
        if segment_id is None:
            return _group_row(self.accounts, None, None, self.organization)
        return next(row for row in self.segment_rows() if row["segment_id"] == segment_id)


def _account_row(row: dict[str, Any]) -> dict[str, Any]:
    nullable_int = ("cac", "acquisition_cost", "onboarding_cost", "ltv", "ltv_net_of_cac")
    out = {
        "account_id": int(row["account_id"]),
        "name": row["name"],
        "external_id": row["external_id"] or None,
        "home_segment_id": None if pd.isna(row["home_segment"]) else int(row["home_segment"]),
        "home_segment": row["home_segment_name"] or None,
        "customer_since": None if pd.isna(row["since"]) else row["since"],
        "months_as_customer": None if pd.isna(row["months"]) else int(row["months"]),
        "arr": _money(row["arr"]),
        "mrr": _money(_div_half_up(np.int64(row["arr"]), 12)),
        "lifetime_revenue": _money(row["lifetime_revenue"]),
        "annual_logo_churn": row["churn"],
        "expected_lifetime_years": row["years"],
        "cost_source": row["cost_source"] or None,
        "cost_segment_id": None if pd.isna(row["cost_segment"]) else int(row["cost_segment"]),
    }
    for name in nullable_int:
        out[name] = None if pd.isna(row[name]) else _money(row[name])
    cac, arr = row["cac"], row["arr"]
    out["ltv_to_cac"] = _ratio(row["ltv"], cac) if not pd.isna(cac) else None
    out["payback_months"] = _ratio(int(cac) * 12, arr, MONTHS) if not pd.isna(cac) else None
    if pd.isna(cac):
        out["cac_recovered"] = None
        out["months_to_recover"] = None
    else:
        recovered = int(row["lifetime_revenue"]) >= int(cac)
        out["cac_recovered"] = recovered
        left = 0 if recovered else int(cac) - int(row["lifetime_revenue"])
        out["months_to_recover"] = _ratio(left * 12, arr, MONTHS)
    return out


def _group_row(frame: pd.DataFrame, segment_id: int | None, name: str | None, lifetime: Lifetime) -> dict[str, Any]:
    costed = frame.loc[frame["cac"].notna()]
    cac = int(costed["cac"].sum()) if len(costed) else None
    ltv_known = frame.loc[frame["ltv"].notna()]
    ltv = int(ltv_known["ltv"].sum()) if len(ltv_known) else None
    # Over the accounts with a CAC; unknown when any of them has no LTV (no churn could be observed at all).
    costed_ltv = int(costed["ltv"].sum()) if len(costed) and not costed["ltv"].isna().any() else None
    costed_arr = int(costed["arr"].sum()) if len(costed) else 0
    recovered = int((costed["lifetime_revenue"] >= costed["cac"]).sum()) if len(costed) else 0
    count = len(frame)
    return {
        "segment_id": segment_id,
        "name": name,
        "accounts": count,
        "accounts_with_cost": len(costed),
        "accounts_recovered": recovered,
        "arr": _money(int(frame["arr"].sum())),
        "lifetime_revenue": _money(int(frame["lifetime_revenue"].sum())),
        "annual_logo_churn": lifetime.churn,
        "cohort_accounts": lifetime.cohort,
        "lifetime_source": lifetime.source,
        "expected_lifetime_years": lifetime.years,
        "ltv": _money(ltv) if ltv is not None else None,
        "ltv_per_account": _money(_div_half_up(np.int64(ltv), count)) if ltv is not None and count else None,
        "cac": _money(cac) if cac is not None else None,
        "cac_per_account": _money(_div_half_up(np.int64(cac), len(costed))) if cac is not None else None,
        "ltv_net_of_cac": _money(costed_ltv - cac) if cac is not None and costed_ltv is not None else None,
        "ltv_to_cac": _ratio(costed_ltv, cac) if cac is not None and costed_ltv is not None else None,
        "payback_months": _ratio(cac * 12, costed_arr, MONTHS) if cac is not None else None,
    }


def _months_between(start: Any, end: date) -> int | None:
    if start is None or pd.isna(start) or start > end:
        return None
    delta = relativedelta(end, start)
    return delta.years * 12 + delta.months


def lifetime_value(org: Organization | int, as_of: date, *, gross_margin: Decimal | None = None) -> LifetimeValue:
    """LTV, CAC and payback of every live account on ``as_of`` (module docstring: the definitions).

    ``gross_margin`` is a fraction in ``(0, 1]`` (default :data:`DEFAULT_GROSS_MARGIN`). A fixed number of
    queries whatever the number of accounts (plus one per segment, for membership)."""
    margin = DEFAULT_GROSS_MARGIN if gross_margin is None else Decimal(gross_margin)
    if not Decimal(0) < margin <= Decimal(1):
        raise ValueError("gross margin must be in (0, 1]")
    margin_bp = int((margin * 10_000).to_integral_value(rounding=ROUND_HALF_UP))
    overall, segment_lifetimes = _lifetimes(org, as_of)
    arr = retention_analytics.arr_at(org, as_of)
    live = pd.Index(arr.index.astype("int64"), name="account")
    contracts = _contract_frame(org, as_of)
    revenue = _lifetime_revenue(contracts, as_of).reindex(live, fill_value=0)
    # The first contract's start per account: sort once (datetime64), keep each account's first row.
    first_start = (
        contracts.assign(day=contracts["start"].to_numpy().astype("datetime64[D]"))
        .sort_values("day", kind="stable")
        .drop_duplicates("account")
        .set_index("account")["start"]
        if len(contracts)
        else pd.Series(dtype="object")
    )
    info = pd.DataFrame(
        list(
            Account.objects.for_org(_org_id(org))
            .filter(pk__in=list(map(int, live)))
            .values_list("id", "name", "external_id", "customer_since")
        )
        if len(live)
        else [],
        columns=["account", "name", "external_id", "customer_since"],
    ).set_index("account")
    segments = _segments(org)
    membership = _membership(org, list(map(int, live)), segments)
    names = dict(zip(segments["segment"], segments["name"], strict=True))
    home = membership.drop_duplicates("account").set_index("account")["segment"]
    by_account, by_segment = _costs(org)

    frame = pd.DataFrame(index=live)
    frame["account_id"] = live.to_numpy()
    frame["name"] = info["name"].reindex(live).to_numpy()
    frame["external_id"] = info["external_id"].reindex(live).to_numpy()
    since = info["customer_since"].reindex(live)
    missing = since.isna()
    since[missing] = first_start.reindex(since.index[missing]).to_numpy()
    frame["since"] = since.to_numpy()
    frame["months"] = [_months_between(s, as_of) for s in frame["since"]]
    frame["arr"] = np.array([_cents(v) for v in arr.reindex(live)], dtype=np.int64)
    frame["lifetime_revenue"] = revenue.to_numpy(dtype=np.int64)
    frame["home_segment"] = home.reindex(live).to_numpy()
    frame["home_segment_name"] = [names.get(s) if not pd.isna(s) else None for s in frame["home_segment"]]
    lifetimes = [segment_lifetimes.get(n, overall) if n else overall for n in frame["home_segment_name"]]
    frame["churn"] = [lt.churn for lt in lifetimes]
    frame["years"] = [lt.years for lt in lifetimes]
    hundredths = np.array([-1 if lt.years is None else int(lt.years * 100) for lt in lifetimes], dtype=np.int64)
    ltv = _div_half_up(frame["arr"].to_numpy() * margin_bp * np.maximum(hundredths, 0), 1_000_000)
    frame["ltv"] = pd.array(np.where(hundredths >= 0, ltv, 0), dtype="Int64")
    frame.loc[hundredths < 0, "ltv"] = pd.NA

    # CAC: the account's own row, else the first segment (position, name, id) it matches that has one.
    segment_cost = membership.loc[membership["segment"].isin(list(by_segment))].drop_duplicates("account")
    segment_cost = segment_cost.set_index("account")["segment"]
    acquisition, onboarding, source, cost_segment = [], [], [], []
    for account in live:
        own = by_account.get(int(account))
        seg = segment_cost.get(account)
        if own is not None:
            row, origin, via = own, "account", None
        elif seg is not None:
            row, origin, via = by_segment[int(seg)], "segment", int(seg)
        else:
            row, origin, via = None, None, None
        acquisition.append(None if row is None else row[0])
        onboarding.append(None if row is None else row[1])
        source.append(origin)
        cost_segment.append(via)
    frame["acquisition_cost"] = pd.array(acquisition, dtype="Int64")
    frame["onboarding_cost"] = pd.array(onboarding, dtype="Int64")
    frame["cac"] = frame["acquisition_cost"] + frame["onboarding_cost"]
    frame["cost_source"] = source
    frame["cost_segment"] = pd.array(cost_segment, dtype="Int64")
    frame["ltv_net_of_cac"] = frame["ltv"] - frame["cac"]
    return LifetimeValue(
        as_of=as_of,
        gross_margin=margin,
        organization=overall,
        segment_lifetimes=segment_lifetimes,
        segments=segments,
        membership=membership,
        accounts=frame,
    )


# --- Product vs account wallet retention ----------------------------------------------------------------


def _step(period: str) -> relativedelta:
    return {"month": relativedelta(months=1), "quarter": relativedelta(months=3), "year": relativedelta(years=1)}[
        period
    ]


def product_retention(
    org: Organization | int, *, end: date, periods: int = 4, period: str = "quarter"
) -> dict[str, Any]:
    """Account wallet retention beside each product's, for ``periods`` consecutive periods ending on ``end``.

    Each period ``[end − k·step, end − (k−1)·step]`` is ``renewals.analytics.retention`` over it, grouped by
    product: the account level (``grr``, ``nrr``, ``logo_retention`` of the accounts' whole wallet) and
    one row per product SKU (over (account, product) pairs: dropping a product churns that pair while the
    logo stays). ``masked`` flags a product whose NRR is below 100 % in a period where the accounts' NRR is
    at or above 100 %: the decline the account view hides (seed 004). Oldest period first."""
    if period not in PERIOD_CHOICES:
        raise ValueError(f"unknown period {period!r}")
    if not 1 <= periods <= 12:
        raise ValueError("periods must be between 1 and 12")
    step = _step(period)
    names = dict(Product.objects.for_org(_org_id(org)).values_list("sku", "name"))
    rows = []
    for k in range(periods, 0, -1):
        stop = end - step * (k - 1)
        start = end - step * k
        figures = retention_analytics.retention(org, start, stop, group_by="product")
        account = {key: figures[key] for key in _FIGURES}
        products = []
        for group in figures["groups"]:
            item = {"sku": group["key"], "name": names.get(group["key"], group["key"])}
            item.update({key: group[key] for key in _FIGURES})
            item["masked"] = bool(
                group["nrr"] is not None and account["nrr"] is not None and group["nrr"] < 1 <= account["nrr"]
            )
            products.append(item)
        rows.append({"start": start, "end": stop, "account": account, "products": products})
    return {"end": end, "period": period, "periods": rows}


_FIGURES = (
    "start_arr",
    "expansion",
    "contraction",
    "churn",
    "end_arr",
    "grr",
    "nrr",
    "logo_retention",
    "accounts_start",
    "accounts_retained",
)


def trailing_start(as_of: date) -> date:
    """The first day of the window observed churn is measured over (``as_of`` one year earlier)."""
    return _year_before(as_of)
