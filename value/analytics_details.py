"""The "know the details" figures (issue 15, item 5; seed 004): each answers one question a CS leader is
asked, over a period, with the accounts behind every number.

Every figure is a function ``figure(org, start, end) -> dict`` of the same shape, so that the API, the page
and the benchmark treat them alike:

* ``key``, ``question`` (the seed's words), ``start``, ``end``, ``definition`` (one sentence; the exact
  definitions are in ``docs/metrics.md``, "Know the details");
* ``headline``: a few measures ``{key, label, value, unit, drill}``;
* ``columns`` (``{key, label, unit}``) and ``rows`` (``{key, label, group, values: {column: value}, drill}``):
  the table, which is also what the chart draws (``chart``: the column drawn, or ``None``);
* ``drill``: drill key → the account ids behind it (ordered: largest ARR first where ARR means something),
  and ``drill_labels``: drill key → what the list is.

Units: ``count`` (int), ``money`` (``Decimal``, two places), ``ratio`` (``Decimal``, four places), ``pp`` (a
change of a ratio, ``Decimal``, four places: −0.0250 is 2.5 points down), ``text``. A ratio with an empty
denominator is ``None``.

How they compute: a few set-based queries each (aggregates in SQL over the organization's scoped
querysets), then vectorised pandas; no per-account query. ARR on a day is the rule of
:func:`renewals.analytics.arr_at` (the retention definition), read for two days in one query; renewal-based figures
take the renewals **closed** in the period (``closed_on`` in ``[start, end]``): the period in which the
answer became known. (``/api/v1/metrics/churn-reasons/`` and the renewal rate bucket by due date instead.)

Product retention at renewal (:func:`product_retention`) lives here; the LTV page's product wallet
retention is the period retention of ``renewals.analytics.retention(group_by="product")``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd
from dateutil.relativedelta import relativedelta
from django.db import connection
from django.db.models import BigIntegerField, BooleanField, DecimalField, ExpressionWrapper, F, Q, Sum, Value
from django.db.models.functions import Cast, Coalesce

from accounts.choices import ContractStatus, TouchModel
from accounts.models import Account, CapacityTarget, ContractLine, Organization, Product, Segment
from accounts.segments import SegmentRuleError, compile_rules
from accounts.services import capacity_by_csm
from renewals.analytics import money, ratio
from renewals.models import ChurnDriver, ChurnReason, Renewal, RenewalLineChange, RenewalOutcome

__all__ = [
    "FIGURES",
    "FIGURE_CHOICES",
    "QUESTIONS",
    "churn_by_group",
    "churn_drivers",
    "contract_growth",
    "csm_coverage",
    "figure",
    "first_renewal_discount",
    "long_term_size",
    "product_retention",
    "revenue_pareto",
]

RATIO = Decimal("0.0001")
CHURN_DIMENSIONS = (("industry", "Industry"), ("segment", "Segment"), ("region", "Region"),
                    ("touch_model", "Touch model"))  # fmt: skip
#: The seed's CSM ratios (seed 004, "Customer segmentation"), used where the organization set no target.
SEED_RATIOS = {
    TouchModel.HIGH: (5, 15),
    TouchModel.LOW: (20, 50),
    TouchModel.TECH: (None, None),
}
#: Seed 004: "High touch — ARR >= $500K".
HIGH_TOUCH_ARR_CENTS = 500_000 * 100
NONE_KEY = "(none)"


#: Figure key → its question: seed 004's words ("Know the details", and its churn-reason bullet); the Pareto and
#: the CSM coverage are the issue's questions, the latter after the seed's "the best way to determine CSM ratios
#: is not by number of customers but by contract value (ARR)".
QUESTIONS: dict[str, str] = {
    "contract-growth": "What percentage of customers increased their contract size?",
    "churn-by-group": "Which industry had the highest churn rate?",
    "product-retention": "What are our retention and growth rates by product?",
    "first-renewal-discount": "By what average amount did we reduce discounts at first renewal?",
    "long-term-size": (
        "What is the average contract size versus original contract size of all customers who have been "
        "customers more than three years?"
    ),
    "churn-drivers": (
        "What percent of churns were driven by poor adoption, what percent were driven by product fit issues or "
        "product gaps versus customer needs, and what percent were driven by factors that were hard to affect, "
        "such as merger, acquisition, restructuring, and bankruptcy?"
    ),
    "revenue-pareto": "How many accounts make 80 % of our ARR?",
    "csm-coverage": "Are our CSM ratios set by contract value (ARR)?",
}


# --- Small helpers ----------------------------------------------------------------------------------


def _cents(value: Any) -> int:
    if value is None:
        return 0
    return int((Decimal(value) * 100).to_integral_value(rounding=ROUND_HALF_UP))


def _points(value: float | None) -> Decimal | None:
    """A ratio change (float, from discount arithmetic) as a ``Decimal`` with four places."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    rounded = Decimal(repr(float(value))).quantize(RATIO, rounding=ROUND_HALF_UP)
    return rounded if rounded else abs(rounded)  # never a negative zero


def _cents_sum(field: str, condition: Q | None = None) -> Any:
    """Σ ``field`` (a money column) in integer cents: summed as integers by Postgres (exact, and much cheaper
    than numeric sums and their per-row ``Decimal``), the decimal sum elsewhere (made cents by :func:`_rows`)."""
    if connection.vendor == "postgresql":
        cents = Cast(ExpressionWrapper(F(field) * Value(100), output_field=DecimalField()), BigIntegerField())
        return Coalesce(Cast(Sum(cents, filter=condition), BigIntegerField()), Value(0))
    return Coalesce(Sum(field, filter=condition), Value(Decimal("0")), output_field=DecimalField())


def _cents_of(field: str) -> Any:
    """A money column as integer cents on Postgres (exact: two decimal places), as it is elsewhere."""
    if connection.vendor == "postgresql":
        return Cast(ExpressionWrapper(F(field) * Value(100), output_field=DecimalField()), BigIntegerField())
    return F(field)


