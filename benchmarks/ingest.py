"""``python -m benchmarks.ingest [--seconds S] [--threads T] [--batch N] [--workers W] [--trials N] [--keep-db]``
and ``python -m benchmarks.ingest --embedded [--trials N]``.

Event ingestion through the real HTTP stack: throughput (spec §8, issue #3 target: ≥ 5,000 events/s
through ``/v1/batch`` with batches of 100 and two web workers on Postgres), then how soon an accepted
event is seen (issue #10 goals: its ``/api/v1/usage-metrics/`` row correct within 10 s, the account's
health recomputed within 15 s, with a Celery worker running):

1. creates a throwaway database ``<name>_ingest_bench`` next to the one in ``DATABASE_URL``, migrates
   it, and seeds an organization with 50 accounts, 500 product users linked to them, and a write key;
2. starts ``gunicorn`` with ``--workers`` sync workers on a free local port against that database;
3. sends pre-built batches (``track`` events, unique ``messageId``s, plain JSON) from ``--threads``
   client threads for ``--seconds`` after a short warm-up, every response must be ``200``;
4. checks that exactly the events answered ``200`` are in the database, each with its account;
5. measures the floor: ``COPY`` of the very same rows into a scratch table with the same columns,
   constraints and indexes, in one transaction (what Postgres alone can absorb);
6. counts the ingested events into daily usage in-process (the rollup's own throughput), then starts a
   Celery worker (``--concurrency``, on a queue of its own, broker = ``REDIS_URL``) and runs ``--trials``
   latency trials one after the other: send one ``group`` + ``track`` for a new user of an account, then
   poll ``/api/v1/usage-metrics/`` (over HTTP, with an API key) until that day's ``events`` row has grown
   by exactly one, and the database until the account's ``HealthScore`` was recomputed after the event was
   accepted. Nothing but the ingest itself queues the rollup (no beat runs). Median and p95 of both;
7. prints events/s, latency, and the COPY rate; writes ``benchmarks/results/ingest.json``; drops the
   database (``--keep-db`` keeps it).

``--embedded`` measures the latency trials on the demo's setup instead: SQLite and kombu's filesystem
queue in a temporary folder (no Postgres, no Redis), gunicorn and a ``--pool=solo`` worker as in
``make run``. Throughput and the COPY floor are Postgres-only and skipped.

The clients run on the same machine as gunicorn, the worker and Postgres, so they share the CPUs.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
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
    parser.add_argument("--trials", type=int, default=25, help="latency trials, at least 20 (default 25)")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes (default 2)")
    parser.add_argument("--embedded", action="store_true", help="latency on SQLite + the filesystem queue")
    args = parser.parse_args(argv)
    if args.trials < 20:
        parser.error("--trials must be at least 20 (median and p95 need them)")
    return args


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


def service_env(database_url: str | None) -> dict[str, str]:
    """The environment of gunicorn and the worker: the benchmark's database and queue."""
    env = dict(os.environ, DEBUG="false", LOG_LEVEL="WARNING", DJANGO_SETTINGS_MODULE="benchmarks.bench_settings")
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return env


def start_gunicorn(database_url: str | None, workers: int, port: int) -> subprocess.Popen:
    env = service_env(database_url)
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


# --- latency: event accepted → usage row → health recomputed ---------------------------------------


def start_worker(database_url: str | None, concurrency: int, solo: bool, log: Path) -> subprocess.Popen:
    """A Celery worker on the benchmark's queue (``BENCH_CELERY_QUEUE`` in the environment)."""
    command = [sys.executable, "-m", "celery", "-A", "cs_platform", "worker", "--loglevel=WARNING"]
    command += ["--pool=solo"] if solo else ["--concurrency", str(concurrency)]
    command += ["-n", f"bench-ingest-{os.getpid()}@%h"]
    output = log.open("w")  # noqa: SIM115 (the worker writes to it until it stops)
    return subprocess.Popen(command, cwd=ROOT, env=service_env(database_url), stdout=output, stderr=subprocess.STDOUT)


