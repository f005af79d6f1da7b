"""``python -m benchmarks [--quick] [--allow-sqlite] [--keep-db]`` — see benchmarks/README.md.

Creates a throwaway database next to the one in ``DATABASE_URL`` (``<name>_bench``), migrates it,
measures, prints a table, writes ``benchmarks/results/latest.json`` and drops the database.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller smoke run (10k rows, 5k accounts)")
    parser.add_argument("--allow-sqlite", action="store_true", help="run on a temporary SQLite file")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the benchmark database")
    parser.add_argument("--rows", type=int, help="rows of the import benchmark (default 100000, quick 10000)")
    parser.add_argument("--accounts", type=int, help="accounts for the API benchmark (default 50000, quick 5000)")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per API query (min 30)")
    return parser.parse_args(argv)


# --- database ------------------------------------------------------------------------------------


def prepare_database(args: argparse.Namespace) -> tuple[str, Any]:
    """Point DATABASE_URL at a fresh benchmark database; returns (description, cleanup)."""
    import dj_database_url

    url = os.environ.get("DATABASE_URL", "")
    config = dj_database_url.parse(url) if url else {"ENGINE": "django.db.backends.sqlite3"}
    if config["ENGINE"] != "django.db.backends.postgresql":
        if not args.allow_sqlite:
            print(
                "The benchmarks measure the production setup: set DATABASE_URL to a Postgres server, e.g.\n"
                "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/retain python -m benchmarks\n"
                "(a database <name>_bench is created there and dropped afterwards). "
                "To run on SQLite anyway, add --allow-sqlite.",
                file=sys.stderr,
            )
            sys.exit(2)
        folder = tempfile.mkdtemp(prefix="retain-bench-")
        os.environ["DATABASE_URL"] = f"sqlite:///{folder}/bench.sqlite3"
        return "sqlite (temporary file)", lambda: None

    import psycopg2

    bench_name = f"{config['NAME']}_bench"
    server = {
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "dbname": "postgres",
    }

    def admin(sql: str) -> None:
        connection = psycopg2.connect(**{k: v for k, v in server.items() if v})
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
        finally:
            connection.close()

    admin(f'DROP DATABASE IF EXISTS "{bench_name}"')
    admin(f'CREATE DATABASE "{bench_name}"')
    base = url.rsplit("/", 1)[0]
    os.environ["DATABASE_URL"] = f"{base}/{bench_name}"

    def cleanup() -> None:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            admin(f'DROP DATABASE IF EXISTS "{bench_name}"')

    with psycopg2.connect(**{k: v for k, v in server.items() if v}) as connection:
        version = connection.server_version
    return f"postgres {version // 10000}.{version % 100} (database {bench_name})", cleanup


# --- helpers -------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def members(org: Any, count: int) -> list[str]:
    from accounts.services import ensure_membership

    emails = [f"csm{i}@{org.slug}.bench.local" for i in range(count)]
    for email in emails:
        ensure_membership(organization=org, email=email, role="csm")
    return emails


def write_accounts_csv(path: Path, rows: int, owners: list[str], seed: int = 1) -> None:
    """A realistic accounts file: owners, 5% children of earlier rows, stages, touch models, dates."""
    from cs_platform.imports import COLUMNS

    rng = random.Random(seed)
    industries = ["Software", "Healthcare", "Retail", "Manufacturing", "Financial Services", "Education"]
    regions = ["North America", "EMEA", "APAC", "LATAM"]
    stages = ["onboarding", "adoption", "mature", "renewal"]
    anchor = date(2026, 1, 1)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS["accounts"])
        for i in range(rows):
            parent = f"ACC-{rng.randrange(i):07d}" if i > 10 and rng.random() < 0.05 else ""
            writer.writerow(
                [
                    f"ACC-{i:07d}",
                    f"Customer {i:07d} {rng.choice(['Labs', 'Systems', 'Health', 'Retail', 'Works'])}",
                    f"customer{i}.example",
                    rng.choice(industries),
                    rng.choice(regions),
                    rng.randint(5, 50000),
                    rng.choice(owners) if rng.random() < 0.9 else "",
                    parent,
                    rng.choice(["high", "low", "tech"]),
                    rng.choice(stages),
                    (anchor - timedelta(days=rng.randint(0, 1500))).isoformat(),
                ]
            )


def naive_import(org: Any, path: Path, limit: int) -> int:
    """The baseline: per row, look up the owner and parent, then ``update_or_create`` (one transaction)."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from accounts.models import Account

    user_model = get_user_model()
    done = 0
    with open(path, newline="", encoding="utf-8") as handle, transaction.atomic():
        for row in csv.DictReader(handle):
            if done >= limit:
                break
            owner = user_model.objects.filter(email__iexact=row["owner_email"]).first() if row["owner_email"] else None
            parent = (
                Account.objects.for_org(org).filter(external_id=row["parent_external_id"]).first()
                if row["parent_external_id"]
                else None
            )
            Account.all_orgs.update_or_create(
                organization=org,
                external_id=row["external_id"],
                defaults={
                    "name": row["name"],
                    "domain": row["domain"],
                    "industry": row["industry"],
                    "region": row["region"],
                    "employees": int(row["employees"]) if row["employees"] else None,
                    "owner": owner,
                    "parent": parent,
                    "touch_model": row["touch_model"],
                    "lifecycle_stage": row["lifecycle_stage"],
                    "customer_since": date.fromisoformat(row["customer_since"]) if row["customer_since"] else None,
                },
            )
            done += 1
    return done