def _rows(query: Any) -> list[tuple]:
    """A scoped ``values_list`` queryset's rows. On Postgres its own SQL runs on a plain cursor (the same SQL and
    organization filter; 50,000 rows skip Django's per-row converters); elsewhere decimals become cents."""
    if connection.vendor == "postgresql":
        sql, params = query.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    return [tuple(_cents(v) if isinstance(v, Decimal) else v for v in row) for row in query]


def _arr_frame(org: Organization, days: dict[str, date]) -> pd.DataFrame:
    """ARR per account on each named day, in integer cents, in **one** query (conditional sums over the lines
    live on any of the days). The ARR rule is :func:`renewals.analytics.arr_at`'s (non-cancelled contracts,
    ``start_date ≤ day ≤ end_date``); ``tests/test_know_the_details.py`` checks the two agree. Accounts
    without ARR on any of the days are absent."""
    live = {name: Q(contract__start_date__lte=day, contract__end_date__gte=day) for name, day in days.items()}
    either = Q()
    for condition in live.values():
        either |= condition
    query = (
        ContractLine.objects.for_org(org)
        .exclude(contract__status=ContractStatus.CANCELLED)
        .filter(either)
        .order_by()
        .values("contract__account_id")
        .annotate(**{name: _cents_sum("arr", condition) for name, condition in live.items()})
        .values_list("contract__account_id", *live)
    )
    frame = pd.DataFrame(_rows(query), columns=["account", *live])
    return frame.astype("int64").set_index("account")


def _arr_cents(org: Organization, day: date) -> pd.Series:
    """ARR per account on ``day`` in integer cents (accounts without ARR absent)."""
    arr = _arr_frame(org, {"arr": day})["arr"]
    return arr[arr > 0]


def _two_days(org: Organization, start: date, end: date) -> tuple[pd.Series, pd.Series]:
    """ARR per account on ``start`` and on ``end`` (cents, accounts without ARR that day absent), one query."""
    frame = _arr_frame(org, {"a0": start, "a1": end})
    return frame["a0"][frame["a0"] > 0], frame["a1"][frame["a1"] > 0]


def _ordered(ids: Any, arr: pd.Series | None = None) -> list[int]:
    """Account ids as plain ints, largest ``arr`` first when given (ties by id), else by id."""
    ids = pd.Index(pd.unique(np.asarray(list(ids), dtype=np.int64)))
    if arr is None or not len(ids):
        return sorted(int(i) for i in ids)
    weights = arr.reindex(ids).fillna(0).to_numpy()
    order = np.lexsort((ids.to_numpy(), -weights))
    return [int(i) for i in ids.to_numpy()[order]]


def _result(
    key: str,
    start: date,
    end: date,
    definition: str,
    headline: list[dict[str, Any]],
    columns: list[tuple[str, str, str]],
    rows: list[dict[str, Any]],
    drill: dict[str, list[int]],
    drill_labels: dict[str, str],
    chart: str | None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "key": key,
        "question": QUESTIONS[key],
        "start": start,
        "end": end,
        "definition": definition,
        "headline": headline,
        "columns": [{"key": k, "label": label, "unit": unit} for k, label, unit in columns],
        "rows": rows,
        "chart": chart,
        "drill": drill,
        "drill_labels": drill_labels,
        **extra,
    }


def _measure(key: str, label: str, value: Any, unit: str, drill: str | None = None) -> dict[str, Any]:
    return {"key": key, "label": label, "value": value, "unit": unit, "drill": drill}


def _row(key: str, label: str, values: dict[str, Any], drill: str | None = None, group: str = "") -> dict[str, Any]:
    return {"key": key, "label": label, "group": group, "values": values, "drill": drill}


def _closed_renewals(org: Organization, start: date, end: date) -> Any:
    return Renewal.objects.for_org(org).filter(closed_on__gte=start, closed_on__lte=end).exclude(outcome="")


# --- 1. Share of customers that increased their contract size ---------------------------------------


def contract_growth(org: Organization, start: date, end: date) -> dict[str, Any]:
    """What share of customers increased their contract size?

    **At renewal** (the headline): the customers with at least one renewal closed in the period; per
    customer Σ new ARR vs Σ prior ARR of those renewals (a churned renewal's new ARR is 0): *increased*
    (new > prior), *unchanged*, *decreased* (0 < new < prior) or *churned* (new = 0). Share = increased ÷
    customers renewed. **Over the period** (mid-term upsells included): of the customers with ARR on
    ``start``, the share whose ARR on ``end`` is higher (ARR as in retention). Two aggregate queries
    and two ARR reads."""
    rows = (
        _closed_renewals(org, start, end)
        .order_by()
        .values("account_id")
        .annotate(prior=_cents_sum("current_arr"), new=_cents_sum("new_arr"))
        .values_list("account_id", "prior", "new")
    )
    frame = pd.DataFrame(_rows(rows), columns=["account", "prior", "new"]).astype("int64")
    frame = frame.set_index("account")
    prior, new = frame["prior"], frame["new"]
    kinds = {
        "increased": frame.index[new > prior],
        "unchanged": frame.index[(new == prior) & (new > 0)],
        "decreased": frame.index[(new < prior) & (new > 0)],
        "churned": frame.index[new == 0],
    }
    labels = {"increased": "Increased", "unchanged": "Unchanged", "decreased": "Decreased", "churned": "Churned"}
    total = len(frame)
    table = []
    drill: dict[str, list[int]] = {}
    for name, ids in kinds.items():
        part = frame.loc[ids]
        drill[name] = _ordered(ids, part["new"] - part["prior"] if name == "increased" else part["prior"])
        table.append(
            _row(
                name,
                labels[name],
                {
                    "customers": len(ids),
                    "share": ratio(len(ids), total),
                    "prior_arr": money(part["prior"].sum()),
                    "new_arr": money(part["new"].sum()),
                },
                drill=name,
            )  # fmt: skip
        )
    a0, a1 = _two_days(org, start, end)
    growth = a1.reindex(a0.index).fillna(0) - a0
    expanded = a0.index[growth.to_numpy() > 0]
    drill["expanded"] = _ordered(expanded, growth)
    headline = [
        _measure(
            "share_increased",
            "Customers who increased at renewal",
            ratio(len(kinds["increased"]), total),
            "ratio",
            "increased",
        ),  # fmt: skip
        _measure("customers_renewed", "Customers with a renewal closed", total, "count"),
        _measure(
            "share_expanded",
            "Customers whose ARR grew over the period",
            ratio(len(expanded), len(a0)),
            "ratio",
            "expanded",
        ),  # fmt: skip
        _measure("customers_at_start", "Customers with ARR at the start", len(a0), "count"),
    ]
    return _result(
        "contract-growth",
        start, end,
        "Customers with a renewal closed in the period whose new ARR exceeds their prior ARR, over those "
        "customers; and customers whose ARR at the end exceeds their ARR at the start.",
        headline,
        [("customers", "Customers", "count"), ("share", "Share", "ratio"), ("prior_arr", "Prior ARR", "money"),
         ("new_arr", "New ARR", "money")],
        table, drill,
        {**{k: f"Customers whose renewal {v.lower()}" for k, v in labels.items()},
         "churned": "Customers who churned at renewal",
         "expanded": "Customers whose ARR grew over the period"},
        "share",
    )  # fmt: skip


