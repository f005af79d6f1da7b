"""``python -m benchmarks.renewals_page [--accounts N] [--requests R] [--baseline-runs B] [--keep-db]``.

The Renewals page (spec §7 screen 4) of the demo organization: target < 300 ms server time, within its
pinned query budget (issue 19).

1. creates a throwaway database ``<name>_renewals_page_bench`` next to the one in ``DATABASE_URL``
   (Postgres only), migrates it and runs ``seed_demo`` (``--accounts``, default 500: the demo the issue
   measured): three years of contracts and renewals, health scores and snapshots;
2. requests ``/o/demo/renewals/`` with Django's test client (the whole stack: session, middleware,
   view, analytics, template; no network) logged in as the demo admin: one warm-up, then ``--requests``
   timed ones (median and p95 of wall-clock time, and of this process's CPU time, which a busy shared
   machine inflates less), and one with its SQL statements counted against the pinned budget;
3. measures the naive baseline in the same run: the same figures computed the straightforward way
   (:func:`naive_figures`: per-renewal health and snapshot lookups, ARR by an ORM aggregate per day and
   a Python loop per account for retention, every monthly bridge boundary and every cohort period,
   Python loops over renewal objects for the forecast, accuracy and churn reasons), and checks that it
   finds the same expected ARR and GRR as the page;
4. prints the figures and the ratio; drops the database (``--keep-db`` keeps it).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: The page's pinned query budget on Postgres (tests/test_renewals_pages.py, RENEWALS_PAGE_QUERIES).
QUERY_BUDGET = 28
TARGET_MS = 300


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.renewals_page", description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=500, help="demo accounts (default 500)")
    parser.add_argument("--requests", type=int, default=30, help="timed requests (default 30)")
    parser.add_argument("--baseline-runs", type=int, default=3)
    parser.add_argument("--keep-db", action="store_true")
    return parser.parse_args(argv)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


def _months_back(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    last = ((date(year, month + 1, 1) + timedelta(days=31)).replace(day=1) - timedelta(days=1)).day
    return date(year, month + 1, min(day.day, last))


def naive_figures(org: Any, today: date) -> dict[str, Any]:
    """The Renewals page's figures, computed the straightforward way (what a first draft does)."""
    from accounts.models import Account
    from accounts.services import arr_at
    from health.models import HealthScore, HealthSnapshot
    from renewals.analytics import fiscal_quarter
    from renewals.models import Renewal, RenewalTarget

    out: dict[str, Any] = {}
    # Upcoming renewals (90 days) with each account's health and dragging component: lookups per row.
    upcoming = []
    for renewal in Renewal.objects.for_org(org).filter(outcome="", due_date__lte=today + timedelta(days=90)):
        account = Account.objects.for_org(org).get(pk=renewal.account_id)
        health = HealthScore.objects.for_org(org).filter(account=account).first()
        snapshot = HealthSnapshot.objects.for_org(org).filter(account=account).order_by("-date").first()
        worst = None
        for c in (snapshot.components if snapshot else []) or []:
            if c.get("score") is not None and c.get("weight"):
                lost = c["weight"] * (100 - c["score"])
                worst = max(worst or (0, ""), (lost, c.get("key")))
        upcoming.append((renewal.pk, account.name, health.color if health else None, worst))
    out["upcoming"] = sorted(upcoming)[:25]

    # Forecast: this quarter and next, one Python loop over the renewal objects each.
    first, last, _ = fiscal_quarter(org, today)
    quarters = [(first, last), fiscal_quarter(org, last + timedelta(days=1))[:2]]
    out["expected"] = []
    for q_first, q_last in quarters:
        expected = Decimal(0)
        for renewal in Renewal.objects.for_org(org).filter(due_date__gte=q_first, due_date__lte=q_last):
            if renewal.outcome:
                expected += renewal.new_arr or 0
            else:
                expected += (renewal.forecast_arr * renewal.probability / 100).quantize(
                    Decimal("0.01"), rounding=ROUND_HALF_UP
                )
        target = RenewalTarget.objects.for_org(org).filter(quarter_start=q_first).first()
        out["expected"].append((expected, target.target_arr if target else None))

    # Accuracy: the last four quarters, a loop over the closed renewals of each.
    cursor = first - timedelta(days=1)
    for _ in range(4):
        q_first, q_last, _ = fiscal_quarter(org, cursor)
        called = actual = 0
        for renewal in (
            Renewal.objects.for_org(org).filter(due_date__gte=q_first, due_date__lte=q_last).exclude(outcome="")
        ):
            if renewal.csm_call and renewal.csm_call_arr is not None:
                called += renewal.csm_call_arr
                actual += renewal.new_arr or 0
        cursor = q_first - timedelta(days=1)

    # Retention over 12 months: ARR per account at both ends, a loop per account.
    start, end = _months_back(today, 12), today
    a0, a1 = arr_at(org, start), arr_at(org, end)
    start_arr = sum(a0.values(), Decimal(0))
    lost = sum((v - min(v, a1.get(k, Decimal(0))) for k, v in a0.items()), Decimal(0))
    out["grr"] = (start_arr - lost) / start_arr if start_arr else None

    # Monthly bridge: ARR at every month boundary, a loop per account per month.
    boundary, points = start, [start]
    while True:
        boundary = (boundary.replace(day=1) + timedelta(days=32)).replace(day=1)
        if boundary >= end:
            break
        points.append(boundary)
    points.append(end)
    months = []
    for t0, t1 in zip(points, points[1:], strict=False):
        before, after = arr_at(org, t0), arr_at(org, t1)
        months.append(sum((after.get(k, 0) - v for k, v in before.items()), Decimal(0)))
    out["months"] = len(months)

    # Churn reasons: the losses of the period, each with its reason looked up.
    reasons: dict[str, Decimal] = {}
    for renewal in Renewal.objects.for_org(org).filter(due_date__gte=start, due_date__lte=end,
                                                       outcome__in=["churned", "contracted"]):  # fmt: skip
        label = renewal.churn_reason.label if renewal.churn_reason_id else "Unspecified"
        reasons[label] = reasons.get(label, Decimal(0)) + renewal.current_arr - (renewal.new_arr or 0)
    out["reasons"] = reasons

    # Cohorts: for every customer-since quarter, ARR at each half-yearly mark, per account.
    cohorts: dict[str, list[int]] = {}
    for account in Account.objects.for_org(org).exclude(customer_since=None):
        since = account.customer_since
        key = f"{since.year}-Q{(since.month - 1) // 3 + 1}"
        cohorts.setdefault(key, []).append(account.pk)
    for key, ids in cohorts.items():
        year, quarter = int(key[:4]), int(key[-1])
        quarter_end = date(year + (quarter == 4), (quarter * 3) % 12 + 1, 1) - timedelta(days=1)
        for months_after in (0, 6, 12, 18, 24, 36):
            day = _months_back(quarter_end, -months_after)
            if day > today:
                break
            arr_at(org, day, ids)
    out["cohorts"] = len(cohorts)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, str(ROOT))
    from .pg import bench_database

    db = bench_database("renewals_page", "benchmarks.renewals_page")
    db.create(fresh=True)
    db.use()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")
    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from accounts.demo import seed_demo
    from accounts.models import Organization

    try:
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        summary = seed_demo(slug="demo", accounts=args.accounts, seed=42)
        seeded = time.perf_counter() - started
        print(f"seeded the demo ({args.accounts:,} accounts) in {seeded:.1f} s", flush=True)
        org = Organization.objects.get(slug="demo")
        from django.contrib.auth import get_user_model

        admin = get_user_model().objects.get(email=summary.admin_email)
        client = Client()
        client.force_login(admin)
        url = f"/o/{org.slug}/renewals/"
        cache.clear()
        assert client.get(url).status_code == 200
        walls, cpus = [], []
        for _ in range(args.requests):
            begin, cpu = time.perf_counter(), time.process_time()
            response = client.get(url)
            walls.append((time.perf_counter() - begin) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
            assert response.status_code == 200
        counter = QueryCounter()
        with connection.execute_wrapper(counter):
            page = client.get(url)
        today = timezone.localdate()
        naive, naive_cpu = [], []
        result: dict[str, Any] = {}
        for _ in range(args.baseline_runs):
            begin, cpu = time.perf_counter(), time.process_time()
            result = naive_figures(org, today)
            naive.append((time.perf_counter() - begin) * 1000)
            naive_cpu.append((time.process_time() - cpu) * 1000)
        # The baseline must find what the page shows, or the ratio compares different work.
        from renewals import analytics

        shown = [Decimal(str(q["expected_arr"])) for q in analytics.forecast(org, today=today)["quarters"]]
        assert [e for e, _ in result["expected"]] == shown, (result["expected"], shown)
        grr = analytics.retention(org, _months_back(today, 12), today)["grr"]
        assert grr is None or abs(Decimal(grr) - Decimal(result["grr"])) < Decimal("0.0001"), (grr, result["grr"])
        assert page.status_code == 200
        median, cpu_median = statistics.median(walls), statistics.median(cpus)
        naive_median, naive_cpu_median = statistics.median(naive), statistics.median(naive_cpu)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            db.drop()
    print()
    print(f"Renewals page — Postgres database {db.name}, demo of {args.accounts:,} accounts")
    print("-" * 96)
    lines = [
        (f"page, median of {args.requests} requests, wall (target < {TARGET_MS} ms)", f"{median:9.1f} ms"),
        ("page, p95, wall", f"{percentile(walls, 0.95):9.1f} ms"),
        ("page, median CPU time of this process", f"{cpu_median:9.1f} ms"),
        (f"SQL statements per request (budget {QUERY_BUDGET})", f"{counter.count:9d}"),
        (f"naive baseline, median of {args.baseline_runs}, wall", f"{naive_median:9.1f} ms"),
        ("naive baseline, median CPU time", f"{naive_cpu_median:9.1f} ms"),
        ("ratio naive / page (wall)", f"{naive_median / median:9.1f}x"),
        ("ratio naive / page (CPU)", f"{naive_cpu_median / cpu_median:9.1f}x"),
    ]
    for label, value in lines:
        print(f"{label:62} {value}")
    if counter.count > QUERY_BUDGET:
        print(f"OVER BUDGET: {counter.count} SQL statements > {QUERY_BUDGET}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
