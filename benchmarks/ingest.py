"""``python -m benchmarks.ingest [--seconds S] [--threads T] [--batch N] [--workers W] [--keep-db]``.

Event-ingestion throughput through the real HTTP stack (spec §8, issue #3 target: ≥ 5,000 events/s
through ``/v1/batch`` with batches of 100 and two web workers on Postgres):

1. creates a throwaway database ``<name>_ingest_bench`` next to the one in ``DATABASE_URL``, migrates
   it, and seeds an organization with 50 accounts, 500 product users linked to them, and a write key;
2. starts ``gunicorn`` with ``--workers`` sync workers on a free local port against that database;
3. sends pre-built batches (``track`` events, unique ``messageId``s, plain JSON) from ``--threads``
   client threads for ``--seconds`` after a short warm-up, every response must be ``200``;
4. checks that exactly the events answered ``200`` are in the database, each with its account;
5. measures the floor: ``COPY`` of the very same rows into a scratch table with the same columns,
   constraints and indexes, in one transaction (what Postgres alone can absorb);
6. prints events/s, latency, and the COPY rate; writes ``benchmarks/results/ingest.json``; drops the
   database (``--keep-db`` keeps it).

The clients run on the same machine as gunicorn and Postgres, so they share the CPUs.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "ingest.json"
ACCOUNTS = 50
USERS = 500


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="timed duration (default 20)")
    parser.add_argument("--threads", type=int, default=6, help="client threads (default 6)")
    parser.add_argument("--batch", type=int, default=100, help="events per batch (default 100)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the benchmark database")
    return parser.parse_args(argv)


def prepare_database(keep: bool) -> tuple[str, str, Any]:
    """Create ``<name>_ingest_bench`` afresh; returns (its URL, a description, cleanup)."""
    from .pg import bench_database

    db = bench_database("ingest", "benchmarks.ingest")
    db.create(fresh=True)

    def cleanup() -> None:
        from django.db import connections

        connections.close_all()
        if not keep:
            db.drop()

    return db.url, f"postgres {db.server_version // 10000} (database {db.name})", cleanup


def seed() -> tuple[Any, str, list[str]]:
    """An organization with accounts, linked users and a write key."""
    from accounts.models import Account, WriteKey
    from accounts.services import create_organization
    from health.models import UserAccountLink

    org, _ = create_organization(slug="bench-ingest", name="Bench ingest")
    accounts = Account.all_orgs.bulk_create(
        Account(organization=org, external_id=f"ACC-{i:03d}", name=f"Account {i}") for i in range(ACCOUNTS)
    )
    users = [f"user-{i:04d}" for i in range(USERS)]
    now = datetime.now(UTC)
    UserAccountLink.all_orgs.bulk_create(
        UserAccountLink(organization=org, user_id=u, account=accounts[i % ACCOUNTS], linked_at=now)
        for i, u in enumerate(users)
    )
    _, raw = WriteKey.issue(organization=org, name="bench")
    return org, raw, users


def build_bodies(count: int, size: int, users: list[str]) -> list[bytes]:
    """``count`` batch bodies of ``size`` track events each, every messageId unique."""
    names = ["Report Built", "Dashboard Viewed", "Export Created", "User Invited", "Search Run"]
    start = datetime.now(UTC) - timedelta(days=30)
    bodies = []
    n = 0
    for _ in range(count):
        batch = []
        for _ in range(size):
            batch.append(
                {
                    "type": "track",
                    "messageId": str(uuid.uuid4()),
                    "userId": users[n % len(users)],
                    "event": names[n % len(names)],
                    "timestamp": (start + timedelta(seconds=n * 7)).isoformat(),
                    "properties": {"plan": "pro", "n": n},
                    "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
                }
            )
            n += 1
        bodies.append(json.dumps({"batch": batch, "sentAt": datetime.now(UTC).isoformat()}).encode())
    return bodies


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(database_url: str, workers: int, port: int) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=database_url, DEBUG="false", LOG_LEVEL="WARNING")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "cs_platform.wsgi:application",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("POST", "/v1/batch", body=b"{}")
            if connection.getresponse().status == 401:
                return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("gunicorn did not start within 30 s")


class Sender(threading.Thread):
    """Posts bodies until the deadline (or the bodies run out); records latencies and failures."""

    def __init__(self, port: int, auth: str, bodies: list[bytes], size: int, deadline: float) -> None:
        super().__init__(daemon=True)
        self.port, self.auth, self.bodies, self.size, self.deadline = port, auth, bodies, size, deadline
        self.latencies: list[float] = []
        self.events = 0
        self.failures: list[str] = []

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Authorization": self.auth, "Content-Type": "application/json"}
        for body in self.bodies:
            if time.monotonic() >= self.deadline:
                break
            began = time.perf_counter()
            try:
                connection.request("POST", "/v1/batch", body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(repr(exc))
                connection.close()
                continue
            self.latencies.append(time.perf_counter() - began)
            if response.status == 200:
                self.events += self.size
            else:
                self.failures.append(f"{response.status} {payload[:200]!r}")
        connection.close()


def send(port: int, auth: str, bodies: list[bytes], threads: int, size: int, seconds: float) -> dict[str, Any]:
    shares = [bodies[i::threads] for i in range(threads)]
    started = time.monotonic()
    senders = [Sender(port, auth, share, size, started + seconds) for share in shares]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    elapsed = time.monotonic() - started
    latencies = sorted(x for s in senders for x in s.latencies)
    failures = [f for s in senders for f in s.failures]
    events = sum(s.events for s in senders)
    return {
        "seconds": round(elapsed, 2),
        "requests": len(latencies),
        "events": events,
        "events_per_second": round(events / elapsed),
        "latency_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1) if latencies else None,
        "latency_p95_ms": round(latencies[int(len(latencies) * 0.95)] * 1000, 1) if latencies else None,
        "failures": failures[:5],
        "failure_count": len(failures),
        "bodies_exhausted": sum(len(s.latencies) for s in senders) >= len(bodies),
    }


def copy_floor(org_id: int) -> dict[str, Any]:
    """COPY the rows just ingested into a scratch table shaped like ``health_usageevent``."""
    from django.db import connection, transaction

    columns = (
        "organization_id, message_id, type, event, user_id, anonymous_id, group_id, account_id, timestamp, "
        "received_at, properties, rolled_up"
    )
    buffer = io.StringIO()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_copy_floor (LIKE health_usageevent INCLUDING ALL)")
        cursor.cursor.copy_expert(
            f"COPY (SELECT {columns} FROM health_usageevent WHERE organization_id = {int(org_id)}) TO STDOUT",
            buffer,
        )
    rows = buffer.getvalue().count("\n")
    buffer.seek(0)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.cursor.copy_expert(f"COPY bench_copy_floor ({columns}) FROM STDIN", buffer)
    elapsed = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_copy_floor")
    return {"rows": rows, "seconds": round(elapsed, 3), "rows_per_second": round(rows / elapsed)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, str(ROOT))
    database_url, description, cleanup = prepare_database(args.keep_db)
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from health.models import UsageEvent

    process = None
    try:
        print(f"Migrating {description}…", flush=True)
        call_command("migrate", verbosity=0)
        org, raw_key, users = seed()
        # Enough bodies for 25,000 events/s over the whole run, so the clients never run dry.
        count = int((args.seconds + 2) * 25_000 / args.batch) + 10 * args.threads
        print(f"Building {count:,} batches of {args.batch} events…", flush=True)
        bodies = build_bodies(count, args.batch, users)
        warmup, timed = bodies[: 4 * args.threads], bodies[4 * args.threads :]
        port = free_port()
        print(f"Starting gunicorn, {args.workers} workers, on port {port}…", flush=True)
        process = start_gunicorn(database_url, args.workers, port)
        auth = "Basic " + base64.b64encode(f"{raw_key}:".encode()).decode()
        warm = send(port, auth, warmup, args.threads, args.batch, 60)
        assert warm["failure_count"] == 0, warm["failures"]
        print(f"Sending for {args.seconds:g} s from {args.threads} threads…", flush=True)
        figures = send(port, auth, timed, args.threads, args.batch, args.seconds)
        process.terminate()
        process.wait(timeout=30)
        process = None
        stored = UsageEvent.all_orgs.filter(organization=org).count()
        unattributed = UsageEvent.all_orgs.filter(organization=org, account__isnull=True).count()
        expected = warm["events"] + figures["events"]
        print("Measuring the COPY floor with the same rows…", flush=True)
        floor = copy_floor(org.pk)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        cleanup()
    results = {
        "database": description,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "workers": args.workers,
        "threads": args.threads,
        "batch": args.batch,
        "http": figures,
        "stored_rows": stored,
        "expected_rows": expected,
        "rows_without_account": unattributed,
        "copy_floor": floor,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(f"Event ingestion — {description}, {results['machine']}")
    print("=" * 78)
    print(
        f"/v1/batch, batches of {args.batch}, {args.workers} gunicorn workers, {args.threads} client threads, "
        f"{figures['seconds']} s"
    )
    print(f"  throughput            {figures['events_per_second']:>10,} events/s   (target ≥ 5,000)")
    print(f"  requests              {figures['requests']:>10,}   failures {figures['failure_count']}")
    print(f"  latency p50 / p95     {figures['latency_p50_ms']:>7} ms / {figures['latency_p95_ms']} ms")
    print(f"  stored rows           {stored:>10,}   (expected {expected:,}; without account: {unattributed})")
    print(f"COPY floor, same {floor['rows']:,} rows into a scratch table (same indexes), one transaction")
    print(f"  throughput            {floor['rows_per_second']:>10,} rows/s")
    print(f"  HTTP / COPY           {figures['events_per_second'] / floor['rows_per_second']:>10.1%}")
    print(f"results written to {RESULTS.relative_to(ROOT)}")
    if figures["bodies_exhausted"]:
        print("warning: the clients ran out of pre-built batches before the time was up", file=sys.stderr)
    ok = figures["failure_count"] == 0 and stored == expected and unattributed == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