# --- 2. Churn rate by industry, segment, region --------------------------------------------------------


def _segment_keys(org: Organization, ids: pd.Index) -> pd.DataFrame:
    """(account, segment name) for each segment each account of ``ids`` matches now (``(none)`` for an account
    in no segment). One query: each segment's compiled rules are a boolean column of the accounts query."""
    names: dict[str, str] = {}
    flags: dict[str, Any] = {}
    for i, segment in enumerate(Segment.objects.for_org(org).order_by("position", "name")):
        try:
            condition = compile_rules(segment.rules, organization=org)
        except SegmentRuleError:
            continue  # an invalid rule set matches nobody rather than breaking the report
        names[f"s{i}"] = segment.name
        flags[f"s{i}"] = ExpressionWrapper(condition, output_field=BooleanField())
    frame = pd.DataFrame(columns=["account", "key"])
    if flags:
        rows = _rows(Account.objects.for_org(org).order_by().annotate(**flags).values_list("id", *flags))
        wide = pd.DataFrame(rows, columns=["account", *flags]).set_index("account").reindex(ids, fill_value=False)
        frame = (
            wide.rename(columns=names)
            .rename_axis("account")
            .reset_index()
            .melt(id_vars="account", var_name="key", value_name="member")
        )
        frame = frame.loc[frame["member"].astype(bool), ["account", "key"]]  # fmt: skip
    rest = ids[~ids.isin(frame["account"])]
    return pd.concat([frame, pd.DataFrame({"account": rest.to_numpy(), "key": NONE_KEY})], ignore_index=True)


def churn_by_group(org: Organization, start: date, end: date) -> dict[str, Any]:
    """Which industry (segment, region, touch model) had the highest churn rate?

    The cohort is the customers with ARR on ``start``; a customer **churned** when it has no ARR on
    ``end`` (the churn of spec §4 retention, at account level). Per group of the customer's current
    attribute: logo churn rate = churned ÷ cohort, ARR churn rate = their ARR on ``start`` ÷ the group's ARR
    on ``start``. Segments may overlap (a customer counts in each it matches; ``(none)`` = no segment).
    One ARR query, one accounts query, one query per segment."""
    a0, a1 = _two_days(org, start, end)
    cohort = a0.index
    churned_mask = ~cohort.isin(a1.index)
    # Every account's attributes in one plain query (cheaper than naming 50,000 ids), narrowed in pandas.
    attrs = pd.DataFrame(
        _rows(Account.objects.for_org(org).order_by().values_list("id", "industry", "region", "touch_model")),
        columns=["account", "industry", "region", "touch_model"],
    ).set_index("account")
    base = pd.DataFrame({"a0": a0.to_numpy(), "churned": churned_mask}, index=cohort)
    table: list[dict[str, Any]] = []
    drill: dict[str, list[int]] = {"churned": _ordered(cohort[churned_mask], a0)}
    labels: dict[str, str] = {"churned": "Customers who churned in the period"}
    headline = [
        _measure(
            "logo_churn",
            "Logo churn rate, all customers",
            ratio(int(churned_mask.sum()), len(cohort)),
            "ratio",
            "churned",
        ),  # fmt: skip
        _measure(
            "arr_churn", "ARR churn rate, all customers", ratio(int(a0[churned_mask].sum()), int(a0.sum())), "ratio"
        ),  # fmt: skip
    ]
    for dim, dim_label in CHURN_DIMENSIONS:
        if dim == "segment":
            keys = _segment_keys(org, cohort)
        else:
            column = attrs.reindex(cohort)[dim].fillna("").astype(str).replace("", NONE_KEY)
            keys = pd.DataFrame({"account": cohort.to_numpy(), "key": column.to_numpy()})
        joined = keys.join(base, on="account")
        joined["lost"] = np.where(joined["churned"], joined["a0"], 0)
        sums = joined.groupby("key", sort=True).agg(
            customers=("account", "size"), churned=("churned", "sum"), arr=("a0", "sum"), lost=("lost", "sum")
        )
        best_logo = best_arr = None
        lost_by_key = joined.loc[joined["churned"].to_numpy(dtype=bool)].groupby("key")["account"]
        lost_members = dict(list(lost_by_key))
        for key, row in sums.iterrows():
            logo, arr_rate = ratio(row["churned"], row["customers"]), ratio(row["lost"], row["arr"])
            drill_key = f"{dim}:{key}"
            drill[drill_key] = _ordered(lost_members.get(key, []), a0)
            labels[drill_key] = f"Churned customers, {dim_label.lower()} {key}"
            table.append(_row(drill_key, str(key), {
                "customers": int(row["customers"]), "churned": int(row["churned"]), "logo_churn": logo,
                "start_arr": money(row["arr"]), "churned_arr": money(row["lost"]), "arr_churn": arr_rate,
            }, drill=drill_key, group=dim_label))  # fmt: skip
            if key != NONE_KEY and logo is not None and (best_logo is None or logo > best_logo[1]):
                best_logo = (key, logo, drill_key)
            if key != NONE_KEY and arr_rate is not None and (best_arr is None or arr_rate > best_arr[1]):
                best_arr = (key, arr_rate, drill_key)
        if best_logo:
            headline.append(_measure(f"highest_logo_{dim}", f"Highest logo churn by {dim_label.lower()}: "
                                     f"{best_logo[0]}", best_logo[1], "ratio", best_logo[2]))  # fmt: skip
        if best_arr:
            headline.append(_measure(f"highest_arr_{dim}", f"Highest ARR churn by {dim_label.lower()}: "
                                     f"{best_arr[0]}", best_arr[1], "ratio", best_arr[2]))  # fmt: skip
    return _result(
        "churn-by-group",
        start, end,
        "Of the customers with ARR at the start, those with none at the end, per industry, segment, region "
        "and touch model: by count (logo) and by their starting ARR.",
        headline,
        [("customers", "Customers at start", "count"), ("churned", "Churned", "count"),
         ("logo_churn", "Logo churn", "ratio"), ("start_arr", "ARR at start", "money"),
         ("churned_arr", "Churned ARR", "money"), ("arr_churn", "ARR churn", "ratio")],
        table, drill, labels, "logo_churn",
    )  # fmt: skip


