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
#: The stateful phase runs apart (after the other phases, as each identity): positive data only, and
#: ``X-Organization: demo`` on every request, so that a chain is never cut by a made-up organization slug (the
#: other phases fuzz that header). ``--stateful-examples`` scenarios (hypothesis state machines) per run.
STATEFUL_ARGS = ["--mode", "positive", "-H", "X-Organization: demo"]
#: The lesser roles' runs, after the admin's: identity → ``create_api_key`` arguments. Each is one schemathesis
#: run of the phases fuzzing (``ROLE_FUZZ_EXAMPLES`` cases per operation) and stateful, positive data only. A
#: csm key is bound to a seeded csm (a csm writes their own book; an unbound one writes nothing).
ROLE_RUNS = {
    "demo-viewer": ["--role", "viewer"],
    "demo-csm": ["--role", "csm", "--user", "priya.shah@demo.retain.local"],
}
ROLE_FUZZ_EXAMPLES = 3
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

#: Checks left out, and why (docs/api.md, "API fuzzing", says the same).
EXCLUDED_CHECKS = {
    # A request the schema allows may still be refused for what no schema can describe: an id naming no
    # row of the organization, a duplicate identifier, a value of the organization's own configuration
    # (lifecycle stages, member emails), a rule across fields (end before start), the state of the object
    # (a closed renewal, the last admin). Each is a 400 naming the field and the reason.
    "positive_data_acceptance",
}
PHASES = "examples,coverage,fuzzing"  # as the admin; then the stateful phase apart (STATEFUL_ARGS)
#: The inbound endpoints outside /api/ (event ingestion, signed webhooks): their own hand-written document,
#: fuzzed in one more run with the write key (HTTP Basic) and a hook signing each body (api_fuzz_hooks.py).
INBOUND_DOCUMENT = ROOT / "docs" / "openapi-inbound.yaml"
INBOUND_EXAMPLES = 6
STRIPE_FUZZ_SECRET = "whsec_api_fuzz_0123456789abcdef"
INBOUND_SEED = f"""
import json
from accounts.models import Organization
from cs_platform.organizations import WriteKey
from health.inbound import enable_hook, hook_secret
from integrations import services
org = Organization.objects.get(slug="demo")
_, write_key = WriteKey.issue(organization=org, name="api-fuzz")
secret = "{STRIPE_FUZZ_SECRET}"
services.create_connection(org, kind="stripe", name="Stripe (fuzz)", credentials={{"signing_secret": secret}})
print(json.dumps({{"write_key": write_key, "tracker": hook_secret(enable_hook(org.pk, "tracker")),
                  "helpdesk": hook_secret(enable_hook(org.pk, "helpdesk"))}}))
"""


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


def wait_for(url: str, server: subprocess.Popen, timeout: float = 300, *, any_answer: bool = False) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"api_fuzz: gunicorn exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError:
            if any_answer:  # the server answers (a 405 from a POST-only endpoint)
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"api_fuzz: {url} did not answer within {timeout:.0f} s")


def write_config(
    folder: Path,
    keys: dict[str, str],
    user: str = "demo",
    *,
    run: str = "main",
    phase_examples: dict[str, int] | None = None,
) -> Path:
    """The schemathesis config of the run as ``user``: every identity in one Web Fuzzing Commons auth file;
    ``user`` runs every operation, its peers (``other``, another organization's admin) only replay ``user``'s
    reads (object-level authorization)."""
    auth = folder / "auth.json"
    auth.write_text(
        json.dumps(
            {
                "auth": [
                    {"name": name, "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {key}"}]}
                    for name, key in keys.items()
                ]
            }
        )
    )
    peers = [user, "other"]
    config = folder / f"schemathesis-{run}.toml"
    text = f'[auth.wfc]\npath = {json.dumps(str(auth))}\nuser = "{user}"\npeers = {json.dumps(peers)}\n'
    for phase, examples in (phase_examples or {}).items():
        text += f"\n[phases.{phase}.generation]\nmax-examples = {examples}\n"
    config.write_text(text)
    return config


