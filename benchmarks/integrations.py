"""``python -m benchmarks.integrations [--companies N] [--contacts M] [--keep-db] [--tracemalloc]``.

An initial HubSpot sync at issue 21's benchmark size (50,000 companies, 200,000 contacts by default)
against the local fake HubSpot (``tests/fake_hubspot.py``, run in a **subprocess** so its records,
threads and GIL are not the sync's), with HubSpot's documented rate limit applied: 100 requests per
10 s, enforced by the connector's own token bucket (``integrations.http.TokenBucket``, in Redis when
``REDIS_URL`` is set). The sync is the production code path: ``services.start_run`` then
``sync.execute_run`` (20 pages per call, as the task does), real sleeping, real Postgres, on a
throwaway database ``<name>_integrations_bench`` (created, migrated, dropped).

Measured:

- ``seconds`` of each object's sync (companies, then contacts with their company association) and
  the **limit time**: the requests sent ÷ the rate (10 per second) — what the rate limit alone imposes.
  **ratio** = measured ÷ limit time (target ≤ 1.25);
- memory: the process's RSS sampled every 0.25 s (``/proc/self/statm``): at the start, after the
  companies, its peak during the contacts and the growth across the contacts' second half (flat memory:
  pages are streamed, one page in memory at a time, written in bulk). ``--tracemalloc`` adds Python's
  peak allocation (slower: the figure, not the time, is what it is for).

Results print and go to ``benchmarks/results/integrations.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "integrations.json"
RATE = 10.0  # HubSpot private apps: 100 requests per 10 s

SERVER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from tests.fake_hubspot import FakeHubSpot
companies, contacts = int(sys.argv[2]), int(sys.argv[3])
fake = FakeHubSpot()
for i in range(1, companies + 1):
    fake.add_company(f"{i:06d}", hs_parent_company_id=(f"{i // 10:06d}" if i > 10 and i % 10 else ""),
                     industry="Software", country="France", numberofemployees=str(i % 900 + 10))
for i in range(1, contacts + 1):
    fake.add_contact(f"{i:07d}", company=f"{i % companies + 1:06d}", jobtitle="Buyer")
fake.__enter__()
print(fake.url, flush=True)
sys.stdin.read()  # until the benchmark closes it
print(len(fake.requests), flush=True)
"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.integrations", description=__doc__)
    parser.add_argument("--companies", type=int, default=50_000)
    parser.add_argument("--contacts", type=int, default=200_000)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--tracemalloc", action="store_true")
    return parser.parse_args(argv)


class RssSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self.page = os.sysconf("SC_PAGE_SIZE")

    def rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.monotonic(), self.rss()))
            self.stop.wait(0.25)

    def between(self, start: float, end: float) -> list[int]:
        return [rss for t, rss in self.samples if start <= t <= end]


def mb(value: float) -> float:
    return round(value / 1024 / 1024, 1)


def sync_object(conn: Any, name: str) -> dict[str, Any]:
    from integrations import services
    from integrations.models import ObjectSync
    from integrations.sync import execute_run

    sync = ObjectSync.objects.for_org(conn.organization).get(connection=conn, object_name=name)
    run = services.start_run(sync)
    started = time.monotonic()
    while not execute_run(run.pk):  # 20 pages per call, as the task
        pass
    seconds = time.monotonic() - started
    run.refresh_from_db()
    limit = run.request_count / RATE
    return {
        "status": run.status, "error": run.error, "fetched": run.fetched, "created": run.created,
        "failed": run.failed, "requests": run.request_count, "seconds": round(seconds, 1),
        "limit_seconds": round(limit, 1), "ratio": round(seconds / limit, 3) if limit else None,
        "started": started, "ended": time.monotonic(),
    }  # fmt: skip


def bench(args: argparse.Namespace) -> dict[str, Any]:
    from django.core.cache import cache

    from accounts.models import Account, Contact, Organization
    from integrations import services

    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(ROOT), str(args.companies), str(args.contacts)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    t0 = time.monotonic()
    url = server.stdout.readline().strip()
    fake_seconds = time.monotonic() - t0
    from django.conf import settings

    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]  # the local fake vendor, as an operator allows one
    cache.clear()
    org = Organization.objects.create(name="Bench HubSpot", slug=f"bench-hubspot-{os.getpid()}")
    from tests.fake_hubspot import TOKEN

    conn = services.create_connection(
        org, kind="hubspot", name="HubSpot", base_url=url, credentials={"access_token": TOKEN}
    )
    from cs_platform.outbound import _redis

    parts = _redis()
    if parts is not None:
        parts[1].delete(f"retain:integrations:bucket:connection:{conn.pk}")
    sampler = RssSampler()
    sampler.start()
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start()
    rss_start = sampler.rss()
    try:
        companies = sync_object(conn, "companies")
        rss_companies = sampler.rss()
        contacts = sync_object(conn, "contacts")
    finally:
        sampler.stop.set()
        server.stdin.close()
        served = server.stdout.readline().strip()
        server.wait(timeout=60)
    peak_py = None
    if args.tracemalloc:
        import tracemalloc

        peak_py = mb(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    c_start, c_end = contacts["started"], contacts["ended"]
    middle = c_start + (c_end - c_start) / 2
    first_half = sampler.between(c_start, middle) or [rss_companies]
    second_half = sampler.between(middle, c_end) or [rss_companies]
    total_requests = companies["requests"] + contacts["requests"]
    total_seconds = companies["seconds"] + contacts["seconds"]
    return {
        "companies_n": args.companies, "contacts_n": args.contacts, "fake_setup_seconds": round(fake_seconds, 1),
        "companies": {k: v for k, v in companies.items() if k not in ("started", "ended")},
        "contacts": {k: v for k, v in contacts.items() if k not in ("started", "ended")},
        "total": {"requests": total_requests, "requests_served": int(served or 0), "seconds": round(total_seconds, 1),
                  "limit_seconds": round(total_requests / RATE, 1),
                  "ratio": round(total_seconds / (total_requests / RATE), 3)},
        "landed": {"accounts": Account.objects.for_org(org).count(), "contacts": Contact.objects.for_org(org).count(),
                   "accounts_with_parent": Account.objects.for_org(org).filter(parent__isnull=False).count()},
        "rss_mb": {"start": mb(rss_start), "after_companies": mb(rss_companies),
                   "contacts_first_half_max": mb(max(first_half)), "contacts_second_half_max": mb(max(second_half)),
                   "peak": mb(max(rss for _, rss in sampler.samples)),
                   "growth_contacts_second_half": mb(max(second_half) - max(first_half))},
        "tracemalloc_peak_mb": peak_py,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, str(ROOT))
    from benchmarks.pg import bench_database

    db = bench_database("integrations", "benchmarks.integrations")
    db.create(fresh=True)
    db.use()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")
    import django

    django.setup()
    from django.core.management import call_command

    try:
        print(f"Migrating {db.name}…", flush=True)
        call_command("migrate", verbosity=0)
        print(
            f"HubSpot initial sync: {args.companies:,} companies, {args.contacts:,} contacts, 100 req/10 s…", flush=True
        )
        results = bench(args)
    finally:
        if not args.keep_db:
            db.drop()
    results.update(database=db.name, python=platform.python_version(), redis=bool(os.environ.get("REDIS_URL")),
                   machine=f"{platform.machine()}, {os.cpu_count()} CPUs", load=os.getloadavg())  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    for name in ("companies", "contacts", "total"):
        r = results[name]
        print(f"{name}: {r['requests']} requests, {r['seconds']} s; the limit alone {r['limit_seconds']} s "
              f"→ ×{r['ratio']} (target ≤ 1.25)")  # fmt: skip
    print(f"landed: {results['landed']}")
    print(f"RSS (MB): {results['rss_mb']}; tracemalloc peak: {results['tracemalloc_peak_mb']} MB")
    print(f"load average: {results['load']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