# --- 3. Retention and growth by product -----------------------------------------------------------------


def product_retention(org: Organization, start: date, end: date) -> dict[str, Any]:
    """What are our retention and growth rates by product?

    From the line-level bridge (:class:`renewals.models.RenewalLineChange`) of the renewals closed in the
    period, per product: prior ARR = Σ old ARR; churn = old ARR of lines dropped (new = 0, a churned
    renewal drops every line); contraction = old − new where 0 < new < old; expansion = new − old where
    0 < old < new; cross-sell = new ARR of lines added at renewal (old = 0). GRR = (prior − churn −
    contraction) ÷ prior; NRR = (prior − churn − contraction + expansion) ÷ prior; growth = (Σ new − Σ old) ÷
    Σ old (cross-sell included). One aggregate query; a product GRR/NRR at renewal, not over the calendar."""
    changes = (
        RenewalLineChange.objects.for_org(org)
        .filter(renewal__closed_on__gte=start, renewal__closed_on__lte=end)
        .exclude(renewal__outcome="")
        .order_by()
        .annotate(old_cents=_cents_of("old_arr"), new_cents=_cents_of("new_arr"))
        .values_list("renewal__account_id", "product_id", "old_cents", "new_cents")
    )
    frame = pd.DataFrame(_rows(changes), columns=["account", "product", "old", "new"]).astype("int64")
    old, new = frame["old"].to_numpy(), frame["new"].to_numpy()
    frame["churn"] = np.where((old > 0) & (new == 0), old, 0)
    frame["contraction"] = np.where((new > 0) & (new < old), old - new, 0)
    frame["expansion"] = np.where((old > 0) & (new > old), new - old, 0)
    frame["cross_sell"] = np.where(old == 0, new, 0)
    catalog = {pk: (sku, name) for pk, sku, name in Product.objects.for_org(org).values_list("id", "sku", "name")}

    def figures(part: pd.DataFrame) -> dict[str, Any]:
        prior = int(part["old"].sum())
        kept = prior - int(part["churn"].sum()) - int(part["contraction"].sum())
        return {
            "customers": int(part["account"].nunique()),
            "prior_arr": money(prior),
            "new_arr": money(part["new"].sum()),
            "churn": money(part["churn"].sum()),
            "contraction": money(part["contraction"].sum()),
            "expansion": money(part["expansion"].sum()),
            "cross_sell": money(part["cross_sell"].sum()),
            "grr": ratio(kept, prior),
            "nrr": ratio(kept + int(part["expansion"].sum()), prior),
            "growth": ratio(int(part["new"].sum()) - prior, prior),
        }

    table, drill, labels = [], {}, {}
    sums = frame.groupby("product", sort=False)
    for product, part in sorted(sums, key=lambda kv: catalog.get(kv[0], ("", ""))[0]):
        sku, name = catalog.get(product, (str(product), str(product)))
        key = f"product:{sku}"
        lost = part.loc[(part["churn"] > 0) | (part["contraction"] > 0)]
        drill[key] = _ordered(part["account"], part.groupby("account")["old"].sum())
        drill[f"{key}:lost"] = _ordered(lost["account"], lost.groupby("account")["old"].sum())
        labels[key] = f"Customers renewing {name}"
        labels[f"{key}:lost"] = f"Customers who dropped or reduced {name}"
        table.append(_row(key, f"{name} ({sku})", figures(part), drill=key))
    total = figures(frame)
    drill["all"] = _ordered(frame["account"], frame.groupby("account")["old"].sum())
    labels["all"] = "Customers with a renewal closed in the period"
    headline = [
        _measure("grr", "Gross retention at renewal, all products", total["grr"], "ratio"),
        _measure("nrr", "Net retention at renewal, all products", total["nrr"], "ratio"),
        _measure("growth", "Growth at renewal (cross-sell included)", total["growth"], "ratio"),
        _measure("customers", "Customers renewed", total["customers"], "count", "all"),
    ]
    return _result(
        "product-retention",
        start, end,
        "Per product, from the line bridge of the renewals closed in the period: GRR and NRR over the prior "
        "ARR of the product, and growth including products added at renewal.",
        headline,
        [("customers", "Customers", "count"), ("prior_arr", "Prior ARR", "money"), ("new_arr", "New ARR", "money"),
         ("grr", "GRR", "ratio"), ("nrr", "NRR", "ratio"), ("growth", "Growth", "ratio"),
         ("churn", "Churn", "money"), ("contraction", "Contraction", "money"), ("expansion", "Expansion", "money"),
         ("cross_sell", "Cross-sell", "money")],
        table, drill, labels, "nrr", total=total,
    )  # fmt: skip


