#!/usr/bin/env python3
"""Start the Retain demo: migrate, seed once, then the web app and two Celery workers (one with beat).

Run by ``make run`` with the project's virtualenv. Without ``DATABASE_URL``/``REDIS_URL`` everything
lives in ``var/``: the SQLite database and the filesystem task queue that the web process, the
workers and beat share, so nothing needs installing but Python. As in production
(docs/operations.md), one worker serves the ``celery`` queue (imports, recomputes, renewals) and
another the ``outbound`` queue (webhook deliveries), so a slow receiver never holds the rest. The
workers stop when the web app stops (Ctrl-C stops all); if a worker dies, the web app is stopped
too rather than left running with a queue nobody reads.

Environment: ``HOST`` (127.0.0.1), ``PORT`` (8000), ``DEMO_ORG`` (demo), ``DEMO_SEED`` (42).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HOST = os.environ.get("HOST", "127.0.0.1")
PORT = int(os.environ.get("PORT", "8000"))
ORG = os.environ.get("DEMO_ORG", "demo")
SEED = os.environ.get("DEMO_SEED", "42")
ADMIN_EMAIL = f"admin@{ORG}.retain.local"
ADMIN_PASSWORD = "retain-demo"


#: The demo's workers. ``celery``: one process with an embedded beat, solo pool (SQLite has one writer
#: anyway). ``outbound``: a few threads, since deliveries mostly wait on the network; one process, so
#: the per-organization slots held in the process (no Redis) are exact.
WORKERS = [
    {
        "name": "worker",
        "command": ["-m", "celery", "-A", "cs_platform", "worker", "-Q", "celery", "--beat", "--pool=solo",
                    "--loglevel=INFO", "-n", "retain-demo@%h", "-s", str(ROOT / "var" / "celerybeat-schedule")],
    },
    {
        "name": "outbound worker",
        "command": ["-m", "celery", "-A", "cs_platform", "worker", "-Q", "outbound", "--pool=threads",
                    "--concurrency=4", "--loglevel=INFO", "-n", "retain-demo-outbound@%h"],
    },
]  # fmt: skip


def say(message: str) -> None:
    print(f"[run] {message}", flush=True)


def manage(*args: str) -> None:
    say("manage.py " + " ".join(args))
    result = subprocess.run([PY, "manage.py", *args], cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"[run] manage.py {args[0]} failed (exit {result.returncode}); the demo was not started")


def demo_org_exists() -> bool:
    code = (
        "from accounts.models import Organization;"
        f"import sys; sys.exit(0 if Organization.objects.filter(slug={ORG!r}).exists() else 3)"
    )
    result = subprocess.run([PY, "manage.py", "shell", "--verbosity", "0", "-c", code], cwd=ROOT)
    if result.returncode not in (0, 3):
        raise SystemExit(f"could not check for the demo organization (exit {result.returncode})")
    return result.returncode == 0


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def relay(stream, prefix: str, log_path: Path) -> None:
    """Copy the worker's output to the terminal (prefixed) and to its log file."""
    with log_path.open("a", encoding="utf-8") as log:
        for line in iter(stream.readline, ""):
            log.write(line)
            log.flush()
            sys.stdout.write(f"{prefix} {line}")
            sys.stdout.flush()


def stop(process: subprocess.Popen, name: str, timeout: float = 15) -> None:
    if process.poll() is not None:
        return
    say(f"stopping the {name}...")
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> int:
    os.chdir(ROOT)
    if port_open(HOST, PORT):
        say(f"port {PORT} on {HOST} is already in use: stop what runs there, or run with PORT=8001 make run")
        return 1
    manage("migrate", "--noinput")
    if demo_org_exists():
        say(f"demo organization '{ORG}' already exists: not seeding again (make clean-demo starts afresh)")
    else:
        manage("seed_demo", "--org", ORG, "--seed", SEED)

    log_dir = ROOT / "var" / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    worker_log = log_dir / "worker.log"
    workers: list[tuple[str, subprocess.Popen]] = []
    for spec in WORKERS:
        process = subprocess.Popen(
            [PY, *spec["command"]], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        prefix = "[worker]" if spec["name"] == "worker" else "[outbound]"
        threading.Thread(target=relay, args=(process.stdout, prefix, worker_log), daemon=True).start()
        workers.append((spec["name"], process))
    web = subprocess.Popen([PY, "manage.py", "runserver", f"{HOST}:{PORT}", "--noreload"], cwd=ROOT)

    def on_signal(signum, frame):  # Ctrl-C reaches the children too; just make sure both end
        raise KeyboardInterrupt

    # Explicit, because a launcher started in the background inherits SIGINT as ignored.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    announced = False
    code = 0
    try:
        while True:
            if web.poll() is not None:
                code = web.returncode or 0
                say(f"the web app stopped (exit {web.returncode})")
                break
            dead = [(name, p) for name, p in workers if p.poll() is not None]
            if dead:
                code = 1
                name, process = dead[0]
                say(f"the Celery {name} stopped unexpectedly (exit {process.returncode}); see {worker_log}")
                break
            if not announced and port_open(HOST, PORT):
                announced = True
                url = f"http://{HOST}:{PORT}/"
                bar = "=" * 72
                print(
                    f"\n{bar}\n  Retain is running at {url}\n"
                    f"  Log in as {ADMIN_EMAIL} / {ADMIN_PASSWORD}\n"
                    f"  API docs: {url}api/docs/   Worker log: {worker_log.relative_to(ROOT)}\n"
                    f"  Ctrl-C stops the web app and the workers.\n{bar}\n",
                    flush=True,
                )
            time.sleep(0.3)
    except KeyboardInterrupt:
        say("interrupted")
    finally:
        stop(web, "web app")
        for name, process in workers:
            stop(process, f"Celery {name}")
    return code


if __name__ == "__main__":
    sys.exit(main())