def drain_rollup(org_id: int) -> dict[str, Any]:
    """Count every pending event in this process (the worker is not started yet): the rollup's throughput."""
    from health.models import UsageRollupState
    from health.rollups import rollup_usage

    started = time.perf_counter()
    counts = rollup_usage(org_id)
    elapsed = time.perf_counter() - started
    # The ingests above queued a rollup that no worker took (none ran): forget it, as a started run would.
    UsageRollupState.all_orgs.filter(organization_id=org_id).update(scheduled_at=None)
    return {
        "events": counts["events"],
        "seconds": round(elapsed, 2),
        "events_per_second": round(counts["events"] / elapsed) if elapsed else None,
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def latency_trials(port: int, write_auth: str, api_key: str, org: Any, trials: int, timeout: float) -> dict[str, Any]:
    """One event at a time: seconds from its ``200`` to its usage row being right in the API, and to the
    account's health being recomputed. A warm-up trial (worker start, first imports) is not counted."""
    from zoneinfo import ZoneInfo

    from accounts.models import Account
    from health.models import HealthScore

    accounts = list(Account.all_orgs.filter(organization=org).order_by("id")[:20])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    tz = ZoneInfo(org.time_zone or "UTC")

    def api_events(account_id: int, day: str) -> int:
        connection.request(
            "GET",
            f"/api/v1/usage-metrics/?account={account_id}&date_after={day}&date_before={day}&metric=events",
            headers={"Authorization": f"Bearer {api_key}"},
        )
        response = connection.getresponse()
        rows = json.loads(response.read())["results"]
        return int(float(rows[0]["value"])) if rows else 0

    def scored_at(account_id: int) -> Any:
        return HealthScore.all_orgs.filter(account_id=account_id).values_list("computed_at", flat=True).first()

    rollup: list[float] = []
    rescore: list[float] = []
    for trial in range(trials + 1):
        account = accounts[trial % len(accounts)]
        now = datetime.now(UTC)
        day = now.astimezone(tz).date().isoformat()
        before = api_events(account.pk, day)
        user = f"latency-{uuid.uuid4().hex[:12]}"
        body = json.dumps(
            {
                "batch": [
                    {"type": "group", "userId": user, "groupId": account.external_id, "messageId": f"g-{user}"},
                    {"type": "track", "userId": user, "event": "Latency Probe", "messageId": f"t-{user}",
                     "timestamp": now.isoformat()},
                ]
            }
        ).encode()  # fmt: skip
        connection.request(
            "POST", "/v1/batch", body=body, headers={"Authorization": write_auth, "Content-Type": "application/json"}
        )
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"trial {trial}: /v1/batch answered {response.status} {payload[:200]!r}")
        accepted, accepted_at = time.perf_counter(), datetime.now(UTC)
        seen = done = None
        while time.perf_counter() - accepted < timeout and (seen is None or done is None):
            if seen is None and api_events(account.pk, day) == before + 1:
                seen = time.perf_counter() - accepted
            computed = scored_at(account.pk)
            if done is None and computed is not None and computed >= accepted_at:
                done = time.perf_counter() - accepted
            time.sleep(0.05)
        if seen is None or done is None:
            raise RuntimeError(f"trial {trial}: not seen within {timeout} s (usage row {seen}, rescore {done})")
        if trial:  # trial 0 warms the worker up
            rollup.append(seen)
            rescore.append(done)
    connection.close()
    return {
        "trials": trials,
        "event_to_rollup_median_s": round(statistics.median(rollup), 2),
        "event_to_rollup_p95_s": round(percentile(rollup, 0.95), 2),
        "event_to_rollup_max_s": round(max(rollup), 2),
        "event_to_rescore_median_s": round(statistics.median(rescore), 2),
        "event_to_rescore_p95_s": round(percentile(rescore, 0.95), 2),
        "event_to_rescore_max_s": round(max(rescore), 2),
    }


def print_latency(latency: dict[str, Any], where: str) -> None:
    print(f"Event seen, {latency['trials']} trials one at a time, worker running ({where})")
    print(
        f"  event → usage row     median {latency['event_to_rollup_median_s']:>5} s   "
        f"p95 {latency['event_to_rollup_p95_s']:>5} s   max {latency['event_to_rollup_max_s']} s   (goal ≤ 10 s)"
    )
    print(
        f"  event → health        median {latency['event_to_rescore_median_s']:>5} s   "
        f"p95 {latency['event_to_rescore_p95_s']:>5} s   max {latency['event_to_rescore_max_s']} s   (goal ≤ 15 s)"
    )


def setup_django(database_url: str | None) -> None:
    if database_url is not None:
        os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.bench_settings"
    import django

    django.setup()


