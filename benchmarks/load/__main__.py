"""``python -m benchmarks.load [--users 10,20,40] [--duration 60] [--accounts 1000]``: benchmarks/README.md, "Load".

1. creates ``<DATABASE_URL's name>_load_bench`` afresh on the same Postgres server (never the database in
   ``DATABASE_URL`` itself), migrates it, runs ``collectstatic`` into a temporary ``RETAIN_VAR_DIR``, seeds
   the demo organization ``load`` (``seed_demo``), issues an admin API key and a write key;
2. starts gunicorn (``cs_platform.gunicorn_conf``, ``--workers`` sync workers, 127.0.0.1 only) and a Celery
   worker on Redis (``REDIS_URL``; a queue of this run's own), with ``RETAIN_ENV=production`` made to speak
   plain HTTP on loopback (see ``service_env``), and waits for ``/readyz``;
3. for each user count of ``--users``, runs locust headless (``benchmarks/load/locustfile.py``) for
   ``--duration`` seconds, parses its CSV statistics, prints and writes a markdown table per step
   (``benchmarks/results/load-latest.md``);
4. stops the worker and gunicorn (also on failure or Ctrl-C), drops the database (``--keep-db`` keeps it).

Exit status: 0 when every request of every step succeeded, 1 when any failed, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
RESULTS = ROOT / "benchmarks" / "results" / "load-latest.md"
ORG_SLUG = "load"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", default="20", help="concurrent users, or a comma-separated list of steps (20)")
    parser.add_argument("--spawn-rate", type=float, default=5, help="users started per second (5)")
    parser.add_argument("--duration", type=int, default=60, help="seconds per step, ramp-up included (60)")
    parser.add_argument("--accounts", type=int, default=1000, help="accounts of the seeded demo org (1000)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (2)")
    parser.add_argument("--celery-concurrency", type=int, default=2, help="Celery worker processes (2)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database afterwards")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"markdown report (default {RESULTS})")
    args = parser.parse_args(argv)
    try:
        args.steps = [int(n) for n in str(args.users).split(",") if n.strip()]
    except ValueError:
        parser.error("--users takes whole numbers separated by commas")
    if not args.steps or min(args.steps) < 1 or args.duration < 5 or args.spawn_rate <= 0:
        parser.error("--users ≥ 1, --duration ≥ 5 s, --spawn-rate > 0")
    return args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(database_url: str, redis_url: str, var_dir: Path, queue: str) -> dict[str, str]:
    """Production settings, on plain HTTP on loopback (docs/operations.md, "To try it on plain HTTP").

    Two limits are lifted, because every virtual user comes from 127.0.0.1 and works in one organization:
    ``LOGIN_RATE`` (60 sign-ins per minute per client address) and ``API_RATE_LIMIT`` (1,200 API requests
    per minute per organization). Both are per-tenant/per-address policies, not capacity; at their
    defaults the load test would measure the limits (429s), not the server.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "CELERY_BROKER_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="cs_platform.settings",
        RETAIN_ENV="production",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        SECURE_HSTS_SECONDS="0",
        SESSION_COOKIE_SECURE="0",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        RETAIN_VAR_DIR=str(var_dir),
        CELERY_TASK_DEFAULT_QUEUE=queue,
        LOGIN_RATE="100000/min",
        API_RATE_LIMIT="1000000/min",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def prepare(env: dict[str, str], accounts: int, var_dir: Path) -> dict[str, Any]:
    """Migrate, collect static files, seed the demo org, issue keys; returns the locustfile's config."""
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections

    from accounts.demo import DEMO_PASSWORD, seed_demo
    from accounts.models import Account, ApiKey, Membership, WriteKey

    started = time.monotonic()
    call_command("migrate", verbosity=0, interactive=False)
    call_command("collectstatic", verbosity=0, interactive=False)
    migrated = time.monotonic() - started
    summary = seed_demo(slug=ORG_SLUG, accounts=accounts)
    org = summary.organization
    _, api_key = ApiKey.issue(organization=org, role="admin", name="load test")
    _, write_key = WriteKey.issue(organization=org, name="load test")
    people: dict[str, list[dict[str, Any]]] = {"csm": [], "leader": []}
    for membership in Membership.objects.for_org(org).filter(role__in=people).select_related("user"):
        owned = list(Account.objects.for_org(org).filter(owner=membership.user).values_list("pk", flat=True)[:200])
        people[membership.role].append({"email": membership.user.email, "accounts": owned})
    if not people["csm"] or not people["leader"]:
        raise RuntimeError(f"the demo org has no CSM or leader: {people}")
    assert get_user_model().objects.filter(email=people["csm"][0]["email"]).exists()
    rows = Account.objects.for_org(org).values_list("pk", "external_id")
    config = {
        "slug": ORG_SLUG,
        "password": DEMO_PASSWORD,
        "people": people,
        "accounts": [pk for pk, _ in rows],
        "external_ids": [external_id for _, external_id in rows],
        "api_key": api_key,
        "write_key": write_key,
        "seed_seconds": round(summary.seconds, 1),
        "migrate_seconds": round(migrated, 1),
        "counts": summary.counts,
    }
    connections.close_all()
    path = var_dir / "load-config.json"
    path.write_text(json.dumps(config))
    return config | {"path": str(path)}


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    output = log.open("w")  # noqa: SIM115 (the process writes to it until it stops)
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)