# --- 4. Discount change at first renewal ---------------------------------------------------------------


def first_renewal_discount(org: Organization, start: date, end: date) -> dict[str, Any]:
    """By what average amount did we reduce discounts at first renewal?

    A customer's **first renewal** is its earliest-due renewal that closed with a successor contract; it
    counts when it closed in the period. The products on both the renewed and the successor contract are
    compared; on each contract a product's discount is its list-value-weighted discount (Σ quantity × unit
    price × discount ÷ Σ quantity × unit price) and the customer's discount is the same over its compared
    products. Change = successor's − original's (negative = the discount was reduced), in points of a
    ratio. **Unweighted**: the mean change per customer. **Weighted**: weighted by each customer's original
    list value (quantity × unit price of its compared lines). Two queries."""
    renewals = list(
        Renewal.objects.for_org(org)
        .filter(successor_contract__isnull=False)
        .exclude(outcome="")
        .order_by("account_id", "due_date", "id")
        .values_list("account_id", "contract_id", "successor_contract_id", "closed_on")
    )
    firsts = pd.DataFrame(renewals, columns=["account", "old", "new", "closed_on"]).drop_duplicates("account")
    if len(firsts):
        firsts = firsts[(firsts["closed_on"] >= start) & (firsts["closed_on"] <= end)]
    # The lines of every contract renewed or succeeding in a renewal closed in the period (a superset of the
    # first renewals' contracts, read in one query through two subqueries), narrowed in pandas.
    closed = (
        Renewal.objects.for_org(org)
        .filter(closed_on__gte=start, closed_on__lte=end, successor_contract__isnull=False)
        .order_by()
    )
    contract_ids = set(firsts["old"]) | set(firsts["new"])
    lines = (
        ContractLine.objects.for_org(org)
        .filter(
            Q(contract_id__in=closed.values("contract_id")) | Q(contract_id__in=closed.values("successor_contract_id"))
        )
        .order_by()
        .values_list("contract_id", "product_id", "quantity", "annual_unit_price", "discount")
        if len(firsts)
        else []
    )
    frame = pd.DataFrame(list(lines), columns=["contract", "product", "quantity", "price", "discount"])
    frame = frame[frame["contract"].isin(contract_ids)]
    frame["gross"] = frame["quantity"].astype(float) * frame["price"].astype(float)
    frame["off"] = frame["gross"] * frame["discount"].astype(float)
    per = frame.groupby(["contract", "product"]).agg(gross=("gross", "sum"), off=("off", "sum"))
    old = firsts.merge(per.reset_index(), left_on="old", right_on="contract")
    new = firsts.merge(per.reset_index(), left_on="new", right_on="contract")
    both = old.merge(new, on=["account", "product"], suffixes=("_old", "_new"))
    accounts = both.groupby("account").agg(
        gross_old=("gross_old", "sum"), off_old=("off_old", "sum"), gross_new=("gross_new", "sum"),
        off_new=("off_new", "sum"))  # fmt: skip
    accounts = accounts[(accounts["gross_old"] > 0) & (accounts["gross_new"] > 0)]
    d_old = accounts["off_old"] / accounts["gross_old"]
    d_new = accounts["off_new"] / accounts["gross_new"]
    change = (d_new - d_old).round(6)
    n = len(accounts)
    unweighted = float(change.mean()) if n else None
    weighted = float((change * accounts["gross_old"]).sum() / accounts["gross_old"].sum()) if n else None
    groups = {"reduced": change < 0, "unchanged": change == 0, "increased": change > 0}
    labels = {"reduced": "Discount reduced", "unchanged": "Discount unchanged", "increased": "Discount increased"}
    table, drill = [], {}
    for name, mask in groups.items():
        ids = accounts.index[mask.to_numpy()]
        drill[name] = _ordered(ids, -change.abs() if name != "unchanged" else None)
        table.append(_row(name, labels[name], {
            "customers": len(ids), "share": ratio(len(ids), n),
            "discount_before": _points(d_old[mask].mean()) if len(ids) else None,
            "discount_after": _points(d_new[mask].mean()) if len(ids) else None,
            "change": _points(change[mask].mean()) if len(ids) else None,
        }, drill=name))  # fmt: skip
    drill["all"] = _ordered(accounts.index)
    headline = [
        _measure("average_change", "Average change of discount per customer", _points(unweighted), "pp", "all"),
        _measure("weighted_change", "Average change weighted by list value", _points(weighted), "pp"),
        _measure("customers", "Customers at first renewal", n, "count", "all"),
        _measure(
            "share_reduced",
            "Customers whose discount was reduced",
            ratio(int(groups["reduced"].sum()), n),
            "ratio",
            "reduced",
        ),  # fmt: skip
    ]
    return _result(
        "first-renewal-discount",
        start, end,
        "The discount on the products kept at each customer's first renewal (closed in the period), "
        "successor minus original, averaged per customer and weighted by original list value.",
        headline,
        [("customers", "Customers", "count"), ("share", "Share", "ratio"),
         ("discount_before", "Discount before", "ratio"), ("discount_after", "Discount after", "ratio"),
         ("change", "Average change", "pp")],
        table, drill, {**{k: f"Customers: {v.lower()} at first renewal" for k, v in labels.items()},
                       "all": "Customers at their first renewal"},
        "customers",
    )  # fmt: skip