def api_key_for(org: Any) -> str:
    from accounts.models import ApiKey

    return ApiKey.issue(organization=org, role="viewer", name="bench latency")[1]


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def main_embedded(args: argparse.Namespace) -> int:
    """Latency on the demo's setup: SQLite and the filesystem queue in a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="retain-bench-embedded-"))
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    os.environ["RETAIN_VAR_DIR"] = str(folder)
    os.environ["BENCH_CELERY_QUEUE"] = f"bench-ingest-{os.getpid()}"
    setup_django(None)
    from django.conf import settings
    from django.core.management import call_command

    web = worker = None
    try:
        print(f"Migrating SQLite in {folder}…", flush=True)
        call_command("migrate", verbosity=0)
        org, raw_key, _ = seed()
        api_key = api_key_for(org)
        port = free_port()
        print(f"Starting gunicorn ({args.workers} workers) and a solo worker on the filesystem queue…", flush=True)
        web = start_gunicorn(None, args.workers, port)
        worker = start_worker(None, 1, True, folder / "worker.log")
        auth = "Basic " + base64.b64encode(f"{raw_key}:".encode()).decode()
        latency = latency_trials(port, auth, api_key, org, args.trials, timeout=120)
    finally:
        stop(web)
        stop(worker)
    results = {
        "setup": "embedded: sqlite + kombu filesystem queue",
        "broker": settings.CELERY_BROKER_URL,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "latency": latency,
    }
    out = RESULTS.with_name("ingest-embedded.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(f"Event ingestion, embedded setup (SQLite + filesystem queue), {results['machine']}")
    print("=" * 78)
    print_latency(latency, "SQLite, filesystem queue, solo worker")
    print(f"results written to {out.relative_to(ROOT)}")
    shutil.rmtree(folder, ignore_errors=True)
    return 0 if latency["event_to_rollup_p95_s"] <= 10 and latency["event_to_rescore_p95_s"] <= 15 else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, str(ROOT))
    if args.embedded:
        return main_embedded(args)
    if not os.environ.get("REDIS_URL"):
        print("The latency trials need a broker: set REDIS_URL (or use --embedded for the demo's queue).",
              file=sys.stderr)  # fmt: skip
        return 2
    database_url, description, cleanup = prepare_database(args.keep_db)
    os.environ["BENCH_CELERY_QUEUE"] = f"bench-ingest-{os.getpid()}"
    setup_django(database_url)
    from django.core.management import call_command

    from health.models import UsageEvent

    process = worker = None
    try:
        print(f"Migrating {description}…", flush=True)
        call_command("migrate", verbosity=0)
        org, raw_key, users = seed()
        api_key = api_key_for(org)
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
        stored = UsageEvent.all_orgs.filter(organization=org).count()
        unattributed = UsageEvent.all_orgs.filter(organization=org, account__isnull=True).count()
        expected = warm["events"] + figures["events"]
        print("Measuring the COPY floor with the same rows…", flush=True)
        floor = copy_floor(org.pk)
        print(f"Counting the {stored:,} events into daily usage (the rollup, in this process)…", flush=True)
        drained = drain_rollup(org.pk)
        print(f"Starting a Celery worker ({args.concurrency} processes) and running {args.trials} trials…", flush=True)
        worker = start_worker(database_url, args.concurrency, False, Path(tempfile.gettempdir()) / "bench-worker.log")
        latency = latency_trials(port, auth, api_key, org, args.trials, timeout=60)
    finally:
        stop(process)
        stop(worker)
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
        "rollup": drained,
        "latency": latency,
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
    print(f"Rollup of those {drained['events']:,} events into daily usage (one process)")
    print(f"  throughput            {drained['events_per_second']:>10,} events/s   ({drained['seconds']} s)")
    print_latency(latency, f"Postgres, Redis, {args.concurrency} worker processes")
    print(f"results written to {RESULTS.relative_to(ROOT)}")
    if figures["bodies_exhausted"]:
        print("warning: the clients ran out of pre-built batches before the time was up", file=sys.stderr)
    ok = figures["failure_count"] == 0 and stored == expected and unattributed == 0
    ok = ok and drained["events"] == stored  # every stored event (all track events) counted
    ok = ok and latency["event_to_rollup_p95_s"] <= 10 and latency["event_to_rescore_p95_s"] <= 15
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
