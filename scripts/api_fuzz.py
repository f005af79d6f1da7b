#!/usr/bin/env python3
"""Fuzz the REST API against its own OpenAPI document with schemathesis, as CI does.

    DATABASE_URL=postgres://…/retain_ci .venv/bin/python scripts/api_fuzz.py

1. Creates (or empties) the database ``<DATABASE_URL's name>_fuzz`` beside the given one, migrates it
   and seeds two organizations (``demo`` and ``other``) with an admin API key each.
2. Serves the app with gunicorn on a free loopback port, with no task queue behind it (tasks are
   queued in memory and never run: nothing the fuzzer creates, such as a webhook, ever calls out).
3. Runs schemathesis (the version pinned in ``pyproject.toml``, a fixed seed, a bounded number of
   cases per operation) over every operation of ``/api/schema/``, as ``demo``'s admin key, with
   every check but those listed in :data:`EXCLUDED_CHECKS` (the reasons are in ``docs/api.md``);
   ``object_level_authorization`` replays ``demo``'s reads with ``other``'s key.
4. Stops gunicorn, drops the fuzz database, and exits with schemathesis's status: non-zero on any
   server error, schema violation or other failed check.

Options: ``--max-examples N`` (cases per operation and phase, default 8), ``--seed``, ``--report-dir``
(schemathesis's JUnit and NDJSON reports; default ``var/api-fuzz/``), ``--keep-db``, ``--database-name``;
anything after ``--`` goes to ``schemathesis run`` as is (``-- --include-path-regex accounts``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ORGS = {"demo": 30, "other": 10}  # slug → accounts seeded

#: Checks left out, and why (docs/api.md, "API fuzzing", says the same).
EXCLUDED_CHECKS = {
    # A request the schema allows may still be refused for what no schema can describe: an id naming no
    # row of the organization, a duplicate identifier, a value of the organization's own configuration
    # (lifecycle stages, member emails), a rule across fields (end before start), the state of the object
    # (a closed renewal, the last admin). Each is a 400 naming the field and the reason.
    "positive_data_acceptance",
}
PHASES = "examples,coverage,fuzzing,stateful"


def say(message: str) -> None:
    print(f"[api-fuzz] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fuzz_database_url(url: str, name: str | None = None) -> tuple[str, str]:
    """``postgres://…/retain_ci`` → (``postgres://…/retain_ci_fuzz``, ``retain_ci_fuzz``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        raise SystemExit("api_fuzz: DATABASE_URL must name a Postgres database (the fuzz database goes beside it)")
    name = name or f"{parts.path.lstrip('/') or 'retain'}_fuzz"
    return urlunsplit(parts._replace(path=f"/{name}")), name


def recreate_database(admin_url: str, name: str, *, drop_only: bool = False) -> None:
    import psycopg2

    connection = psycopg2.connect(admin_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"api_fuzz: manage.py {' '.join(args)} failed")
    return result.stdout


def wait_for(url: str, server: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"api_fuzz: gunicorn exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"api_fuzz: {url} did not answer within {timeout:.0f} s")


def write_config(folder: Path, keys: dict[str, str]) -> Path:
    """The schemathesis config: one identity per organization (Web Fuzzing Commons auth file); ``demo`` runs
    every operation, ``other`` only replays ``demo``'s reads (object-level authorization)."""
    auth = folder / "auth.json"
    auth.write_text(
        json.dumps(
            {
                "auth": [
                    {"name": slug, "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {key}"}]}
                    for slug, key in keys.items()
                ]
            }
        )
    )
    config = folder / "schemathesis.toml"
    config.write_text(f'[auth.wfc]\npath = {json.dumps(str(auth))}\nuser = "demo"\npeers = {json.dumps(list(keys))}\n')
    return config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--max-examples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--report-dir", type=Path, default=None)
    parser.add_argument("--keep-db", action="store_true", help="leave the fuzz database for a look afterwards")
    parser.add_argument("--database-name", default=None, help="the fuzz database (default: DATABASE_URL's + _fuzz)")
    parser.add_argument("extra", nargs="*", help="arguments for `schemathesis run` (after --)")
    args = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url:
        raise SystemExit("api_fuzz: set DATABASE_URL to a Postgres database (the fuzz database goes beside it)")
    fuzz_url, fuzz_name = fuzz_database_url(database_url, args.database_name)
    admin_url = urlunsplit(urlsplit(database_url)._replace(path="/postgres"))

    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "CELERY_TASK_ALWAYS_EAGER")}
    env.update(
        DATABASE_URL=fuzz_url,
        DEBUG="0",
        CELERY_BROKER_URL="memory://",  # tasks are queued and never run: no worker, no outbound call
        API_RATE_LIMIT="1000000/min",  # the fuzzer is one client sending thousands of requests
        PYTHONUNBUFFERED="1",
    )
    env.pop("RETAIN_ENV", None)

    say(f"database {fuzz_name}: create, migrate, seed {', '.join(ORGS)}")
    recreate_database(admin_url, fuzz_name)
    server: subprocess.Popen | None = None
    workdir = Path(tempfile.mkdtemp(prefix="retain-api-fuzz-"))
    try:
        manage(env, "migrate", "--verbosity", "0")
        keys = {}
        for slug, accounts in ORGS.items():
            manage(env, "seed_demo", "--org", slug, "--accounts", str(accounts), "--verbosity", "0")
            keys[slug] = manage(env, "create_api_key", slug, "--role", "admin", "--name", "api-fuzz").split()[-1]

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        say(f"gunicorn on {base}")
        server = subprocess.Popen(
            [str(BIN / "gunicorn"), "cs_platform.wsgi:application", "--bind", f"127.0.0.1:{port}"]
            + ["--workers", "2", "--timeout", "120", "--log-level", "warning"],
            cwd=ROOT,
            env=env,
        )
        wait_for(f"{base}/api/schema/", server)

        config = write_config(workdir, keys)
        report_dir = (args.report_dir or ROOT / "var" / "api-fuzz").resolve()
        command = [
            str(BIN / "schemathesis"), "--config-file", str(config), "run", f"{base}/api/schema/",
            "--checks", "all", "--exclude-checks", ",".join(sorted(EXCLUDED_CHECKS)),
            "--phases", PHASES, "--seed", str(args.seed), "--max-examples", str(args.max_examples),
            "--workers", "1",  # one worker: the same seed generates the same cases in the same order
            "--generation-database", "none", "--request-timeout", "60",
            "--report", "junit,ndjson", "--report-dir", str(report_dir), "--no-color",
            *args.extra,
        ]  # fmt: skip
        say(" ".join(command[:3] + ["run", "…"]))
        started = time.monotonic()
        status = subprocess.run(command, cwd=workdir, env=env, check=False).returncode
        say(f"schemathesis exited with {status} after {time.monotonic() - started:.0f} s (reports in {report_dir})")
        return status
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        if not args.keep_db:
            recreate_database(admin_url, fuzz_name, drop_only=True)
        shutil.rmtree(workdir, ignore_errors=True)  # the config and the keys of a database that is gone


if __name__ == "__main__":
    sys.exit(main())