# --- 5. Contract size vs original size, customers of more than three years -----------------------------


def long_term_size(org: Organization, start: date, end: date) -> dict[str, Any]:
    """What is the average contract size versus original contract size of all customers who have been
    customers more than three years?

    A customer's **start** is its first non-cancelled contract's start date; its **original size** is the
    ARR of the contracts starting that day (Σ line ARR); its **size now** is its ARR on ``end``. Customers
    of more than three years: start < ``end`` − 3 years (exactly three years is not more) and ARR
    on ``end`` > 0. Reported: the average of
    each, their ratio (average now ÷ average original) and the median of each customer's own multiple.
    ``start`` is not used: tenure is read on the period's last day. One aggregate query and one ARR read."""
    cutoff = end - relativedelta(years=3)
    # Only contracts starting before the cut-off can be an included customer's first ones (a customer's first
    # start is before the cut-off exactly when it has such a contract): the rest of the book is not read.
    rows = (
        ContractLine.objects.for_org(org)
        .exclude(contract__status=ContractStatus.CANCELLED)
        .filter(contract__start_date__lt=cutoff)
        .order_by()
        .values("contract__account_id", "contract__start_date")
        .annotate(total=_cents_sum("arr"))
        .values_list("contract__account_id", "contract__start_date", "total")
    )
    frame = pd.DataFrame(_rows(rows), columns=["account", "day", "arr"])
    frame["day"] = pd.to_datetime(frame["day"])
    frame["arr"] = frame["arr"].astype("int64")
    now = _arr_cents(org, end)
    if len(frame):
        first_day = frame.groupby("account")["day"].transform("min")
        original = frame[frame["day"] == first_day].groupby("account").agg(day=("day", "first"), arr=("arr", "sum"))
        original = original[original.index.isin(now.index)]
    else:
        original = pd.DataFrame(columns=["day", "arr"])
    original["now"] = now.reindex(original.index).to_numpy()
    n = len(original)
    multiple = (original["now"] / original["arr"].where(original["arr"] > 0)).dropna()
    avg_original = int(round(original["arr"].mean())) if n else 0
    avg_now = int(round(original["now"].mean())) if n else 0
    groups = {
        "grew": original["now"] > original["arr"],
        "same": original["now"] == original["arr"],
        "shrank": original["now"] < original["arr"],
    }
    labels = {"grew": "Larger than original", "same": "Same as original", "shrank": "Smaller than original"}
    table, drill = [], {}
    for name, mask in groups.items():
        part = original[mask]
        drill[name] = _ordered(part.index, part["now"])
        table.append(_row(name, labels[name], {
            "customers": len(part), "share": ratio(len(part), n),
            "original": money(round(part["arr"].mean())) if len(part) else None,
            "now": money(round(part["now"].mean())) if len(part) else None,
        }, drill=name))  # fmt: skip
    drill["all"] = _ordered(original.index, original["now"])
    headline = [
        _measure("customers", "Customers of more than three years", n, "count", "all"),
        _measure(
            "average_original", "Average original contract size (ARR)", money(avg_original) if n else None, "money"
        ),  # fmt: skip
        _measure("average_now", "Average contract size now (ARR)", money(avg_now) if n else None, "money"),
        _measure("ratio", "Average now ÷ average original", ratio(avg_now, avg_original) if n else None, "ratio"),
        _measure(
            "median_multiple",
            "Median of each customer's own multiple",
            _points(float(multiple.median())) if len(multiple) else None,
            "ratio",
        ),  # fmt: skip
    ]
    return _result(
        "long-term-size",
        start, end,
        "Customers whose first contract started more than three years before the period's end and who still "
        "have ARR: their ARR at the end against the ARR of their first contract(s).",
        headline,
        [("customers", "Customers", "count"), ("share", "Share", "ratio"), ("original", "Average original", "money"),
         ("now", "Average now", "money")],
        table, drill, {**{k: f"Customers of 3+ years, {v.lower()}" for k, v in labels.items()},
                       "all": "Customers of more than three years"},
        "customers",
    )  # fmt: skip


# --- 6. Churn drivers ----------------------------------------------------------------------------------


