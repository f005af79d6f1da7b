"""``python -m benchmarks.retention [--accounts N] [--requests R] [--sample S] [--rebuild] [--drop]``.

Retention API speed on a big book (issue #5 target: ``/api/v1/metrics/retention/`` over three years with
50,000 accounts answers in a median < 2 s, also with ``group_by=segment`` and ``group_by=product``):

1. uses the database ``<name>_retention_bench`` next to the one in ``DATABASE_URL`` (Postgres only),
   migrated; builds the book once and **reuses it** on later runs with the same ``--accounts``
   (``--rebuild`` recreates the database and builds it again; ``--drop`` drops it at the end);
2. the book: ``--accounts`` accounts (5 % children of another account), each starting at a random
   date between 2023-01-01 and 2025-12-31, on chained annual contracts (start … start + 1 year − 1 day)
   with 2–3 lines from 6 products; at each renewal 10 % churn, the others change quantities (−20 %
   … +30 %), sometimes drop or add a product or change the discount; 1 % of contracts are cancelled.
   Inserted with ``COPY`` (the demo seeder's bulk path), then current ARR is refreshed so the default
   (ARR-based) segments mean something;
3. through Django's test client with an admin API key (whole stack: authentication, throttling,
   validation, analytics, serializer, JSON), ``GET /api/v1/metrics/retention/?start=2024-01-01&
   end=2026-12-31`` without grouping, ``group_by=segment`` and ``group_by=product``: 1 warm-up, then
   ``--requests`` timed requests each → median, min, max;
4. the naive baseline, in the same run: the per-account ORM loop — for each account,
   :func:`accounts.services.arr_at` at t0 and at t1 (one query each) and one "had ARR before t0"
   query, then the figures in Python — on ``--sample`` accounts, scaled to the whole book;
5. prints the table and the ratios; writes ``benchmarks/results/retention.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "retention.json"
SLUG = "bench-retention"
START, END = date(2024, 1, 1), date(2026, 12, 31)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.retention", description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=50_000, help="accounts in the book (default 50,000)")
    parser.add_argument("--requests", type=int, default=7, help="timed requests per query (default 7)")
    parser.add_argument("--sample", type=int, default=300, help="accounts of the naive baseline (default 300)")
    parser.add_argument("--rebuild", action="store_true", help="build the book again even if it exists")
    parser.add_argument("--drop", action="store_true", help="drop the benchmark database at the end")
    return parser.parse_args(argv)


def prepare_database() -> tuple[str, Any]:
    """Point DATABASE_URL at ``<name>_retention_bench`` (created when missing); returns (name, dropper)."""
    from .pg import bench_database

    db = bench_database("retention", "benchmarks.retention")
    db.create()
    db.use()

    def drop(recreate: bool = False) -> None:
        db.drop()
        if recreate:
            db.create()

    return db.name, drop


# --- The book ------------------------------------------------------------------------------------


def build_book(accounts: int, seed: int = 5) -> dict[str, int]:
    """Accounts, chained annual contracts and lines, inserted with COPY. Returns row counts."""
    from django.db import transaction

    from accounts.demo import _allocate_ids, bulk_write
    from accounts.models import Account, Contract, ContractLine, Product
    from accounts.models.customers import line_arr
    from accounts.services import create_organization, ensure_membership, refresh_current_arr

    org, _ = create_organization(slug=SLUG, name="Retention benchmark")
    owners = [ensure_membership(organization=org, email=f"csm{i}@retention.bench", role="csm").user for i in range(20)]
    catalog = [("CORE", "Core platform", 900), ("ANALYTICS", "Analytics", 300), ("API", "API access", 200),
               ("SSO", "Single sign-on", 100), ("SUPPORT", "Premium support", 2500),
               ("TRAINING", "Training", 1200)]  # fmt: skip
    products = [Product.all_orgs.create(organization=org, sku=sku, name=name, product_line="Core" if sku == "CORE"
                                        else "Add-ons") for sku, name, _ in catalog]  # fmt: skip
    prices = {p.pk: Decimal(price) for p, (_, _, price) in zip(products, catalog, strict=True)}
    rng = random.Random(seed)
    horizon = date(2026, 12, 31)
    account_rows: list[Account] = []
    contract_rows: list[Contract] = []
    line_rows: list[ContractLine] = []
    industries = ["Software", "Healthcare", "Retail", "Manufacturing", "Financial Services", "Education"]
    regions = ["North America", "EMEA", "APAC", "LATAM"]
    number = 0
    for i in range(accounts):
        since = date(2023, 1, 1) + timedelta(days=rng.randrange(365 * 3))
        parent = rng.choice(account_rows) if account_rows and rng.random() < 0.05 else None
        account = Account(organization_id=org.pk, external_id=f"RB-{i:07d}", name=f"Retention customer {i:07d}",
                          industry=rng.choice(industries), region=rng.choice(regions),
                          owner_id=rng.choice(owners).pk if rng.random() < 0.9 else None,
                          touch_model=rng.choice(["high", "low", "tech"]), lifecycle_stage="adoption",
                          customer_since=since, tags=[], custom_fields={})  # fmt: skip
        if parent is not None:  # (a None in the relation cache would trip the COPY path)
            account.parent = parent
        account_rows.append(account)
        # Initial lines: CORE plus 1–2 add-ons, sized by touch model.
        size = {"high": 60, "low": 15, "tech": 3}[account.touch_model]
        lines = {products[0].pk: (rng.randint(size // 2 + 1, size * 2), Decimal("0"))}
        for product in rng.sample(products[1:], rng.randint(1, 2)):
            lines[product.pk] = (rng.randint(1, size), Decimal(rng.choice(["0", "0", "0.1", "0.2"])))
        start = since
        while start <= horizon:
            end = start.replace(year=start.year + 1) - timedelta(days=1) if not (start.month == 2 and start.day == 29) \
                else date(start.year + 1, 2, 28)  # fmt: skip
            number += 1
            contract = Contract(organization_id=org.pk, account=account, number=f"RB-C{number:08d}", start_date=start,
                                end_date=end, status="cancelled" if rng.random() < 0.01 else
                                ("ended" if end < date(2026, 11, 1) else "active"), currency="USD")  # fmt: skip
            total = Decimal("0")
            for product_id, (quantity, discount) in lines.items():
                arr = line_arr(Decimal(quantity), prices[product_id], discount)
                total += arr
                line_rows.append(ContractLine(organization_id=org.pk, contract=contract, product_id=product_id,
                                              quantity=Decimal(quantity), annual_unit_price=prices[product_id],
                                              discount=discount, arr=arr))  # fmt: skip
            contract.arr = total
            contract_rows.append(contract)
            if rng.random() < 0.10:  # churn at this renewal
                break
            changed = {}
            for product_id, (quantity, discount) in lines.items():
                if product_id != products[0].pk and rng.random() < 0.08:
                    continue  # product dropped, logo kept
                quantity = max(1, round(quantity * rng.uniform(0.8, 1.3)))
                if rng.random() < 0.1:
                    discount = Decimal(rng.choice(["0", "0.05", "0.1", "0.2"]))
                changed[product_id] = (quantity, discount)
            if rng.random() < 0.1:  # cross-sell
                extra = rng.choice(products[1:])
                changed.setdefault(extra.pk, (rng.randint(1, size), Decimal("0")))
            lines = changed
            start = end + timedelta(days=1)
    with transaction.atomic():
        _allocate_ids(Account, account_rows)
        for chunk in range(0, len(account_rows), 5000):
            bulk_write(Account, account_rows[chunk : chunk + 5000])
        for chunk in range(0, len(contract_rows), 20000):
            bulk_write(Contract, contract_rows[chunk : chunk + 20000])
        for chunk in range(0, len(line_rows), 50000):
            bulk_write(ContractLine, line_rows[chunk : chunk + 50000])
    refresh_current_arr(org)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"accounts": len(account_rows), "contracts": len(contract_rows), "contract_lines": len(line_rows)}


def existing_book(accounts: int) -> dict[str, int] | None:
    from accounts.models import Account, Contract, ContractLine, Organization

    org = Organization.objects.filter(slug=SLUG).first()
    if org is None:
        return None
    counts = {
        "accounts": Account.objects.for_org(org).count(),
        "contracts": Contract.objects.for_org(org).count(),
        "contract_lines": ContractLine.objects.for_org(org).count(),
    }
    return counts if counts["accounts"] == accounts else None


# --- Measurements --------------------------------------------------------------------------------


def naive_retention(org: Any, sample: list[int]) -> dict[str, Decimal]:
    """The baseline: spec §4 account by account with the ORM (three queries per account)."""
    from accounts.models import ContractLine
    from accounts.services import arr_at

    zero = Decimal("0")
    out = dict.fromkeys(("start", "new", "reactivation", "expansion", "contraction", "churn", "end"), zero)
    for account_id in sample:
        a0 = arr_at(org, START, [account_id]).get(account_id, zero)
        a1 = arr_at(org, END, [account_id]).get(account_id, zero)
        before = (
            ContractLine.objects.for_org(org)
            .filter(contract__account_id=account_id, contract__start_date__lt=START, arr__gt=0)
            .exclude(contract__status="cancelled")
            .exists()
        )
        out["end"] += a1
        if a0 > 0:
            out["start"] += a0
            if a1 == 0:
                out["churn"] += a0
            elif a1 < a0:
                out["contraction"] += a0 - a1
            else:
                out["expansion"] += a1 - a0
        elif a1 > 0:
            out["new"] += a1
            if before:
                out["reactivation"] += a1
    return out


def measure(client: Any, url: str, requests: int) -> dict[str, Any]:
    response = client.get(url)  # warm-up (connections, caches)
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
    timings = []
    for _ in range(requests):
        begin = time.perf_counter()
        response = client.get(url)
        timings.append(time.perf_counter() - begin)
        assert response.status_code == 200
    body = response.json()
    return {
        "url": url,
        "median_s": round(statistics.median(timings), 3),
        "min_s": round(min(timings), 3),
        "max_s": round(max(timings), 3),
        "groups": len(body["groups"]),
        "start_arr": body["start_arr"],
        "nrr": body["nrr"],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, str(ROOT))
    database, drop = prepare_database()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")
    os.environ["API_RATE_LIMIT"] = "1000000/min"  # measure the endpoint, not the throttle
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from accounts.models import Account, ApiKey, Organization

    try:
        print(f"Migrating {database}…", flush=True)
        call_command("migrate", verbosity=0)
        counts = None if args.rebuild else existing_book(args.accounts)
        build_seconds = None
        if counts is None:
            drop(recreate=True)  # a fresh database: nothing of an older book is left behind
            call_command("migrate", verbosity=0)
            print(f"Building the book: {args.accounts:,} accounts…", flush=True)
            started = time.perf_counter()
            counts = build_book(args.accounts)
            build_seconds = round(time.perf_counter() - started, 1)
            print(f"  built in {build_seconds} s: {counts}", flush=True)
        else:
            print(f"Reusing the book: {counts}", flush=True)
        org = Organization.objects.get(slug=SLUG)
        _, raw = ApiKey.issue(organization=org, role="viewer", name="bench")
        client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
        base = f"/api/v1/metrics/retention/?start={START}&end={END}"
        results: dict[str, Any] = {}
        for label, suffix in (("no grouping", ""), ("group_by=segment", "&group_by=segment"),
                              ("group_by=product", "&group_by=product")):  # fmt: skip
            print(f"Measuring {label}…", flush=True)
            results[label] = measure(client, base + suffix, args.requests)

        ids = list(Account.objects.for_org(org).order_by("id").values_list("id", flat=True))
        sample = random.Random(1).sample(ids, min(args.sample, len(ids)))
        print(f"Naive baseline on {len(sample)} accounts…", flush=True)
        started = time.perf_counter()
        naive_retention(org, sample)
        naive_sample = time.perf_counter() - started
        naive_scaled = naive_sample * len(ids) / len(sample)
    finally:
        if args.drop:
            drop()
    for figures in results.values():
        figures["speedup_vs_naive"] = round(naive_scaled / figures["median_s"], 1)
    report = {
        "database": database, "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "book": counts, "build_seconds": build_seconds,
        "period": [str(START), str(END)], "requests": args.requests, "target_median_s": 2.0, "queries": results,
        "baseline": f"per-account ORM loop (arr_at at t0 and t1 + a reactivation query), {len(sample)} accounts, "
                    f"scaled to {len(ids):,}",
        "baseline_sample_s": round(naive_sample, 2), "baseline_scaled_s": round(naive_scaled, 1),
    }  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(f"Retention API — {database}, {counts['accounts']:,} accounts, {counts['contracts']:,} contracts, "
          f"{counts['contract_lines']:,} lines; period {START} … {END}")  # fmt: skip
    print("=" * 96)
    print(f"{'query':30} {'median':>10} {'min':>9} {'max':>9} {'groups':>7} {'naive (scaled)':>16} {'ratio':>8}")
    print("-" * 96)
    for label, q in results.items():
        print(f"{label:30} {q['median_s']:>8.3f} s {q['min_s']:>7.3f} s {q['max_s']:>7.3f} s {q['groups']:>7} "
              f"{naive_scaled:>14.1f} s {q['speedup_vs_naive']:>7.1f}x")  # fmt: skip
    print("-" * 96)
    print(f"target: median < 2 s.  baseline: {report['baseline']} ({naive_sample:.2f} s for the sample)")
    print(f"results written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