def wait_ready(port: int, web: subprocess.Popen, timeout: float = 60) -> dict[str, Any]:
    """Poll ``/readyz`` until it answers 200 with Redis and the database ok."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if web.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {web.returncode} before it was ready")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
            connection.request("GET", "/readyz")
            response = connection.getresponse()
            body = response.read().decode()
            if response.status == 200:
                return json.loads(body)
            last = f"HTTP {response.status} {body[:200]}"
        except OSError as error:
            last = repr(error)
        time.sleep(0.3)
    raise RuntimeError(f"/readyz did not answer 200 within {timeout:.0f} s: {last}")


def warm_up(port: int, workers: int) -> None:
    """A few requests per gunicorn worker first, so the first measured requests do not pay for the lazy
    imports and template compilation of a freshly forked worker."""
    for _ in range(4 * workers):
        for path in ("/login/", "/api/v1/", "/readyz"):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", path)
            connection.getresponse().read()
            connection.close()


def stop(process: subprocess.Popen | None, timeout: float = 30) -> None:
    """SIGTERM (gunicorn and Celery shut down gracefully on it), SIGKILL after ``timeout``."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def run_locust(
    users: int, args: argparse.Namespace, port: int, config_path: str, folder: Path
) -> tuple[int, Path, str]:
    """One bounded headless locust run; returns (exit status, CSV prefix, its output's tail)."""
    prefix = folder / f"u{users}"
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",  # no web UI: nothing listens but the app on 127.0.0.1
        "--host",
        f"http://127.0.0.1:{port}",
        "--users",
        str(users),
        "--spawn-rate",
        str(args.spawn_rate),
        "--run-time",
        f"{args.duration}s",
        "--stop-timeout",
        "10",
        "--csv",
        str(prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    env = dict(os.environ, RETAIN_LOAD_CONFIG=config_path)
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=args.duration + 120, check=False
    )
    return result.returncode, prefix, (result.stdout + result.stderr)[-3000:]


def read_stats(prefix: Path) -> list[dict[str, Any]]:
    """Locust's ``<prefix>_stats.csv``: one row per request name, and the ``Aggregated`` row last."""
    rows = []
    with open(f"{prefix}_stats.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows.append(
                {
                    "name": row["Name"],
                    "method": row["Type"],
                    "requests": int(row["Request Count"]),
                    "failures": int(row["Failure Count"]),
                    "rps": float(row["Requests/s"]),
                    "p50": row["50%"],
                    "p95": row["95%"],
                    "p99": row["99%"],
                    "max": float(row["Max Response Time"] or 0),
                }
            )
    return rows


def read_failures(prefix: Path) -> list[str]:
    path = Path(f"{prefix}_failures.csv")
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [f"{row['Occurrences']}× {row['Name']}: {row['Error']}" for row in csv.DictReader(handle)]


def queue_length(redis_url: str, queue: str) -> int:
    """Messages waiting for the worker (the Redis broker keeps a queue as a list of that name)."""
    import redis

    return int(redis.Redis.from_url(redis_url, socket_timeout=3).llen(queue))