def churn_drivers(org: Organization, start: date, end: date) -> dict[str, Any]:
    """What percent of churns were driven by poor adoption, by product fit or gaps, and by factors hard to
    affect?

    The losses are the renewals closed in the period as **churned** (a lost customer) or **contracted**
    (lost ARR = prior − new; a churned renewal loses its prior ARR). Each is classified by the current
    ``driver`` of its churn reason (``renewals.ChurnReason.driver``; no reason or no driver =
    ``unclassified``). Shares: of churned customers (logo) and of lost ARR. Two queries."""
    rows = list(
        _closed_renewals(org, start, end)
        .filter(outcome__in=[RenewalOutcome.CHURNED, RenewalOutcome.CONTRACTED])
        .order_by()
        .values_list("account_id", "outcome", "current_arr", "new_arr", "churn_reason_id")
    )
    drivers = dict(ChurnReason.objects.for_org(org).values_list("id", "driver"))
    frame = pd.DataFrame(
        [(a, o == RenewalOutcome.CHURNED, max(0, _cents(c) - (0 if o == RenewalOutcome.CHURNED else _cents(n))),
          drivers.get(r) or "unclassified") for a, o, c, n, r in rows],
        columns=["account", "churned", "lost", "driver"],
    )  # fmt: skip
    churned_customers = int(frame.loc[frame["churned"], "account"].nunique())
    lost_total = int(frame["lost"].sum())
    choices = [*ChurnDriver.choices, ("unclassified", "Unclassified")]
    table, drill, labels = [], {}, {}
    shares: dict[str, Any] = {}
    for driver, label in choices:
        part = frame[frame["driver"] == driver]
        customers = int(part.loc[part["churned"], "account"].nunique())
        shares[driver] = ratio(customers, churned_customers)
        drill[driver] = _ordered(part["account"], part.groupby("account")["lost"].sum())
        labels[driver] = f"Customers lost or reduced: {label.lower()}"
        table.append(_row(driver, str(label), {
            "churned": customers, "share_churned": shares[driver], "losses": len(part),
            "lost_arr": money(part["lost"].sum()), "share_lost_arr": ratio(int(part["lost"].sum()), lost_total),
        }, drill=driver))  # fmt: skip
    headline = [
        _measure("adoption", "Churn driven by poor adoption", shares["adoption"], "ratio", "adoption"),
        _measure("product_gap", "Churn driven by product fit or gaps", shares["product_gap"], "ratio", "product_gap"),
        _measure(
            "external",
            "Churn hard to affect (merger, bankruptcy, restructuring)",
            shares["external"],
            "ratio",
            "external",
        ),  # fmt: skip
        _measure("churned", "Customers churned", churned_customers, "count"),
        _measure("lost_arr", "ARR lost (churn and contraction)", money(lost_total), "money"),
    ]
    return _result(
        "churn-drivers",
        start, end,
        "Renewals closed in the period as churned or contracted, by the driver of their churn reason: share of "
        "churned customers and share of lost ARR.",
        headline,
        [("churned", "Customers churned", "count"), ("share_churned", "Share of churned", "ratio"),
         ("losses", "Losses (churn + contraction)", "count"), ("lost_arr", "Lost ARR", "money"),
         ("share_lost_arr", "Share of lost ARR", "ratio")],
        table, drill, labels, "share_churned",
    )  # fmt: skip


# --- 7. Pareto of revenue ------------------------------------------------------------------------------

PARETO_POINTS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def revenue_pareto(org: Organization, start: date, end: date) -> dict[str, Any]:
    """How many accounts make 80 % of ARR?

    Accounts with ARR on ``end``, largest first; the **80 % set** is the fewest of them whose ARR reaches
    80 % of the total (the first k with cumulative ARR ≥ 0.8 × total, in exact cents). The curve gives the
    cumulative share of ARR held by the largest 1 %, 5 %, 10 %, … 100 % of accounts (k = ⌈p × n⌉ accounts).
    ``start`` is not used: the book is read on the period's last day. One ARR read."""
    arr = _arr_cents(org, end)
    ordered = arr.sort_values(ascending=False, kind="stable")
    values = ordered.to_numpy()
    total = int(values.sum())
    cumulative = np.cumsum(values)
    n = len(values)
    k80 = int(np.searchsorted(cumulative * 10, total * 8, side="left") + 1) if n else 0
    table = []
    for p in PARETO_POINTS:
        k = int(np.ceil(round(p * n, 9))) if n else 0
        held = int(cumulative[k - 1]) if k else 0
        table.append(_row(f"top{round(p * 100)}", f"Largest {round(p * 100)} % of accounts",
                          {"accounts": k, "arr": money(held), "share_of_arr": ratio(held, total)}))  # fmt: skip
    drill = {"top80": [int(i) for i in ordered.index[:k80]], "rest": [int(i) for i in ordered.index[k80:]]}
    headline = [
        _measure("accounts_80", "Accounts making 80 % of ARR", k80, "count", "top80"),
        _measure("share_80", "Share of accounts making 80 % of ARR", ratio(k80, n), "ratio", "top80"),
        _measure("accounts", "Accounts with ARR", n, "count"),
        _measure("arr", "Total ARR", money(total), "money"),
    ]
    return _result(
        "revenue-pareto",
        start, end,
        "Accounts with ARR at the period's end, largest first: the fewest whose ARR reaches 80 % of the total, "
        "and the cumulative share of ARR of the largest accounts.",
        headline,
        [("accounts", "Accounts", "count"), ("arr", "ARR", "money"), ("share_of_arr", "Share of ARR", "ratio")],
        table, drill,
        {"top80": "The accounts making 80 % of ARR", "rest": "The accounts making the other 20 %"},
        "share_of_arr",
    )  # fmt: skip


# --- 8. CSM coverage by ARR --------------------------------------------------------------------------------


