"""``python -m benchmarks.renewals [--accounts N] [--closes N] [--allow-sqlite] [--keep-db]``.

Renewals at demo scale, on a throwaway database ``<name>_bench`` next to the one in ``DATABASE_URL``
(created, migrated, dropped, as ``python -m benchmarks`` does):

1. ``seed_demo`` with ``--accounts`` accounts (default 50,000): three years of contracts and renewals
   (``seed_seconds``, with the row counts);
2. the daily job on a book whose open renewals were all removed (the first run after an import):
   ``create_due_renewals`` (one query to find the contracts, bulk inserts with ON CONFLICT DO NOTHING)
   against the **naive baseline** measured in the same run — per contract: does it have a renewal,
   was it renewed early, then ``Renewal.all_orgs.create`` — on a sample of 1,000 contracts, scaled
   linearly; then the steady state (a run that finds nothing to do);
3. ``close_renewal`` on ``--closes`` open renewals (renewed with a copy of the lines): ms per close.

Results print as a table and go to ``benchmarks/results/renewals.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "renewals.json"
SAMPLE = 1000


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.renewals", description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=50_000, help="demo accounts (default 50000)")
    parser.add_argument("--closes", type=int, default=200, help="renewals to close (default 200)")
    parser.add_argument("--allow-sqlite", action="store_true", help="run on a temporary SQLite file")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the benchmark database")
    return parser.parse_args(argv)


def naive_create(org: Any, contracts: list[Any], today: Any) -> int:
    """What a straightforward job does: one contract at a time, three queries each."""
    from datetime import timedelta

    from accounts.models import Contract
    from renewals.models import Renewal

    made = 0
    for contract in contracts:
        if Renewal.objects.for_org(org).filter(contract=contract).exists():
            continue
        renewed_early = (
            Contract.objects.for_org(org)
            .filter(
                account_id=contract.account_id,
                start_date__gt=contract.start_date,
                start_date__lte=contract.end_date + timedelta(days=1),
                end_date__gt=contract.end_date,
            )
            .exclude(pk=contract.pk)
            .exclude(status="cancelled")
            .exists()
        )
        if renewed_early:
            continue
        Renewal.all_orgs.create(
            organization=org,
            contract=contract,
            account_id=contract.account_id,
            owner_id=contract.account.owner_id,
            due_date=contract.end_date,
            current_arr=contract.arr,
            forecast_arr=contract.arr,
        )
        made += 1
    return made


def bench(accounts: int, closes: int) -> dict[str, Any]:
    from django.db import transaction
    from django.utils import timezone

    from accounts.demo import seed_demo
    from accounts.services import Actor
    from renewals.models import Renewal
    from renewals.services import close_renewal, create_due_renewals, due_contracts

    today = timezone.localdate()
    started = time.perf_counter()
    summary = seed_demo(slug="bench-renewals", accounts=accounts, seed=42, today=today)
    results: dict[str, Any] = {"accounts": accounts, "seed_seconds": round(time.perf_counter() - started, 1)}
    results["rows"] = {
        k: v for k, v in summary.counts.items() if k in ("contracts", "renewals", "renewal_line_changes")
    }
    org = summary.organization

    with transaction.atomic():
        Renewal.objects.for_org(org).filter(outcome="").delete()
        candidates = list(due_contracts(org, today=today).select_related("account"))
        sample = candidates[:SAMPLE]
        started = time.perf_counter()
        naive_made = naive_create(org, sample, today)
        naive_seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    with transaction.atomic():
        Renewal.objects.for_org(org).filter(outcome="").delete()
        started = time.perf_counter()
        created = create_due_renewals(org, today=today)
        job_seconds = time.perf_counter() - started
    started = time.perf_counter()
    assert create_due_renewals(org, today=today) == 0
    steady_seconds = time.perf_counter() - started
    scaled = naive_seconds / max(1, len(sample)) * len(candidates)
    results["daily_job"] = {
        "renewals_opened": created,
        "seconds": round(job_seconds, 2),
        "naive_sample": len(sample),
        "naive_sample_created": naive_made,
        "naive_scaled_seconds": round(scaled, 2),
        "speedup": round(scaled / job_seconds, 1) if job_seconds else None,
        "steady_state_seconds": round(steady_seconds, 3),
    }

    actor = Actor(organization=org, role="admin")
    open_ids = list(Renewal.objects.for_org(org).filter(outcome="").values_list("pk", flat=True)[:closes])
    started = time.perf_counter()
    for pk in open_ids:
        close_renewal(Renewal.objects.for_org(org).get(pk=pk), outcome="renewed", by=actor)
    seconds = time.perf_counter() - started
    results["close_renewal"] = {
        "closed": len(open_ids),
        "ms_per_close": round(seconds / max(1, len(open_ids)) * 1000, 1),
    }
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, str(ROOT))
    from benchmarks.__main__ import prepare_database

    database, cleanup = prepare_database(args)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")
    import django

    django.setup()
    from django.core.management import call_command

    try:
        print(f"Migrating {database}…", flush=True)
        call_command("migrate", verbosity=0)
        print(f"Seeding {args.accounts:,} accounts, then the daily job and {args.closes} closes…", flush=True)
        results = bench(args.accounts, args.closes)
    finally:
        cleanup()
    results.update(database=database, python=platform.python_version(),
                   machine=f"{platform.machine()}, {os.cpu_count()} CPUs")  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    job = results["daily_job"]
    print(f"seed_demo {results['accounts']:,} accounts: {results['seed_seconds']} s  {results['rows']}")
    print(
        f"daily job, {job['renewals_opened']:,} renewals to open: {job['seconds']} s "
        f"(naive, scaled from {job['naive_sample']}: {job['naive_scaled_seconds']} s → ×{job['speedup']}); "
        f"steady state {job['steady_state_seconds']} s"
    )
    print(f"close_renewal: {results['close_renewal']['ms_per_close']} ms per close")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