def step_table(
    users: int, rows: list[dict[str, Any]], args: argparse.Namespace, load: tuple[float, ...], waiting: int
) -> str:
    total = next((r for r in rows if r["name"] == "Aggregated"), None)
    lines = [
        f"### {users} users, {args.duration} s (spawn {args.spawn_rate:g}/s), load average after "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
        "",
        f"Celery tasks still waiting in the queue at the end: {waiting}.",
        "",
        "| request | requests | errors | req/s | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        label = "**all**" if row is total else row["name"]
        lines.append(
            f"| {label} | {row['requests']} | {row['failures']} | {row['rps']:.1f} | {row['p50']} | "
            f"{row['p95']} | {row['p99']} | {row['max']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from benchmarks.pg import bench_database

    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url.startswith(("redis://", "rediss://")):
        print(
            "python -m benchmarks.load runs the production setup: set REDIS_URL (e.g. redis://127.0.0.1:6379/7, a "
            "database number of its own) and DATABASE_URL=postgres://…",
            file=sys.stderr,
        )
        return 2
    try:
        import locust  # noqa: F401
    except ImportError:
        print("locust is not installed: pip install -e '.[dev]'", file=sys.stderr)
        return 2
    db = bench_database("load", "benchmarks.load")
    db.create(fresh=True)
    var_dir = Path(tempfile.mkdtemp(prefix="retain-load-"))
    queue = f"load-{os.getpid()}"
    env = service_env(db.url, redis_url, var_dir, queue)
    web = worker = None
    failed = True
    report: list[str] = []
    try:
        print(f"Preparing {db.name}: migrate, collectstatic, seed_demo --accounts {args.accounts}…", flush=True)
        config = prepare(env, args.accounts, var_dir)
        print(
            f"  migrated in {config['migrate_seconds']} s, seeded in {config['seed_seconds']} s "
            f"({config['counts'].get('accounts', '?')} accounts)",
            flush=True,
        )
        port = free_port()
        web = start(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "python:cs_platform.gunicorn_conf",
                "cs_platform.wsgi:application",
                "--workers",
                str(args.workers),
                "--bind",
                f"127.0.0.1:{port}",
            ],
            env,
            var_dir / "gunicorn.log",
        )
        worker = start(
            [sys.executable, "-m", "celery", "-A", "cs_platform", "worker", "--loglevel=WARNING"]
            + ["-Q", f"{queue},outbound", "--concurrency", str(args.celery_concurrency), "-n", f"{queue}@%h"],
            env,
            var_dir / "worker.log",
        )
        ready = wait_ready(port, web)
        warm_up(port, args.workers)
        print(f"gunicorn ({args.workers} workers) on 127.0.0.1:{port}, worker on queue {queue}: {ready}", flush=True)
        before = os.getloadavg()
        report += [
            f"## Load test, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            f"Machine: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}; load average before "
            f"{before[0]:.2f} / {before[1]:.2f} / {before[2]:.2f}. Database {db.name} "
            f"(Postgres {db.server_version // 10000}), demo org of {config['counts'].get('accounts', '?')} accounts; "
            f"gunicorn {args.workers} sync workers, Celery worker concurrency {args.celery_concurrency}, "
            "all on this machine.",
            "",
            f"Command: `python -m benchmarks.load --users {args.users} --spawn-rate {args.spawn_rate:g} "
            f"--duration {args.duration} --accounts {args.accounts} --workers {args.workers}`",
            "",
        ]
        any_failure = False
        for users in args.steps:
            print(f"locust: {users} users for {args.duration} s…", flush=True)
            status, prefix, tail = run_locust(users, args, port, config["path"], var_dir)
            if not Path(f"{prefix}_stats.csv").exists():
                print(tail, file=sys.stderr)
                raise RuntimeError(f"locust exited with status {status} and wrote no statistics")
            rows = read_stats(prefix)
            failures = read_failures(prefix)
            table = step_table(users, rows, args, os.getloadavg(), queue_length(redis_url, queue))
            report += [table, ""]
            if failures:
                report += ["Errors:", "", *[f"- {line}" for line in failures], ""]
            print(table + "\n" + "\n".join(failures), flush=True)
            any_failure = any_failure or bool(failures) or any(r["failures"] for r in rows) or status not in (0, 1)
            if web.poll() is not None or worker.poll() is not None:
                raise RuntimeError("gunicorn or the worker died during the run (see their logs)")
        failed = any_failure
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    except Exception as error:  # report, clean up, exit non-zero
        print(f"load test failed: {error}", file=sys.stderr)
    finally:
        stop(worker)
        stop(web)
        for name in ("gunicorn.log", "worker.log"):
            log = var_dir / name
            if failed and log.exists():
                errors = [line for line in log.read_text(errors="replace").splitlines() if "ERROR" in line]
                if errors:
                    print(f"--- {name} errors (last 20) ---\n" + "\n".join(errors[-20:]), file=sys.stderr)
        if not args.keep_db:
            db.drop()
        if report:
            report.append(f"Result: {'FAILED, see the errors above' if failed else '0 errors'}.")
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text("\n".join(report) + "\n", encoding="utf-8")
            print(f"Report written to {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
