"""``python -m benchmarks.details [--accounts N] [--sample S] [--rebuild] [--drop]`` — the "know the details"
figures at scale.

Issue 15 target: every figure of item 5 over 50,000 accounts and three years of contracts in under 2 s each on
Postgres, with a naive per-account ORM loop measured beside it in the same run.

1. Uses the database ``<name>_details_bench`` next to the one in ``DATABASE_URL`` (created and migrated when
   absent). The dataset is generated inside Postgres (``INSERT … SELECT`` over ``generate_series``,
   deterministic: every value derives from the account id): ``--accounts`` accounts (8 industries, 4 regions,
   high/low/tech touch, 40 CSMs), each with consecutive yearly contracts from a first start between Dec 2022
   and Nov 2024 up to the period's end (so three to four years of contracts, the oldest customers past three
   years), one to three product lines per contract whose quantity and discount move from term to term, about
   one in six customers churning at a renewal; every renewal that fell due is closed with its successor,
   its outcome, its churn reason and its line-level bridge. Kept between runs: ``--rebuild`` regenerates
   it, ``--drop`` drops the database at the end.
2. Times each figure of ``value.analytics_details.FIGURES`` over the last 12 months (three runs, the median).
3. Times a naive per-account ORM loop for each figure over ``--sample`` accounts (the way a first draft would
   compute the figure: the account's contracts, lines and renewals read one account at a time) and scales it
   to every account; the ratio is naive ÷ set-based. For the share of customers who increased their contract
   size and for the Pareto the naive answers are checked against the set-based ones (must agree).
4. Prints the table with pass/fail against 2 s and writes ``benchmarks/results/details.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "details.json"
SLUG = "bench-details"
END = date(2026, 11, 30)
START = date(2025, 12, 1)
FIRST = date(2022, 12, 1)
TARGET_S = 2.0
CSMS = 40


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.details", description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=50_000, help="accounts (default 50000)")
    parser.add_argument("--sample", type=int, default=200, help="accounts of the naive loop (default 200)")
    parser.add_argument("--rebuild", action="store_true", help="regenerate the dataset even if present")
    parser.add_argument("--drop", action="store_true", help="drop the benchmark database at the end")
    return parser.parse_args(argv)


# h(a) = (a × 7919) mod 100: the account's hidden disposition. Churn term: h < 6 → after term 1, h < 12 → after
# term 2, h < 17 → after term 3 (≈ 17 % of customers lost over the years); expansion when h > 70.
STEPS = [
    (
        "accounts",
        """
        INSERT INTO accounts_account (organization_id, external_id, name, domain, industry, region, owner_id,
            lifecycle_stage, touch_model, tags, custom_fields, icp_fit, referenceable, arr, hierarchy_arr,
            customer_since, churned_at, created_at, updated_at)
        SELECT %(org)s, 'KD-' || lpad(g::text, 6, '0'), 'Details account ' || g, '',
            (ARRAY['Software', 'Retail', 'Finance', 'Health', 'Education', 'Media', 'Logistics', 'Energy'])[1 + g %% 8],
            (ARRAY['EMEA', 'NA', 'APAC', 'LATAM'])[1 + (g / 8) %% 4],
            CASE WHEN g %% 10 >= 6 THEN NULL ELSE (%(owners)s::bigint[])[1 + g %% %(csms)s] END,
            'mature', CASE WHEN g %% 10 = 0 THEN 'high' WHEN g %% 10 < 6 THEN 'low' ELSE 'tech' END,
            '[]', '{}', false, false, 0, 0, %(first)s::date + (g %% 730), NULL, now(), now()
        FROM generate_series(1, %(n)s) g
        """,
    ),
    (
        "contracts",
        """
        INSERT INTO accounts_contract (organization_id, account_id, number, start_date, end_date, status,
            auto_renew, currency, seats, arr, created_at, updated_at)
        SELECT %(org)s, a.id, 'KD-C-' || a.id || '-' || t, a.customer_since + 365 * t,
            a.customer_since + 365 * t + 364, 'active', false, 'USD', NULL, 0, now(), now()
        FROM accounts_account a
        CROSS JOIN generate_series(0, 3) t
        CROSS JOIN LATERAL (SELECT (a.id * 7919) %% 100 AS h) x
        WHERE a.organization_id = %(org)s AND a.customer_since + 365 * t <= %(end)s
          AND t < CASE WHEN x.h < 6 THEN 1 WHEN x.h < 12 THEN 2 WHEN x.h < 17 THEN 3 ELSE 4 END
        """,
    ),
    (
        "contract lines",
        """
        INSERT INTO accounts_contractline (organization_id, contract_id, product_id, quantity, annual_unit_price,
            discount, arr)
        SELECT %(org)s, c.id, (%(products)s::bigint[])[p], q.quantity, q.price, q.discount,
            round(q.quantity * q.price * (1 - q.discount), 2)
        FROM accounts_contract c
        JOIN accounts_account a ON a.id = c.account_id
        CROSS JOIN LATERAL (SELECT (c.account_id * 7919) %% 100 AS h, (c.start_date - a.customer_since) / 365 AS t) x
        CROSS JOIN LATERAL generate_series(1, 1 + c.account_id %% 3) p
        CROSS JOIN LATERAL (SELECT
            (5 + (c.account_id * 13 + p) %% 40
             + CASE WHEN x.h > 70 THEN 3 * x.t WHEN x.h BETWEEN 17 AND 25 THEN -x.t ELSE 0 END
             + CASE WHEN c.account_id %% 10 = 0 THEN 200 ELSE 0 END)::numeric AS quantity,
            (ARRAY[1200, 600, 2400, 300, 900])[p]::numeric AS price,
            greatest(0, 0.05 * ((c.account_id + p) %% 5) - 0.025 * x.t * (c.account_id %% 2))::numeric(5, 4)
                AS discount) q
        WHERE c.organization_id = %(org)s
        """,
    ),
    (
        "renewals",
        """
        INSERT INTO renewals_renewal (organization_id, account_id, contract_id, owner_id, due_date, current_arr,
            forecast_arr, forecast_category, probability, stage, csm_call, final_call, notes, outcome, closed_on,
            timing, successor_contract_id, new_arr, churn_reason_id, avoidable, churn_notes, created_at, updated_at)
        SELECT %(org)s, c.account_id, c.id, NULL, c.end_date, old.arr, old.arr, 'likely', 70,
            CASE WHEN s.id IS NULL THEN 'lost' ELSE 'won' END, '', '', '',
            CASE WHEN s.id IS NULL THEN 'churned' WHEN new.arr > old.arr THEN 'expanded'
                 WHEN new.arr < old.arr THEN 'contracted' ELSE 'renewed' END,
            c.end_date - (c.account_id %% 20)::int, 'on_time', s.id, coalesce(new.arr, 0),
            CASE WHEN s.id IS NULL OR new.arr < old.arr THEN (%(reasons)s::bigint[])[1 + c.account_id %% 9] END,
            CASE WHEN s.id IS NULL OR new.arr < old.arr THEN c.account_id %% 9 < 7 END, '', now(), now()
        FROM accounts_contract c
        LEFT JOIN accounts_contract s ON s.organization_id = c.organization_id AND s.account_id = c.account_id
            AND s.start_date = c.end_date + 1
        CROSS JOIN LATERAL (SELECT sum(arr) AS arr FROM accounts_contractline WHERE contract_id = c.id) old
        LEFT JOIN LATERAL (SELECT sum(arr) AS arr FROM accounts_contractline WHERE contract_id = s.id) new ON true
        WHERE c.organization_id = %(org)s AND c.end_date <= %(end)s
        """,
    ),
    (
        "line changes",
        """
        INSERT INTO renewals_renewallinechange (organization_id, renewal_id, product_id, kind, old_quantity,
            new_quantity, old_arr, new_arr, delta)
        SELECT %(org)s, r.id, l.product_id,
            CASE WHEN sum(l.old_arr) = 0 THEN 'added' WHEN sum(l.new_arr) = 0 THEN 'dropped'
                 WHEN sum(l.old_arr) = sum(l.new_arr) THEN 'unchanged' ELSE 'quantity_price' END,
            sum(l.old_q), sum(l.new_q), sum(l.old_arr), sum(l.new_arr), sum(l.new_arr) - sum(l.old_arr)
        FROM renewals_renewal r
        CROSS JOIN LATERAL (
            SELECT product_id, quantity AS old_q, 0 AS new_q, arr AS old_arr, 0 AS new_arr
            FROM accounts_contractline WHERE contract_id = r.contract_id
            UNION ALL
            SELECT product_id, 0, quantity, 0, arr
            FROM accounts_contractline WHERE contract_id = r.successor_contract_id
        ) l
        WHERE r.organization_id = %(org)s
        GROUP BY r.id, l.product_id
        """,
    ),
    (
        "account arr",
        """
        UPDATE accounts_account a SET arr = x.arr, hierarchy_arr = x.arr
        FROM (SELECT c.account_id, sum(l.arr) AS arr FROM accounts_contract c
              JOIN accounts_contractline l ON l.contract_id = c.id
              WHERE c.organization_id = %(org)s AND c.start_date <= %(end)s AND c.end_date >= %(end)s
              GROUP BY c.account_id) x
        WHERE a.id = x.account_id
        """,
    ),
]


def build(org: Any, n: int) -> dict[str, int]:
    """Generate the dataset inside Postgres; returns row counts."""
    from django.db import connection, transaction

    from accounts.models import Account, Membership, Product
    from renewals.models import ChurnReason

    counts: dict[str, int] = {}
    with transaction.atomic():
        Account.all_orgs.filter(organization_id=org.pk).delete()
        Product.all_orgs.filter(organization_id=org.pk).delete()
        from django.contrib.auth import get_user_model

        users = []
        for i in range(CSMS):
            user, _ = get_user_model().objects.get_or_create(
                username=f"kd-csm-{i}", defaults={"email": f"csm{i}@details.example", "first_name": f"CSM {i}"}
            )
            Membership.all_orgs.get_or_create(organization=org, user=user, defaults={"role": "csm"})
            users.append(user.pk)
        products = [
            Product.all_orgs.create(organization=org, sku=f"KD-P{i}", name=name).pk
            for i, name in enumerate(["Core", "Analytics", "Enterprise", "Add-on", "Support"])
        ]
        reasons = list(ChurnReason.objects.for_org(org).order_by("position").values_list("id", flat=True))
        params = {"org": org.pk, "n": n, "first": FIRST, "end": END, "owners": users, "csms": CSMS,
                  "products": products, "reasons": reasons}  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
            for label, sql in STEPS:
                started = time.perf_counter()
                cursor.execute(sql, params)
                counts[label] = cursor.rowcount
                print(f"  {label:<15} {cursor.rowcount:>10,} rows  {time.perf_counter() - started:6.1f} s", flush=True)
    with connection.cursor() as cursor:
        for table in ("accounts_account", "accounts_contract", "accounts_contractline", "renewals_renewal",
                      "renewals_renewallinechange"):  # fmt: skip
            cursor.execute(f"VACUUM ANALYZE {table}")
    return counts


# --- The naive per-account loop ------------------------------------------------------------------------


def _arr(account: Any, day: date) -> Decimal:
    from django.db.models import Sum

    from accounts.models import ContractLine

    total = (
        ContractLine.objects.for_org(account.organization_id)
        .filter(contract__account=account, contract__start_date__lte=day, contract__end_date__gte=day)
        .exclude(contract__status="cancelled")
        .aggregate(total=Sum("arr"))["total"]
    )
    return total or Decimal("0")


def _closed(account: Any) -> list[Any]:
    from renewals.models import Renewal

    renewals = Renewal.objects.for_org(account.organization_id).filter(
        account=account, closed_on__gte=START, closed_on__lte=END)  # fmt: skip
    return list(renewals.exclude(outcome="").select_related("churn_reason"))


def naive_contract_growth(account: Any) -> Any:
    renewals = _closed(account)
    a0, a1 = _arr(account, START), _arr(account, END)
    if not renewals:
        return None, a1 > a0 > 0
    prior = sum(r.current_arr for r in renewals)
    new = sum(r.new_arr or 0 for r in renewals)
    return ("increased" if new > prior else "churned" if new == 0 else "decreased" if new < prior
            else "unchanged"), a1 > a0 > 0  # fmt: skip


def naive_churn_by_group(account: Any) -> Any:
    from accounts.models import Segment
    from accounts.segments import compile_rules

    segments = [s.name for s in Segment.objects.for_org(account.organization_id)
                if type(account).objects.for_org(account.organization_id).filter(
                    compile_rules(s.rules), pk=account.pk).exists()]  # fmt: skip
    return _arr(account, START), _arr(account, END), account.industry, account.region, segments


def naive_product_retention(account: Any) -> Any:
    from renewals.models import RenewalLineChange

    return [(c.product_id, c.old_arr, c.new_arr) for r in _closed(account)
            for c in RenewalLineChange.objects.for_org(account.organization_id).filter(renewal=r)]  # fmt: skip


def naive_first_renewal_discount(account: Any) -> Any:
    from renewals.models import Renewal

    first = (Renewal.objects.for_org(account.organization_id).filter(account=account, successor_contract__isnull=False)
             .exclude(outcome="").order_by("due_date", "id").first())  # fmt: skip
    if first is None or not (START <= first.closed_on <= END):
        return None
    old = {line.product_id: line.discount for line in first.contract.lines.all()}
    new = {line.product_id: line.discount for line in first.successor_contract.lines.all()}
    return [new[p] - old[p] for p in old if p in new]


def naive_long_term_size(account: Any) -> Any:
    contracts = list(account.contracts.exclude(status="cancelled").order_by("start_date"))
    if not contracts:
        return None
    first = contracts[0].start_date
    original = sum(line.arr for c in contracts if c.start_date == first for line in c.lines.all())
    return first, original, _arr(account, END)


def naive_churn_drivers(account: Any) -> Any:
    return [(r.outcome, r.current_arr, r.new_arr, r.churn_reason.driver if r.churn_reason else None)
            for r in _closed(account) if r.outcome in ("churned", "contracted")]  # fmt: skip


def naive_revenue_pareto(account: Any) -> Any:
    return _arr(account, END)


def naive_csm_coverage(account: Any) -> Any:
    return _arr(account, END), account.owner.email if account.owner else None, account.touch_model


NAIVE = {
    "contract-growth": naive_contract_growth,
    "churn-by-group": naive_churn_by_group,
    "product-retention": naive_product_retention,
    "first-renewal-discount": naive_first_renewal_discount,
    "long-term-size": naive_long_term_size,
    "churn-drivers": naive_churn_drivers,
    "revenue-pareto": naive_revenue_pareto,
    "csm-coverage": naive_csm_coverage,
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, str(ROOT))
    from benchmarks.pg import bench_database

    db = bench_database("details", "benchmarks.details")
    db.create()
    db.use()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import Account
    from accounts.services import create_organization
    from cs_platform.tenancy import org_scope
    from value.analytics_details import FIGURES, figure

    try:
        call_command("migrate", verbosity=0)
        org, _ = create_organization(slug=SLUG, name="Details benchmark")
        present = Account.objects.for_org(org).count()
        if args.rebuild or present != args.accounts:
            print(f"Generating {args.accounts:,} accounts with three years of contracts and renewals…", flush=True)
            started = time.perf_counter()
            rows = build(org, args.accounts)
            print(f"  built in {time.perf_counter() - started:.1f} s", flush=True)
        else:
            rows = {"accounts": present}
            print(f"Reusing the dataset of {present:,} accounts (--rebuild to regenerate).", flush=True)
        results: dict[str, Any] = {}
        with org_scope(org):
            ids = sorted(Account.objects.values_list("pk", flat=True))
            step = max(1, len(ids) // args.sample)
            sample = list(Account.objects.filter(pk__in=ids[::step][: args.sample]).select_related("owner"))
            for key in FIGURES:
                times, result = [], None
                for _ in range(3):
                    started = time.perf_counter()
                    result = figure(org, key, START, END)
                    times.append(time.perf_counter() - started)
                seconds = statistics.median(times)
                started = time.perf_counter()
                naive = {account.pk: NAIVE[key](account) for account in sample}
                naive_seconds = time.perf_counter() - started
                scaled = naive_seconds * len(ids) / len(sample)
                check = None
                if key == "contract-growth":
                    kinds = {pk: kind for kind in ("increased", "unchanged", "decreased", "churned")
                             for pk in result["drill"][kind]}  # fmt: skip
                    expanded = set(result["drill"]["expanded"])
                    check = sum(1 for pk, (kind, grew) in naive.items()
                                if kinds.get(pk) != kind or (pk in expanded) != grew)  # fmt: skip
                elif key == "revenue-pareto":
                    top = set(result["drill"]["top80"])
                    arr = {pk: value for pk, value in naive.items() if value > 0}
                    threshold = min((arr[pk] for pk in top if pk in arr), default=None)
                    # Every sampled account above the 80 % line's smallest member must be in it, and vice versa.
                    check = sum(1 for pk, value in arr.items() if threshold is not None and (value > threshold) != (
                        pk in top) and value != threshold)  # fmt: skip
                results[key] = {"seconds": round(seconds, 3), "runs": [round(t, 3) for t in times],
                                "naive_sample_s": round(naive_seconds, 2), "naive_scaled_s": round(scaled, 1),
                                "ratio": round(scaled / seconds, 1), "pass": seconds < TARGET_S,
                                "mismatches": check}  # fmt: skip
                verdict = "PASS" if seconds < TARGET_S else "FAIL"
                checked = "" if check is None else f"  mismatches {check}"
                line = f"  {key:<24} {seconds:6.2f} s  naive ≈ {scaled:8.1f} s  ×{scaled / seconds:7.1f}  {verdict}"
                print(line + checked, flush=True)
    finally:
        if args.drop:
            connection.close()
            db.drop()
    summary = {
        "database": "postgresql",
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "accounts": args.accounts,
        "rows": rows,
        "period": [START.isoformat(), END.isoformat()],
        "naive_sample": len(sample),
        "figures": results,
        "all_pass": all(r["pass"] for r in results.values()),
        "load_average": os.getloadavg(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print()
    print(f"Know the details — {summary['machine']}, {args.accounts:,} accounts, period {START} → {END}")
    print(f"  {'figure':<24} {'set-based':>10} {'naive (scaled)':>15} {'ratio':>8}  target < {TARGET_S:.0f} s")
    for key, r in results.items():
        print(f"  {key:<24} {r['seconds']:>9.2f}s {r['naive_scaled_s']:>14.1f}s {r['ratio']:>7.1f}×  "
              f"{'pass' if r['pass'] else 'FAIL'}")  # fmt: skip
    print(f"  load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())} (other work on the machine)")
    mismatches = sum(r["mismatches"] or 0 for r in results.values())
    return 0 if summary["all_pass"] and not mismatches else 1


if __name__ == "__main__":
    raise SystemExit(main())
