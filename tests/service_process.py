"""Real server processes of the test's own, to stop and start under the app: a private ``redis-server``, a
private Postgres cluster (``initdb`` + ``pg_ctl``) and the app under gunicorn.

Used by the fault tests (tests/test_faults_services.py). Each listens on a free loopback port in a
temporary directory and is stopped by the test's ``finally``; nothing touches the shared servers.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    """Poll ``predicate()`` until true; fail (AssertionError) with the log's tail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{tail}")


class RedisServer:
    """``redis-server`` on a port of its own with an append-only file in ``directory`` (``appendfsync
    always``: every acknowledged write is on disk, so a SIGKILL loses none), restartable on the same port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = directory / "redis.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = [
            shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.directory), "--appendonly", "yes", "--appendfsync", "always", "--save", "",
            "--logfile", str(self.log),
        ]  # fmt: skip
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(self.answers, 30, "redis-server to answer PING", self.log)

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown (no final save)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def client(self):
        import redis

        return redis.Redis.from_url(self.url)


def _postgres_bin(name: str) -> str | None:
    """``initdb`` / ``pg_ctl``: on the PATH, or in Debian's versioned directory."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


#: Why a private Postgres cannot run here, or ``None`` when it can.
POSTGRES_MISSING = (
    None
    if _postgres_bin("initdb") and _postgres_bin("pg_ctl") and shutil.which("pg_dump") and shutil.which("psql")
    else "needs initdb, pg_ctl, pg_dump and psql (a PostgreSQL server installation) for a private cluster"
)


class PostgresServer:
    """A private Postgres cluster (``initdb``) in ``directory`` on a port of its own, trust auth on loopback,
    started and stopped with ``pg_ctl``. Run as the ``postgres`` user when this process is root (the server
    refuses root)."""

    def __init__(self) -> None:
        # Its own directory under the system's temporary one: pytest's tmp_path is private to root, which
        # the postgres user could not enter.
        self.home = Path(tempfile.mkdtemp(prefix="retain-faults-pg-"))
        self.directory = self.home / "pgdata"
        self.port = free_port()
        self.log = self.home / "postgres.log"
        self._user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.home, "postgres")
            self._user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *cmd: str) -> None:
        done = subprocess.run([*self._user, *cmd], capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise AssertionError(f"{cmd[0]} failed ({done.returncode}): {done.stderr or done.stdout}")

    def remove(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)

    def init(self) -> None:
        self._run(_postgres_bin("initdb") or "initdb", "-D", str(self.directory), "-U", "postgres",
                  "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off"
        self._run(_postgres_bin("pg_ctl") or "pg_ctl", "-D", str(self.directory), "-l", str(self.log),
                  "-o", options, "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        """``immediate``: every server process quits at once, no checkpoint (a crash, recovered at start)."""
        if (self.directory / "postmaster.pid").exists():
            self._run(_postgres_bin("pg_ctl") or "pg_ctl", "-D", str(self.directory), "-m", mode, "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def copy_database(self, source_url: str, database: str) -> None:
        """Create ``database`` here as a copy (schema and rows) of ``source_url``'s."""
        subprocess.run(["psql", self.url("postgres"), "-qc", f"CREATE DATABASE {database}"], check=True,
                       stdout=subprocess.DEVNULL, timeout=60)  # fmt: skip
        dump = subprocess.Popen(["pg_dump", "--no-owner", source_url], stdout=subprocess.PIPE)
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", self.url(database)], stdin=dump.stdout, check=True,
                       stdout=subprocess.DEVNULL, timeout=120)  # fmt: skip
        assert dump.wait(timeout=60) == 0


class Gunicorn:
    """The app under gunicorn (one sync worker) on a free port, with ``env`` on top of this process's."""

    def __init__(self, directory: Path, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = directory / "gunicorn.log"
        self.env = {**os.environ, **env}
        self.env.pop("CELERY_TASK_ALWAYS_EAGER", None)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = [
            sys.executable, "-m", "gunicorn", "cs_platform.wsgi", "--bind", f"127.0.0.1:{self.port}",
            "--workers", "1", "--timeout", "60", "--access-logfile", "-",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            cmd, cwd=ROOT, env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT
        )
        wait_until(lambda: self.request("GET", "/healthz")[0] == 200, 60, "gunicorn to answer /healthz", self.log)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """``(status, content type, body)``; ``(0, "", b"")`` when nothing answers."""
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Content-Type", ""), error.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, "", b""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