class QueryCounter:
    """Counts SQL statements (the test client resets ``connection.queries`` at each request)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


# --- benchmarks ----------------------------------------------------------------------------------


def bench_import(rows: int, sample: int = 2000) -> dict[str, Any]:
    from accounts.services import create_organization
    from cs_platform.imports import import_csv

    org, _ = create_organization(slug="bench-import", name="Bench import")
    naive_org, _ = create_organization(slug="bench-naive", name="Bench naive import")
    owners = members(org, 12)
    naive_owners = members(naive_org, 12)
    folder = Path(tempfile.mkdtemp(prefix="retain-bench-"))
    path = folder / "accounts.csv"
    write_accounts_csv(path, rows, owners)
    naive_path = folder / "naive.csv"
    write_accounts_csv(naive_path, min(rows, sample), naive_owners)

    started = time.perf_counter()
    result = import_csv(org, "accounts", path)
    first = time.perf_counter() - started
    assert result.ok and result.created == rows, result.summary()
    started = time.perf_counter()
    again = import_csv(org, "accounts", path)
    reimport = time.perf_counter() - started
    assert again.unchanged == rows, again.summary()

    started = time.perf_counter()
    done = naive_import(naive_org, naive_path, sample)
    naive = time.perf_counter() - started
    naive_scaled = naive * rows / done
    return {
        "rows": rows,
        "import_seconds": round(first, 2),
        "reimport_unchanged_seconds": round(reimport, 2),
        "rows_per_second": round(rows / first),
        "target_seconds": 60,
        "baseline": f"per-row owner lookup + parent lookup + update_or_create, {done} rows, scaled to {rows}",
        "baseline_sample_seconds": round(naive, 2),
        "baseline_scaled_seconds": round(naive_scaled, 2),
        "speedup": round(naive_scaled / first, 1),
    }


def bench_api(accounts: int, requests: int) -> dict[str, Any]:
    from django.db import connection
    from django.test import Client, override_settings

    from accounts.demo import seed_demo
    from accounts.models import ApiKey

    started = time.perf_counter()
    summary = seed_demo(slug="bench-api", accounts=accounts, seed=42)
    seed_seconds = time.perf_counter() - started
    org = summary.organization
    _, raw = ApiKey.issue(organization=org, role="admin", name="bench")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    queries = {
        "high touch by ARR": "?touch_model=high&ordering=-arr",
        "search by name": "?q=north&ordering=name",
        "renewals due in 90 days": f"?renewal_before={date.today() + timedelta(days=90)}&ordering=next_renewal_date",
    }
    out: dict[str, Any] = {
        "accounts": accounts,
        "seed_demo_seconds": round(seed_seconds, 1),
        "seeded_rows": summary.counts,
        "requests_per_query": requests,
        "baseline": "same endpoint, filters, ordering, pagination and serializer, minus select_related (N+1)",
        "queries": {},
    }
    with override_settings(ROOT_URLCONF="benchmarks.urls"):
        for label, query in queries.items():
            figures = {}
            for variant, prefix in (("optimized", "/api/v1/accounts/"), ("naive", "/bench/naive/accounts/")):
                url = prefix + query
                for _ in range(3):  # warm up caches and connections
                    response = client.get(url)
                    assert response.status_code == 200, (url, response.status_code, response.content[:300])
                timings = []
                for _ in range(requests):
                    begin = time.perf_counter()
                    response = client.get(url)
                    timings.append((time.perf_counter() - begin) * 1000)
                counter = QueryCounter()
                with connection.execute_wrapper(counter):
                    response = client.get(url)
                figures[variant] = {
                    "median_ms": round(statistics.median(timings), 1),
                    "p95_ms": round(percentile(timings, 0.95), 1),
                    "sql_queries": counter.count,
                    "count": response.json()["count"],
                    "page_rows": len(response.json()["results"]),
                }
            figures["url"] = "/api/v1/accounts/" + query
            figures["speedup_median"] = round(figures["naive"]["median_ms"] / figures["optimized"]["median_ms"], 1)
            out["queries"][label] = figures
    return out


def print_table(results: dict[str, Any]) -> None:
    imp, api = results["import"], results["api"]
    print()
    print(f"Retain benchmarks — {results['database']}, {'quick' if results['quick'] else 'full'} run")
    print("=" * 100)
    print(f"{'benchmark':44} {'measured':>16} {'naive baseline':>18} {'ratio':>8}   target")
    print("-" * 100)
    print(
        f"{'import_csv accounts, ' + format(imp['rows'], ',') + ' rows':44} {imp['import_seconds']:>14.2f} s "
        f"{imp['baseline_scaled_seconds']:>16.2f} s {imp['speedup']:>7.1f}x   < 60 s"
    )
    print(f"{'  re-import of the same file (all unchanged)':44} {imp['reimport_unchanged_seconds']:>14.2f} s")
    seeded = f"seed_demo, {api['accounts']:,} accounts (+ related rows)"
    print(f"{seeded:44} {api['seed_demo_seconds']:>14.1f} s")
    for label, q in api["queries"].items():
        o, n = q["optimized"], q["naive"]
        print(
            f"{'accounts API: ' + label + ' (median)':44} {o['median_ms']:>13.1f} ms {n['median_ms']:>15.1f} ms "
            f"{q['speedup_median']:>7.1f}x   < 100 ms"
        )
        print(
            f"{'  p95 / SQL queries per request':44} {o['p95_ms']:>9.1f} ms / {o['sql_queries']:<3}"
            f"{n['p95_ms']:>11.1f} ms / {n['sql_queries']:<3}"
        )
    print("-" * 100)
    print(f"import baseline: {imp['baseline']}")
    print(f"API baseline:    {api['baseline']}; {api['requests_per_query']} timed requests per query")
    print(f"results written to {RESULTS.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    rows = args.rows or (10_000 if args.quick else 100_000)
    accounts = args.accounts or (5_000 if args.quick else 50_000)
    requests = max(30, args.requests)
    sys.path.insert(0, str(ROOT))
    database, cleanup = prepare_database(args)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")
    os.environ["API_RATE_LIMIT"] = "1000000/min"  # measure the endpoint, not the throttle
    import django

    django.setup()
    from django.core.management import call_command

    try:
        print(f"Migrating {database}…", flush=True)
        call_command("migrate", verbosity=0)
        print(f"Import benchmark: {rows:,} rows…", flush=True)
        import_results = bench_import(rows)
        print(f"  {json.dumps(import_results)}", flush=True)
        print(f"API benchmark: seeding {accounts:,} accounts, then {requests} requests per query…", flush=True)
        api_results = bench_api(accounts, requests)
    finally:
        cleanup()
    results = {
        "database": database,
        "quick": args.quick,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "import": import_results,
        "api": api_results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print_table(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