def csm_coverage(org: Organization, start: date, end: date) -> dict[str, Any]:
    """CSM coverage by ARR, against the seed's ratios ("the best way to determine CSM ratios is not by number
    of customers but by contract value (ARR)").

    The book is every account with ARR on ``end``, with its current owner and touch model. Per touch
    model: accounts, ARR, CSMs (distinct owners), accounts and ARR per CSM, and the target range (the
    organization's capacity target, else the seed's: high touch 5–15 accounts per CSM, low touch 20–50, tech
    touch none). Per CSM: accounts, ARR and the load of :func:`accounts.services.capacity_by_csm` (same rule as
    the Portfolio). Also the seed's ARR line for high touch (≥ $500K): accounts above it not high touch,
    and high-touch accounts below it. One ARR read, one accounts query, one targets query."""
    arr = _arr_cents(org, end)
    rows = _rows(
        Account.objects.for_org(org)
        .order_by()
        .values_list("id", "touch_model", "owner_id", "owner__email", "owner__first_name", "owner__last_name")
    )
    book = pd.DataFrame(rows, columns=["account", "touch", "owner", "email", "first", "last"])
    book = book[book["account"].isin(arr.index)]
    book["arr"] = arr.reindex(book["account"]).to_numpy()
    book["owner"] = book["owner"].astype("Int64")
    targets = {t.touch_model: t for t in CapacityTarget.objects.for_org(org)}
    table, drill, labels = [], {}, {}
    for touch, touch_label in TouchModel.choices:
        part = book[book["touch"] == touch]
        owned = part[part["owner"].notna()]
        csms = int(owned["owner"].nunique())
        target = targets.get(touch)
        low, high = (target.min_accounts, target.max_accounts) if target else SEED_RATIOS.get(touch, (None, None))
        per_csm = Decimal(len(owned)) / csms if csms else None
        status = None
        if per_csm is not None and high is not None:
            status = "above" if per_csm > high else "below" if low is not None and per_csm < low else "within"
        key = f"touch:{touch}"
        drill[key] = _ordered(part["account"], arr)
        labels[key] = f"{touch_label} accounts"
        table.append(_row(key, f"{touch_label}", {
            "accounts": len(part), "arr": money(part["arr"].sum()), "csms": csms,
            "accounts_per_csm": None if per_csm is None else per_csm.quantize(Decimal("0.1")),
            "arr_per_csm": money(int(owned["arr"].sum()) // csms) if csms else None,
            "target": None if high is None else f"{low or 0}–{high}", "status": status,
            "unowned": int(part["owner"].isna().sum()), "load": None,
        }, drill=key, group="Touch model"))  # fmt: skip
    owned = book[book["owner"].notna()]
    grouped = (
        owned.groupby(["owner", "email", "first", "last", "touch"], dropna=False)
        .agg(n=("account", "size"), arr=("arr", "sum"))
        .reset_index()
    )
    capacity_rows = [
        {"owner_id": int(r.owner), "owner__email": r.email, "owner__first_name": r.first, "owner__last_name": r.last,
         "touch_model": r.touch, "n": int(r.n), "arr": money(r.arr)}
        for r in grouped.itertuples()
    ]  # fmt: skip
    for csm in capacity_by_csm(org, capacity_rows):
        key = f"csm:{csm['owner_id']}"
        drill[key] = _ordered(owned.loc[owned["owner"] == csm["owner_id"], "account"], arr)
        labels[key] = f"Accounts of {csm['name']}"
        load = csm["load"]
        table.append(_row(key, csm["name"], {
            "accounts": csm["accounts"], "arr": Decimal(csm["arr"]).quantize(Decimal("0.01")), "csms": 1,
            "accounts_per_csm": Decimal(csm["accounts"]), "arr_per_csm": Decimal(csm["arr"]).quantize(Decimal("0.01")),
            "target": None, "status": "above" if csm["over_capacity"] else "within" if load is not None else None,
            "unowned": 0, "load": None if load is None else _points(float(load)),
        }, drill=key, group="CSM"))  # fmt: skip
    big = book["arr"] >= HIGH_TOUCH_ARR_CENTS
    high = book["touch"] == TouchModel.HIGH
    drill["big_not_high"] = _ordered(book.loc[big & ~high, "account"], arr)
    drill["high_small"] = _ordered(book.loc[~big & high, "account"], arr)
    drill["unowned"] = _ordered(book.loc[book["owner"].isna() & (book["touch"] != TouchModel.TECH), "account"], arr)
    labels.update({"big_not_high": "Accounts of $500K ARR or more that are not high touch",
                   "high_small": "High-touch accounts under $500K ARR",
                   "unowned": "High- and low-touch accounts without a CSM"})  # fmt: skip
    csm_count = int(owned["owner"].nunique())
    headline = [
        _measure("csms", "CSMs with a book", csm_count, "count"),
        _measure(
            "arr_per_csm", "ARR per CSM", money(int(owned["arr"].sum()) // csm_count) if csm_count else None, "money"
        ),  # fmt: skip
        _measure("accounts_per_csm", "Accounts per CSM", ratio(len(owned), csm_count), "ratio"),
        _measure(
            "big_not_high", "Accounts ≥ $500K ARR not high touch", len(drill["big_not_high"]), "count", "big_not_high"
        ),  # fmt: skip
        _measure("high_small", "High-touch accounts under $500K ARR", len(drill["high_small"]), "count", "high_small"),
        _measure("unowned", "High- and low-touch accounts without a CSM", len(drill["unowned"]), "count", "unowned"),
    ]
    return _result(
        "csm-coverage",
        start, end,
        "The book at the period's end per touch model and per CSM: accounts and ARR per CSM against the capacity "
        "targets (the seed's 5–15 high-touch and 20–50 low-touch accounts per CSM where none is set).",
        headline,
        [("accounts", "Accounts", "count"), ("arr", "ARR", "money"), ("csms", "CSMs", "count"),
         ("accounts_per_csm", "Accounts per CSM", "count"), ("arr_per_csm", "ARR per CSM", "money"),
         ("target", "Target accounts per CSM", "text"), ("status", "Against target", "text"),
         ("unowned", "Without a CSM", "count"), ("load", "Load", "ratio")],
        table, drill, labels, "arr",
    )  # fmt: skip


#: Figure key → (function, short title), in the order of the page.
FIGURES: dict[str, tuple[Callable[[Organization, date, date], dict[str, Any]], str]] = {
    "contract-growth": (contract_growth, "Customers who increased their contract size"),
    "churn-by-group": (churn_by_group, "Churn rate by industry, segment and region"),
    "product-retention": (product_retention, "Retention and growth by product"),
    "first-renewal-discount": (first_renewal_discount, "Discount change at first renewal"),
    "long-term-size": (long_term_size, "Contract size of customers of more than three years"),
    "churn-drivers": (churn_drivers, "What drove churn"),
    "revenue-pareto": (revenue_pareto, "Pareto of revenue"),
    "csm-coverage": (csm_coverage, "CSM coverage by ARR"),
}


#: The figures as choices (the API's enum, named ``DetailsFigureEnum`` in the OpenAPI schema).
FIGURE_CHOICES: list[tuple[str, str]] = [(key, title) for key, (_function, title) in FIGURES.items()]


def figure(org: Organization, key: str, start: date, end: date) -> dict[str, Any]:
    """The figure ``key`` of :data:`FIGURES` over ``[start, end]`` (``KeyError`` for an unknown key)."""
    function, _title = FIGURES[key]
    return function(org, start, end)