def schema_operations(base: str) -> set[str]:
    """Every operation of the served OpenAPI document, as schemathesis labels them (``GET /api/v1/accounts/``)."""
    request = urllib.request.Request(f"{base}/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        document = json.load(response)
    return {
        f"{method.upper()} {path}"
        for path, item in document.get("paths", {}).items()
        for method in item
        if method in HTTP_METHODS
    }


def read_report(ndjson: Path) -> dict:
    """What one schemathesis run did, from its NDJSON report: the operations that got at least one case, the
    cases per phase, and the stateful phase's scenarios. A scenario is one state machine run: its first call,
    then each call made along a link from an earlier response (the object a ``POST`` created is read,
    updated, deleted); the requests a check derives from a call (the same call without credentials, …) are
    not steps."""
    exercised: set[str] = set()
    cases_per_phase: dict[str, int] = {}
    steps: list[int] = []  # per stateful scenario: how many calls it made
    crud = {"create→read": 0, "create→update": 0, "create→delete": 0, "create→read→update→delete": 0}
    links: set[tuple[str, str]] = set()
    for line in ndjson.read_text(encoding="utf-8").splitlines():
        if not line.startswith('{"ScenarioFinished"'):
            continue
        event = json.loads(line)["ScenarioFinished"]
        cases = (event.get("recorder") or {}).get("cases") or {}
        phase = event.get("phase", "?")
        cases_per_phase[phase] = cases_per_phase.get(phase, 0) + len(cases)
        for node in cases.values():
            exercised.add(f"{node['value']['method'].upper()} {node['value']['path']}")
        if phase != "stateful" or not cases:
            continue
        calls = {cid: node for cid, node in cases.items() if node.get("parent_id") is None or node.get("transition")}
        steps.append(len(calls))
        children: dict[str, list[dict]] = {}
        for node in calls.values():
            parent = cases.get(node.get("parent_id") or "")
            if parent is not None:
                child = node["value"]
                links.add(
                    (f"{parent['value']['method']} {parent['value']['path']}", f"{child['method']} {child['path']}")
                )
                children.setdefault(node["parent_id"], []).append(child)
        for cid, node in calls.items():
            call = node["value"]
            if call["method"].upper() == "POST" and "{" not in call["path"]:
                _count_crud(call["path"], children.get(cid, []), crud)
    return {
        "exercised": exercised,
        "cases": cases_per_phase,
        "scenarios": len(steps),
        "multi_step": sum(1 for n in steps if n >= 2),
        "longest": max(steps, default=0),
        "crud": crud,
        "links": links,
    }


def _count_crud(collection: str, later: list[dict], crud: dict[str, int]) -> None:
    """Count what a scenario did with an object it created (``POST`` on ``collection``): the calls on
    ``<collection>{id}/`` that took its id from the create's response."""
    depth = collection.count("/") + 1
    methods = {
        c["method"].upper() for c in later if c["path"].startswith(collection + "{") and c["path"].count("/") == depth
    }
    read, update, delete = "GET" in methods, bool(methods & {"PUT", "PATCH"}), "DELETE" in methods
    crud["create→read"] += read
    crud["create→update"] += update
    crud["create→delete"] += delete
    crud["create→read→update→delete"] += read and update and delete


def merge_reports(parts: list[dict]) -> dict:
    """One identity's runs (the admin's phases and its stateful run) as one report."""
    merged: dict = {"exercised": set(), "cases": {}, "scenarios": 0, "multi_step": 0, "longest": 0, "links": set()}
    merged["crud"] = dict.fromkeys(parts[0]["crud"], 0) if parts else {}
    for part in parts:
        merged["exercised"] |= part["exercised"]
        merged["links"] |= part["links"]
        for phase, n in part["cases"].items():
            merged["cases"][phase] = merged["cases"].get(phase, 0) + n
        merged["scenarios"] += part["scenarios"]
        merged["multi_step"] += part["multi_step"]
        merged["longest"] = max(merged["longest"], part["longest"])
        for kind, n in part["crud"].items():
            merged["crud"][kind] += n
    return merged


def summarize(identity: str, report: dict, operations: set[str], seconds: float) -> list[str]:
    """The run's summary line(s), and the operations of the schema that got no case (empty: all covered)."""
    cases = ", ".join(f"{phase} {n}" for phase, n in sorted(report["cases"].items()))
    crud = ", ".join(f"{kind} {n}" for kind, n in report["crud"].items())
    say(
        f"{identity}: {len(operations & report['exercised'])}/{len(operations)} operations exercised, {seconds:.0f} s; "
        f"cases: {cases}; stateful: {report['scenarios']} scenarios, {report['multi_step']} of 2+ calls along links "
        f"(longest {report['longest']}), {len(report['links'])} distinct links followed; chains {crud}"
    )
    return sorted(operations - report["exercised"])


def run_inbound(base: str, inbound: dict[str, str], env: dict[str, str], workdir: Path, report_dir: Path,
                args: argparse.Namespace) -> int:  # fmt: skip
    """The inbound endpoints (docs/openapi-inbound.yaml): ingestion with the write key, the hooks signed by
    api_fuzz_hooks.py. Every check but positive_data_acceptance (the endpoints' meaning-level refusals: an
    unknown account, an unmapped status, a malformed event inside a batch)."""
    for old in report_dir.glob("*.ndjson"):
        old.unlink()
    hook_env = {
        **env,
        "SCHEMATHESIS_HOOKS": "api_fuzz_hooks",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "scripts"), env.get("PYTHONPATH", "")])),
        "RETAIN_FUZZ_TRACKER_SECRET": inbound["tracker"],
        "RETAIN_FUZZ_HELPDESK_SECRET": inbound["helpdesk"],
        "RETAIN_FUZZ_STRIPE_SECRET": STRIPE_FUZZ_SECRET,
    }
    command = [
        str(BIN / "schemathesis"), "run", str(INBOUND_DOCUMENT), "--url", base,
        "--auth", f"{inbound['write_key']}:",
        "--checks", "all", "--exclude-checks", ",".join(sorted(EXCLUDED_CHECKS)),
        "--phases", PHASES, "--seed", str(args.seed), "--max-examples", str(INBOUND_EXAMPLES),
        "--workers", "1", "--generation-database", "none", "--request-timeout", "60",
        "--report", "junit,ndjson", "--report-dir", str(report_dir), "--no-color",
    ]  # fmt: skip
    say("run inbound: schemathesis run docs/openapi-inbound.yaml (write key; signed hooks)")
    started = time.monotonic()
    code = subprocess.run(command, cwd=workdir, env=hook_env, check=False).returncode
    say(f"run inbound: schemathesis exited with {code} after {time.monotonic() - started:.0f} s")
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--max-examples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--report-dir", type=Path, default=None)
    parser.add_argument("--keep-db", action="store_true", help="leave the fuzz database for a look afterwards")
    parser.add_argument("--database-name", default=None, help="the fuzz database (default: DATABASE_URL's + _fuzz)")
    parser.add_argument("--stateful-examples", type=int, default=60, help="stateful scenarios per identity")
    parser.add_argument("--admin-only", action="store_true", help="skip the viewer and csm runs")
    parser.add_argument("--inbound-only", action="store_true", help="only the inbound endpoints' run")
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
        INBOUND_HOOK_RATE="1000000/min",
        STRIPE_WEBHOOK_RATE="1000000/min",
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
        inbound: dict[str, str] = {}
        if args.inbound_only or not args.extra:  # a run narrowed by -- arguments has no inbound run
            inbound = json.loads(manage(env, "shell", "-c", INBOUND_SEED).strip().splitlines()[-1])
        roles = {} if args.admin_only or args.inbound_only else ROLE_RUNS
        for identity, key_args in roles.items():
            keys[identity] = manage(env, "create_api_key", "demo", *key_args, "--name", "api-fuzz").split()[-1]

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        say(f"gunicorn on {base}")
        server = subprocess.Popen(
            [str(BIN / "gunicorn"), "cs_platform.wsgi:application", "--bind", f"127.0.0.1:{port}"]
            + ["--workers", "2", "--timeout", "120", "--log-level", "warning"],
            cwd=ROOT,
            env=env,
        )
        if args.inbound_only:
            wait_for(f"{base}/hooks/demo/stripe/", server, any_answer=True)
            return run_inbound(
                base, inbound, env, workdir, (args.report_dir or ROOT / "var" / "api-fuzz") / "inbound", args
            )
        wait_for(f"{base}/api/schema/", server)
        operations = schema_operations(base)

        report_root = (args.report_dir or ROOT / "var" / "api-fuzz").resolve()
        # run name → (identity, phases, cases per operation by phase, extra arguments, report folder)
        runs = {
            "admin": ("demo", PHASES, {}, ["--max-examples", str(args.max_examples)], report_root),
            "admin-stateful": (
                "demo",
                "stateful",
                {"stateful": args.stateful_examples},
                STATEFUL_ARGS,
                report_root / "admin-stateful",
            ),
        }
        for identity in roles:
            examples = {"fuzzing": ROLE_FUZZ_EXAMPLES, "stateful": args.stateful_examples}
            runs[identity.removeprefix("demo-")] = (
                identity,
                "fuzzing,stateful",
                examples,
                STATEFUL_ARGS,
                report_root / identity.removeprefix("demo-"),
            )
        if args.extra:  # a run narrowed by arguments after -- is about /api/schema/'s operations only
            say("inbound run skipped: the run was narrowed by arguments after --")
            status = 0
        else:
            status = run_inbound(base, inbound, env, workdir, report_root / "inbound", args)
        reports: dict[str, list[dict]] = {}
        seconds: dict[str, float] = {}
        for name, (identity, phases, phase_examples, run_args, report_dir) in runs.items():
            config = write_config(workdir, keys, identity, run=name, phase_examples=phase_examples)
            for old in report_dir.glob("*.ndjson"):
                old.unlink()  # the coverage check reads this run's report only
            command = [
                str(BIN / "schemathesis"), "--config-file", str(config), "run", f"{base}/api/schema/",
                "--checks", "all", "--exclude-checks", ",".join(sorted(EXCLUDED_CHECKS)),
                "--phases", phases, "--seed", str(args.seed), *run_args,
                "--workers", "1",  # one worker: the same seed generates the same cases in the same order
                "--generation-database", "none", "--request-timeout", "60",
                "--report", "junit,ndjson", "--report-dir", str(report_dir), "--no-color",
                *args.extra,
            ]  # fmt: skip
            say(f"run {name} as {identity}: schemathesis run … --phases {phases} {' '.join(run_args)}")
            started = time.monotonic()
            code = subprocess.run(command, cwd=workdir, env=env, check=False).returncode
            took = time.monotonic() - started
            seconds[identity] = seconds.get(identity, 0.0) + took
            say(f"run {name}: schemathesis exited with {code} after {took:.0f} s (reports in {report_dir})")
            status = status or code
            found = sorted(report_dir.glob("ndjson-*.ndjson"))
            if not found:
                say(f"run {name}: no NDJSON report in {report_dir}")
                status = status or 1
                continue
            reports.setdefault(identity, []).append(read_report(found[-1]))
        uncovered = {
            identity: summarize(identity, merge_reports(parts), operations, seconds[identity])
            for identity, parts in reports.items()
        }
        if args.extra:
            say("coverage not enforced: the run was narrowed by arguments after --")
        else:
            for identity, missing in uncovered.items():
                if missing:
                    say(f"as {identity}: {len(missing)} operation(s) of the schema got no case:")
                    for label in missing:
                        print(f"    {label}", flush=True)
                    status = status or 1
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
